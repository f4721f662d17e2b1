#!/bin/bash
# The runner's own test: tests/run.sh's counting (sourced) on fake suite logs.
# Each case is a log and an exit status, and the totals it must add.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../run.sh"   # sourced: defines tally, count, go_tap, ... and returns
tmp=$(mktemp -d /tmp/v2k-runner-selftest-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset CI V2K_STRICT

# totals STRICT RC: counts the log on stdin as a suite that exited with RC;
# prints "passed failed skipped".
totals() {
  local strict=$1 rc=$2
  cat >"$tmp/log"
  (
    passed=0 failed=0 skipped=0
    V2K_STRICT=$strict
    count fake "$tmp/log" "$rc" >"$tmp/out"
    echo "$passed $failed $skipped"
  )
}

# case_ NAME WANT RC [STRICT]: the log on stdin counts as WANT ("p f s").
case_() {
  local got
  got=$(totals "${4:-0}" "$3")
  if [ "$got" = "$2" ]; then ok "$1"; else not_ok "$1 (counted $got, want $2)"; fi
}

case_ "a clean suite: 2 passed" "2 0 0" 0 < <(printf 'ok 1 - a\nok 2 - b\n1..2\n')
case_ "a leading plan is a plan" "2 0 0" 0 < <(printf '1..2\nok 1 - a\nok 2 - b\n')
case_ "two oks and no plan: the suite failed" "2 1 0" 0 < <(printf 'ok 1 - a\nok 2 - b\n')
check "... saying it has no plan" grep -q "fake FAILED: no plan" "$tmp/out"
case_ "fewer results than the plan: failed" "2 1 0" 0 < <(printf '1..3\nok 1 - a\nok 2 - b\n')
case_ "more results than the plan: failed" "2 1 0" 0 < <(printf 'ok 1 - a\nok 2 - b\n1..1\n')
case_ "results after the plan: failed" "2 1 0" 0 < <(printf 'ok 1 - a\n1..2\nok 2 - b\n')
case_ "two plans: failed" "2 1 0" 0 < <(printf '1..2\nok 1 - a\nok 2 - b\n1..2\n')
case_ "an empty suite (1..0): failed" "0 1 0" 0 < <(printf '1..0\n')
case_ "no output at all: failed" "0 1 0" 0 < <(printf '')
case_ "a result number twice: failed" "2 1 0" 0 < <(printf 'ok 1 - a\nok 1 - b\n1..2\n')
case_ "Bail out!: failed" "1 1 0" 0 < <(printf 'ok 1 - a\nBail out! no disk\n1..1\n')
case_ "a not ok: 1 failed" "1 1 0" 1 < <(printf 'ok 1 - a\nnot ok 2 - b\n1..2\n')
case_ "exit 1 without a not ok: died, failed" "2 1 0" 1 < <(printf 'ok 1 - a\nok 2 - b\n1..2\n')
case_ "a suite killed at the time limit (124) failed" "1 1 0" 124 < <(printf 'ok 1 - a\n')
check "... saying it did not end" grep -q "fake FAILED: it did not end within" "$tmp/out"
case_ "ok # SKIP is a skip, not a pass" "1 0 1" 0 < <(printf 'ok 1 - a\nok 2 - b # SKIP no ceph-mon\n1..2\n')
case_ "# skip in lower case is a skip" "1 0 1" 0 < <(printf 'ok 1 - a\nok 2 # skip lower case\n1..2\n')
case_ "strict: a skip is a failure" "1 1 0" 0 1 < <(printf 'ok 1 - a\nok 2 - b # SKIP no ceph-mon\n1..2\n')
case_ "# TODO is neither pass nor failure" "0 0 2" 0 < <(printf 'ok 1 - a # TODO later\nnot ok 2 - b # TODO later\n1..2\n')
case_ "an escaped \\# in a name is no directive" "1 0 0" 0 < <(printf 'ok 1 - a \\# SKIP in a name\n1..1\n')
case_ "indented and comment lines are not results" "1 0 0" 0 < <(printf 'ok 1 - a\n  ok 2 - indented output\n# ok 3 - comment\n1..1\n')

CI=true
case_ "CI=true is strict" "0 1 0" 0 < <(printf 'ok 1 - a # SKIP x\n1..1\n')
unset CI

# Real shell suites through tests/lib/tap.sh.
suite() {  # suite BODY: runs BODY as a suite; its output in $tmp/suite, its status in $tmp/rc
  { bash -c ". '$here/../lib/tap.sh'; $1" >"$tmp/suite" 2>&1; echo "$?" >"$tmp/rc"; } 2>/dev/null
}
suite 'set -e; ok a; false; ok b; tap_done'
case_ "a tap.sh suite that dies midway (set -e) failed" "1 1 0" "$(cat "$tmp/rc")" <"$tmp/suite"
suite 'ok a; kill -SEGV $$; ok b; tap_done'
case_ "a tap.sh suite that crashes failed" "1 1 0" "$(cat "$tmp/rc")" <"$tmp/suite"
suite 'ok a; check b false; tap_done'
case_ "a tap.sh suite with a failed check: 1 failed" "1 1 0" "$(cat "$tmp/rc")" <"$tmp/suite"
suite 'ok a; skip b "no ceph-mon"; tap_done'
case_ "tap.sh skip: 1 skipped" "1 0 1" "$(cat "$tmp/rc")" <"$tmp/suite"
suite 'ok "a # SKIP not really"; tap_done'
case_ "tap.sh escapes # in names" "1 0 0" "$(cat "$tmp/rc")" <"$tmp/suite"

# go test -v output.
cat >"$tmp/go" <<'EOF'
=== RUN   TestA
--- PASS: TestA (0.00s)
=== RUN   TestB
    --- PASS: TestB/sub (0.00s)
--- PASS: TestB (0.00s)
=== RUN   TestC
    sim_test.go:10: no simulator
--- SKIP: TestC (0.00s)
PASS
ok  	v2k/sim	0.012s
EOF
case_ "go test: PASS and SKIP lines, plan when it said ok" "3 0 1" 0 < <(go_tap "$tmp/go" 0)
case_ "go test: exit 1, no plan: failed" "3 1 1" 1 < <(go_tap "$tmp/go" 1)
head -n 7 "$tmp/go" >"$tmp/go7"
case_ "go test that stopped before ok: failed" "3 1 0" 0 < <(go_tap "$tmp/go7" 0)
printf 'testing: warning: no tests to run\nPASS\nok  \tv2k/sim\t0.01s\n' >"$tmp/go0"
case_ "go test with no tests: failed" "0 1 0" 0 < <(go_tap "$tmp/go0" 0)

# Whole suites not run, missing binaries.
out=$( passed=0 failed=0 skipped=0; V2K_STRICT=0; not_run "guest suite" "V2K_SKIP_GUEST=1" >/dev/null
       echo "$passed $failed $skipped" )
check "a suite not run is a skip" test "$out" = "0 0 1"
out=$( passed=0 failed=0 skipped=0; V2K_STRICT=1; not_run "guest suite" "V2K_SKIP_GUEST=1" >/dev/null
       echo "$passed $failed $skipped" )
check "strict: a suite not run is a failure" test "$out" = "0 1 0"
out=$( passed=0 failed=0 skipped=0; missing "unit/test_x" "build/test_x" >/dev/null; echo "$passed $failed $skipped" )
check "a missing binary is a failure" test "$out" = "0 1 0"
# The runner's suites with an empty build directory: each unit test and
# each fuzz replay binary is missing, and each is a failed suite.
cd "$here/../.."
mkdir -p "$tmp/nobuild"
nunit=$(ls tests/unit/test_*.c | wc -l)
nfuzz=$(ls tests/fuzz/fuzz_*.c | wc -l)
out=$( passed=0 failed=0 skipped=0; logdir=$tmp BUILD=$tmp/nobuild
       run_unit "$tmp/nobuild" x >/dev/null; echo "$passed $failed $skipped" )
check "no unit test binaries: $nunit suites failed" test "$out" = "0 $nunit 0"
out=$( passed=0 failed=0 skipped=0; logdir=$tmp BUILD=$tmp/nobuild
       run_replay "$tmp/nobuild" x >/dev/null; echo "$passed $failed $skipped" )
check "no fuzz replay binaries: $nfuzz suites failed" test "$out" = "0 $nfuzz 0"
check "there are unit tests and fuzz harnesses to look for" test "$nunit" -gt 0 -a "$nfuzz" -gt 0
out=$( passed=0 failed=0 skipped=0; logdir=$tmp BUILD=$tmp/nobuild V2K_SKIP_GUEST=1 V2K_STRICT=0
       run_guest "$tmp/nobuild" >/dev/null; echo "$passed $failed $skipped" )
check "V2K_SKIP_GUEST=1: the guest suite is a skip" test "$out" = "0 0 1"
out=$( passed=0 failed=0 skipped=0; logdir=$tmp BUILD=$tmp/nobuild V2K_SKIP_GUEST=1 V2K_STRICT=1
       run_guest "$tmp/nobuild" >/dev/null; echo "$passed $failed $skipped" )
check "strict: V2K_SKIP_GUEST=1 is a failure" test "$out" = "0 1 0"
# Every shell suite ends with tap_done, so that one which stops early has no
# plan; the runner finds every suite it runs by these globs.
for t in tests/integration/test_*.sh tests/security/test_*.sh tests/input/test_*.sh \
         tests/faults/test_*.sh tests/guest/test_*.sh; do
  check "$t ends with tap_done" test "$(grep -v '^[[:space:]]*$' "$t" | tail -n 1)" = tap_done
done
totals 0 0 >/dev/null < <(printf 'ok 1 - a\nok 2 - b # SKIP why\n1..2\n')
check "the suite line reads: N passed, N failed, N skipped" grep -qx "fake: 1 passed, 0 failed, 1 skipped" "$tmp/out"
tap_done
