#!/bin/bash
# The fault matrix: each case runs a real migration (simulator, nbdkit with
# the VDDK stand-in, qemu-nbd, libvirt's test driver), injects one fault,
# runs the same command again, then finishes the migration, and asserts that
# the targets are bit-identical to the source, that every disk's changeId is
# the final snapshot's, and that no process, socket or migration snapshot
# is left. With V2K_FAULT_TABLE=FILE it writes the results table there
# (docs/reliability.md).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/vddk-standin.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-faults-XXXXXX)
mounts=()
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done; rm -rf "$tmp"' EXIT
table=${V2K_FAULT_TABLE:-$tmp/table.md}
: >"$table"
PW=faultpass
echo "$PW" >"$tmp/pw"
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file "$tmp/pw" \
    --ca-file "$(sim_info .cert_file)"
}
# new_sim [flags]: a simulator with one VM "f" (two disks) for one case.
new_sim() {
  sim_stop
  sim_start "$tmp" --user user --password "$PW" --vm f --disk scsi:12M --disk sata:6M --nic "VM Network" \
    --power on "$@" || exit 1
  DS=$(sim_info '.datastores.LocalDS_0')
  make_vddk_standin "$tmp/standin.sh" "$DS" "$PW" "$tmp/ev"
  rm -f "$tmp/ev/fault"
  export V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/standin.sh"
  CASE_N=$((${CASE_N:-0} + 1))
  W=$tmp/w$CASE_N
  DST=${DST_OVERRIDE:-$tmp/dst$CASE_N}
  v2k --workdir "$W" init --vm f --dst "$DST" --vddk-libdir "$tmp" >/dev/null || echo "# init failed"
  sim_fill f 2000 0 5000000 $((CASE_N % 200 + 1))
  sim_fill f 2001 500000 2000000 $((CASE_N % 200 + 2))
}
fault() { echo "$*" >"$tmp/ev/fault"; }
nofault() { rm -f "$tmp/ev/fault"; }
RUN=(--libvirt-uri test:///default --net-default bridge:br0 --convert off --incr-interval 0 --max-incr 2)
# finish CASE: the rest of the migration, then the checks; a row of the table.
finish() {
  local name=$1 runs=$2 out ok=1
  # A powered-off VM's disks do not change.
  if [ "$(sim_power_state f)" = poweredOn ]; then sim_fill f 2000 9000000 300000 77; fi
  out=$(v2k --workdir "$W" run "${RUN[@]}" --json 2>&1) || { ok=0; echo "# $name: finishing failed: $out"; }
  check "$name: the migration finishes" test $ok = 1
  if sim_same_disks f "$DST/f-disk0.qcow2" "$DST/f-disk1.qcow2"; then ok "$name: identical"
  else ok=0; not_ok "$name: identical"; fi
  if jq -e '[.snapshots[] | select(.kind == "final") | .disks[] | .change_id] as $f | [.disks[].cbt.change_id] == $f' \
       "$W/manifest.json" >/dev/null; then ok "$name: every changeId is the final snapshot's"
  else ok=0; not_ok "$name: every changeId is the final snapshot's"; fi
  if ! pgrep -f "$W/ru[n]/" >/dev/null && ! ls "$W/run/"*.sock >/dev/null 2>&1; then ok "$name: no process or socket left"
  else ok=0; not_ok "$name: no process or socket left"; fi
  if [ "$(sim_snapshot_names f | grep -c ablestack-v2k)" -eq 0 ]; then ok "$name: no migration snapshot left"
  else ok=0; not_ok "$name: no migration snapshot left"; fi
  printf '| %s | %s | %s |\n' "$name" "$runs" "$([ $ok = 1 ] && echo 'identical, nothing left' || echo FAILED)" >>"$table"
}
base() { v2k --workdir "$W" cbt enable >/dev/null && v2k --workdir "$W" snapshot base >/dev/null; }

# ---- source ----
new_sim; base
fault eio-rate 1
out=$(v2k --workdir "$W" sync base --request-size 64K 2>&1)
check "source: 1% transient read errors are retried" test $? -eq 0
nofault
finish "source: transient read errors (1%, retried)" 1

new_sim; base
fault eio-all
out=$(v2k --workdir "$W" sync base 2>&1)
rc=$?
check "source: persistent errors fail the disk (exit 8)" test $rc -eq 8
check "source: persistent errors commit nothing" jq_true '[.disks[].cbt.change_id] | all(. == null)' "$W/manifest.json"
nofault
check "source: the re-run copies" v2k --workdir "$W" sync base
finish "source: persistent read errors (fail, nothing committed, re-run)" 2

new_sim; base
fault delay 0.05
check "source: a slow source completes" v2k --workdir "$W" sync base --request-size 256K
nofault
finish "source: slow source (50 ms a read)" 1

# killed_helper_mid_sync SIDE PROGRAM: a slow base sync whose PROGRAM (nbdkit
# or qemu-nbd) is killed after a second; the sync must fail, the re-run resume.
# slow_sync PROGRAM [sync options]: starts a base sync of $W in the
# background over a source slowed to 0.2 s a read, the binary itself (not a
# function's subshell) so that signals reach it; returns once PROGRAM (nbdkit
# or qemu-nbd) serves it. Sets pid.
slow_sync() {
  local prog=$1
  shift
  fault delay 0.2
  "$BIN" --workdir "$W" sync base --request-size 64K "$@" --vcenter "$(sim_info .url)" --username user \
    --password-file "$tmp/pw" --ca-file "$(sim_info .cert_file)" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do pgrep -f "$prog.*$W/run" >/dev/null && break; sleep 0.1; done
}

killed_helper_mid_sync() {
  new_sim; base
  slow_sync "$2" --checkpoint-interval 0.05
  local rc
  sleep 1
  pkill -KILL -f "$2.*$W/run"
  wait $pid
  rc=$?
  check "$1: $2 killed mid-copy fails the sync (exit $rc)" test $rc -ne 0
  nofault
  check "$1: the re-run resumes" v2k --workdir "$W" sync base
}
killed_helper_mid_sync source nbdkit
finish "source: source server killed mid-copy" 2

# ---- target ----
killed_helper_mid_sync target qemu-nbd
finish "target: qemu-nbd killed mid-copy" 2

mkdir -p "$tmp/full"
if mount -t tmpfs -o size=2M tmpfs "$tmp/full" 2>/dev/null; then
  mounts+=("$tmp/full")
  DST_OVERRIDE=$tmp/full new_sim; base
  out=$(v2k --workdir "$W" sync base 2>&1)
  rc=$?
  check "target: a full filesystem fails clearly (exit $rc)" bash -c "[ $rc -eq 9 ] || [ $rc -eq 8 ]"
  check "target: ... naming the lack of space" grep -qi "space" <<<"$out"
  check "target: ... committing nothing" jq_true '[.disks[].cbt.change_id] | all(. == null)' "$W/manifest.json"
  mount -o remount,size=64M "$tmp/full"
  check "target: the re-run after space was freed copies" v2k --workdir "$W" sync base
  DST_OVERRIDE=$tmp/full finish "target: filesystem full (then space freed)" 2
else
  skip "target: filesystem full" "cannot mount a tmpfs here"
fi

mkdir -p "$tmp/ro"
new_sim; base
if mount --bind "$DST" "$DST" 2>/dev/null && mount -o remount,ro,bind "$DST" 2>/dev/null; then
  mounts+=("$DST")
  out=$(v2k --workdir "$W" sync base 2>&1)
  rc=$?
  check "target: a read-only target fails clearly (exit $rc)" test $rc -eq 9 -o $rc -eq 8
  umount "$DST"
  check "target: the re-run once writable copies" v2k --workdir "$W" sync base
  finish "target: permission denied (read-only), then fixed" 2
else
  skip "target: permission denied" "cannot make a read-only bind mount here"
fi

# ---- vCenter ----
new_sim --expire-session-calls 6
v2k --workdir "$W" cbt enable >/dev/null && v2k --workdir "$W" snapshot base >/dev/null &&
  v2k --workdir "$W" sync base >/dev/null
check "vcenter: sessions expiring every 6 calls are renewed" test $? -eq 0
finish "vcenter: session expired mid-command (every 6 calls)" 1

for f in CreateSnapshot_Task:2 RemoveSnapshot_Task:1 QueryChangedDiskAreas:2 ReconfigVM_Task:1; do
  method=${f%%:*}
  new_sim --fault "$f:SystemError"
  rc=0
  for step in "cbt enable" "snapshot base" "sync base" "snapshot incr" "sync incr"; do
    v2k --workdir "$W" $step >/dev/null 2>&1 || { rc=$?; failed_step=$step; v2k --workdir "$W" $step >/dev/null 2>&1 || rc=99; }
  done
  check "vcenter: $method fails once, the re-run succeeds" test $rc -ne 99
  finish "vcenter: fault on $method (then re-run)" 2
done

new_sim --fault "CreateSnapshot_Task:2:hang"
v2k --workdir "$W" cbt enable >/dev/null
v2k --workdir "$W" snapshot base >/dev/null
v2k --workdir "$W" sync base >/dev/null
out=$(v2k --workdir "$W" snapshot incr --task-timeout 3 2>&1)
rc=$?
check "vcenter: a task that never finishes times out (exit $rc)" test $rc -eq 6
check "vcenter: ... saying so" grep -qi "timed out\|within" <<<"$out"
finish "vcenter: a task that never finishes (timeout, re-run)" 2

new_sim
base
v2k --workdir "$W" sync base >/dev/null
sim_set_cbt f false
sim_set_cbt f true
sim_fill f 2000 100000 100000 55
v2k --workdir "$W" snapshot incr >/dev/null 2>&1
out=$(v2k --workdir "$W" sync incr 2>&1)
rc=$?
check "vcenter: a CBT reset between rounds fails closed (exit 7)" test $rc -eq 7
check "vcenter: ... with the recovery hint" grep -q "sync base --full" <<<"$out"
v2k --workdir "$W" cbt reset --force >/dev/null 2>&1
v2k --workdir "$W" snapshot base >/dev/null 2>&1
check "vcenter: recovery with sync base --full" v2k --workdir "$W" sync base --full
finish "vcenter: CBT reset between rounds (fail closed, then recover)" 3

skip "vcenter: the simulator killed mid-sync and restarted" \
  "the simulator keeps its inventory, snapshots and CBT state in memory, so a restart loses them (a real vCenter keeps them)"
printf '| %s | %s | %s |\n' "vcenter: simulator killed and restarted" 0 "not run: the simulator keeps its state in memory" >>"$table"

# ---- the tool itself: 50 seeded SIGKILLs over every phase, and SIGTERM ----
RANDOM=4242
# Manifest saves happen dozens of times a run, so most kills land on them;
# the rest hit snapshots, checkpoints, commits and the cutover's steps.
points=(atomic-write:tmp atomic-write:rename atomic-write:rename atomic-write:tmp snapshot:created
        sync:checkpoint sync:before-commit target:claimed cutover:powered-off cutover:defined)
kills=0
vm_round=0
while [ $kills -lt 55 ] && [ $vm_round -lt 14 ]; do
  vm_round=$((vm_round + 1))
  new_sim
  attempts=0
  for k in $(seq 14); do
    p=${points[$((RANDOM % ${#points[@]}))]}
    case $p in atomic-write:*) p=$p@$((RANDOM % 6 + 1)) ;; sync:*|target:*) p=$p@$((RANDOM % 2 + 1)) ;; esac
    V2K_CRASHPOINT=$p v2k --workdir "$W" run "${RUN[@]}" --checkpoint-interval 0.01 >/dev/null 2>&1
    rc=$?
    attempts=$((attempts + 1))
    [ $rc -eq 0 ] && break             # done before this point was reached
    [ $rc -eq 137 ] && kills=$((kills + 1))
    [ "$(sim_power_state f)" = poweredOn ] && sim_fill f 2001 $((k * 200000)) 50000 $((k + 100))
  done
  finish "tool: seeded SIGKILLs during run, then a re-run (round $vm_round)" $((attempts + 1))
done
check "at least 50 seeded SIGKILLs landed across the rounds ($kills)" test $kills -ge 50
printf '| %s | %s | %s |\n' "tool: seeded SIGKILL points that landed" "$kills" "each followed by a re-run; see the rounds above" >>"$table"

new_sim; base
slow_sync nbdkit
sleep 1
kill -TERM $pid
wait $pid
rc=$?
check "tool: SIGTERM stops at a safe point (exit 130)" test $rc -eq 130
check "tool: SIGTERM leaves no helper" bash -c "! pgrep -f '$W/ru[n]/' >/dev/null"
nofault
finish "tool: SIGTERM mid-sync, then re-run" 2

# ---- concurrency ----
new_sim; base
slow_sync nbdkit
t0=$(date +%s)
out=$(v2k --workdir "$W" snapshot incr 2>&1)
rc=$?
check "concurrency: a second command on the workdir is refused at once (exit 4)" test $rc -eq 4 -a $(( $(date +%s) - t0 )) -lt 5
check "concurrency: ... naming the holder" grep -q "sync base" <<<"$out"
nofault
wait $pid
finish "concurrency: two commands on one workdir (second refused)" 2

sim_stop
sim_start "$tmp" --user user --password "$PW" --vm a --disk scsi:8M --nic "VM Network" --power on \
  --vm b --disk scsi:8M --nic "VM Network" --power on || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
sim_fill a 2000 0 3000000 3; sim_fill b 2000 0 3000000 4
unset V2K_NBDKIT_VDDK_PLUGIN
for v in a b; do
  v2k --workdir "$tmp/par-$v" run --vm $v --dst "$tmp/par-dst-$v" --transport file --datastore-map "LocalDS_0=$DS" \
    "${RUN[@]}" >/dev/null 2>&1 &
  eval "pid_$v=\$!"
done
wait $pid_a; ra=$?
wait $pid_b; rb=$?
ok=1
check "concurrency: two runs for two VMs at once" test $ra -eq 0 -a $rb -eq 0 || ok=0
check "concurrency: both identical" bash -c "$(declare -f sim_same_disks); SIM_INFO='$SIM_INFO'; sim_same_disks a '$tmp/par-dst-a/a-disk0.qcow2' && sim_same_disks b '$tmp/par-dst-b/b-disk0.qcow2'" || ok=0
printf '| %s | %s | %s |\n' "concurrency: two runs for two VMs at once" 1 "$([ $ok = 1 ] && echo 'identical, nothing left' || echo FAILED)" >>"$table"
echo "# results:"
sed 's/^/# /' "$table"
tap_done
