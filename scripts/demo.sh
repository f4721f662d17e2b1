#!/bin/bash
# make demo: a whole warm migration on the built-in vCenter simulator. A VM
# with a SCSI and a SATA disk, two NICs and EFI gets guest data; `run
# --until ready` copies the base and the first incremental round while the
# guest keeps writing; more data arrives; `run` again does more rounds, shuts
# the guest down, copies the final delta, verifies every byte and defines the
# domain in libvirt's test:///default driver. Then the summary.
# GUEST=debian: the SCSI disk holds a real Debian 12 guest (tests/guest); its
# filesystem gets new content between the phases, the cutover converts it to
# virtio, and the demo ends by booting it under QEMU and printing its marker.
set -eu
BUILD=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=$root/$BUILD/ablestack_v2k
export V2K_VCSIM=$root/$BUILD/v2k-vcsim
. "$root/tests/lib/sim.sh"
. "$root/tests/guest/lib.sh"
GUEST=${GUEST:-}
case "$GUEST" in ''|debian) ;; *) echo "demo: GUEST must be debian (or unset)" >&2; exit 2 ;; esac
tmp=$(mktemp -d /tmp/v2k-demo-XXXXXX)
writer=
trap '[ -z "$writer" ] || kill $writer 2>/dev/null || true; sim_stop || true; rm -rf "$tmp"' EXIT
t_start=$(date +%s.%N)

say() { printf '\n== %s\n' "$*"; }
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username demo --password-file "$tmp/password" \
    --ca-file "$(sim_info .cert_file)"
}
# The guest writes a 1 MiB block somewhere every 0.1 s until it is asked
# to shut down (the simulated guest then takes 2 s to power off).
guest_writes() {
  local i=0
  while ! grep -q '"event":"cutover.preflight"' "$W/events.log" 2>/dev/null; do
    # A real guest's filesystem is written through guest_write_round instead.
    [ -n "$GUEST" ] || sim_fill web01 2000 $(( (i * 7 % 200) * 1048576 )) 1048576 $(( 100 + i % 100 )) || true
    sim_fill web01 2001 $(( (i * 3 % 100) * 1048576 )) 1048576 $(( 50 + i % 100 )) || true
    i=$((i + 1))
    sleep 0.1
  done
}

echo demo-secret >"$tmp/password"
chmod 600 "$tmp/password"
if [ -n "$GUEST" ]; then
  img=$(guest_image "$root/$BUILD/guest")
  say "Starting the vCenter simulator: VM web01 with a real Debian 12 guest on a 2 GiB SCSI disk, a 128 MiB SATA disk, 2 NICs, BIOS"
  sim_start "$tmp" --user demo --password demo-secret \
    --vm web01 --disk scsi:2G --disk sata:128M --nic "VM Network" --nic "Backup Network" \
    --guest-id debian12_64Guest --cpus 2 --memory 1024 --power on --shutdown-delay 2
  cp --sparse=always "$img" "$(sim_disk_flat web01 2000)"
  convert=(--convert required)
else
  say "Starting the vCenter simulator: VM web01 with a 256 MiB SCSI disk, a 128 MiB SATA disk, 2 NICs, EFI"
  sim_start "$tmp" --user demo --password demo-secret \
    --vm web01 --disk scsi:256M --disk sata:128M --nic "VM Network" --nic "Backup Network" \
    --firmware efi --cpus 4 --cores-per-socket 2 --memory 4096 --power on --shutdown-delay 2
  # The simulator's disks hold data, not an operating system: nothing to convert.
  convert=(--convert off)
fi
DS=$(sim_info '.datastores.LocalDS_0')
echo "vCenter at $(sim_info .url), datastore LocalDS_0 at $DS"

if [ -z "$GUEST" ]; then
  say "Writing guest data: 96 MiB spread over both disks"
  for i in $(seq 0 11); do sim_fill web01 2000 $((i * 20 * 1048576)) $((6 * 1048576)) $((1 + i)); done
fi
for i in $(seq 0 5); do sim_fill web01 2001 $((i * 20 * 1048576)) $((4 * 1048576)) $((21 + i)); done

