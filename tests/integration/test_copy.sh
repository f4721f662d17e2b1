#!/bin/bash
# copy: the engine without vCenter, between image files and NBD URIs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-copy-XXXXXX)
trap 'pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp"

truncate -s 32M src.raw
perl -e 'open(my $f, "+<", "src.raw") or die; srand(7); for my $i (0..199) {
  my $o = int(rand(32 * 1024 * 1024 / 65536)) * 65536; seek($f, $o, 0); print $f chr(65 + $i % 26) x 65536 }
  seek($f, 1048576, 0); print $f "Z" x 131072; seek($f, 30 * 1048576, 0); print $f "\0" x 1048576; close $f'
qemu-img create -q -f qcow2 dst.qcow2 32M
"$BIN" copy --json src.raw dst.qcow2 >out.json
check "copy file to file: exit 0" test $? -eq 0
check "copy file to file: identical" qemu-img compare -q -f raw -F qcow2 src.raw dst.qcow2
check "copy reports its statistics" jq_true '.ok and .bytes_total > 0 and .bytes_copied > 0 and .requests > 0' out.json
check "allocated zeros are not sent as data" jq_true '.bytes_copied < .bytes_total' out.json

# Only the listed areas.
qemu-img create -q -f qcow2 part.qcow2 32M
printf '[{"start":0,"length":65536},{"start":1048576,"length":131072}]' >areas.json
"$BIN" copy --json --areas areas.json src.raw part.qcow2 >out.json
check "copy --areas: exit 0" test $? -eq 0
qemu-img convert -f qcow2 -O raw part.qcow2 part.raw
check "copy --areas copies the areas" bash -c "cmp -n 65536 src.raw part.raw && cmp -n 131072 -i 1048576 src.raw part.raw"
# Everything outside the two areas: [64 KiB, 1 MiB) and [1 MiB + 128 KiB, 32 MiB).
check "copy --areas leaves the rest alone" \
  bash -c "cmp -s -n 983040 -i 65536:0 part.raw /dev/zero && cmp -s -n 32374784 -i 1179648:0 part.raw /dev/zero"
check "... where the source has data in both areas and on each side (the checks above can fail)" \
  bash -c "! cmp -s -n 65536 src.raw /dev/zero && ! cmp -s -n 131072 -i 1048576:0 src.raw /dev/zero &&
           ! cmp -s -n 983040 -i 65536:0 src.raw /dev/zero && ! cmp -s -n 32374784 -i 1179648:0 src.raw /dev/zero"
check "copy --areas copies nothing else" jq_true '.bytes_total == 196608' out.json
qemu-img create -q -f qcow2 part2.qcow2 32M
"$BIN" copy --json --areas - src.raw part2.qcow2 <areas.json >out.json
check "copy --areas - reads stdin" jq_true '.bytes_total == 196608' out.json

# NBD URIs on both sides.
qemu-nbd -f raw -k "$tmp/s.sock" -t -r src.raw &
snbd=$!
qemu-img create -q -f qcow2 dst2.qcow2 32M
qemu-nbd -f qcow2 -k "$tmp/d.sock" -t --shared=8 dst2.qcow2 &
dnbd=$!
for _ in $(seq 50); do [ -S "$tmp/s.sock" ] && [ -S "$tmp/d.sock" ] && break; sleep 0.1; done
"$BIN" copy "nbd+unix:///?socket=$tmp/s.sock" "nbd+unix:///?socket=$tmp/d.sock" 2>nbd.err
rc=$?
check "copy between NBD URIs (exit $rc)" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/# /' nbd.err
kill $dnbd; wait $dnbd 2>/dev/null   # qemu-nbd flushes and closes the image
check "copy between NBD URIs: identical" qemu-img compare -q -f raw -F qcow2 src.raw dst2.qcow2
kill $snbd; wait $snbd 2>/dev/null

