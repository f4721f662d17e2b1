#!/bin/bash
# run: the whole migration in one command against the simulator and
# libvirt's test driver. End to end with guest writes during the run;
# --until ready then run; killed at seeded points in every phase and run
# again; SIGTERM stops it cleanly.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-run-XXXXXX)
trap 'sim_stop; [ -n "${writer:-}" ] && kill $writer 2>/dev/null; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
sim_start "$tmp" \
  --vm e2e --disk scsi:24M --disk sata:8M --nic "VM Network" --nic "Backup" --firmware efi --power on --shutdown-delay 1 \
  --vm split --disk scsi:8M --nic "VM Network" --power on \
  --vm kill --disk scsi:16M --disk sata:8M --nic "VM Network" --power on \
  --vm term --disk scsi:8M --nic "VM Network" --power on --shutdown-delay never \
  --vm k1 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k2 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k3 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k4 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k5 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k6 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k7 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k8 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k9 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k10 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k11 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm k12 --disk scsi:8M --disk sata:4M --nic "VM Network" --power on \
  --vm cl --disk scsi:8M --nic "VM Network" --power on \
  --vm clh --disk scsi:8M --nic "VM Network" --power on --shutdown-delay never \
  --vm keep --disk scsi:8M --nic "VM Network" --power on || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
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
common=(--transport file --datastore-map "LocalDS_0=$DS" --libvirt-uri test:///default --convert off
        --net-default bridge:br0 --incr-interval 0)

# ---- end to end, with the guest writing while run copies ----
sim_fill e2e 2000 0 8000000 1
sim_fill e2e 2001 0 3000000 2
# The guest stops writing when it is asked to shut down (the VM takes 1 s to
# power off), as a real guest would.
( i=0; while ! grep -q cutover.preflight "$tmp/w-e2e/events.log" 2>/dev/null; do sim_fill e2e 2000 $(( (i % 20) * 1000000 )) 65536 $((3 + i % 200)); i=$((i + 1)); sleep 0.05; done ) &
writer=$!
out=$(v2k --workdir "$tmp/w-e2e" run --vm e2e --dst "$tmp/dst-e2e" "${common[@]}" --max-incr 3 --start --json)
rc=$?
kill $writer 2>/dev/null; wait $writer 2>/dev/null
check "run end to end: exit 0" test $rc -eq 0
check "run: state done, one domain running" \
  jqe '.state == "done" and .cutover.domain.state == "running" and .cutover.domain.domains_named == 1' <<<"$out"
check "run: at least one incremental round with a forecast" jqe '.incr_rounds >= 1 and .forecast.rounds >= 1' <<<"$out"
check "run: targets identical to the source" sim_same_disks e2e "$tmp/dst-e2e/e2e-disk0.qcow2" "$tmp/dst-e2e/e2e-disk1.qcow2"
check "run: no snapshot left" test "$(snap_count e2e)" = 0
check "run: no helper left" bash -c "! pgrep -f '$tmp/w-e2e/ru[n]/' >/dev/null"
check "run: verified before the domain was defined" \
  bash -c "grep -n '\"event\":\"verify.ok\"' '$tmp/w-e2e/events.log' | head -1 | cut -d: -f1 | { read v; d=\$(grep -n '\"event\":\"domain.defined\"' '$tmp/w-e2e/events.log' | cut -d: -f1); test \"\$v\" -lt \"\$d\"; }"
check "run: every disk verified" jq_true '[.disks[].verify.state] | all(. == "done")' "$tmp/w-e2e/manifest.json"
check "run: forecasts recorded as events" grep -q '"event":"run.forecast"' "$tmp/w-e2e/events.log"
st=$("$BIN" --workdir "$tmp/w-e2e" status --json)
check "status after run: done, with the cutover and forecast" \
  jqe '.state == "done" and .cutover.defined and .forecast.round >= 1 and (.predicted_downtime_seconds | type) == "number"' <<<"$st"
out=$(v2k --workdir "$tmp/w-e2e" run "${common[@]}" --json)
check "run again on a finished workdir: nothing more to do" jqe '.state == "done"' <<<"$out"

