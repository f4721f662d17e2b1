#!/bin/bash
# Runs every suite and ends with "N passed, N failed".
#   tests/run.sh BUILD_DIR [ASAN_BUILD_DIR]
# The unit and integration suites run against BUILD_DIR, then again against
# ASAN_BUILD_DIR (ASan+UBSan). The simulator suite (Go) and the guest suite
# (tests/guest; V2K_SKIP_GUEST=1 skips it) run once.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ASAN=${2:-}
passed=0
failed=0
logdir=$(mktemp -d /tmp/v2k-tests-XXXXXX)

count() {  # count SUITE LOG RC: adds the TAP results of LOG
  local suite=$1 log=$2 rc=$3 p f
  p=$(grep -cE '^ok [0-9]+' "$log")
  f=$(grep -cE '^not ok [0-9]+' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1  # the suite died without reporting a failure
    echo "  $suite exited with status $rc"
  fi
  grep -E '^not ok' "$log" | sed 's/^/  /'
  echo "$suite: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -gt 0 ]; then
    echo "  --- log of $suite (last 40 lines):"
    tail -n 40 "$log" | sed 's/^/  | /'
  fi
}

run_unit() {  # run_unit BUILD LABEL
  local t log rc
  for t in "$1"/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    log=$logdir/$2-$(basename "$t").log
    CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1
    rc=$?
    count "$2 unit/$(basename "$t")" "$log" "$rc"
  done
}

run_integration() {  # run_integration BUILD LABEL
  local t log rc
  for t in ${SUITES:-tests/integration/test_*.sh}; do
    log=$logdir/$2-$(basename "$t").log
    V2K_BIN=$PWD/$1/ablestack_v2k V2K_PLAIN_BIN=$PWD/$BUILD/ablestack_v2k V2K_VCSIM=$PWD/$BUILD/v2k-vcsim \
      bash "$t" >"$log" 2>&1
    rc=$?
    count "$2 integration/$(basename "$t" .sh)" "$log" "$rc"
  done
}

run_sim() {
  local log=$logdir/sim.log rc
  (cd tests/sim && V2K_VCSIM=$PWD/../../$BUILD/v2k-vcsim GO111MODULE=off \
     GOPATH=/usr/share/gocode GOCACHE=$PWD/../../$BUILD/gocache \
     go test -count=1 -v . ) >"$log.raw" 2>&1
  rc=$?
  # go test -v: "--- PASS: name" / "--- FAIL: name", indented for subtests.
  awk '/^ *--- PASS: /{n++; print "ok " n " - " $3} /^ *--- FAIL: /{n++; print "not ok " n " - " $3}' \
    "$log.raw" >"$log"
  cat "$log.raw" >>"$log"
  count "simulator (go test)" "$log" "$rc"
}

# The fuzz harnesses replayed over their seed corpus and every saved crasher.
run_replay() {  # run_replay BUILD LABEL
  local h log rc
  for h in soap manifest areas dspath units; do
    [ -x "$1/replay_$h" ] || continue
    log=$logdir/$2-replay-$h.log
    "$1/replay_$h" "tests/fuzz/corpus/$h" "tests/fuzz/crashers/$h" >"$log" 2>&1
    rc=$?
    count "$2 fuzz-replay/$h" "$log" "$rc"
  done
}

# The guest suite: a real Debian guest migrated, converted and booted (minutes).
run_guest() {  # run_guest BUILD
  local t log rc
  if [ "${V2K_SKIP_GUEST:-0}" = 1 ]; then
    echo "guest suite: SKIPPED (V2K_SKIP_GUEST=1)"
    return
  fi
  for t in tests/guest/test_*.sh; do
    log=$logdir/guest-$(basename "$t").log
    V2K_BIN=$PWD/$1/ablestack_v2k V2K_VCSIM=$PWD/$BUILD/v2k-vcsim V2K_GUEST_CACHE=$PWD/$BUILD/guest \
      bash "$t" >"$log" 2>&1
    rc=$?
    count "guest/$(basename "$t" .sh)" "$log" "$rc"
  done
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_unit "$BUILD" plain
run_replay "$BUILD" plain
run_sim
# The reliability and security suites (faults, hostile input, security) run
# once, under ASan+UBSan when that build is there: that is where their
# promises must hold, and running them twice would cost minutes.
HARDENING="tests/security/test_*.sh tests/input/test_*.sh tests/faults/test_*.sh"
run_integration "$BUILD" plain
[ -n "$ASAN" ] || SUITES=$HARDENING run_integration "$BUILD" plain
run_guest "$BUILD"
if [ -n "$ASAN" ]; then
  run_unit "$ASAN" asan
  run_replay "$ASAN" asan
  run_integration "$ASAN" asan
  SUITES=$HARDENING run_integration "$ASAN" asan
fi
rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
