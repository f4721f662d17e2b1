#!/bin/bash
# Native Ceph RBD targets, against a real one-node cluster started here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/ceph.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-rbd-XXXXXX)
sim=
cleanup() {
  [ -n "$sim" ] && kill -TERM "$sim" 2>/dev/null
  ceph_stop "$tmp/ceph" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
if ! command -v ceph-mon >/dev/null; then
  skip "rbd targets" "ceph-mon is not installed (make deps installs it)"
  tap_done
  exit 0
fi
# A port of our own below 32768 (ceph_start uses PORT to PORT+99).
port=$((20000 + ($$ % 100) * 100))
if ! ceph_start "$tmp/ceph" "$port"; then
  not_ok "the test Ceph cluster starts"
  tap_done
  exit 1
fi
ok "the test Ceph cluster starts"
conf=$tmp/ceph/ceph.conf

sim_start "$tmp" --vm web01 --disk scsi:64M --disk sata:16M --power on || exit 1
sim=$SIM_PID
v2k() {
  "$BIN" -q "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
W=$(v2k init --vm web01 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --target-storage rbd \
    --target-format raw --target-map scsi0:0=rbd:rbd/web01-disk0 --target-map sata0:0=rbd:rbd/web01-disk1 \
    --ceph-conf "$conf" --ceph-id admin)
check "init with rbd targets" jq_true --arg c "$conf" '.target.storage == "rbd" and .target.ceph_conf == $c and .target.ceph_id == "admin"' "$W/manifest.json"
v2k --workdir "$W" cbt enable >/dev/null
sim_fill web01 2000 0 1000000 65          # object 0
sim_fill web01 2000 10485760 300000 66    # object 2
sim_fill web01 2000 20971520 65536 0      # allocated zeros: no object
v2k --workdir "$W" snapshot base >/dev/null

snap_flat() {
  local f
  f=$(jq -r --argjson k "$1" '[.snapshots[] | select(.removed | not)][-1].disks[] | select(.key == $k) | .file_name' "$W/manifest.json")
  echo "$(sim_info '.datastores.LocalDS_0')/$(sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/' <<<"$f")"
}
same_rbd() {
  local i
  for i in 0 1; do
    rm -f "$tmp/export$i"
    rbd export "rbd/web01-disk$i" "$tmp/export$i" >/dev/null 2>&1 || return 1
    cmp -s "$(snap_flat $((2000 + i)))" "$tmp/export$i" || { echo "disk $i differs" >&2; return 1; }
  done
}
objects() {  # objects IMAGE: the RADOS objects holding its data; "error" if it cannot tell
  local prefix list
  prefix=$(rbd info "rbd/$1" --format json | jq -r .block_name_prefix)
  case $prefix in rbd_data.?*) ;; *) echo error; return ;; esac
  list=$(rados -p rbd ls) || { echo error; return; }
  grep -c "^$prefix" <<<"$list"
}

v2k --workdir "$W" sync base
check "rbd: sync base" test $? -eq 0
check "rbd: identical to the base snapshot (rbd export)" same_rbd
check "rbd: the images were created at the disks' sizes" bash -c "[ \$(rbd info rbd/web01-disk0 --format json | jq .size) = 67108864 ] && [ \$(rbd info rbd/web01-disk1 --format json | jq .size) = 16777216 ]"
check "rbd: holes and zeros create no objects" test "$(objects web01-disk0)" -eq 2
check "rbd: an empty disk has no objects" test "$(objects web01-disk1)" -eq 0
check "rbd: the manifest records the images as ours" jq_true '[.disks[].target_created] == [true, true]' "$W/manifest.json"

sim_fill web01 2000 327680 65536 0         # zeros over a whole 64 KiB block of data
sim_fill web01 2001 5000000 70000 67
sim_fill web01 2000 41943040 4096 68       # object 10
v2k --workdir "$W" snapshot incr >/dev/null
v2k --workdir "$W" sync incr
check "rbd: sync incr" test $? -eq 0
check "rbd: identical after incr" same_rbd
check "rbd: incr zeros arrive as zeros" test "$(jq '.disks[0].counters.bytes_zeroed' "$W/manifest.json")" -gt 0
check "rbd: still sparse after incr" test "$(objects web01-disk0)" -eq 3

# An image this run did not create is never written.
rbd create --size 16M rbd/foreign
check "a foreign image exists" rbd info rbd/foreign
W2=$(v2k init --vm web01 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --target-storage rbd --target-format raw \
    --target-map scsi0:0=rbd:rbd/other0 --target-map sata0:0=rbd:rbd/foreign --ceph-conf "$conf")
v2k --workdir "$W2" snapshot base >/dev/null 2>&1
v2k --workdir "$W2" sync base >"$tmp/o" 2>&1
rc=$?
check "rbd: an existing image is refused (exit 9; exit $rc)" test $rc -eq 9
check "rbd: ... saying why" grep -q "RBD image rbd:rbd/foreign already exists and this run did not create it" "$tmp/o"

# An unreachable cluster fails within the timeout, with a clear error.
ceph_stop_mon "$tmp/ceph"
sim_fill web01 2000 50000000 4096 69
v2k --workdir "$W" snapshot incr >/dev/null
check "rbd: the incr snapshot before the failing sync" test $? -eq 0
ids_before=$(jq -c '[.disks[].cbt.change_id]' "$W/manifest.json")
start=$(date +%s)
v2k --workdir "$W" sync incr --ceph-timeout 3 >"$tmp/o" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
check "rbd: monitor down: exit 9" test $rc -eq 9
check "rbd: monitor down: says the cluster is unreachable" grep -q "cannot reach the Ceph cluster of $conf as client.admin within 3 s" "$tmp/o"
check "rbd: monitor down: fails in bounded time, not 300 s" test "$took" -lt 120
# The targets are checked (their image ids) before anything is planned, so
# the failure is the run's, and no disk's sync record changes.
check "rbd: monitor down: the sync is recorded failed" jq_true '.last_error.code == "target" and .last_error.phase == "sync_incr"' "$W/manifest.json"
ids_after=$(jq -c '[.disks[].cbt.change_id]' "$W/manifest.json")
check "rbd: monitor down: no changeId committed" test "$ids_after" = "$ids_before"
[ "$ids_after" = "$ids_before" ] || echo "# changeIds before: $ids_before, after: $ids_after"
jq -c '[.disks[] | {id, incr: .incr.state}]' "$W/manifest.json" | sed "s/^/# /"
tap_done