# ---- --until ready, then run ----
sim_fill split 2000 0 3000000 5
out=$(v2k --workdir "$tmp/w-split" run --vm split --dst "$tmp/dst-split" "${common[@]}" --until ready \
      --downtime-target 3600 --json)
check "--until ready: exit 0 in state ready" jqe '.state == "ready" and .forecast.ready' <<<"$out"
check "--downtime-target 3600: the forecast is held against it" \
  jq_true '.forecast.downtime_target_ms == 3600000' "$tmp/w-split/manifest.json"
check "--until ready: the VM is still on" test "$(sim_power_state split)" = poweredOn
st=$("$BIN" --workdir "$tmp/w-split" status --json)
check "status: ready_for_cutover with a predicted downtime" \
  jqe '.state == "ready" and .ready_for_cutover and .round == 1 and .predicted_downtime_seconds >= 0' <<<"$st"
run_id=$(jq -r .run.id "$tmp/w-split/manifest.json")
sim_fill split 2000 4000000 500000 6
out=$(v2k --workdir "$tmp/w-split" run --vm other --dst "$tmp/elsewhere" "${common[@]}" --json)
check "run again: more rounds, then the cutover" jqe '.state == "done" and .incr_rounds >= 2 and .cutover.domain.defined' <<<"$out"
check "run again never re-inits" test "$(jq -r .run.id "$tmp/w-split/manifest.json")" = "$run_id"
check "run again: identical" sim_same_disks split "$tmp/dst-split/split-disk0.qcow2"
check "run again: no snapshot left" test "$(snap_count split)" = 0

# ---- killed at seeded points in every phase, then run again ----
W="$tmp/w-kill"
kill_run() {
  V2K_CRASHPOINT=$1 v2k --workdir "$W" run --vm kill --dst "$tmp/dst-kill" "${common[@]}" \
    --max-incr 2 --checkpoint-interval 0.01 --start >/dev/null 2>&1
}
sim_fill kill 2000 0 12000000 7
sim_fill kill 2001 0 6000000 8
n=0
for point in atomic-write:rename@1 atomic-write:rename@3 snapshot:created@1 sync:checkpoint@2 \
             sync:before-commit@1 snapshot:created@1 sync:before-commit@1 cutover:powered-off@1 snapshot:created@1 sync:before-commit@1 atomic-write:tmp@3 \
             cutover:defined@1; do
  n=$((n + 1))
  if [ "$(sim_power_state kill)" = poweredOn ]; then
    sim_fill kill 2000 $((n * 500000)) 100000 $((10 + n))
    sim_fill kill 2001 $((n * 300000)) 70000 $((40 + n))
  fi
  kill_run "$point"
  check "kill $n at $point: killed" test $? -eq 137
done
out=$(v2k --workdir "$W" run "${common[@]}" --start --json)
check "after 12 kills: run completes" jqe '.state == "done" and .cutover.domain.state == "running" and .cutover.domain.domains_named == 1' <<<"$out"
check "after the kills: identical" sim_same_disks kill "$tmp/dst-kill/kill-disk0.qcow2" "$tmp/dst-kill/kill-disk1.qcow2"
check "after the kills: no snapshot left" test "$(snap_count kill)" = 0
check "after the kills: no process left" bash -c "! pgrep -f '$W/ru[n]/' >/dev/null"
check "after the kills: one final snapshot only" test "$(jq '[.snapshots[] | select(.kind == "final")] | length' "$W/manifest.json")" -eq 1
check "after the kills: every changeId committed" jq_true '[.disks[] | .cbt.change_id != null and .final.state == "done"] | all' "$W/manifest.json"

