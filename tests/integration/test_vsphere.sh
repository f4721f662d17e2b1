#!/bin/bash
# The vSphere control plane against the simulator, over verified TLS unless
# the case is about TLS: init, cbt, snapshot and changed areas.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-vsphere-XXXXXX)
sims=()
cleanup() {
  local p
  for p in "${sims[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME FLAGS...: a simulator in $tmp/NAME; sets SIM_INFO for it.
start() {
  local dir=$tmp/$1
  shift
  mkdir -p "$dir"
  sim_start "$dir" "$@" || { echo "simulator failed to start" >&2; exit 1; }
  sims+=("$SIM_PID")
  SIM_PID=
  printf '%s\n' "$(sim_info .password)" >"$dir/pw"
  chmod 600 "$dir/pw"
}

# v2k ARGS...: the tool with this simulator's connection as flags.
v2k() {
  local dir=${SIM_INFO%/*}
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username "$(sim_info .user)" \
    --password-file "$dir/pw" --ca-file "$(sim_info .cert_file)"
}

init_vm() {  # init_vm VM [extra init args]: prints the workdir
  local vm=$1 dir=${SIM_INFO%/*}
  shift
  v2k init --vm "$vm" --dst "$dir/dst" --workdir-root "$dir/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" "$@"
}

run() {  # run OUT ARGS...: stdout+stderr to OUT, returns the exit code (also in $rc)
  local out=$1
  shift
  "$@" >"$out" 2>&1
  rc=$?
  return $rc
}

# refused NAME EXIT TEXT: the last run exited EXIT and said TEXT (a grep
# pattern) in one line. An exit code alone proves little: exit 2 is every
# usage error, a mistake in the test's own command line included.
refused() {
  check "$1 (exit $rc, want $2)" \
    bash -c '[ "$1" -eq "$2" ] && [ "$(wc -l <"$3")" -eq 1 ] && grep -q -- "$4" "$3"' _ "$rc" "$2" "$tmp/o" "$3"
  [ "$rc" -eq "$2" ] && grep -q -- "$3" "$tmp/o" || sed 's/^/# /' "$tmp/o"
}

# ---------------------------------------------------------------- init
start main --vm web01 --disk scsi:16M --disk sata:8M:thick --disk ide:4M --nic "VM Network" \
  --nic "Prod Net:e1000e" --firmware efi --secure-boot --cpus 4 --cores-per-socket 2 --memory 4096 \
  --guest-id ubuntu64Guest --power on \
  --vm twin --folder a --disk scsi:4M --vm twin --folder b --disk scsi:4M \
  --vm indep --disk scsi:4M --disk scsi:4M:independent_persistent --disk scsi:4M:rdm-physical \
  --disk sata:4M:multiwriter \
  --vm snapped --disk scsi:4M --nic "VM Network"
MAIN=$SIM_INFO

W=$(init_vm web01 2>"$tmp/init.err")
rc=$?
check "init succeeds and prints the workdir" test "$rc" -eq 0 -a -f "$W/manifest.json"
M=$W/manifest.json
check "workdir mode 0700" test "$(stat -c %a "$W")" = 700
check "manifest mode 0600" test "$(stat -c %a "$M")" = 600
check "workdir under root/<vm>/<run_id>" bash -c "[[ '$W' == $tmp/main/root/web01/2*-* ]]"
check "VM identity recorded" jq_true --arg m "$(sim_info '.vms[0].moref')" --arg u "$(sim_info '.vms[0].instance_uuid')" \
  '.source.vm.name == "web01" and .source.vm.moref == $m and .source.vm.instance_uuid == $u and .source.vm.inventory_path == "DC0/vm/web01"' "$M"
check "hardware recorded" jq_true '.source.vm.num_cpus == 4 and .source.vm.cores_per_socket == 2 and .source.vm.memory_mb == 4096 and .source.vm.guest_id == "ubuntu64Guest" and .source.vm.power_state == "poweredOn"' "$M"
check "EFI and secure boot recorded" jq_true '.source.vm.firmware == "efi" and .source.vm.secure_boot == true and .source.vm.vtpm == false' "$M"
# VDDK's thumbprint is the server's it connects to (server= is the vCenter),
# not the ESXi host's, which the simulator makes different, as vCenter has.
check "host and thumbprints recorded" jq_true --arg tp "$(sim_info .thumbprint_sha1)" --arg htp "$(sim_info .host_thumbprint_sha1)" \
  '$tp != $htp and .source.host.name == "DC0_H0" and .source.host.ssl_thumbprint == $htp and .transport.vddk_thumbprint == $tp' "$M"
check "vCenter recorded" jq_true '.source.vcenter.api_version != null and .source.vcenter.instance_uuid != null and (.source.vcenter.url | endswith("/sdk"))' "$M"
check "disks root first with controllers" jq_true '[.disks[] | "\(.id)|\(.key)|\(.controller.model)|\(.capacity)|\(.label)"] == ["scsi0:0|2000|pvscsi|16777216|Hard disk 1", "sata0:0|2001|ahci|8388608|Hard disk 2", "ide0:0|2002|ide|4194304|Hard disk 3"]' "$M"
check "disk backing recorded" jq_true '.disks[0].file_name == "[LocalDS_0] web01/web01.vmdk" and .disks[0].datastore == "LocalDS_0" and .disks[0].thin == true and .disks[1].thin == false and .disks[0].disk_mode == "persistent"' "$M"
check "default target paths" jq_true --arg d "$tmp/main/dst" '[.disks[].target_path] == ["\($d)/web01-disk0.qcow2", "\($d)/web01-disk1.qcow2", "\($d)/web01-disk2.qcow2"]' "$M"
check "NICs recorded" jq_true --arg m0 "$(sim_info '.vms[0].nics[0].mac')" --arg m1 "$(sim_info '.vms[0].nics[1].mac')" \
  '[.nics[] | "\(.key)|\(.label)|\(.mac)|\(.adapter)|\(.network)|\(.connected)"] == ["4000|Network adapter 1|\($m0)|vmxnet3|VM Network|true", "4001|Network adapter 2|\($m1)|e1000e|Prod Net|true"]' "$M"
check "no credentials in the workdir" bash -c "test -s '$W/manifest.json' && ! grep -rq -e '$(sim_info .password)' -e password '$W'"
check "init.done event" jq_true -s 'map(select(.event == "init.done")) | length == 1' "$W/events.log"
check "status works on the new workdir" bash -c "'$BIN' --workdir '$W' status --json | jq -e '.state == \"idle\" and .phase == \"init\"' >/dev/null"

run "$tmp/o" init_vm web01 --json
check "init --json prints the workdir" jq_true '.ok == true and (.workdir | startswith("/"))' "$tmp/o"

# By moref and by inventory path.
W2=$(init_vm "$(sim_info '.vms[0].moref')")
check "init by moref" jq_true '.source.vm.name == "web01"' "$W2/manifest.json"
W3=$(init_vm "DC0/vm/a/twin")
check "init by inventory path" jq_true '.source.vm.inventory_path == "DC0/vm/a/twin"' "$W3/manifest.json"

run "$tmp/o" init_vm nosuchvm
check "unknown VM: exit 6" test $? -eq 6
check "unknown VM: says so" grep -q "no VM named 'nosuchvm'" "$tmp/o"
listing=$(find "$tmp/main/root" | sort)
run "$tmp/o" init_vm twin
check "ambiguous name: exit 2" test $? -eq 2
check "ambiguous name lists morefs and paths" grep -qE "2 VMs are named 'twin': vm-[0-9]+ \(DC0/vm/a/twin\), vm-[0-9]+ \(DC0/vm/b/twin\)" "$tmp/o"
check "ambiguous name writes nothing (no new run under root/twin)" test "$(find "$tmp/main/root" | sort)" = "$listing"
run "$tmp/o" init_vm indep
check "untrackable disks: exit 6" test $? -eq 6
check "independent disk refused with its reason" grep -q "Hard disk 2 (scsi0:1): disk mode independent_persistent is not snapshotted" "$tmp/o"
check "physical RDM refused" grep -q "physical-mode RDM" "$tmp/o"
check "multi-writer refused" grep -q "multi-writer sharing" "$tmp/o"
check "refusal is one line" test "$(wc -l <"$tmp/o")" -eq 1
check "nothing written for a refused VM" test ! -e "$tmp/main/root/indep"

# The target plan.
run "$tmp/o" init_vm web01 --target-map scsi9:9=/tmp/x.qcow2
check "map key naming no disk: exit 2" test $? -eq 2
check "map key naming no disk: lists the disks" grep -q "scsi9:9: the VM has no such disk (it has scsi0:0, sata0:0, ide0:0)" "$tmp/o"
run "$tmp/o" init_vm web01 --target-map scsi0:0=/tmp/same.raw --target-map sata0:0=/tmp/same.raw
refused "two disks on one path: refused" 2 "would both be written to /tmp/same.raw"
run "$tmp/o" init_vm web01 --target-storage block
refused "block without a map: refused" 2 "disk scsi0:0 has no --target-map entry; block storage needs one"
run "$tmp/o" init_vm web01 --target-storage rbd --target-map scsi0:0=/dev/sdb
refused "rbd map syntax checked" 2 "rbd storage needs rbd:POOL/IMAGE"
W4=$(init_vm web01 --target-storage rbd --target-format raw --target-map scsi0:0=rbd:pool/web-0 \
     --target-map sata0:0=rbd:pool/web-1 --target-map ide0:0=rbd:pool/web-2)
check "rbd plan recorded" jq_true '.target.storage == "rbd" and .target.format == "raw" and .disks[2].target_path == "rbd:pool/web-2"' "$W4/manifest.json"
run "$tmp/o" v2k init --vm web01 --dst "$tmp/dst" --workdir-root "$tmp/main/root" --transport file --datastore-map "OtherDS=$tmp"
refused "unmapped datastore refused" 2 "datastore 'LocalDS_0', which no --datastore-map names"
run "$tmp/o" v2k init --vm web01 --dst "$tmp/dst" --workdir-root "$tmp/main/root"
refused "vddk without libdir refused" 2 "needs --vddk-libdir"
run "$tmp/o" v2k init --vm web01 --dst "$tmp/dst" --workdir-root "$tmp/main/root" --vddk-libdir "$tmp"
refused "a libdir that is no VDDK install refused" 2 "--vddk-libdir $tmp is not a VDDK install: it has no lib64/libvixDiskLib.so.*"
mkdir -p "$tmp/lib64" && : >"$tmp/lib64/libvixDiskLib.so.8"
W5=$(v2k init --vm web01 --dst "$tmp/dst" --workdir-root "$tmp/main/root" --vddk-libdir "$tmp")
check "vddk plan recorded" jq_true --arg d "$tmp" '.transport.kind == "vddk" and .transport.vddk_libdir == $d and .transport.vddk_transports == "nbdssl:nbd"' "$W5/manifest.json"
run "$tmp/o" init_vm web01 --target-format vmdk
refused "bad enum value" 2 "--target-format: 'vmdk' is not one of qcow2, raw"
"$BIN" --workdir "$tmp/explicit" init --vm web01 --dst "$tmp/dst" --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" \
  --vcenter "$(sim_info .url)" --username user --password-file "$tmp/main/pw" --ca-file "$(sim_info .cert_file)" >/dev/null 2>&1
check "init into --workdir" test -f "$tmp/explicit/manifest.json" -a "$(stat -c %a "$tmp/explicit")" = 700
run "$tmp/o" "$BIN" --workdir "$tmp/explicit" init --vm web01 --dst "$tmp/dst" --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" \
  --vcenter "$(sim_info .url)" --username user --password-file "$tmp/main/pw" --ca-file "$(sim_info .cert_file)"
refused "init refuses a workdir that holds a run" 3 "already holds a run"

# ---------------------------------------------------------------- credentials and TLS
run "$tmp/o" "$BIN" init --vm web01 --dst /tmp/d --workdir-root "$tmp/x" --transport file --datastore-map "LocalDS_0=$tmp" \
  --vcenter "$(sim_info .url)" --username user --password-file /nonexistent
check "missing password file: exit 2" test $? -eq 2
check "missing password file: names it" grep -q -- "--password-file /nonexistent: No such file" "$tmp/o"
run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/x" --transport file \
  --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --vcenter "$(sim_info .url)" --username user \
  --ca-file "$(sim_info .cert_file)" --password-file <(sim_info .password)
check "password from a pipe" test $? -eq 0
start auth --user admin --password 's3cr3t!' --vm v1 --disk scsi:4M
echo 'wrong' >"$tmp/auth/bad"
run "$tmp/o" "$BIN" init --vm v1 --dst "$tmp/d" --workdir-root "$tmp/auth/root" --transport file --datastore-map "LocalDS_0=$tmp" \
  --vcenter "$(sim_info .url)" --username admin --password-file "$tmp/auth/bad" --ca-file "$(sim_info .cert_file)"
check "wrong password: exit 5" test $? -eq 5
check "wrong password: message" grep -q "login failed for user 'admin': wrong user name or password" "$tmp/o"
run "$tmp/o" env GOVC_URL="$(sim_info .url)" GOVC_USERNAME=admin GOVC_PASSWORD='s3cr3t!' GOVC_TLS_CA_CERTS="$(sim_info .cert_file)" \
  "$BIN" init --vm v1 --dst "$tmp/d" --workdir-root "$tmp/auth/root" --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')"
check "GOVC_* variables are honoured" test $? -eq 0
AUTH=$SIM_INFO
SIM_INFO=$MAIN
url=$(sim_info .url)
run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file --datastore-map "LocalDS_0=$tmp" \
  --vcenter "$url" --username user --password-file "$tmp/main/pw"
check "untrusted certificate: exit 5" test $? -eq 5
check "untrusted certificate shows both thumbprints" grep -q "SHA-1 is $(sim_info .thumbprint_sha1) and SHA-256 $(sim_info .thumbprint_sha256)" "$tmp/o"
run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file --datastore-map "LocalDS_0=$tmp" \
  --vcenter "$url" --username user --password-file "$tmp/main/pw" --ca-file "$(jq -r .cert_file "$AUTH")"
refused "wrong CA" 5 "TLS certificate not trusted"
for alg in sha1 sha256; do
  run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --vcenter "$url" --username user \
    --password-file "$tmp/main/pw" --thumbprint "$(sim_info .thumbprint_$alg)"
  check "pinned $alg thumbprint matches" test $? -eq 0
  wrong=$(sim_info ".thumbprint_$alg" | tr '0123456789ABCDEF' '123456789ABCDEF0')
  run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file \
    --datastore-map "LocalDS_0=$tmp" --vcenter "$url" --username user --password-file "$tmp/main/pw" --thumbprint "$wrong"
  rc=$?
  check "pinned $alg mismatch: exit 5" test $rc -eq 5
  check "pinned $alg mismatch shows the actual thumbprints" grep -q "does not match --thumbprint; it has SHA-1 $(sim_info .thumbprint_sha1) and SHA-256 $(sim_info .thumbprint_sha256)" "$tmp/o"
done
WI=$("$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --vcenter "$url" --username user \
    --password-file "$tmp/main/pw" --insecure 2>/dev/null)
check "--insecure connects" test -f "$WI/manifest.json"
check "--insecure leaves a warning event" jq_true -s 'map(select(.event == "tls.insecure" and .level == "warn")) | length == 1' "$WI/events.log"
check "--insecure still records the server's thumbprint for VDDK" jq_true --arg tp "$(sim_info .thumbprint_sha1)" '.transport.vddk_thumbprint == $tp' "$WI/manifest.json"
run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file --datastore-map "LocalDS_0=$tmp" \
  --vcenter "$url" --username user --password-file "$tmp/main/pw" --insecure --thumbprint AA
refused "--insecure with --thumbprint: usage" 2 "--insecure and --thumbprint conflict"
run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --transport file --datastore-map "LocalDS_0=$tmp" --vcenter "user:pw@host" --username u --password-file "$tmp/main/pw"
refused "credentials in the URL refused" 2 "must not carry credentials"
# Everything else on this command line is right: only --password is wrong,
# and the value given to it is neither used nor repeated anywhere.
run "$tmp/o" "$BIN" init --vm web01 --dst "$tmp/d" --workdir-root "$tmp/tls" --transport file \
  --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --vcenter "$url" --username user \
  --ca-file "$(sim_info .cert_file)" --password V2kArgvSecret
refused "no --password flag: a password never goes in argv" 2 "unknown option"
check "... and the value given is not repeated" bash -c "! grep -q V2kArgvSecret '$tmp/o'"

# ---------------------------------------------------------------- cbt and snapshots
SIM_INFO=$MAIN
W=$(init_vm web01)
run "$tmp/o" v2k --workdir "$W" cbt enable
check "cbt enable on a powered-on VM" test $? -eq 0
check "cbt enable says tracking starts at the next stun" grep -q "tracking starts at the next stun" "$tmp/o"
check "cbt.enabled event records it" jq_true -s 'map(select(.event == "cbt.enabled" and .detail.power_state == "poweredOn")) | length == 1' "$W/events.log"
check "disks marked CBT-enabled" jq_true '[.disks[].cbt.enabled] == [true, true, true] and .phases.cbt.state == "done"' "$W/manifest.json"
v2k --workdir "$W" cbt status --json >"$tmp/o"
check "cbt status is live" jq_true '.enabled == true and (.disks | length) == 3 and (.disks[0].change_id | test("^52 .*/1$"))' "$tmp/o"

run "$tmp/o" v2k --workdir "$W" snapshot incr
refused "snapshot incr refused before base sync" 2 "snapshot incr is refused until the base sync has completed"
run "$tmp/o" v2k --workdir "$W" snapshot final
refused "snapshot final refused before base sync" 2 "snapshot final is refused until the base sync has completed"
check "a refusal does not mark the run failed" jq_true '.last_error == null' "$W/manifest.json"

sim_fill web01 2000 0 100000 7
sim_fill web01 2001 1048576 4096 9
# A crash between the task and the record: the next run adopts the snapshot.
V2K_CRASHPOINT=snapshot:created v2k --workdir "$W" snapshot base >/dev/null 2>&1
check "crash injected after the snapshot task" test $? -eq 137
check "nothing recorded by the crashed run" jq_true '.snapshots == []' "$W/manifest.json"
run "$tmp/o" v2k --workdir "$W" snapshot base --json
check "re-run adopts the snapshot" jq_true '.adopted == true and .kind == "base" and .seq == 1' "$tmp/o"
check "exactly one snapshot on vCenter" test "$(sim_snapshot_names web01 | grep -c ablestack-v2k)" -eq 1
check "snapshot recorded with changeIds and backings" jq_true '(.snapshots | length) == 1 and (.snapshots[0].disks | length) == 3 and (.snapshots[0].disks[0].change_id | test("^52 .*/1$")) and (.snapshots[0].disks[0].file_name | test("^\\[LocalDS_0\\] web01/"))' "$W/manifest.json"
check "snapshot name" jq_true '.snapshots[0].name == "ablestack-v2k-\(.run.id)-base-1"' "$W/manifest.json"
run "$tmp/o" v2k --workdir "$W" snapshot base
refused "a second base snapshot is refused until synced" 2 "has not been synced yet"

v2k --workdir "$W" cbt areas --snapshot base --disk scsi0:0 --json >"$tmp/o"
check "cbt areas '*' gives the allocated areas" jq_true '.since == "*" and .areas == [{"start":0,"length":131072}] and .bytes == 131072' "$tmp/o"
v2k --workdir "$W" cbt areas --snapshot base --disk sata0:0 >"$tmp/o"
check "cbt areas on a thick disk covers it all" grep -q "^0 8388608$" "$tmp/o"
check "cbt areas prints totals" grep -q "^# disk sata0:0 at snapshot-.* since \*: 1 areas, 8388608 bytes" "$tmp/o"
run "$tmp/o" v2k --workdir "$W" cbt areas --snapshot incr --disk scsi0:0
refused "cbt areas without such a snapshot" 2 "has no incr snapshot"
run "$tmp/o" v2k --workdir "$W" cbt areas --snapshot base --disk scsi7:7
refused "cbt areas with an unknown disk" 2 "needs --disk ID"

# Identity: a workdir is bound to its vCenter and VM.
SIM_INFO=$AUTH
run "$tmp/o" "$BIN" --workdir "$W" cbt status --vcenter "$(sim_info .url)" --username admin --password-file "$tmp/auth/pw" --ca-file "$(sim_info .cert_file)"
# The simulators share one vCenter instance UUID, so the workdir's VM is
# looked up there and not found (exit 6); a VM that were found under the
# same moref would be refused by its instance UUID (exit 2).
check "another vCenter's VM is refused (exit $rc)" \
  bash -c '{ [ "$1" -eq 6 ] && grep -q "of this workdir no longer exists on" "$2"; } ||
           { [ "$1" -eq 2 ] && grep -qE "is not the (VM|vCenter) of this workdir" "$2"; }' _ "$rc" "$tmp/o"
SIM_INFO=$MAIN

# The lock: a second command is refused while one runs. The holder takes
# the lock, says so, and keeps it until told to let go: no sleeps to race.
flock -x "$W/.lock" bash -c 'touch "$1.held"; while [ ! -e "$1.release" ]; do sleep 0.1; done' _ "$tmp/lock" &
holder=$!
for _ in $(seq 300); do [ -e "$tmp/lock.held" ] && break; sleep 0.1; done
check "the lock holder holds the lock" bash -c "! flock -n '$W/.lock' true"
run "$tmp/o" v2k --workdir "$W" cbt enable
refused "locked workdir" 4 "is in use by another ablestack_v2k process"
touch "$tmp/lock.release"; wait "$holder"

# A CBT reset (a new epoch) is detected and fails closed.
SIM_INFO=$MAIN
base_id=$(jq -r '.snapshots[0].disks[0].change_id' "$W/manifest.json")
sim_set_cbt web01 false
sim_set_cbt web01 true
W6=$(init_vm snapped)
check "snapped: init, cbt enable, snapshot base" \
  bash -c "$(declare -f v2k sim_info); SIM_INFO='$SIM_INFO' BIN='$BIN'; test -n '$W6' && v2k --workdir '$W6' cbt enable >/dev/null 2>&1 && v2k --workdir '$W6' snapshot base >/dev/null 2>&1"
sid=$(jq -r '.snapshots[0].disks[0].change_id' "$W6/manifest.json")
sim_set_cbt snapped false
sim_set_cbt snapped true
jq '.disks[].base.state = "done"' "$W6/manifest.json" >"$tmp/m" && cp "$tmp/m" "$W6/manifest.json"
run "$tmp/o" v2k --workdir "$W6" snapshot incr
check "snapped: snapshot incr after the CBT reset" test $? -eq 0
run "$tmp/o" v2k --workdir "$W6" cbt areas --snapshot incr --disk scsi0:0 --since "$sid"
check "CBT reset (epoch differs): exit 7" test $? -eq 7
check "CBT reset (epoch differs): recovery hint" grep -q "another tracking epoch.*'cbt reset', then 'sync base --full'" "$tmp/o"
newid=$(jq -r '.snapshots[1].disks[0].change_id' "$W6/manifest.json")
run "$tmp/o" v2k --workdir "$W6" cbt areas --snapshot incr --disk scsi0:0 --since "${newid%/*}/99"
check "changeId rejected by vSphere: exit 7" test $? -eq 7
check "changeId rejected by vSphere: recovery hint" grep -q "rejected changeId .*was reset.*'cbt reset', then 'sync base --full'" "$tmp/o"
# A committed changeId (as a finished base sync leaves) and an unfinished incr.
jq --arg c "$sid" '.disks[].incr.state = "running" | .disks[].cbt.change_id = $c' "$W6/manifest.json" >"$tmp/m" &&
  cp "$tmp/m" "$W6/manifest.json"
check "snapped: a committed changeId before the reset" jq_true '[.disks[].cbt.change_id] == [$c]' --arg c "$sid" "$W6/manifest.json"
run "$tmp/o" v2k --workdir "$W6" cbt reset
refused "cbt reset refused while a sync is unfinished" 2 "a sync of this run is unfinished"
run "$tmp/o" v2k --workdir "$W6" cbt reset --force
check "cbt reset --force works" test $? -eq 0
check "cbt reset clears committed changeIds" jq_true '[.disks[].cbt.change_id] == [null]' "$W6/manifest.json"

# The power state guards the final snapshot; existing snapshots are reported.
jq '.disks[].base.state = "done" | .disks[].base.snapshot = .snapshots[0].moref' "$W/manifest.json" >"$tmp/m" && cp "$tmp/m" "$W/manifest.json"
run "$tmp/o" v2k --workdir "$W" snapshot final
refused "snapshot final refused while powered on" 2 "snapshot final needs VM web01 powered off (it is poweredOn)"
moref=$(jq -r '.vms[] | select(.name == "snapped") | .moref' "$SIM_INFO")
sim_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$moref</_this><name>before migration</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>" >/dev/null
WS=$(init_vm snapped 2>"$tmp/err")
check "init warns about existing snapshots" grep -q "warning: VM snapped already has snapshot 'before migration'" "$tmp/err"
check "the warning is an event" jq_true -s 'map(select(.event == "vm.user_snapshots" and (.detail.names | index("before migration")))) | length == 1' "$WS/events.log"

# ---------------------------------------------------------------- property collector paging
start paged --max-objects 1 --vm p1 --folder f1 --disk scsi:4M --vm p2 --folder f2 --disk scsi:4M --vm p3 --disk scsi:4M --vm p1 --disk scsi:4M
WPG=$(init_vm p2)
check "RetrievePropertiesEx continuation pages are followed" jq_true '.source.vm.inventory_path == "DC0/vm/f2/p2"' "$WPG/manifest.json"
run "$tmp/o" init_vm p1
refused "ambiguity found across continuation pages" 2 "2 VMs are named 'p1'"

# ---------------------------------------------------------------- session expiry
# --trace: the simulator logs each request, so the logins can be counted
# (one per command when sessions do not expire).
start expiry --trace --expire-session-calls 4 --vm e1 --disk scsi:4M --disk sata:4M --power on
logins() { grep -c '<Login ' "$tmp/expiry/vcsim.log"; }
WE=$(init_vm e1 2>"$tmp/o")
n0=$(logins)
check "init survives sessions that expire mid-command (logins: $n0)" test -f "$WE/manifest.json" -a "$n0" -ge 2
run "$tmp/o" v2k --workdir "$WE" cbt enable
rc=$?
n1=$(logins)
check "cbt enable re-logs in once after expiry (exit $rc, logins: $((n1 - n0)))" test "$rc" -eq 0 -a $((n1 - n0)) -eq 2
run "$tmp/o" v2k --workdir "$WE" snapshot base
rc=$?
n2=$(logins)
check "snapshot re-logs in after expiry (exit $rc, logins: $((n2 - n1)))" test "$rc" -eq 0 -a $((n2 - n1)) -ge 2
check "one snapshot despite the re-login" test "$(sim_snapshot_names e1 | grep -c ablestack-v2k)" -eq 1

# ---------------------------------------------------------------- faults and timeouts
# --trace: the simulator logs each fault it injects, so a check can tell a
# retried fault from one that never fired.
start faults --trace --fault RetrievePropertiesEx:3:http503 --fault CreateSnapshot_Task:1:hang \
  --fault ReconfigVM_Task:1:http503 --vm f1 --disk scsi:4M
WF=$(init_vm f1 2>"$tmp/o")
check "a read-only call is retried after HTTP 503" \
  bash -c "test -f '$WF/manifest.json' && grep -q 'injecting http503 into call 3 of RetrievePropertiesEx' '$tmp/faults/vcsim.log'"
run "$tmp/o" v2k --workdir "$WF" cbt enable
refused "a state-changing call is not repeated after HTTP 503" 6 "ReconfigVM_Task: .* answered HTTP 503"
check "a failed step is recorded as the last error" jq_true '.last_error.phase == "cbt" and .phases.cbt.state == "failed"' "$WF/manifest.json"
check "a failed step leaves an error event" jq_true -s 'map(select(.event == "cbt enable.failed" and .level == "error")) | length == 1' "$WF/events.log"
"$BIN" --workdir "$WF" status --json >"$tmp/s"
check "status shows the failure" jq_true '.state == "failed" and .last_error.code == "vsphere_fault"' "$tmp/s"
run "$tmp/o" v2k --workdir "$WF" cbt enable
check "re-running the step succeeds" test $? -eq 0
check "success clears the last error" jq_true '.last_error == null and .phases.cbt.state == "done"' "$WF/manifest.json"
run "$tmp/o" v2k --workdir "$WF" snapshot base --task-timeout 2
check "a task that never finishes times out: exit 6" test $? -eq 6
check "the timeout says to check vCenter" grep -q "did not finish within 2 s; it may still be running" "$tmp/o"

# ---------------------------------------------------------------- paging, ground truth
for per in 1 7; do
  start "page$per" --max-areas "$per" --cbt-block-size 4096 --vm p --disk scsi:80M
  WP=$(init_vm p)
  v2k --workdir "$WP" cbt enable >/dev/null
  flat=$(sim_disk_flat p 2000)
  # 10,000 areas: one byte in every other 4 KiB block.
  perl -e 'open(my $f, "+<", $ARGV[0]) or die; for my $i (0..9999) { seek($f, $i*8192+100, 0); print $f chr(1 + $i % 250); } close $f' "$flat"
  v2k --workdir "$WP" snapshot base >/dev/null
  v2k --workdir "$WP" cbt areas --snapshot base --disk scsi0:0 --json >"$tmp/areas$per"
  check "paging at $per per reply: 10000 areas" jq_true '.count == 10000 and .bytes == 40960000' "$tmp/areas$per"
  check "paging at $per per reply: exactly the written blocks" jq_true '[.areas[] | select(.length != 4096 or (.start % 8192) != 0)] == [] and ([.areas[].start] | . == (sort | unique))' "$tmp/areas$per"
  check "paging at $per per reply: page count" jq_true --argjson per "$per" '.pages >= (10000 / $per | floor)' "$tmp/areas$per"
done

# ---------------------------------------------------------------- bad pages fail closed
for mode in offset zero overlap outside past unsorted; do
  start "bad$mode" --max-areas 3 --cbt-block-size 4096 --corrupt-areas "$mode:2" --vm b --disk scsi:4M
  WB=$(init_vm b)
  v2k --workdir "$WB" cbt enable >/dev/null
  perl -e 'open(my $f, "+<", $ARGV[0]) or die; for my $i (0..20) { seek($f, $i*16384, 0); print $f "x"; } close $f' "$(sim_disk_flat b 2000)"
  v2k --workdir "$WB" snapshot base >/dev/null
  run "$tmp/o" v2k --workdir "$WB" cbt areas --snapshot base --disk scsi0:0
  rc=$?
  check "bad page ($mode): exit 7" test $rc -eq 7
  check "bad page ($mode): names the page and offset" grep -q "changed areas reply 2 (asked from offset [0-9]*)" "$tmp/o"
done

tap_done
