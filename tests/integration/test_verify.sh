#!/bin/bash
# verify: a clean target passes; one flipped byte is found, with its offset.
# A VDDK base without CBT reads every byte even when the source's block
# status reports a hole over data, and a verify whose source fails ends with
# one line.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/vddk-standin.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-verify-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
PW='Vfy-s3cret-7f3a'   # distinctive, so that a leak into -v's lines is found
sim_start "$tmp" --user user --password "$PW" \
  --vm v1 --disk scsi:16M --disk sata:8M --power on --vm vd --disk scsi:8M --power on || exit 1
v2k() {
  "$BIN" "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo "$PW") \
    --ca-file "$(sim_info .cert_file)"
}
W=$(v2k init --vm v1 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')")
v2k -q --workdir "$W" cbt enable >/dev/null
sim_fill v1 2000 0 3000000 91
sim_fill v1 2001 1000000 100000 92
v2k -q --workdir "$W" snapshot base >/dev/null
v2k -q --workdir "$W" sync base
out=$(v2k --workdir "$W" verify 2>"$tmp/quiet.err")
check "verify passes on clean targets" test $? -eq 0
check "verify reports each disk" test "$(grep -c 'identical to snapshot-' <<<"$out")" -eq 2
check "without -v: nothing on stderr" test ! -s "$tmp/quiet.err"
# -v: debug lines on stderr (stdout unchanged), never the password.
out_v=$(v2k -v --workdir "$W" verify 2>"$tmp/v.err")
check "-v: verify still passes" test $? -eq 0
check "-v: the same report on stdout" test "$(grep -c 'identical to snapshot-' <<<"$out_v")" -eq 2
check "-v: each helper's command line (both qemu-nbd servers)" \
  test "$(grep -cE '^ablestack_v2k: debug: spawned pid [0-9]+: qemu-nbd .*--socket' "$tmp/v.err")" -eq 4
check "-v: the vCenter login, and each call with its HTTP status and time" \
  bash -c "grep -qE '^ablestack_v2k: debug: vCenter Login on SessionManager: HTTP 200 in [0-9]+\.[0-9]{3} s\$' '$tmp/v.err' && grep -qE '^ablestack_v2k: debug: vCenter RetrievePropertiesEx on [a-zA-Z]+: HTTP 200 in' '$tmp/v.err'"
check "-v: every stderr line is a debug line" bash -c "test -s '$tmp/v.err' && ! grep -qv '^ablestack_v2k: debug: ' '$tmp/v.err'"
check "-v: the password is never in them" bash -c "! grep -qF -- '$PW' '$tmp/v.err'"
check "verify records the result" jq_true '[.disks[].verify.state] == ["done", "done"] and .disks[0].verify.bytes_checked == 16777216 and .disks[0].verify.mode == "full" and .phases.verify.state == "done"' "$W/manifest.json"
v2k -q --workdir "$W" verify --sample 3
check "verify --sample passes on clean targets" test $? -eq 0
check "verify --sample checks 3 chunks of 4 MiB" jq_true '.disks[0].verify.mode == "sample:3" and .disks[0].verify.bytes_checked == 12582912' "$W/manifest.json"
qemu-io -f qcow2 -c "write -P 0x5a 1234567 1" "$tmp/dst/v1-disk0.qcow2" >/dev/null
v2k --workdir "$W" verify >"$tmp/o" 2>&1
check "one flipped byte: exit 11" test $? -eq 11
check "one flipped byte: its offset" grep -q "disk scsi0:0 differs from snapshot-[0-9]* in 1 chunk(s), first at offset 1234567 (1 bytes)" "$tmp/o"
check "the mismatch is recorded" jq_true '.disks[0].verify.state == "failed" and .disks[0].verify.mismatches == 1 and .disks[1].verify.state == "done" and .phases.verify.state == "failed"' "$W/manifest.json"
check "the mismatch is an error event with the range" jq_true -s 'map(select(.event == "verify.mismatch")) | .[-1].detail.first == [{"start":1234567,"length":1}]' "$W/events.log"
v2k --workdir "$W" verify --sample 0 >/dev/null 2>"$tmp/e"
check "verify --sample 0 is refused (exit 2)" test $? -eq 2
check "verify --sample 0: the message says why" grep -q -- '--sample: 0 is out of range' "$tmp/e"
check "no helper left after verify" bash -c "! pgrep -f '$W/ru[n]/' >/dev/null"

# ---- VDDK without CBT: the source's block status is not trusted ----
# The stand-in for nbdkit's vddk plugin, behind a wrapper whose block status
# says every byte is a hole that reads as zeros: a wrong hole over data.
DS=$(sim_info '.datastores.LocalDS_0')
make_vddk_standin "$tmp/standin.sh" "$DS" "$PW" "$tmp/ev"
make_vddk_libdir "$tmp"
cat >"$tmp/liar.sh" <<EOF
#!/bin/sh
case "\$1" in
  can_extents) exit 0 ;;
  extents) echo "\$4 \$3 hole,zero"; exit 0 ;;
  *) exec sh '$tmp/standin.sh' "\$@" ;;
