#!/bin/bash
# The data plane against the simulator, qemu-nbd and nbdkit: sync base, incr
# and final into qcow2, raw and block targets, over the file, vddk (stand-in
# plugin) and nbd transports; kills at seeded points; source and target
# failures. Every target is compared with the snapshot it was copied from.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/vddk-standin.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-sync-XXXXXX)
sims=()
mounts=()
loops=()
cleanup() {
  local p
  for p in "${sims[@]}"; do kill -TERM "$p" 2>/dev/null; done
  pkill -f "$tmp/" 2>/dev/null
  for p in "${mounts[@]}"; do umount "$p" 2>/dev/null; done
  for p in "${loops[@]}"; do losetup -d "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
PASSWORD='Pa$$ w0rd-"quoted"'

start() {  # start NAME FLAGS...
  local dir=$tmp/$1
  shift
  mkdir -p "$dir"
  sim_start "$dir" --password "$PASSWORD" --user admin "$@" || { echo "simulator failed" >&2; exit 1; }
  sims+=("$SIM_PID")
  SIM_PID=
  printf '%s\n' "$PASSWORD" >"$dir/pw"
}

v2k() {
  local dir=${SIM_INFO%/*}
  "$BIN" -q "$@" --vcenter "$(sim_info .url)" --username admin --password-file "$dir/pw" \
    --ca-file "$(sim_info .cert_file)"
}

init_vm() {  # init_vm VM [init args]: prints the workdir
  local vm=$1 dir=${SIM_INFO%/*}
  shift
  v2k init --vm "$vm" --dst "$dir/dst" --workdir-root "$dir/root" "$@"
}

file_init() {  # file transport
  init_vm "$@" --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')"
}

# snap_flat W KEY: the data file of the latest snapshot's copy of disk KEY.
snap_flat() {
  local f
  f=$(jq -r --argjson k "$2" '[.snapshots[] | select(.removed | not)][-1].disks[] | select(.key == $k) | .file_name' "$1/manifest.json")
  echo "$(sim_info '.datastores.LocalDS_0')/$(sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/' <<<"$f")"
}

# same W: every target equals the data of the latest snapshot.
same() {
  local w=$1 fmt i key tgt
  fmt=$(jq -r '.target.format' "$w/manifest.json")
  [ "$(jq -r .target.storage "$w/manifest.json")" = block ] && fmt=raw
  for i in $(seq 0 $(($(jq '.disks | length' "$w/manifest.json") - 1))); do
    key=$(jq -r ".disks[$i].key" "$w/manifest.json")
    tgt=$(jq -r ".disks[$i].target_path" "$w/manifest.json")
    qemu-img compare -q -f raw -F "$fmt" "$(snap_flat "$w" "$key")" "$tgt" || { echo "disk $i differs" >&2; return 1; }
  done
}

# committed W: each disk's committed changeId is the latest snapshot's.
committed() {
  jq -e '([.snapshots[] | select(.removed | not)][-1].disks | map({key, change_id})) as $s |
         [.disks[] | {key, change_id: .cbt.change_id}] == $s' "$1/manifest.json" >/dev/null
}

no_helpers_left() {
  ! pgrep -f "$1/run/" >/dev/null
}

done_event() {  # done_event W DISK FIELD: the field of the disk's last sync.disk.done
  jq -rs --arg d "$2" "[.[] | select(.event == \"sync.disk.done\" and .disk == \$d)][-1].detail.$3" "$1/events.log"
}

# ---------------------------------------------------------------- qcow2, 3 disks, file transport
start q --vm web01 --disk scsi:64M --disk sata:32M --disk ide:16M --nic "VM Network" --power on
W=$(file_init web01)
v2k --workdir "$W" cbt enable >/dev/null
sim_fill web01 2000 0 1000000 65
sim_fill web01 2000 10485760 300000 66
sim_fill web01 2001 5000000 70000 67
v2k --workdir "$W" snapshot base >/dev/null
v2k --workdir "$W" sync base
check "sync base: exit 0" test $? -eq 0
check "sync base: targets identical to the base snapshot" same "$W"
check "sync base: changeIds committed" committed "$W"
check "sync base: '*' areas copy only allocated data" test "$(done_event "$W" scsi0:0 bytes_copied)" -eq 1376256
check "sync base: the areas came from CBT" test "$(done_event "$W" scsi0:0 method)" = cbt
check "sync base: an all-zero disk sends no data" test "$(done_event "$W" ide0:0 bytes_copied)" -eq 0 -a "$(done_event "$W" ide0:0 bytes_zeroed)" -eq 0
check "sync base: qcow2 targets stay sparse" test "$(qemu-img info --output=json "$tmp/q/dst/web01-disk0.qcow2" | jq '."actual-size"')" -lt 8000000
check "sync base: no helper process left" no_helpers_left "$W"
check "sync base: manifest records the phase" jq_true '.phase == "sync_base" and .phases.sync_base.state == "done" and ([.disks[].base.state] | unique) == ["done"]' "$W/manifest.json"
v2k --workdir "$W" sync base
check "sync base again: nothing to do" test $? -eq 0
for round in 1 2 3; do
  sim_fill web01 2000 $((round * 3000000)) 200000 $((70 + round))
  [ $round = 1 ] && sim_fill web01 2001 4980736 65536 0    # zeros over a whole block of data
  sim_fill web01 2002 $((round * 1000000)) 100 $((80 + round))
  v2k --workdir "$W" snapshot incr >/dev/null
  v2k --workdir "$W" sync incr
  check "sync incr round $round: exit 0" test $? -eq 0
  check "sync incr round $round: targets identical" same "$W"
  check "sync incr round $round: changeIds committed" committed "$W"
  check "sync incr round $round: one migration snapshot left" test "$(sim_snapshot_names web01 | wc -l)" -eq 1
done
check "zeros written in the guest arrive as zero writes" test "$(jq '.disks[1].counters.bytes_zeroed' "$W/manifest.json")" -gt 0
check "incr rounds counted" jq_true '.incr_rounds == 3' "$W/manifest.json"
v2k --workdir "$W" snapshot incr >/dev/null
v2k --workdir "$W" sync incr
check "an incr with no changes succeeds" test $? -eq 0
check "an incr with no changes copies nothing" test "$(done_event "$W" scsi0:0 bytes_copied)" = 0 -a "$(done_event "$W" scsi0:0 areas)" = 0
check "an incr with no changes starts no server" bash -c "! ls '$W/run/'*.log 2>/dev/null | grep -q . || [ \$(find '$W/run' -name '*.log' -newer '$W/manifest.json' | wc -l) -eq 0 ]"
sim_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$(sim_info '.vms[0].moref')</_this></PowerOffVM_Task>" >/dev/null
sim_fill web01 2000 20000000 65536 99
v2k --workdir "$W" snapshot final >/dev/null
v2k --workdir "$W" sync final
check "sync final: exit 0" test $? -eq 0
check "sync final: targets identical to the final snapshot" same "$W"
for k in 2000 2001 2002; do
  i=$((k - 2000))
  check "sync final: disk $i identical to the powered-off VM's disk" qemu-img compare -q -f raw -F qcow2 "$(sim_disk_flat web01 $k)" "$tmp/q/dst/web01-disk$i.qcow2"
done
v2k --workdir "$W" sync incr >/dev/null 2>&1
check "status after final" bash -c "'$BIN' --workdir '$W' status --json | jq -e '.phase == \"sync_final\" and (.disks | all(.cbt.change_id != null))' >/dev/null"

# ---------------------------------------------------------------- raw targets
start r --vm r1 --disk scsi:16M --disk sata:16M --power on
WR=$(file_init r1 --target-format raw)
v2k --workdir "$WR" cbt enable >/dev/null
sim_fill r1 2000 4096 500000 11
v2k --workdir "$WR" snapshot base >/dev/null
v2k --workdir "$WR" sync base
check "raw: sync base" same "$WR"
check "raw: targets are sparse files" test "$(du -k "$tmp/r/dst/r1-disk1.raw" | cut -f1)" -lt 1024
sim_fill r1 2001 8000000 70000 12
v2k --workdir "$WR" snapshot incr >/dev/null
v2k --workdir "$WR" sync incr
check "raw: sync incr" same "$WR"
check "raw: the target has the disk's size" test "$(stat -c %s "$tmp/r/dst/r1-disk0.raw")" -eq 16777216

# ---------------------------------------------------------------- vddk transport (stand-in plugin)
start v --vm v1 --disk scsi:16M --disk sata:8M --power on
make_vddk_standin "$tmp/v/standin.sh" "$(sim_info '.datastores.LocalDS_0')" "$PASSWORD" "$tmp/v/ev"
WV=$(init_vm v1 --vddk-libdir "$tmp/v")
v2k --workdir "$WV" cbt enable >/dev/null
sim_fill v1 2000 0 3000000 21
v2k --workdir "$WV" snapshot base >/dev/null
( while :; do
    for p in $(pgrep -f "$WV/run/" 2>/dev/null); do
      tr '\0' ' ' </proc/$p/cmdline 2>/dev/null; echo
      tr '\0' '\n' </proc/$p/environ 2>/dev/null
    done
    sleep 0.02
  done ) >"$tmp/v/procscan" 2>/dev/null &
scanner=$!
V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/v/standin.sh" v2k --workdir "$WV" sync base
rc=$?
kill "$scanner" 2>/dev/null; wait "$scanner" 2>/dev/null
check "vddk: sync base through nbdkit" test $rc -eq 0
check "vddk: identical" same "$WV"
check "vddk: the plugin got the password through a descriptor" grep -qx ok "$tmp/v/ev/password"
check "vddk: vm, snapshot and file parameters" bash -c "grep -qx 'vm=moref=$(sim_info '.vms[0].moref')' '$tmp/v/ev/params' && grep -q '^snapshot=snapshot-' '$tmp/v/ev/params' && grep -q '^file=\[LocalDS_0\] v1/' '$tmp/v/ev/params'"
check "vddk: host thumbprint and transports passed" bash -c "grep -qx 'thumbprint=$(sim_info .thumbprint_sha1)' '$tmp/v/ev/params' && grep -qx 'transports=nbdssl:nbd' '$tmp/v/ev/params'"
check "vddk: an empty per-run config file" bash -c "f=\$(sed -n 's/^config=//p' '$tmp/v/ev/params' | head -1); [ -f \"\$f\" ] && [ ! -s \"\$f\" ]"
check "vddk: retry and blocksize filters in front" grep -q -- "--filter=retry --filter=blocksize" "$tmp/v/ev/cmdline"
check "no password in nbdkit's argv or environment" bash -c "! grep -qF -- '$PASSWORD' '$tmp/v/ev/cmdline' '$tmp/v/ev/environ'"
check "no password in any helper's argv or environment" bash -c "[ -s '$tmp/v/procscan' ] && ! grep -qF -- '$PASSWORD' '$tmp/v/procscan'"
check "no GOVC or VDDK secrets in helper environments" bash -c "! grep -qE '^(GOVC_|VDDK_|LD_LIBRARY_PATH)' '$tmp/v/ev/environ'"
check "no password in the workdir" bash -c "! grep -rqF -- '$PASSWORD' '$WV'"
sim_fill v1 2001 100000 5000 22
v2k --workdir "$WV" snapshot incr >/dev/null
V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/v/standin.sh" v2k --workdir "$WV" sync incr
check "vddk: sync incr" same "$WV"

tap_done
