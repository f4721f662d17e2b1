#!/bin/bash
# verify: a clean target passes; one flipped byte is found, with its offset.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-verify-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
sim_start "$tmp" --vm v1 --disk scsi:16M --disk sata:8M --power on || exit 1
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
W=$(v2k init --vm v1 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')")
v2k -q --workdir "$W" cbt enable >/dev/null
sim_fill v1 2000 0 3000000 91
sim_fill v1 2001 1000000 100000 92
v2k -q --workdir "$W" snapshot base >/dev/null
v2k -q --workdir "$W" sync base
out=$(v2k --workdir "$W" verify 2>&1)
check "verify passes on clean targets" test $? -eq 0
check "verify reports each disk" test "$(grep -c 'identical to snapshot-' <<<"$out")" -eq 2
check "verify records the result" jq_true '[.disks[].verify.state] == ["done", "done"] and .disks[0].verify.bytes_checked == 16777216 and .disks[0].verify.mode == "full" and .phases.verify.state == "done"' "$W/manifest.json"
v2k -q --workdir "$W" verify --sample 3
check "verify --sample passes on clean targets" test $? -eq 0
check "verify --sample checks only samples" jq_true '.disks[0].verify.mode == "sample:3" and .disks[0].verify.bytes_checked <= 12582912' "$W/manifest.json"
qemu-io -f qcow2 -c "write -P 0x5a 1234567 1" "$tmp/dst/v1-disk0.qcow2" >/dev/null
v2k --workdir "$W" verify >"$tmp/o" 2>&1
check "one flipped byte: exit 11" test $? -eq 11
check "one flipped byte: its offset" grep -q "disk scsi0:0 differs from snapshot-[0-9]* in 1 chunk(s), first at offset 1234567 (1 bytes)" "$tmp/o"
check "the mismatch is recorded" jq_true '.disks[0].verify.state == "failed" and .disks[0].verify.mismatches == 1 and .disks[1].verify.state == "done" and .phases.verify.state == "failed"' "$W/manifest.json"
check "the mismatch is an error event with the range" jq_true -s 'map(select(.event == "verify.mismatch")) | .[-1].detail.first == [{"start":1234567,"length":1}]' "$W/events.log"
expect_exit "verify --sample 0 is refused" 2 "$BIN" --workdir "$W" verify --sample 0
check "no helper left after verify" bash -c "! pgrep -f '$W/ru[n]/' >/dev/null"
tap_done
