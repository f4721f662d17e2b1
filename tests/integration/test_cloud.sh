#!/bin/bash
# ABLESTACK cloud registration against the vCenter simulator and the fake
# management server (tests/cloud/fake_cloud.py): the exact call sequence,
# device ids, MACs and sizing; resume after a kill at every step; rollback;
# a MAC replaced by the server; the upstream flavour; preflight refusals
# that create nothing; signature algorithms, 503s, slow and stuck jobs, a
# dropped connection; credential sources; and a full run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/cloud.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-cloud-XXXXXX)
trap 'sim_stop; cloud_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
vms=()
for v in reg kill rb mac up pre small run full lost held; do
  vms+=(--vm "$v" --disk scsi:1G --disk sata:1G --disk scsi:1G --disk scsi:1G --disk sata:1G
        --nic "VM Network" --nic "Backup" --firmware efi --power on)
done
vms+=(--vm tiny --disk scsi:64M --nic "VM Network" --power on)
sim_start "$tmp" "${vms[@]}" || exit 1
DS=$(sim_info '.datastores.LocalDS_0')
echo pass >"$tmp/sim-pw"
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
jqe() { jq -e "$1" >/dev/null; }
mutating='^(importVolume|deployVirtualMachineForVolume|importVm|updateVolume|attachVolume|detachVolume|startVirtualMachine|unmanageVolume|destroyVirtualMachine|createDiskOffering|addNicToVirtualMachine)$'
# new_cloud [flags]: a fresh fake server with its own pool directory.
new_cloud() {
  cloud_stop
  POOL=$(mktemp -d "$tmp/pool-XXXXXX")
  cloud_start "$tmp" --pool-dir "$POOL" "$@" || exit 1
  cloud_creds "$tmp/cred"
  CL=(--target-provider ablestack-cloud --cloud-cred-file "$tmp/cred" --cloud-zone "$(cloud_info .zone)"
      --cloud-service-offering "$(cloud_info .offer_custom)" --cloud-storage "$(cloud_info .pool_fs)"
      --cloud-net-map "VM Network=$(cloud_info '.networks[0]')" --cloud-net-map "Backup=$(cloud_info '.networks[1]')"
      --convert off)
}
# prepare VM: init into the pool, base copy; prints the workdir.
prepare() {
  local w
  w=$(v2k init --vm "$1" --dst "$POOL" --workdir-root "$tmp/root" --transport file \
      --datastore-map "LocalDS_0=$DS") || return 1
  sim_fill "$1" 2000 0 3000000 $((RANDOM % 200 + 1))
  sim_fill "$1" 2001 1000000 1000000 $((RANDOM % 200 + 1))
  v2k --workdir "$w" cbt enable >/dev/null && v2k --workdir "$w" snapshot base >/dev/null &&
    v2k --workdir "$w" sync base >/dev/null || return 1
  echo "$w"
}
calls_of() { grep -c "\"command\": \"$1\"" "$CLOUD_LOG"; }
mutations() { cloud_calls | grep -E "$mutating" | tr '\n' ' ' | sed 's/ $//'; }

# ---- a registration, call by call ----
new_cloud
W=$(prepare reg)
out=$(v2k --workdir "$W" cutover "${CL[@]}" --start --json)
check "cutover --target-provider ablestack-cloud: exit 0" test $? -eq 0
check "the exact sequence of changes" test "$(mutations)" = \
  "createDiskOffering importVolume importVolume importVolume importVolume importVolume deployVirtualMachineForVolume updateVolume attachVolume attachVolume attachVolume attachVolume startVirtualMachine"
check "read-only checks come first" bash -c "cloud_calls() { jq -r .command '$CLOUD_LOG'; }; cloud_calls | head -12 | grep -vqE '$mutating' && ! cloud_calls | head -12 | grep -qE '$mutating'"
check "signed with sha256 (Mold), probed" jqe '.cloud.algorithm == "sha256" and .cloud.flavour == "mold"' <<<"$out"
check "one VM, running, with both MACs, NIC 0 default" \
  bash -c "$(declare -f cloud_state cloud_info); CLOUD_INFO='$CLOUD_INFO'; cloud_state '.vms' | jq -e 'length == 1 and .[0].state == \"Running\" and ([.[0].nic[].macaddress] == [\"00:50:56:10:00:00\", \"00:50:56:10:00:01\"]) and .[0].nic[0].isdefault' >/dev/null"