esac
EOF
chmod +x "$tmp/liar.sh"
export V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/liar.sh"
WD=$(v2k init --vm vd --dst "$tmp/dst-vd" --workdir-root "$tmp/root" --vddk-libdir "$tmp")
sim_fill vd 2000 0 2000000 93
sim_fill vd 2000 5000000 300000 94
v2k -q --workdir "$WD" snapshot base >/dev/null
# The lie is real: nbdkit serves it (the same plugin and parameters as a sync).
flat=$(sim_disk_flat vd 2000)
flat=${flat#"$DS"/}
hostport=$(sim_info .url); hostport=${hostport#https://}
nbdkit -U - sh "$tmp/liar.sh" libdir="$tmp" server="${hostport%:*}" port="${hostport##*:}" user=x \
  thumbprint="$(sim_info .thumbprint_sha1)" vm=moref=x \
  file="[LocalDS_0] ${flat%-flat.vmdk}.vmdk" transports=nbd config=/dev/null password=-3 \
  --run 'nbdinfo --map "$uri"' 3< <(echo "$PW") >"$tmp/map" 2>&1
check "the stand-in reports the data at 0 as a hole that reads as zeros" \
  grep -qE '^ *0 +8388608 +3 +hole,zero' "$tmp/map"
v2k -q --workdir "$WD" sync base
check "vddk without CBT: sync base exits 0" test $? -eq 0
check "vddk without CBT: every byte is read, not the source's holes" \
  jq_true -s '[.[] | select(.event == "sync.disk.done")][-1].detail.method == "full"' "$WD/events.log"
check "vddk without CBT: the target is identical despite the wrong hole" \
  sim_same_disks vd "$tmp/dst-vd/vd-disk0.qcow2"
v2k -q --workdir "$WD" verify
check "vddk: verify through nbdkit passes" test $? -eq 0
# Every source read fails (after the retry filter's tries): one line and
# exit 8, and under ASan no report.
echo eio-all >"$tmp/ev/fault"
v2k --workdir "$WD" verify >"$tmp/o" 2>"$tmp/e"
check "verify with a failing source: exit 8 (transfer)" test $? -eq 8
check "verify with a failing source: one line on stderr, the failed read" \
  bash -c "test \$(wc -l <'$tmp/e') -eq 1 && grep -qE '^ablestack_v2k: error: verify disk scsi0:0: verify: reading .*at [0-9]+' '$tmp/e'"
rm -f "$tmp/ev/fault"
unset V2K_NBDKIT_VDDK_PLUGIN
check "no helper left after the vddk verifies" bash -c "! pgrep -f '$WD/ru[n]/' >/dev/null"
tap_done