# The source's block status: what it promises reads as zeros is zeroed on
# the target without being read; a hole it does not promise is copied.
truncate -s 4M holes.raw
perl -e 'open(my $f, "+<", "holes.raw") or die; print $f "B" x 65536; seek($f, 1048576, 0); print $f "C" x 65536; close $f'
perl -e 'print "\xff" x (4 * 1048576)' >ff.raw
qemu-img convert -q -f raw -O qcow2 ff.raw dirty.qcow2
printf '[{"start":0,"length":2097152}]' >two.json
"$BIN" copy --json --areas two.json holes.raw dirty.qcow2 >out.json
qemu-img convert -f qcow2 -O raw dirty.qcow2 dirty.raw
check "source zeros: the areas end identical to the source" cmp -n 2097152 holes.raw dirty.raw
check "source zeros: the rest is untouched" cmp -i 2097152 ff.raw dirty.raw
check "source zeros: holes are zeroed, not read" jq_true '.bytes_unread == 2097152 - 131072 and .bytes_zeroed == .bytes_unread and .bytes_copied == 131072' out.json
nbdkit -U "$tmp/h.sock" eval get_size='echo 1048576' pread='head -c $3 /dev/zero | tr "\0" A' \
  can_extents='exit 0' extents='echo 0 1048576 hole' >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S "$tmp/h.sock" ] && break; sleep 0.1; done
perl -e 'print "A" x 1048576' >a.raw
truncate -s 1M h1.raw h2.raw
"$BIN" copy --json "nbd+unix:///?socket=$tmp/h.sock" h1.raw >out.json
check "a hole not promised to read as zeros is copied" cmp a.raw h1.raw
"$BIN" copy --json --areas - "nbd+unix:///?socket=$tmp/h.sock" h2.raw <<<'[{"start":0,"length":1048576}]' >out2.json
check "a hole not promised to read as zeros is read within areas" cmp a.raw h2.raw
check "... and counted as data" jq_true '.bytes_unread == 0 and .bytes_copied == 1048576' out2.json
pkill -f "$tmp/h.sock"

# --pwrite: a raw DST written directly (as sync writes raw files and block
# devices), zeros punched as holes.
truncate -s 32M pw.raw
"$BIN" copy --pwrite --target-is-zero src.raw pw.raw
check "--pwrite: exit 0" test $? -eq 0
check "--pwrite: identical" cmp src.raw pw.raw
cp ff.raw pw2.raw
"$BIN" copy --json --pwrite --areas two.json holes.raw pw2.raw >out.json
check "--pwrite: areas identical, zeros included" cmp -n 2097152 holes.raw pw2.raw
check "--pwrite: the rest untouched" cmp -i 2097152 ff.raw pw2.raw
check "--pwrite: zeros become holes" test "$(du -k pw2.raw | cut -f1)" -le 2200
# refused NAME EXIT MESSAGE COMMAND...: the command exits EXIT with MESSAGE as
# its one line (exit 2 alone is any usage error, a typo in the test included).
refused() {
  local name=$1 want=$2 msg=$3 rc
  shift 3
  "$@" >o 2>&1
  rc=$?
  check "$name: exit $want (exit $rc)" test $rc -eq "$want"
  check "$name: says why, in one line" test "$(cat o)" = "ablestack_v2k: error: $msg"
}
refused "--pwrite refuses a qcow2 DST" 2 "--pwrite writes raw images only; dst.qcow2 is qcow2" \
  "$BIN" copy --pwrite src.raw dst.qcow2
refused "--pwrite refuses a URI DST" 2 "--pwrite wants a file or block device as DST, not a URI" \
  "$BIN" copy --pwrite src.raw "nbd+unix:///?socket=$tmp/none.sock"
mkdir -p "$tmp/full"
if mount -t tmpfs -o size=1M tmpfs "$tmp/full" 2>/dev/null; then
  truncate -s 32M "$tmp/full/t.raw"
  "$BIN" copy --pwrite src.raw "$tmp/full/t.raw" >o 2>&1
  rc=$?
  check "--pwrite on a full filesystem: exit 9" test $rc -eq 9
  check "--pwrite on a full filesystem: says so in one line" bash -c "grep -q 'No space left' o && [ \$(wc -l <o) -eq 1 ]"
  umount "$tmp/full"