check "root ROOT at device 0, data disks at 1, 2, 4, 5" \
  bash -c "$(declare -f cloud_state cloud_info); CLOUD_INFO='$CLOUD_INFO'; cloud_state '[.volumes[] | [.type, .deviceid]]' | jq -ce . | grep -qx '\\[\\[\"ROOT\",0\\],\\[\"DATADISK\",1\\],\\[\"DATADISK\",2\\],\\[\"DATADISK\",4\\],\\[\"DATADISK\",5\\]\\]'"
check "the volumes are the migrated targets" \
  bash -c "$(declare -f cloud_state cloud_info); CLOUD_INFO='$CLOUD_INFO'; cloud_state '[.volumes[].path] | sort | join(\" \")' | grep -qx 'reg-disk0.qcow2 reg-disk1.qcow2 reg-disk2.qcow2 reg-disk3.qcow2 reg-disk4.qcow2'"
check "the targets are identical to the source" sim_same_disks reg "$POOL"/reg-disk{0,1,2,3,4}.qcow2
deploy=$(grep '"deployVirtualMachineForVolume"' "$CLOUD_LOG" | head -1)
check "deploy: stopped, with the chosen VM id, UEFI, MACs per network" \
  jqe '.params.startvm == "false" and (.params.customid | length) == 36 and .params.boottype == "UEFI" and .params.bootmode == "LEGACY" and .params["iptonetworklist[0].mac"] == "00:50:56:10:00:00" and .params["iptonetworklist[1].mac"] == "00:50:56:10:00:01"' <<<"$deploy"
check "deploy: sizing details for an open offering" \
  jqe '.params["details[0].cpuNumber"] == "2" and .params["details[0].memory"] == "2048" and .params["details[0].cpuSpeed"] == "1000"' <<<"$deploy"
check "updateVolume makes the root ROOT and passes its path" \
  test "$(jq -c 'select(.command == "updateVolume") | [.params.type, .params.path]' "$CLOUD_LOG")" = '["ROOT","reg-disk0.qcow2"]'
check "every change is a POST" bash -c "! jq -r 'select(.method != \"POST\") | .command' '$CLOUD_LOG' | grep -q ."
check "no key or signature in the manifest or events" \
  bash -c "test -s '$W/manifest.json' && ! grep -rqF -e '$(cloud_info .secretkey)' -e '$(cloud_info .apikey)' '$W'"
st=$("$BIN" --workdir "$W" status --json)
check "status shows the cloud VM id, volume ids and step" \
  jqe '.cloud.vm_id != null and .cloud.step == "started" and ([.cloud.volumes[].volume_id] | all(. != null))' <<<"$st"
out=$(v2k --workdir "$W" cutover "${CL[@]}" --start --json)
rc=$?
check "a second cutover succeeds (exit $rc)" test "$rc" -eq 0
check "a second cutover creates nothing" test "$(calls_of importVolume)/$(calls_of deployVirtualMachineForVolume)" = "5/1"
check "a second cutover does not start the started VM again" test "$(calls_of startVirtualMachine)" = 1

# ---- killed at every step, then run again ----
new_cloud --pending 2
K=$(prepare kill)
n=0
for point in cloud:createDiskOffering cloud:importVolume@1 cloud:importVolume@3 cloud:deployVirtualMachineForVolume \
             cloud:updateVolume cloud:attachVolume@1 cloud:attachVolume@2 cloud:startVirtualMachine; do
  n=$((n + 1))
  V2K_CRASHPOINT=$point v2k --workdir "$K" cutover "${CL[@]}" --start >/dev/null 2>&1
  check "kill $n at $point" test $? -eq 137
done 2>/dev/null
out=$(v2k --workdir "$K" cutover "${CL[@]}" --start --json)
check "after 8 kills: registered and started" jqe '.cloud.step == "started" and .cloud.started' <<<"$out"
check "after the kills: one VM, five volumes" \
  test "$(cloud_state '.vms | length')/$(cloud_state '.volumes | length')" = "1/5"
check "after the kills: no disk imported twice, one deploy" \
  test "$(calls_of importVolume)/$(calls_of deployVirtualMachineForVolume)" = "5/1"