# ---- one fresh migration per kill point: killed once, then run again ----
i=0
for point in atomic-write:rename@1 atomic-write:rename@3 snapshot:created@1 sync:checkpoint@2 sync:before-commit@1 snapshot:created@2 sync:before-commit@2 cutover:powered-off@1 snapshot:created@3 sync:before-commit@3 atomic-write:tmp@12 cutover:defined@1; do
  i=$((i + 1))
  vm=k$i
  sim_fill $vm 2000 0 3000000 $((60 + i))
  sim_fill $vm 2001 1000000 1000000 $((80 + i))
  V2K_CRASHPOINT=$point v2k --workdir "$tmp/w-$vm" run --vm $vm --dst "$tmp/dst-$vm" "${common[@]}" \
    --max-incr 1 --checkpoint-interval 0.01 --start >/dev/null 2>&1
  check "killed at $point" test $? -eq 137
  # The guest writes on while it runs; a powered-off VM's disks do not change.
  if [ "$(sim_power_state $vm)" = poweredOn ]; then sim_fill $vm 2000 2000000 300000 $((100 + i)); fi
  out=$(v2k --workdir "$tmp/w-$vm" run --vm $vm --dst "$tmp/dst-$vm" "${common[@]}" --max-incr 1 --start --json 2>&1)
  check "killed at $point, run again: done, one domain" \
    jqe '.state == "done" and .cutover.domain.domains_named == 1 and .cutover.domain.state == "running"' <<<"$out"
  check "killed at $point: identical" sim_same_disks $vm "$tmp/dst-$vm/$vm-disk0.qcow2" "$tmp/dst-$vm/$vm-disk1.qcow2"
  check "killed at $point: no snapshot left" test "$(snap_count $vm)" = 0
  check "killed at $point: no process left" bash -c "! pgrep -f '$tmp/w-$vm/ru[n]/' >/dev/null"
done

# ---- SIGTERM stops it at a safe point ----
# The binary itself in the background (not the v2k function), so that the
# signal reaches it.
echo pass >"$tmp/pw"
"$BIN" --workdir "$tmp/w-term" run --vm term --dst "$tmp/dst-term" "${common[@]}" --shutdown-timeout 120 \
  --vcenter "$(sim_info .url)" --username user --password-file "$tmp/pw" --ca-file "$(sim_info .cert_file)" \
  >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q shutdown.guest_requested "$tmp/w-term/events.log" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
wait $pid
check "SIGTERM while waiting for the guest: exit 130" test $? -eq 130
check "SIGTERM: the VM is left as it was" test "$(sim_power_state term)" = poweredOn
out=$(v2k --workdir "$tmp/w-term" run "${common[@]}" --shutdown poweroff --json)
check "run again after SIGTERM completes" jqe '.state == "done" and .cutover.shutdown.policy == "poweroff"' <<<"$out"
check "after SIGTERM: identical" sim_same_disks term "$tmp/dst-term/term-disk0.qcow2"

# ---- the cleanup phase really runs, and is recorded only once it did ----
moref_of() { jq -r --arg vm "$1" '.vms[] | select(.name == $vm) | .moref' "$SIM_INFO"; }
cleanup_event() {  # cleanup_event W FIELD: the field of the last cleanup.done event
  jq -rs "[.[] | select(.event == \"cleanup.done\")][-1].detail.$2" "$1/events.log"
}
sim_fill cl 2000 0 2000000 121
V2K_CRASHPOINT=run:cleanup v2k --workdir "$tmp/w-cl" run --vm cl --dst "$tmp/dst-cl" "${common[@]}" \
  --max-incr 1 >/dev/null 2>&1
check "killed right before the cleanup phase" test $? -eq 137
check "killed before cleanup: cut over, the cleanup not recorded" \
  jq_true '.phase == "done" and .phases.cleanup.state != "done"' "$tmp/w-cl/manifest.json"
# What a crash can leave: a snapshot of this run that was never recorded, and
# a helper serving a socket in the run directory.
run_id=$(jq -r .run.id "$tmp/w-cl/manifest.json")
sim_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$(moref_of cl)</_this><name>ablestack-v2k-$run_id-incr-99</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>" >/dev/null
for _ in $(seq 50); do sim_snapshot_names cl | grep -q -- -incr-99 && break; sleep 0.1; done
check "planted: an unrecorded snapshot of this run" grep -qx "ablestack-v2k-$run_id-incr-99" <(sim_snapshot_names cl)
nbdkit -U "$tmp/w-cl/run/planted.sock" -P "$tmp/planted-cl.pid" memory 1M
check "planted: a helper serving a socket in the run directory" bash -c "pgrep -f '$tmp/w-cl/ru[n]/planted.sock' >/dev/null"
out=$(v2k --workdir "$tmp/w-cl" run "${common[@]}" --json)
check "run again after the kill: done" jqe '.state == "done"' <<<"$out"
check "run again: the cleanup phase is recorded done" \
  jq_true '.phases.cleanup.state == "done" and (.phases.cleanup.finished | type) == "string"' "$tmp/w-cl/manifest.json"
