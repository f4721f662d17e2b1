#!/bin/bash
# The proof: a real Debian 12 guest (tests/guest/build-guest.sh) as the disk
# of a simulator VM goes through a warm migration with writes into its
# filesystem between rounds, a cutover with conversion (killed once midway,
# then run again), and boots on virtio-blk with the last round's content.
# The unconverted image fails on virtio-blk and boots on SATA, which is the
# fallback. A VM with no OS shows the automatic fallback.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/lib.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
cache=${V2K_GUEST_CACHE:-/tmp/v2k-guest-cache}
tmp=$(mktemp -d /tmp/v2k-guest-test-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
jqe() { jq -e "$1" >/dev/null; }

img=$(guest_image "$cache") || { echo "not ok 1 - building the guest image"; tap_done; exit 1; }
check "the guest image exists" test -s "$img"

sim_start "$tmp" \
  --vm deb --disk scsi:2G --nic "VM Network" --power on --guest-id debian12_64Guest --memory 1024 \
  --vm blank --disk scsi:64M --nic "VM Network" --power on || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
flat=$(sim_disk_flat deb 2000)
cp --sparse=always "$img" "$flat"
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
write_round() {  # write_round N: the round's file is in the guest's filesystem, read back
  guest_write_round "$flat" "$1"
  check "round $1 is written into the guest's filesystem (read back)" test $? -eq 0
}

W=$(v2k init --vm deb --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file --datastore-map "LocalDS_0=$DS")
check "init" test -f "$W/manifest.json"
check "cbt enable, base snapshot and sync" \
  bash -c "$(declare -f v2k sim_info); SIM_INFO='$SIM_INFO' BIN='$BIN'; v2k --workdir '$W' cbt enable && v2k --workdir '$W' snapshot base && v2k --workdir '$W' sync base" 
for r in 1 2; do
  write_round $r
  check "round $r written into the guest, snapshot incr, sync incr" \
    bash -c "$(declare -f v2k sim_info); SIM_INFO='$SIM_INFO' BIN='$BIN'; v2k --workdir '$W' snapshot incr >/dev/null && v2k --workdir '$W' sync incr >/dev/null"
done
write_round 3   # only the final sync carries this one
target=$tmp/dst/deb-disk0.qcow2
LV=(--libvirt-uri test:///default --net-default bridge:br0 --shutdown poweroff)

# A conversion killed midway: the targets stay the final-sync image. The
# kill is aimed at the moment virt-v2v-in-place (the pid its convert.started
# event names) is running and has reported progress; that it landed there is
# checked, not assumed: the cutover died of SIGKILL, virt-v2v was alive at
# that moment, and nothing recorded the conversion done.
echo pass >"$tmp/pw"
"$BIN" --workdir "$W" cutover "${LV[@]}" --convert required --vcenter "$(sim_info .url)" --username user \
  --password-file "$tmp/pw" --ca-file "$(sim_info .cert_file)" >"$tmp/cut1.log" 2>&1 &
pid=$!
v2v=
for _ in $(seq 600); do
  n=$(grep -c . "$W/convert/v2v-progress.jsonl" 2>/dev/null)
  v2v=$(jq -r 'select(.event == "convert.started") | .detail.pid' "$W/events.log" 2>/dev/null | tail -1)
  [ "${n:-0}" -ge 3 ] && [ -n "$v2v" ] && kill -0 "$v2v" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
v2v_alive=no
[ -n "$v2v" ] && kill -0 "$v2v" 2>/dev/null && v2v_alive=yes
kill -9 $pid
wait $pid
rc=$?
# virt-v2v gets SIGTERM from the kernel when its parent dies; give it and its
# appliance time to go.
for _ in $(seq 60); do pgrep -f "$W/conver[t]" >/dev/null || break; sleep 0.5; done
check "conversion killed midway: the cutover died of the kill (exit $rc) while virt-v2v (pid ${v2v:-none}) ran" \
  test "$rc" -eq 137 -a "$v2v_alive" = yes
check "killed conversion: recorded as running, not committing, not converted" \
  jq_true '.conversion.state == "running" and (.conversion.committing | not) and (.conversion.converted | not)' "$W/manifest.json"
check "killed conversion: no convert.done event" bash -c "! grep -q '\"event\":\"convert.done\"' '$W/events.log'"
check "killed conversion: the target is exactly the final-sync image" sim_same_disks deb "$target"
check "killed conversion: no virt-v2v or appliance left" bash -c "! pgrep -f '$W/conver[t]' >/dev/null"

out=$(v2k --workdir "$W" cutover "${LV[@]}" --convert required --convert-accel tcg --start --json)
check "cutover run again: converts and defines" jqe '.domain.defined and .domain.state == "running"' <<<"$out"
check "--convert-accel tcg is what the conversion ran with" \
  jq_true -s '[.[] | select(.event == "convert.started")][-1].detail.accel == "tcg"' "$W/events.log"
check "the conversion is recorded: converted, virtio drivers" \
  jq_true '.conversion.converted and .conversion.virtio and .conversion.state == "done" and (.conversion.committing | not)' "$W/manifest.json"
check "virt-v2v's messages became events" grep -q '"event":"convert.message"' "$W/events.log"
xml=$W/artifacts/deb.xml
check "the converted guest's domain uses virtio-blk and a virtio NIC" \
  bash -c "grep -q \"<target dev='vda' bus='virtio'/>\" '$xml' && grep -q \"<model type='virtio'/>\" '$xml'"
check "the domain XML validates" virt-xml-validate "$xml" domain
check "no overlay is left" bash -c "! ls '$W/convert/'*.qcow2 2>/dev/null | grep -q ."
out=$(v2k --workdir "$W" cutover "${LV[@]}" --convert required --json)
rc=$?
check "a cutover after the conversion succeeds (exit $rc)" test "$rc" -eq 0
check "a finished conversion is not repeated" test "$(grep -c '"event":"convert.started"' "$W/events.log")" -eq 2

m=$(bash "$here/boot.sh" "$target" qcow2 virtio "$tmp/boot-converted.log" 240)
echo "# converted on virtio-blk: $m"
check "the converted target boots on virtio-blk" grep -q "^V2K-MARKER" <<<"$m"
check "root on /dev/vda1" grep -q "root=/dev/vda1 " <<<"$m"
check "VMware Tools removed" grep -q "vmware-tools=absent" <<<"$m"
check "the test file holds the last round's content" grep -q "file=round_3" <<<"$m"

m=$(bash "$here/boot.sh" "$img" raw virtio "$tmp/boot-unconverted-virtio.log" 180)
echo "# unconverted on virtio-blk: $m"
# A positive sign of the failure, not the absence of success: a guest that
# merely timed out (or never started) proves nothing.
check "the unconverted image does not boot on virtio-blk: the initramfs gives up on its root disk" \
  grep -q "^NO-ROOT " <<<"$m"
check "... and drops to a shell on the serial console" grep -qa "Dropping to a shell" "$tmp/boot-unconverted-virtio.log"
m=$(bash "$here/boot.sh" "$img" raw sata "$tmp/boot-unconverted-sata.log" 180)
echo "# unconverted on SATA: $m"
check "the unconverted image boots on SATA (the fallback)" grep -q "^V2K-MARKER root=/dev/sda1 " <<<"$m"

# No operating system: --convert auto falls back to SATA + e1000e, with the reason.
B=$(v2k init --vm blank --dst "$tmp/dst-blank" --workdir-root "$tmp/root" --transport file --datastore-map "LocalDS_0=$DS")
check "blank: cbt enable, base snapshot and sync" \
  bash -c "$(declare -f v2k sim_info); SIM_INFO='$SIM_INFO' BIN='$BIN'; v2k --workdir '$B' cbt enable >/dev/null && v2k --workdir '$B' snapshot base >/dev/null && v2k --workdir '$B' sync base >/dev/null"
out=$(v2k --workdir "$B" cutover "${LV[@]}" --json)
check "auto: a failed conversion still cuts over" jqe '.domain.defined' <<<"$out"
check "auto: the fallback reason is recorded" jq_true '.conversion.fallback | test("virt-v2v")' "$B/manifest.json"
check "auto: the fallback domain uses SATA and e1000e" \
  bash -c "grep -q \"bus='sata'\" '$B/artifacts/blank.xml' && grep -q \"model type='e1000e'\" '$B/artifacts/blank.xml'"
check "auto: the target is untouched by the failed conversion" sim_same_disks blank "$tmp/dst-blank/blank-disk0.qcow2"
tap_done