else
  skip "--pwrite on a full filesystem" "cannot mount a tmpfs here"
fi

# A server that is slow to open each connection (VDDK logs in for each):
# the extra connections open together and are all used.
nbdkit -U "$tmp/slow.sock" --filter=delay file src.raw delay-open=2500ms >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S "$tmp/slow.sock" ] && break; sleep 0.1; done
truncate -s 32M slow.raw
"$BIN" copy --json --connections 4 "nbd+unix:///?socket=$tmp/slow.sock" slow.raw >out.json
check "slow-opening server: all 4 connections are used" jq_true '.source_connections == 4' out.json
check "slow-opening server: identical" cmp src.raw slow.raw
pkill -f "$tmp/slow.sock"
qemu-nbd -f raw -k "$tmp/one.sock" -t -r src.raw >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S "$tmp/one.sock" ] && break; sleep 0.1; done
truncate -s 32M one.raw
"$BIN" copy --json --connections 4 "nbd+unix:///?socket=$tmp/one.sock" one.raw >out.json 2>/dev/null
check "a server that takes one client: one connection, copied" bash -c "jq -e '.source_connections == 1' out.json >/dev/null && cmp src.raw one.raw"
pkill -f "$tmp/one.sock"

# Bad input: one line, exit 2, nothing written. Each case writes to its own
# copy of a target that differs from the source everywhere (0xff), so any
# write shows, and is compared byte for byte with the untouched original.
perl -e 'print "\xff" x (32 * 1048576)' >ff32.raw
qemu-img convert -q -f raw -O qcow2 ff32.raw ff32.qcow2
bad() {  # bad NAME AREAS-JSON EXPECTED-TEXT
  printf '%s' "$2" >bad.json
  cp ff32.qcow2 bad-dst.qcow2
  "$BIN" copy --areas bad.json src.raw bad-dst.qcow2 >o 2>&1
  local rc=$?
  check "bad areas ($1): exit 2" test $rc -eq 2
  check "bad areas ($1): says why" grep -q "$3" o
  check "bad areas ($1): one line" test "$(wc -l <o)" -eq 1
  check "bad areas ($1): the target is untouched" cmp -s ff32.qcow2 bad-dst.qcow2
}
bad "not JSON" '[{"start":0,' "not valid JSON"
bad "not an array" '{"start":0,"length":1}' "want a JSON array"
bad "overlap" '[{"start":0,"length":65536},{"start":4096,"length":4096}]' "overlaps or precedes"
bad "unsorted" '[{"start":65536,"length":4096},{"start":0,"length":4096}]' "overlaps or precedes"
bad "past the end" '[{"start":33550000,"length":65536}]' "past the end of the disk"
bad "negative" '[{"start":-1,"length":4096}]' "not a valid range"
bad "zero length" '[{"start":0,"length":0}]' "not a valid range"
bad "extra key" '[{"start":0,"length":4096,"x":1}]' "want exactly integer start and length"
bad "string" '[{"start":"0","length":4096}]' "want exactly integer start and length"
refused "bad --request-size" 2 "--request-size: 1 is out of range (4096 to 33554432 bytes)" \
  "$BIN" copy --request-size 1 src.raw dst.qcow2
refused "bad --max-inflight" 2 "--max-inflight: 'lots' is not a size (like 65536, 64K, 2M or 1G)" \
  "$BIN" copy --max-inflight lots src.raw dst.qcow2
refused "missing DST" 2 "copy: want SRC and DST (see 'ablestack_v2k copy --help')" "$BIN" copy src.raw
refused "missing source file" 2 "source nosuch.raw: No such file or directory" "$BIN" copy nosuch.raw dst.qcow2
qemu-img create -q -f qcow2 small.qcow2 1M
refused "target smaller than the source" 9 "target is smaller (1048576 bytes) than the source (33554432)" \
  "$BIN" copy src.raw small.qcow2
tap_done
