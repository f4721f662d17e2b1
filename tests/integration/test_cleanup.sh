#!/bin/bash
# cleanup after a kill mid-sync: no process, socket or snapshot of the run is
# left; targets, user snapshots and strangers' processes are untouched.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-cleanup-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; [ -n "${decoy:-}" ] && kill "$decoy" 2>/dev/null; rm -rf "$tmp"' EXIT
sim_start "$tmp" --vm c1 --disk scsi:16M --disk sata:8M --power on || exit 1
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
W=$(v2k init --vm c1 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')")
moref=$(sim_info '.vms[0].moref')
sim_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$moref</_this><name>user snapshot</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>" >/dev/null
v2k --workdir "$W" cbt enable >/dev/null
sim_fill c1 2000 0 4000000 81
v2k --workdir "$W" snapshot base >/dev/null
v2k --workdir "$W" sync base >/dev/null
sim_fill c1 2001 100000 50000 82
v2k --workdir "$W" snapshot incr >/dev/null
# A snapshot an interrupted command never recorded.
sim_fill c1 2000 8000000 50000 83
V2K_CRASHPOINT=snapshot:created v2k --workdir "$W" snapshot final --allow-running >/dev/null 2>&1
rc=$?
check "snapshot final killed right after creating its snapshot (exit $rc)" test $rc -eq 137
check "an unrecorded snapshot exists" test "$(sim_snapshot_names c1 | grep -c final)" -eq 1
check "... that the manifest does not record" jq_true '[.snapshots[] | select(.kind == "final")] | length == 0' "$W/manifest.json"
# A sync killed in the middle, and a helper that outlived it.
V2K_CRASHPOINT=sync:before-commit v2k --workdir "$W" sync incr >/dev/null 2>&1
rc=$?
check "sync incr killed before its commit (exit $rc)" test $rc -eq 137
qemu-nbd -r -f raw -t -k "$W/run/orphan.sock" "$tmp/dst/c1-disk0.qcow2" >/dev/null 2>&1 &
orphan=$!
echo "$orphan" >"$W/run/orphan.pid"
# One whose pidfile was never written (the command died right after the fork).
qemu-nbd -r -f raw -t -k "$W/run/nopid.sock" "$tmp/dst/c1-disk0.qcow2" >/dev/null 2>&1 &
nopid=$!
sleep 100 &
decoy=$!
echo "$decoy" >"$W/run/decoy.pid"
for _ in $(seq 50); do [ -S "$W/run/orphan.sock" ] && [ -S "$W/run/nopid.sock" ] && break; sleep 0.1; done
# Without these, the checks below would pass on helpers that never ran.
check "the two orphan helpers serve before the cleanup" bash -c "kill -0 $orphan && kill -0 $nopid && [ -S '$W/run/orphan.sock' ] && [ -S '$W/run/nopid.sock' ]"
check "two targets to watch" test "$(ls "$tmp/dst/" | wc -l)" -eq 2
sum_before=$(md5sum "$tmp/dst/"* | md5sum)
n=$(sim_snapshot_names c1 | grep -c ablestack-v2k)
check "before the cleanup, the run has snapshots to remove ($n)" test "$n" -ge 2

out=$(v2k --workdir "$W" cleanup 2>&1)
check "cleanup: exit 0" test $? -eq 0
check "cleanup stops our helper" bash -c "! kill -0 $orphan 2>/dev/null"
for _ in $(seq 50); do kill -0 "$nopid" 2>/dev/null || break; sleep 0.1; done
check "cleanup stops a helper that has no pidfile" bash -c "! kill -0 $nopid 2>/dev/null"
kill "$nopid" 2>/dev/null
check "cleanup leaves other processes alone" kill -0 "$decoy"
check "cleanup leaves no socket or pidfile" bash -c "! ls '$W/run/'*.sock '$W/run/'*.pid 2>/dev/null | grep -q ."
check "cleanup removes the run's snapshots, recorded or not" test "$(sim_snapshot_names c1 | grep -c ablestack-v2k)" -eq 0
check "cleanup keeps the user's snapshot" test "$(sim_snapshot_names c1 | grep -c 'user snapshot')" -eq 1
check "cleanup never touches the targets" test "$(md5sum "$tmp/dst/"* | md5sum)" = "$sum_before"
check "cleanup keeps the workdir of an unfinished migration" test -f "$W/manifest.json"
check "cleanup says why the workdir stays" grep -q "the workdir stays until the migration is done" <<<"$out"
check "the manifest marks the snapshots removed" jq_true '[.snapshots[].removed] | all' "$W/manifest.json"
wait "$orphan" 2>/dev/null
check "no process of the run is left" bash -c "! pgrep -f '$W/ru[n]/' >/dev/null"
out=$(v2k --workdir "$W" cleanup 2>&1)
check "a second cleanup is a no-op" grep -q "0 helper process(es) stopped, 0 snapshot(s) removed" <<<"$out"
v2k --workdir "$W" snapshot incr >/dev/null 2>&1
check "a new snapshot to keep" test "$(sim_snapshot_names c1 | grep -c ablestack-v2k)" -eq 1
v2k --workdir "$W" cleanup --keep-snapshots >/dev/null
check "cleanup --keep-snapshots leaves them" test "$(sim_snapshot_names c1 | grep -c ablestack-v2k)" -eq 1
expect_exit "cleanup without a workdir" 2 "$BIN" cleanup
tap_done