# ---- a deploy's reply lost; a kill while the deploy is in flight ----
new_cloud --drop-after-accept deployVirtualMachineForVolume
D=$(prepare lost)
rc=0; v2k --workdir "$D" cutover "${CL[@]}" --start >/dev/null 2>&1 || rc=$?
check "a deploy whose reply was lost: exit 12 ($rc)" test "$rc" -eq 12
check "... its reply was really dropped" \
  jq_true -s '[.[] | select(.command == "deployVirtualMachineForVolume" and .outcome == "dropped")] | length == 1' "$CLOUD_LOG"
rc=0; v2k --workdir "$D" cutover "${CL[@]}" --start >/dev/null 2>&1 || rc=$?
check "... the re-run finishes (exit $rc)" test "$rc" -eq 0
check "... the deployed VM is adopted, not deployed again" \
  test "$(calls_of deployVirtualMachineForVolume)/$(cloud_state '.vms | length')" = "1/1"

new_cloud --hold-after-accept deployVirtualMachineForVolume
H=$(prepare held)
"$BIN" --workdir "$H" cutover "${CL[@]}" --start --vcenter "$(sim_info .url)" --username user \
  --password-file "$tmp/sim-pw" --ca-file "$(sim_info .cert_file)" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  jq -e 'select(.command == "deployVirtualMachineForVolume" and .outcome == "held")' "$CLOUD_LOG" >/dev/null 2>&1 && break
  sleep 0.1
done
check "the deploy was taken and its reply held" \
  jq_true -s '[.[] | select(.command == "deployVirtualMachineForVolume" and .outcome == "held")] | length == 1' "$CLOUD_LOG"
kill -KILL "$pid" 2>/dev/null; wait "$pid"; rc=$?
check "the cutover was killed while the deploy was in flight (exit $rc)" test "$rc" -eq 137
rc=0; v2k --workdir "$H" cutover "${CL[@]}" --start >/dev/null 2>&1 || rc=$?
check "... the re-run finishes (exit $rc)" test "$rc" -eq 0
check "... the VM id chosen before the deploy finds that VM: one deploy, one VM" \
  test "$(calls_of deployVirtualMachineForVolume)/$(cloud_state '.vms | length')" = "1/1"

# ---- rollback ----
new_cloud --fail attachVolume:2
R=$(prepare rb)
out=$(v2k --workdir "$R" cutover "${CL[@]}" 2>&1)
check "a failed attach: exit 12" test $? -eq 12
check "the error says it rolled back" grep -q "registration rolled back (the disk images are kept)" <<<"$out"
check "rollback: no VM and no volume left in the cloud" test "$(cloud_state '.vms | length')/$(cloud_state '.volumes | length')" = "0/0"
check "rollback: detached, unmanaged, destroyed" \
  bash -c "jq -r .command '$CLOUD_LOG' | grep -qx detachVolume && jq -r .command '$CLOUD_LOG' | grep -qx unmanageVolume && jq -r .command '$CLOUD_LOG' | grep -qx destroyVirtualMachine"
check "rollback: the disk images stay" test "$(ls "$POOL" | grep -c qcow2)" -eq 5
check "rollback: recorded" jq_true '.cloud.rolled_back and .cloud.step == "rolled_back"' "$R/manifest.json"
out=$(v2k --workdir "$R" cutover "${CL[@]}" --json)
check "run again after the rollback: registered" jqe '.cloud.step == "verified" and (.cloud.started | not)' <<<"$out"

# ---- a MAC replaced by the server ----
new_cloud --replace-mac
M=$(prepare mac)
out=$(v2k --workdir "$M" cutover "${CL[@]}" 2>&1)
check "a replaced MAC is detected (exit 12)" test $? -eq 12
check "the error names both MACs" grep -q "MAC 02:00:00:00:be:ef instead of the source's 00:50:56:" <<<"$out"
check "and the VM is rolled back" test "$(cloud_state '.vms | length')" -eq 0

# ---- upstream CloudStack ----
new_cloud --flavour upstream --alg sha1
U=$(prepare up)
out=$(v2k --workdir "$U" cutover "${CL[@]}" --json)
check "upstream: registered" jqe '.cloud.flavour == "upstream" and .cloud.algorithm == "sha1"' <<<"$out"
check "upstream: importVm, then volumes, then the second NIC" test "$(mutations)" = \
  "createDiskOffering importVm importVolume attachVolume importVolume attachVolume importVolume attachVolume importVolume attachVolume addNicToVirtualMachine"
