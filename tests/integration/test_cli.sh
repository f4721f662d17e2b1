#!/bin/bash
# The command line and `status` against real workdirs, through the binary.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
fixtures=$here/../fixtures/workdirs
tmp=$(mktemp -d /tmp/v2k-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

out=$("$BIN" --help)
check "--help lists status" grep -q "status" <<<"$out"
check "--version" bash -c "v=\$('$BIN' --version) && grep -qE '^ablestack_v2k [0-9]+\.[0-9]+\.[0-9]+$' <<<\"\$v\""
check "status --help" bash -c "'$BIN' status --help | grep -q -- '--events N'"
for c in init cbt snapshot sync cutover convert register verify cleanup run copy status; do
  check "--help lists $c" grep -qE "^  $c " <<<"$out"
  check "$c --help exits 0 with its usage" bash -c "h=\$('$BIN' $c --help) && grep -q '^Usage: ablestack_v2k' <<<\"\$h\""
done
check "only working commands are listed" test "$(grep -cE '^  [a-z]+ +[a-z]' <<<"$out")" -eq 12

expect_exit "no command: usage" 2 "$BIN"
expect_exit "unknown command: usage" 2 "$BIN" frobnicate
expect_exit "unknown global option: usage" 2 "$BIN" --frob status
expect_exit "missing --workdir value: usage" 2 "$BIN" --workdir
expect_exit "empty --workdir: usage" 2 "$BIN" --workdir "" status
expect_exit "unknown status option: usage" 2 "$BIN" --workdir "$fixtures/idle" status --frob
expect_exit "bad --events: usage" 2 "$BIN" --workdir "$fixtures/idle" status --events -3
expect_exit "non-numeric --events: usage" 2 "$BIN" --workdir "$fixtures/idle" status --events 5x
expect_exit "extra argument: usage" 2 "$BIN" --workdir "$fixtures/idle" status extra
expect_exit "status without workdir: usage" 2 "$BIN" status

# --define-only (v1's: the cutover ends in a libvirt domain) with a provider
# that defines none: refused while parsing, before the workdir is opened. The message is checked too: without
# a workdir or --vm these would be usage errors anyway.
usage_says() {  # usage_says NAME PATTERN COMMAND...: exit 2, one line matching PATTERN, no stdout
  local name=$1 pat=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pat" "$tmp/err" && [ ! -s "$tmp/out" ]; then
    ok "$name"
  else
    not_ok "$name (exit $rc: $(head -c 200 "$tmp/err"))"
  fi
}
# Long options are spelled out: glibc's getopt_long takes any unique prefix,
# which read '--password SECRET' as '--password-file SECRET'. The refusal
# names the option, never the value after it.
usage_says "an abbreviated global option is refused" \
  'unknown global option or missing value: --verb ' "$BIN" --verb status
usage_says "an abbreviated command option is refused" \
  'init: unknown option or missing value: --password-fil ' "$BIN" init --vm x --password-fil AbbrevSecret
check "an abbreviated option's value is not repeated" bash -c '! grep -q AbbrevSecret "$1"' _ "$tmp/err"
usage_says "an abbreviation with =VALUE is refused too" \
  'sync: unknown option or missing value: --ful=1' "$BIN" --workdir "$fixtures/idle" sync --ful=1 base
usage_says "cutover --define-only --target-provider none: refused" \
  'cutover: --define-only defines a libvirt domain; --target-provider none defines none' \
  "$BIN" --workdir "$fixtures/idle" cutover --define-only --target-provider none
usage_says "run --define-only --target-provider ablestack-cloud: refused" \
  'run: --define-only defines a libvirt domain; --target-provider ablestack-cloud' \
  "$BIN" run --define-only --target-provider ablestack-cloud
check "--help says what -v shows" grep -q -- "-v, --verbose   debug lines on stderr" <<<"$out"

# -v: each helper's command line on stderr, one line each, even for a path
# with a newline and a quote in it (copy prints its summary on stderr too).
odd="$tmp/a
b'c.raw"
truncate -s 1M "$odd" && truncate -s 1M "$tmp/copy-out.raw"
"$BIN" -v copy "$odd" "$tmp/copy-out.raw" >"$tmp/out" 2>"$tmp/err"
check "-v copy: exit 0" test $? -eq 0
check "-v: the source's qemu-nbd command line" grep -qF -e "qemu-nbd --format=raw --socket=" "$tmp/err"
check "-v: the odd path as one quoted word on that line" grep -qF -e "-- '$tmp/a\x0ab'\''c.raw'" "$tmp/err"
check "-v: every other stderr line is a debug line" \
  bash -c "test \$(grep -c '^ablestack_v2k: debug: spawned pid [0-9]*: ' '$tmp/err') -ge 4 && ! grep -v '^ablestack_v2k: debug: spawned pid [0-9]*: ' '$tmp/err' | grep -qv '^copied '"
"$BIN" copy "$odd" "$tmp/copy-out.raw" >"$tmp/out" 2>"$tmp/err"
check "without -v: copy's summary and no debug line" \
  bash -c "grep -q '^copied ' '$tmp/err' && ! grep -q 'debug:' '$tmp/err'"

# One line on stderr, nothing on stdout.
"$BIN" frobnicate >"$tmp/out" 2>"$tmp/err"
check "error is one line on stderr" test "$(wc -l <"$tmp/err")" -eq 1
check "error leaves stdout empty" test ! -s "$tmp/out"

# With --json: one JSON object on stdout, nothing on stderr.
"$BIN" --json --workdir /nonexistent status >"$tmp/out" 2>"$tmp/err"
rc=$?
check "json error exit code" test "$rc" -eq 3
check "json error object" jq_true '.ok == false and .error.code == "workdir" and .error.exit_code == 3 and (.error.message | test("does not exist"))' "$tmp/out"
check "json error leaves stderr empty" test ! -s "$tmp/err"

# Bad workdirs and manifests: exit 3, naming the file and the field.
mkdir -p "$tmp/nomanifest" "$tmp/trunc" "$tmp/schema" "$tmp/field"
touch "$tmp/afile"
expect_exit "workdir is a file" 3 "$BIN" --workdir "$tmp/afile" status
expect_exit "workdir without manifest" 3 "$BIN" --workdir "$tmp/nomanifest" status
head -c 300 "$fixtures/idle/manifest.json" >"$tmp/trunc/manifest.json"
msg=$("$BIN" --workdir "$tmp/trunc" status 2>&1)
check "truncated manifest names the file" grep -q "$tmp/trunc/manifest.json: not valid JSON" <<<"$msg"
jq '.schema = "ablestack-v2k/manifest/v0"' "$fixtures/idle/manifest.json" >"$tmp/schema/manifest.json"
msg=$("$BIN" --workdir "$tmp/schema" status 2>&1)
check "wrong schema version is named" grep -q 'schema: unknown version "ablestack-v2k/manifest/v0"' <<<"$msg"
jq '.disks[1].capacity = "big"' "$fixtures/idle/manifest.json" >"$tmp/field/manifest.json"
msg=$("$BIN" --workdir "$tmp/field" status 2>&1)
rc=$?
check "wrong field type is named" grep -q 'disks\[1\].capacity: expected an integer, got a string' <<<"$msg"
check "wrong field type exits 3" test "$rc" -eq 3
# Root reads a mode-000 directory, so root runs this one as nobody.
mkdir -p "$tmp/pub/unreadable" && chmod 711 "$tmp" "$tmp/pub" && chmod 000 "$tmp/pub/unreadable"
as_user=()
[ "$(id -u)" -eq 0 ] && as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if [ "$(id -u)" -ne 0 ] || command -v setpriv >/dev/null; then
  "${as_user[@]}" "$BIN" --workdir "$tmp/pub/unreadable" status >/dev/null 2>"$tmp/err"
  check "unreadable workdir: exit 3" test $? -eq 3
  check "unreadable workdir: says so" grep -q "workdir $tmp/pub/unreadable is not readable" "$tmp/err"
else
  skip "unreadable workdir" "running as root without setpriv to drop to nobody"
fi

# status --json on fixtures: the documented keys.
"$BIN" --workdir "$fixtures/syncing" status --json --events 4 >"$tmp/s.json"
check "status json schema" jq_true '.schema == "ablestack-v2k/status/v1" and .ok == true' "$tmp/s.json"
check "status json phase and state" jq_true '.phase == "sync_base" and .state == "idle" and .phase_state == "running"' "$tmp/s.json"
check "status json disks" jq_true '(.disks | length) == 2 and .disks[0].bytes_done == 10000000 and .disks[0].cbt.enabled == true and .disks[1].state == "done"' "$tmp/s.json"
check "status json events" jq_true '(.events | length) == 4 and .events[3].event == "sync.progress"' "$tmp/s.json"
"$BIN" --json --workdir "$fixtures/failed" status >"$tmp/f.json"
check "global --json works for status" jq_true '.state == "failed" and .last_error.code == "transfer"' "$tmp/f.json"
"$BIN" --workdir "$fixtures/failed" status >"$tmp/f.txt"
check "text status shows the error" grep -q "Last error: \[transfer\]" "$tmp/f.txt"

# status works while another process holds the workdir lock.
cp -a "$fixtures/syncing" "$tmp/locked"
printf '{"pid":4242,"command":"sync","since":"2026-11-26T12:03:00.000Z"}' >"$tmp/locked/.lock"
flock -x "$tmp/locked/.lock" sleep 30 &
holder=$!
# Our lock file's inode in /proc/locks (other processes hold flocks too).
ino=$(stat -c %i "$tmp/locked/.lock")
for _ in $(seq 1 100); do grep -qE "FLOCK .*:$ino " /proc/locks && break; sleep 0.1; done
check "the test's holder has the lock" grep -qE "FLOCK .*:$ino " /proc/locks
"$BIN" --workdir "$tmp/locked" status --json >"$tmp/l.json"
rc=$?
check "status while locked exits 0" test "$rc" -eq 0
check "status while locked says running" jq_true '.state == "running" and .pid == 4242 and .command == "sync"' "$tmp/l.json"
check "eta while running" jq_true '.disks[0].eta_seconds == 3' "$tmp/l.json"
"$BIN" --workdir "$tmp/locked" status >"$tmp/l.txt"
check "text status names the holder" grep -q "running as pid 4242: ablestack_v2k sync" "$tmp/l.txt"
pkill -P "$holder" 2>/dev/null  # the sleep holds the inherited lock fd
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
"$BIN" --workdir "$tmp/locked" status --json >"$tmp/l2.json"
check "released lock: not running" jq_true '.state == "idle" and .pid == null' "$tmp/l2.json"

tap_done
