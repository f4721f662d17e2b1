#!/bin/bash
# The simulator as the integration tests use it: started and stopped through
# tests/lib, serving over verified TLS, with guest writes landing on disk.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
tmp=$(mktemp -d /tmp/v2k-sim-XXXXXX)
trap 'sim_stop; rm -rf "$tmp"' EXIT

if ! sim_start "$tmp" --vm web01 --disk scsi:16M --disk sata:8M --nic "VM Network" --nic "Prod Net" \
     --firmware efi --secure-boot --power on; then
  not_ok "simulator starts"
  tap_done
  exit 1
fi
ok "simulator starts"
check "info has the documented keys" jq_true 'has("url") and has("cert_file") and has("thumbprint_sha1") and
  has("thumbprint_sha256") and has("user") and has("password") and has("datastores") and has("vms") and has("pid")' "$SIM_INFO"
check "info pid is the process" test "$(sim_info .pid)" = "$SIM_PID"
check "disk keys are stable" test "$(sim_info '[.vms[0].disks[].key] | join(",")')" = "2000,2001"

body='<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent></soapenv:Body></soapenv:Envelope>'
out=$(curl -sS --cacert "$(sim_info .cert_file)" -H 'Content-Type: text/xml' --data "$body" "$(sim_info .sdk)")
check "serves SOAP over verified TLS" grep -q "<apiVersion>" <<<"$out"
# Refused for the certificate (curl exit 60), not for any other reason such
# as a server that is not there.
curl -sS -o /dev/null --data x "$(sim_info .sdk)" 2>/dev/null
rc=$?
check "untrusted TLS is refused: the certificate is not trusted (curl exit $rc)" test "$rc" -eq 60
fp=$(openssl s_client -connect "${SIM_URL:-$(sim_info .url | sed 's|https://||')}" </dev/null 2>/dev/null |
     openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//')
check "sha256 thumbprint matches the served certificate" test "$fp" = "$(sim_info .thumbprint_sha256)"

printf 'hello guest' >"$tmp/data"
sim_write web01 2000 1048576 "$tmp/data"
flat=$(sim_disk_flat web01 2000)
check "sim_write lands at the offset" test "$(dd if="$flat" bs=1 skip=1048576 count=11 status=none)" = "hello guest"
sim_fill web01 2001 4096 8192 171
check "sim_fill writes the byte" test "$(od -An -tu1 -j 4096 -N 1 "$(sim_disk_flat web01 2001)" | tr -d ' ')" = "171"
check "disk keeps its capacity" test "$(stat -c %s "$flat")" -eq 16777216
check "qemu reads the descriptor" bash -c "qemu-img info --output=json '$(sim_info '.vms[0].disks[0].descriptor')' | jq -e '.\"virtual-size\" == 16777216' >/dev/null"

ds=$(sim_info '.datastores.LocalDS_0')
pid=$SIM_PID
SIM_PID=
# SIGTERM, and the exit status it ends with; a watchdog SIGKILLs a simulator
# that ignores it (that status is 137, a failure).
kill -TERM "$pid"
( sleep 60; kill -KILL "$pid" 2>/dev/null ) &
watchdog=$!
wait "$pid"
rc=$?
kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
check "stops on SIGTERM, exit 0 (exit $rc)" test "$rc" -eq 0
check "datastore removed on stop" test ! -e "$ds"
check "info file removed on stop" test ! -e "$tmp/vcsim-info.json"
tap_done