check "upstream: the second NIC keeps its MAC" \
  test "$(cloud_state '.vms[0].nic[1].macaddress')" = "00:50:56:$(printf %02x $(( $(jq '.vms | map(.name) | index("up")' "$SIM_INFO") + 16 ))):00:01"
check "upstream: the first NIC's new MAC is a warning" grep -q '"event":"cloud.first_nic_mac"' "$U/events.log"

# ---- preflight refusals create nothing ----
new_cloud
P=$(prepare pre)
refuse() {  # refuse LABEL EXIT PATTERN ARGS...: exit EXIT (2: the command line, 12: the cloud's answers)
  local label=$1 want=$2 pat=$3 rc
  shift 3
  : >"$CLOUD_LOG"
  out=$(v2k --workdir "$P" cutover "$@" 2>&1)
  rc=$?
  [ "$rc" -eq "$want" ] && [ "$(grep -cF -- "$pat" <<<"$out")" -gt 0 ] || echo "# $label: $out"
  check "preflight: $label (exit $rc, want $want)" test "$rc" -eq "$want" -a "$(grep -cF -- "$pat" <<<"$out")" -gt 0
  check "preflight: $label creates nothing" test "$(cloud_calls | grep -cE "$mutating")" -eq 0
}
base=(--target-provider ablestack-cloud --cloud-cred-file "$tmp/cred" --cloud-zone "$(cloud_info .zone)"
      --cloud-service-offering "$(cloud_info .offer_custom)" --cloud-storage "$(cloud_info .pool_fs)" --convert off)
refuse "an unmapped network" 2 "need a cloud network: 'VM Network', 'Backup'" "${base[@]}"
refuse "two NICs on one network" 2 "both map to cloud network" "${base[@]}" \
  --cloud-net-map "VM Network=$(cloud_info '.networks[0]')" --cloud-net-map "Backup=$(cloud_info '.networks[0]')"
refuse "an unknown zone" 2 "--cloud-zone: the cloud has no zone" "${CL[@]}" --cloud-zone 00000000-0000-0000-0000-000000000000
refuse "the RBD pool for file disks" 2 "is a file, but --cloud-storage is a RBD pool" "${CL[@]}" --cloud-storage "$(cloud_info .pool_rbd)"
qemu-nbd -f qcow2 -k "$tmp/hold.sock" "$POOL/pre-disk1.qcow2" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do [ -S "$tmp/hold.sock" ] && break; sleep 0.1; done
refuse "a locked disk" 2 "disk sata0:0 (pre-disk1.qcow2) is locked" "${CL[@]}"
kill $holder; wait $holder 2>/dev/null
chmod 644 "$tmp/cred"
refuse "a credential file others can read" 2 "can be read by others" "${CL[@]}"
chmod 600 "$tmp/cred"
( umask 077; printf 'endpoint=%s\napi_key=%s\nsecret_key=wrong\n' "$(cloud_info .url)" "$(cloud_info .apikey)" >"$tmp/badcred" )
refuse "a wrong secret key" 12 "refused every signature algorithm" "${CL[@]}" --cloud-cred-file "$tmp/badcred"
check "refusals leave the source running" test "$(sim_power_state pre)" = poweredOn
T=$(v2k init --vm tiny --dst "$POOL" --workdir-root "$tmp/root" --transport file --datastore-map "LocalDS_0=$DS")
check "tiny: init, cbt enable, base snapshot and sync" \
  bash -c "$(declare -f v2k sim_info); SIM_INFO='$SIM_INFO' BIN='$BIN'; test -n '$T' && v2k --workdir '$T' cbt enable >/dev/null && v2k --workdir '$T' snapshot base >/dev/null && v2k --workdir '$T' sync base >/dev/null"
: >"$CLOUD_LOG"
out=$(v2k --workdir "$T" cutover "${base[@]}" --cloud-net-map "VM Network=$(cloud_info '.networks[0]')" 2>&1)
rc=$?
check "preflight: a disk under 1 GiB names the setting (exit $rc)" \
  bash -c '[ "$1" -eq 2 ] && grep -qF -- "$3" <<<"$2"' _ "$rc" "$out" "outside the cloud's import limits (custom.diskoffering.size.min 1"