check "run again: the cleanup phase removed the unrecorded snapshot" test "$(snap_count cl)" = 0
check "run again: the helper is gone" bash -c "! pgrep -f '$tmp/w-cl/ru[n]/planted.sock' >/dev/null"
check "run again: cleanup.done counts the snapshot and the helper" \
  test "$(cleanup_event "$tmp/w-cl" snapshots_removed):$(cleanup_event "$tmp/w-cl" helpers_stopped)" = 1:1

# A helper left while run is going (it waits for a guest that shuts down only
# when the test powers it off) is stopped by run's own cleanup phase.
echo pass >"$tmp/pw"
sim_fill clh 2000 0 2000000 122
"$BIN" --workdir "$tmp/w-clh" run --vm clh --dst "$tmp/dst-clh" "${common[@]}" --max-incr 1 --shutdown-timeout 600 --verify none \
  --vcenter "$(sim_info .url)" --username user --password-file "$tmp/pw" --ca-file "$(sim_info .cert_file)" \
  >/dev/null 2>"$tmp/clh.err" &
pid=$!
for _ in $(seq 600); do grep -q shutdown.guest_requested "$tmp/w-clh/events.log" 2>/dev/null && break; sleep 0.1; done
check "run waits for the guest (clh)" grep -q shutdown.guest_requested "$tmp/w-clh/events.log"
nbdkit -U "$tmp/w-clh/run/planted.sock" -P "$tmp/planted-clh.pid" memory 1M
check "planted while run waits: a helper in the run directory" bash -c "pgrep -f '$tmp/w-clh/ru[n]/planted.sock' >/dev/null"
sim_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$(moref_of clh)</_this></PowerOffVM_Task>" >/dev/null
wait $pid
check "run (clh): exit 0 once the guest is off" test $? -eq 0
check "run's cleanup phase stopped the helper left during the run" bash -c "! pgrep -f '$tmp/w-clh/ru[n]/planted.sock' >/dev/null"
check "run's cleanup.done counts that helper" test "$(cleanup_event "$tmp/w-clh" helpers_stopped)" = 1
check "run (clh): no snapshot left" test "$(snap_count clh)" = 0
check "run --verify none: no verify ran" \
  bash -c "jq -e '[.disks[].verify.state] | all(. == \"pending\")' '$tmp/w-clh/manifest.json' >/dev/null && ! grep -q '\"event\":\"verify\\.' '$tmp/w-clh/events.log'"

# --keep-snapshots (listed by run --help): neither the cutover nor the cleanup
# phase removes this run's snapshots.
sim_fill keep 2000 0 2000000 123
out=$(v2k --workdir "$tmp/w-keep" run --vm keep --dst "$tmp/dst-keep" "${common[@]}" --max-incr 1 --keep-snapshots \
      --verify sample:1 --json)
check "run --keep-snapshots: done" jqe '.state == "done"' <<<"$out"
check "run --keep-snapshots: the cleanup phase is recorded done" \
  jq_true '.phases.cleanup.state == "done"' "$tmp/w-keep/manifest.json"
check "run --keep-snapshots: this run's snapshots stay" test "$(sim_snapshot_names keep | grep -c '^ablestack-v2k-')" -ge 1
check "run --keep-snapshots: the cleanup phase removed none" test "$(cleanup_event "$tmp/w-keep" snapshots_removed)" = 0
check "run --verify sample:1: one 4 MiB chunk compared" \
  jq_true '.disks[0].verify.state == "done" and .disks[0].verify.mode == "sample:1" and .disks[0].verify.bytes_checked == 4194304' "$tmp/w-keep/manifest.json"
tap_done
