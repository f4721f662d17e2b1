#!/bin/bash
# cutover against the simulator and libvirt's test driver: the v1 workflow
# step by step, every shutdown policy, refusals before the source is
# touched, resuming after kills, and verify after the cutover.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-cutover-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
sim_start "$tmp" \
  --vm v1 --disk scsi:16M --disk sata:8M --nic "VM Network" --nic "Backup" --firmware efi --power on \
  --vm slow --disk scsi:8M --nic "VM Network" --power on --shutdown-delay 2 \
  --vm stuck --disk scsi:8M --nic "VM Network" --power on --shutdown-delay never \
  --vm notools --disk scsi:8M --nic "VM Network" --power on --no-tools \
  --vm crash --disk scsi:8M --disk sata:8M --nic "VM Network" --power on \
  --vm win --disk scsi:8M --nic "VM Network" --power on --guest-id windows2019srv_64Guest || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
LV=(--libvirt-uri test:///default --convert off)
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
# prepare VM: init, cbt, base snapshot and sync; prints the workdir.
prepare() {
  local w
  w=$(v2k init --vm "$1" --dst "$tmp/dst-$1" --workdir-root "$tmp/root" --transport file \
      --datastore-map "LocalDS_0=$DS") || return 1
  v2k --workdir "$w" cbt enable >/dev/null &&
    v2k --workdir "$w" snapshot base >/dev/null &&
    v2k --workdir "$w" sync base >/dev/null || return 1
  echo "$w"
}
jqe() { jq -e "$1" >/dev/null; }
# snap_count VM: how many snapshots the simulator's VM has, read from a reply
# that must be the simulator's answer: a failed query prints nothing, so a
# check for "0" cannot pass by accident.
snap_count() {
  local moref r
  moref=$(jq -r --arg vm "$1" '.vms[] | select(.name == $vm) | .moref' "$SIM_INFO")
  r=$(sim_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>snapshot</pathSet></propSet><objectSet><obj type=\"VirtualMachine\">$moref</obj></objectSet></specSet><options/></RetrievePropertiesEx>") || return 1
  grep -q 'RetrievePropertiesExResponse' <<<"$r" || return 1
  grep -o '</vm><name>[^<]*</name>' <<<"$r" | grep -c .
}
ev() { grep -c "\"event\":\"$2\"" "$1/events.log"; }

# ---- the v1 workflow, step by step ----
sim_fill v1 2000 0 6000000 11
sim_fill v1 2001 1000000 2000000 12
W=$(v2k init --vm v1 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file --datastore-map "LocalDS_0=$DS")
check "v1: init" test -f "$W/manifest.json"
check "v1: cbt enable" v2k --workdir "$W" cbt enable
check "v1: snapshot base" v2k --workdir "$W" snapshot base
check "v1: sync base" v2k --workdir "$W" sync base
for r in 1 2 3; do
  sim_fill v1 2000 $((r * 2000000)) 300000 $((20 + r))
  sim_fill v1 2001 $((r * 100000)) 70000 $((30 + r))
  check "v1: snapshot incr $r" v2k --workdir "$W" snapshot incr
  check "v1: sync incr $r" v2k --workdir "$W" sync incr
done
sim_fill v1 2001 5000000 65536 40   # written after the last incr: only the final sync carries it
# v1's own line: define, then start.
out=$(v2k --workdir "$W" cutover --define-only --start "${LV[@]}" --net-map "VM Network=bridge:br0" \
      --net-map "Backup=network:default" --json)
check "v1: cutover --define-only --start exits 0" test $? -eq 0
check "v1: the domain is defined and running, exactly one of its name" \
  jqe '.domain.defined and .domain.state == "running" and .domain.domains_named == 1' <<<"$out"
check "v1: the source is powered off" test "$(sim_power_state v1)" = poweredOff
check "v1: targets identical to the source disks" sim_same_disks v1 "$tmp/dst/v1-disk0.qcow2" "$tmp/dst/v1-disk1.qcow2"
check "v1: no snapshot left on the simulator" test "$(snap_count v1)" = 0
xml=$(jq -r .domain.xml <<<"$out")
check "v1: the XML is in artifacts/" test "$xml" = "$W/artifacts/v1.xml"
check "v1: the XML validates" virt-xml-validate "$xml" domain
check "v1: the XML keeps both MACs" test "$(grep -c "<mac address='00:50:56:" "$xml")" -eq 2
check "v1: SATA disks and e1000e NICs by default" bash -c "grep -q \"bus='sata'\" '$xml' && grep -q \"model type='e1000e'\" '$xml' && ! grep -qE \"bus='(virtio|scsi)'|model type='virtio'\" '$xml'"
st=$("$BIN" --workdir "$W" status --json)
check "v1: status --json says done with the domain" \
  jqe '.phase == "done" and .state == "done" and .cutover.defined and .cutover.started and .cutover.domain.uuid != null and .snapshots == 0' <<<"$st"
check "v1: shutdown recorded with its timing" grep -q '"event":"shutdown.done","detail":{"policy":"guest","seconds"' "$W/events.log"
check "v1: final sync recorded with its timing" jqe '.cutover.final_sync_ms > 0' <<<"$st"
check "v1: cleanup --keep-workdir" v2k --workdir "$W" cleanup --keep-workdir
check "v1: the workdir stays" test -f "$W/manifest.json"
out=$(v2k --workdir "$W" verify)
check "v1: verify after cutover compares with the powered-off VM" test "$(grep -c 'identical to the powered-off VM' <<<"$out")" -eq 2
qemu-io -f qcow2 -c "write -P 0x5a 3000000 1" "$tmp/dst/v1-disk0.qcow2" >/dev/null
out=$(v2k --workdir "$W" verify 2>&1)
check "verify finds a flipped byte after cutover (exit 11)" test $? -eq 11
check "verify names the exact byte that differs" grep -q "disk scsi0:0 differs from the powered-off VM in 1 chunk(s), first at offset 3000000 (1 bytes)" <<<"$out"
out=$(v2k --workdir "$W" cutover "${LV[@]}" --net-default bridge:br0 --json)
check "a second cutover of a finished run is a no-op that defines nothing twice" \
  jqe '.domain.domains_named == 1 and .snapshots_removed == 0' <<<"$out"

# ---- refusals before the source is touched ----
S=$(prepare slow)
check "slow: init, cbt enable, base snapshot and sync" test -f "$S/manifest.json"
out=$(v2k --workdir "$S" cutover "${LV[@]}" 2>&1)
check "unmapped network: exit 2" test $? -eq 2
check "unmapped network: names it and the fix" grep -q "need a mapping: 'VM Network'.*--net-map" <<<"$out"
check "unmapped network: the source stays on" test "$(sim_power_state slow)" = poweredOn
out=$(v2k --workdir "$S" cutover "${LV[@]}" --net-default bridge:br0 --name test 2>&1)
check "a stranger's domain of that name: exit 10" test $? -eq 10
check "a stranger's domain: says so" grep -q "already has a domain named 'test'" <<<"$out"
check "a stranger's domain: the source stays on" test "$(sim_power_state slow)" = poweredOn
# Refused while parsing: the exit (2) and the message, since the unmapped
# network above is a usage error too.
usage_says() {  # usage_says NAME PATTERN COMMAND...: exit 2 and PATTERN on stderr
  local name=$1 pat=$2 rc=0
  shift 2
  "$@" >/dev/null 2>"$tmp/e" || rc=$?
  if [ "$rc" -eq 2 ] && grep -q -- "$pat" "$tmp/e"; then ok "$name"; else not_ok "$name (exit $rc: $(head -c 200 "$tmp/e"))"; fi
}
usage_says "a bad --net-map value" "--net-map: 'br0' is not bridge:BRIDGE or network:NETWORK" \
  v2k --workdir "$S" cutover --net-map "VM Network=br0"
usage_says "--force-poweroff without --shutdown guest" "cutover: --force-poweroff belongs to --shutdown guest" \
  v2k --workdir "$S" cutover --shutdown poweroff --force-poweroff
usage_says "--define-only with --target-provider none" "cutover: --define-only defines a libvirt domain" \
  v2k --workdir "$S" cutover --define-only --target-provider none
out=$(v2k --workdir "$S" cutover "${LV[@]}" --net-default bridge:br0 --shutdown manual 2>&1)
check "manual while the VM is on: refused (exit 2)" test $? -eq 2
check "manual while on: says what to do" grep -q "still poweredOn; shut it down first" <<<"$out"
check "manual while on: the VM stays on, no final snapshot" \
  bash -c "test \"\$(jq '[.snapshots[] | select(.kind == \"final\")] | length' '$S/manifest.json')\" -eq 0"

# ---- shutdown policies ----
out=$(v2k --workdir "$S" cutover "${LV[@]}" --net-default bridge:br0 --shutdown-timeout 30 --define-only --json)
check "guest: waits for a guest that takes 2 s, then cuts over" jqe '.shutdown.policy == "guest" and .domain.defined' <<<"$out"
check "--define-only: the domain is defined and left off" \
  jqe '.domain.state == "shut off" and .domain.started == false and .domain.domains_named == 1' <<<"$out"
check "guest: the VM is off" test "$(sim_power_state slow)" = poweredOff

T=$(prepare stuck)
check "stuck: init, cbt enable, base snapshot and sync" test -f "$T/manifest.json"
out=$(v2k --workdir "$T" cutover "${LV[@]}" --net-default bridge:br0 --shutdown-timeout 2 2>&1)
check "guest timeout without --force-poweroff: exit 6" test $? -eq 6
check "guest timeout: says how to go on" grep -q "did not shut down within 2 s.*--force-poweroff" <<<"$out"
check "guest timeout: the VM is left on" test "$(sim_power_state stuck)" = poweredOn
check "guest timeout: recorded as an event" test "$(ev "$T" shutdown.timeout)" -eq 1
check "guest timeout: status shows the failure" jq_true '.state == "failed"' <("$BIN" --workdir "$T" status --json)
out=$(v2k --workdir "$T" cutover "${LV[@]}" --net-default bridge:br0 --shutdown-timeout 2 --force-poweroff \
      --keep-snapshots --json)
check "guest timeout with --force-poweroff: powered off and cut over" \
  jqe '.shutdown.policy == "guest+poweroff" and .domain.defined' <<<"$out"
check "force-poweroff: the VM is off" test "$(sim_power_state stuck)" = poweredOff
check "--keep-snapshots: none removed" jqe '.snapshots_removed == 0' <<<"$out"
check "--keep-snapshots: the simulator still has them" test "$(snap_count stuck)" -ge 1

N=$(prepare notools)
check "notools: init, cbt enable, base snapshot and sync" test -f "$N/manifest.json"
out=$(v2k --workdir "$N" cutover "${LV[@]}" --net-default bridge:br0 2>&1)
check "no VMware Tools: guest shutdown refused (exit 6)" test $? -eq 6
check "no VMware Tools: a clear error" grep -q "has no VMware Tools.*--shutdown manual.*--shutdown poweroff" <<<"$out"
check "no VMware Tools: the VM stays on" test "$(sim_power_state notools)" = poweredOn
out=$(v2k --workdir "$N" cutover "${LV[@]}" --net-default bridge:br0 --shutdown poweroff \
      --disk-bus virtio --nic-model virtio --json)
check "poweroff: powers off at once and cuts over" jqe '.shutdown.policy == "poweroff" and .domain.defined' <<<"$out"
check "--disk-bus virtio --nic-model virtio: the XML has them, and no SATA or e1000e" \
  bash -c "grep -q \"bus='virtio'\" '$N/artifacts/notools.xml' && grep -q \"model type='virtio'\" '$N/artifacts/notools.xml' && ! grep -qE \"bus='sata'|model type='e1000e'\" '$N/artifacts/notools.xml'"
check "poweroff: targets identical" sim_same_disks notools "$tmp/dst-notools/notools-disk0.qcow2"

# ---- Windows conversion prerequisites, checked before the shutdown ----
Wn=$(prepare win)
check "win: init, cbt enable, base snapshot and sync" test -f "$Wn/manifest.json"
LVC=(--libvirt-uri test:///default --net-default bridge:br0)
out=$(VIRTIO_WIN=$tmp/no-virtio-win v2k --workdir "$Wn" cutover "${LVC[@]}" --convert required 2>&1)
check "Windows without virtio-win, --convert required: refused (exit 2)" test $? -eq 2
check "the refusal names VIRTIO_WIN" grep -q "virtio-win drivers: $tmp/no-virtio-win is missing; set VIRTIO_WIN" <<<"$out"
check "the refusal leaves the VM on" test "$(sim_power_state win)" = poweredOn
mkdir -p "$tmp/virtio-win" "$tmp/virt-tools"
out=$(VIRTIO_WIN=$tmp/virtio-win VIRT_TOOLS_DATA_DIR=$tmp/virt-tools v2k --workdir "$Wn" cutover "${LVC[@]}" --convert required 2>&1)
check "Windows without rhsrvany/pvvxsvc: refused, naming them" grep -q "needs rhsrvany.exe or pvvxsvc.exe in $tmp/virt-tools" <<<"$out"
out=$(VIRTIO_WIN=$tmp/no-virtio-win v2k --workdir "$Wn" cutover "${LVC[@]}" --shutdown poweroff --json)
check "--convert auto falls back to SATA + e1000e and cuts over" jqe '.domain.defined' <<<"$out"
check "the fallback is recorded with its reason" \
  jq_true '.conversion.fallback | test("VIRTIO_WIN")' "$Wn/manifest.json"
check "the fallback is a warning event" grep -q '"event":"convert.fallback".*VIRTIO_WIN' "$Wn/events.log"
check "the fallback domain uses SATA and e1000e" \
  bash -c "grep -q \"bus='sata'\" '$Wn/artifacts/win.xml' && grep -q \"model type='e1000e'\" '$Wn/artifacts/win.xml'"

# ---- killed at each cutover step, then re-run ----
C=$(prepare crash)
check "crash: init, cbt enable, base snapshot and sync" test -f "$C/manifest.json"
sim_fill crash 2000 100000 200000 51
sim_fill crash 2001 300000 200000 52
for point in cutover:powered-off snapshot:created sync:before-commit cutover:defined; do
  V2K_CRASHPOINT=$point v2k --workdir "$C" cutover "${LV[@]}" --net-default bridge:br0 --start >/dev/null 2>&1
  check "killed at $point" test $? -eq 137
done
check "killed runs never power the source back on" test "$(sim_power_state crash)" = poweredOff
out=$(v2k --workdir "$C" cutover "${LV[@]}" --net-default bridge:br0 --start --json)
check "the re-run completes" jqe '.domain.state == "running" and .domain.domains_named == 1' <<<"$out"
check "after the kills: targets identical" sim_same_disks crash "$tmp/dst-crash/crash-disk0.qcow2" "$tmp/dst-crash/crash-disk1.qcow2"
check "after the kills: one final snapshot was taken" \
  test "$(jq '[.snapshots[] | select(.kind == "final")] | length' "$C/manifest.json")" -eq 1
check "after the kills: no snapshot is left" test "$(snap_count crash)" = 0
check "after the kills: the guest shutdown was asked once" test "$(ev "$C" shutdown.done)" -eq 1
check "after the kills: no helper process is left" bash -c "! pgrep -f '$C/ru[n]/' >/dev/null"
tap_done