check "preflight: a disk under 1 GiB creates nothing" test "$(cloud_calls | grep -cE "$mutating")" -eq 0

# ---- TLS and a CloudMonkey configuration elsewhere ----
# Each case ends at a refusal that needs the cloud's answers (an unknown
# zone): getting that far shows the connection and the signature worked.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" >/dev/null 2>&1
new_cloud --tls "$tmp/tls.crt" "$tmp/tls.key"
nozone=(--cloud-zone 00000000-0000-0000-0000-000000000000)
refuse "a certificate not trusted" 12 "SSL peer certificate or SSH remote key was not OK" "${CL[@]}"
refuse "--cloud-ca-file trusts it" 2 "--cloud-zone: the cloud has no zone" "${CL[@]}" --cloud-ca-file "$tmp/tls.crt" "${nozone[@]}"
refuse "--cloud-insecure skips verification" 2 "--cloud-zone: the cloud has no zone" "${CL[@]}" --cloud-insecure "${nozone[@]}"
check "--cloud-insecure is recorded as a warning event" jq_true -s 'map(select(.event == "tls.insecure" and .level == "warn")) | length >= 1' "$P/events.log"
mkdir -p "$tmp/elsewhere"
printf '[site]\nurl = %s\napikey = %s\nsecretkey = %s\n' \
  "$(cloud_info .url)" "$(cloud_info .apikey)" "$(cloud_info .secretkey)" >"$tmp/elsewhere/cmk.conf"
nocred=("${CL[@]:0:2}" "${CL[@]:4}")   # CL without --cloud-cred-file FILE
refuse "--cmk-config and --cmk-profile are read" 2 "--cloud-zone: the cloud has no zone" \
  "${nocred[@]}" --cmk-config "$tmp/elsewhere/cmk.conf" --cmk-profile site --cloud-insecure "${nozone[@]}"
refuse "a --cmk-config that cannot be read" 2 "CloudMonkey configuration $tmp/elsewhere/none cannot be read" \
  "${nocred[@]}" --cmk-config "$tmp/elsewhere/none" --cmk-profile site

# ---- transport and jobs: a 503, slow jobs, a dropped reply, a stuck job ----
new_cloud --http503-once listZones --pending 4 --drop-after-accept importVolume --job-never-ends startVirtualMachine
S2=$(prepare small)
out=$(v2k --workdir "$S2" cutover "${CL[@]}" --start --cloud-job-timeout 3 2>&1)
rc1=$?
check "a reply lost after the import was accepted: exit 12 ($rc1), resumable" \
  bash -c '[ "$1" -eq 12 ] && grep -q "registration stopped with its state recorded; run the same command again to resume" <<<"$2"' _ "$rc1" "$out"
check "... the reply of an accepted importVolume was really dropped" \
  jq_true -s '[.[] | select(.command == "importVolume" and .outcome == "dropped")] | length == 1' "$CLOUD_LOG"
check "a lost reply is not rolled back" test "$(cloud_state '.volumes | length')" -eq 1
out=$(v2k --workdir "$S2" cutover "${CL[@]}" --start --cloud-job-timeout 3 2>&1)
rc2=$?
check "a job that never ends: exit 12 ($rc2) after the timeout" \
  bash -c '[ "$1" -eq 12 ] && grep -q "did not finish within 3 s" <<<"$2"' _ "$rc2" "$out"
check "a 503 on a read is retried: listZones answered 503, then again, answered" \
  jq_true -s '[.[] | select(.command == "listZones") | .outcome] | (index("http503")) as $i | $i != null and (.[$i + 1:] | index("ok")) != null' "$CLOUD_LOG"
check "the lost import was found, not imported twice" \
  test "$(cloud_state '.volumes | length')/$(calls_of importVolume)" = "5/5"
check "slow jobs (4 pending polls each) are waited for" jq_true '.cloud.step == "verified"' "$S2/manifest.json"
check "a stuck start is not rolled back" test "$(cloud_state '.vms | length')" -eq 1
check "the stuck job id is recorded" jq_true '.cloud.start_job != null' "$S2/manifest.json"