W=$tmp/workdir
common=(--transport file --datastore-map "LocalDS_0=$DS" --libvirt-uri test:///default "${convert[@]}"
        --net-map "VM Network=bridge:br0" --net-map "Backup Network=network:default"
        --incr-interval 2 --max-incr 3)

say "Phase 1 (working hours): run --until ready, with the guest writing"
guest_writes &
writer=$!
v2k --workdir "$W" run --vm web01 --dst "$tmp/images" "${common[@]}" --until ready
say "The guest keeps writing for 3 s more"
sleep 3
if [ -n "$GUEST" ]; then
  say "The guest writes 'round 2' into /data/v2k-round.txt"
  guest_write_round "$(sim_disk_flat web01 2000)" 2
fi
say "Phase 2 (the maintenance window): run again: more rounds, shutdown, final sync, verify, define"
v2k --workdir "$W" run "${common[@]}" --start
kill $writer 2>/dev/null || true
wait $writer 2>/dev/null || true

say "Checking the result independently"
st=$("$BIN" --workdir "$W" status --json)
xml=$(jq -r .cutover.domain.xml <<<"$st")
virt-xml-validate "$xml" domain
identical=yes
# A converted disk differs from the source by design: it was verified before
# the conversion; the data disk is still compared.
for i in 0 1; do
  [ -n "$GUEST" ] && [ $i = 0 ] && continue
  flat=$(jq -r ".vms[0].disks[$i].flat" "$SIM_INFO")
  qemu-img compare -q -f raw -F qcow2 "$flat" "$tmp/images/web01-disk$i.qcow2" || identical=no
done
[ -n "$GUEST" ] && [ "$identical" = yes ] && identical="yes (the data disk; the root disk was verified before its conversion)"
left=$(sim_snapshot_names web01 | grep -c . || true)

phase_bytes() {
  jq -s --arg k "$1" '[.[] | select(.event == "sync.done" and .detail.kind == $k) | .detail.bytes_copied + .detail.bytes_zeroed] | add // 0' "$W/events.log"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "Summary"
printf '  %-28s %s\n' \
  "VM" "web01 -> libvirt domain $(jq -r '"\(.cutover.domain.name) \(.cutover.domain.uuid), " + (if .cutover.started then "started" else "defined" end)' <<<"$st")" \
  "copied, base" "$(mib "$(phase_bytes base)")" \
  "copied, incremental rounds" "$(mib "$(phase_bytes incr)") in $(jq -r .incr_rounds <<<"$st") round(s)" \
  "copied, final (downtime)" "$(mib "$(phase_bytes final)")" \
  "final sync, predicted" "$(jq -r '.forecast.predicted_final_ms / 1000' <<<"$st") s" \
  "final sync, actual" "$(jq -r '.cutover.final_sync_ms / 1000' <<<"$st") s" \
  "guest shutdown took" "$(jq -r '.cutover.shutdown_ms / 1000' <<<"$st") s" \
  "verify (every byte)" "$(jq -r 'if [.disks[].verify.state] | all(. == "done") then "OK" else "FAILED" end' "$W/manifest.json")" \
  "targets identical (qemu-img)" "$identical" \
  "domain XML" "$xml (valid)" \
  "snapshots left on vCenter" "$left" \
  "demo took" "$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f s", b - a }')"
if [ -n "$GUEST" ]; then
  printf '  %-28s %s\n' "conversion" \
    "$(jq -r '.conversion | "converted: \(.converted), virtio drivers: \(.virtio), warnings: \(.warnings), \(.accel)"' "$W/manifest.json")"
  say "Booting the migrated disk under QEMU on virtio-blk (TCG; about 30 s)"
  marker=$(bash "$root/tests/guest/boot.sh" "$tmp/images/web01-disk0.qcow2" qcow2 virtio "$tmp/boot.log" 240)
  echo "  $marker"
  grep -q '^V2K-MARKER root=/dev/vda1 .*vmware-tools=absent file=round_2' <<<"$marker"
fi
[ "${identical%% *}" = yes ] && [ "$left" -eq 0 ]