# ---- credentials from the environment and from a cmk profile ----
new_cloud
mkdir -p "$tmp/home/.cmk"
printf 'profile = lab\n\n[lab]\nurl = %s\napikey = %s\nsecretkey = %s\nsignaturealgorithm = HmacSHA256\n' \
  "$(cloud_info .url)" "$(cloud_info .apikey)" "$(cloud_info .secretkey)" >"$tmp/home/.cmk/config"
W2=$(prepare run)
out=$(HOME=$tmp/home "$BIN" --workdir "$W2" register --preflight-only --cloud-zone "$(cloud_info .zone)" \
      --cloud-service-offering "$(cloud_info .offer_fixed)" --cloud-storage "$(cloud_info .pool_fs)" \
      --cloud-net-map "VM Network=$(cloud_info '.networks[0]')" --cloud-net-map "Backup=$(cloud_info '.networks[1]')" 2>&1)
rc=$?
check "register before the final sync is refused (exit $rc)" \
  bash -c '[ "$1" -eq 2 ] && grep -q "register needs the final sync done" <<<"$2"' _ "$rc" "$out"
out=$(ABLESTACK_V2K_CLOUD_ENDPOINT=$(cloud_info .url) ABLESTACK_V2K_CLOUD_API_KEY=$(cloud_info .apikey) \
      ABLESTACK_V2K_CLOUD_SECRET_KEY=$(cloud_info .secretkey) \
      v2k --workdir "$W2" run "${CL[@]:4}" --target-provider none --incr-interval 0 --json 2>&1)
check "run --target-provider none: copies, no registration" jqe '.state == "done"' <<<"$out"
out=$(HOME=$tmp/home "$BIN" --workdir "$W2" register --cloud-zone "$(cloud_info .zone)" \
      --cloud-service-offering "$(cloud_info .offer_fixed)" --cloud-storage "$(cloud_info .pool_fs)" \
      --cloud-net-map "VM Network=$(cloud_info '.networks[0]')" --cloud-net-map "Backup=$(cloud_info '.networks[1]')" --json)
check "register with a cmk profile: registered" jqe '.ok and .step == "verified"' <<<"$out"
check "a fixed offering gets no sizing details" \
  jq_true -s --arg o "$(cloud_info .offer_fixed)" '[.[] | select(.command == "deployVirtualMachineForVolume")] |
    length == 1 and .[0].params.serviceofferingid == $o and
    ([.[0].params | keys[] | select(test("^details\\[0\\]\\.(cpuNumber|memory|cpuSpeed)$"; "i"))] | length == 0)' "$CLOUD_LOG"
check "register after run: the volumes are the migrated targets" sim_same_disks run "$POOL"/run-disk{0,1,2,3,4}.qcow2

# ---- the whole migration: run --target-provider ablestack-cloud ----
sim_fill full 2000 0 5000000 33
sim_fill full 2003 2000000 1000000 34
out=$(v2k --workdir "$tmp/w-full" run --vm full --dst "$POOL" --transport file --datastore-map "LocalDS_0=$DS" \
      "${CL[@]}" --incr-interval 0 --start --json)
check "run --target-provider ablestack-cloud: done, registered and started" \
  jqe '.state == "done" and .cutover.cloud.step == "started" and .cutover.cloud.started' <<<"$out"
check "run: the cloud VM's volumes are the migrated targets" \
  test "$(cloud_state '[.volumes[] | select(.path | startswith("full-")) | .path] | sort | join(" ")')" = \
  "full-disk0.qcow2 full-disk1.qcow2 full-disk2.qcow2 full-disk3.qcow2 full-disk4.qcow2"
check "run: identical to the source" sim_same_disks full "$POOL"/full-disk{0,1,2,3,4}.qcow2
check "run: verified before registering" \
  bash -c "grep -n '\"event\":\"verify.ok\"' '$tmp/w-full/events.log' | head -1 | cut -d: -f1 | { read v; i=\$(grep -n '\"event\":\"cloud.volume_imported\"' '$tmp/w-full/events.log' | head -1 | cut -d: -f1); test \"\$v\" -lt \"\$i\"; }"
check "run: no snapshot left" test "$(sim_snapshot_names full | grep -c .)" -eq 0
tap_done
