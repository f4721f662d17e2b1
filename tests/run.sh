#!/bin/bash
# Runs every suite and ends with exactly one line "N passed, N failed, N skipped".
#   tests/run.sh BUILD_DIR [ASAN_BUILD_DIR]
# The unit tests and the fuzz replay run against BUILD_DIR and ASAN_BUILD_DIR
# (ASan+UBSan); the integration suites against BUILD_DIR, the hardening suites
# (security, input, faults) against ASAN_BUILD_DIR when given; the simulator
# suite (go test) and the guest suite (tests/guest) once.
#
# Counting (tally below; tests/runner/selftest.sh checks it on fake logs):
# - every suite prints TAP; "ok N - name # SKIP why" and "# TODO" are skips,
#   not passes;
# - a suite fails when it prints no plan ("1..N") or more than one, when its
#   results do not match its plan or are numbered out of order, when it prints
#   no result at all, when it bails out, and when it exits non-zero without a
#   "not ok" (it died);
# - a unit test, a fuzz replay binary or the ASan build that is missing is a
#   failed suite: each tests/unit/test_X.c needs BUILD/test_X and each
#   tests/fuzz/fuzz_X.c needs BUILD/replay_X;
# - strict mode, under CI (CI=true) or with V2K_STRICT=1: every skip is a
#   failure, V2K_SKIP_GUEST=1 is refused and the ASan build is required.
# Each suite runs under timeout(1), V2K_SUITE_TIMEOUT seconds (default 1800):
# a suite that hangs fails instead of stalling make check.
# SUITES=... replaces the list of integration and hardening suites and leaves
# out the guest suite: counted as one skip (a failure in strict mode).
set -u

v2k_strict() {
  case "${CI:-}" in true | 1 | yes) return 0 ;; esac
  [ "${V2K_STRICT:-0}" = 1 ]
}

strict_why() {
  case "${CI:-}" in true | 1 | yes) echo "CI=$CI" ;; *) echo "V2K_STRICT=1" ;; esac
}

# tally LOG: reads the TAP in LOG and prints
#   "F <line>" for each failed result, "S <line>" for each skipped one,
#   "E <reason>" for each reason the suite as a whole has failed,
#   and last "C <passed> <failed> <skipped>".
# Only lines at column 0 are TAP; "\#" in a name is no directive.
tally() {
  awk '
    function directive(line, l) {
      l = tolower(line)
      if (l ~ /(^|[^\\])#[ \t]*skip/) return "skip"
      if (l ~ /(^|[^\\])#[ \t]*todo/) return "todo"
      return ""
    }
    /^(not )?ok([ \t]|$)/ {
      n++
      rest = $0
      sub(/^(not )?ok[ \t]*/, "", rest)
      if (match(rest, /^[0-9]+/)) {
        k = substr(rest, 1, RLENGTH) + 0
        if (k != n && misnum == "") misnum = "result " n " is numbered " k
      }
      if (directive($0) != "") { s++; print "S " $0; next }
      if ($0 ~ /^ok/) p++
      else { f++; print "F " $0 }
      next
    }
    /^1\.\.[0-9]+/ {
      plans++
      plan = $0
      sub(/^1\.\./, "", plan)
      plan = plan + 0
      at = n
      next
    }
    /^Bail out!/ { print "E it bailed out: " $0 }
    END {
      if (plans == 0) print "E no plan (1..N): it stopped before its end"
      else if (plans > 1) print "E " plans " plans"
      else {
        if (plan != n) print "E its plan is 1.." plan " but it printed " n " results"
        if (at > 0 && at < n) print "E results after its plan"
      }
      if (n == 0) print "E no results"
      if (misnum != "") print "E results out of order: " misnum
      print "C " p + 0 " " f + 0 " " s + 0
    }' "$1"
}

# count SUITE LOG RC: adds the TAP results of LOG (which exited with RC) to
# the totals and prints the suite's line.
count() {
  local suite=$1 log=$2 rc=$3 line p=0 f=0 s=0 dead=0
  local -a fails=() errs=() skips=()
  while IFS= read -r line; do
    case $line in
      "F "*) fails+=("${line#F }") ;;
      "S "*) skips+=("${line#S }") ;;
      "E "*) errs+=("${line#E }") ;;
      "C "*) read -r p f s <<<"${line#C }" ;;
    esac
  done < <(tally "$log")
  if [ "$rc" -eq 124 ]; then
    errs+=("it did not end within ${V2K_SUITE_TIMEOUT:-1800} s and was killed (a hang?)")
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    errs+=("it exited with status $rc without reporting a failure")
  fi
  [ "${#errs[@]}" -gt 0 ] && dead=1
  for line in "${errs[@]}"; do echo "  $suite FAILED: $line"; done
  for line in "${fails[@]}"; do echo "  $line"; done
  for line in "${skips[@]}"; do echo "  $line"; done
  if [ "$s" -gt 0 ] && v2k_strict; then
    echo "  strict mode ($(strict_why)): $s skipped counted as failed"
    f=$((f + s))
    s=0
  fi
  f=$((f + dead))
  echo "$suite: $p passed, $f failed, $s skipped"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  if [ "$f" -gt 0 ]; then
    echo "  --- log of $suite (last 40 lines):"
    tail -n 40 "$log" | sed 's/^/  | /'
  fi
}

# missing SUITE WHAT: a suite that cannot run because WHAT is missing.
missing() {
  echo "  $1 FAILED: $2 is missing"
  echo "$1: 0 passed, 1 failed, 0 skipped"
  failed=$((failed + 1))
}

# not_run SUITE REASON: a whole suite skipped on purpose; a failure under strict.
not_run() {
  if v2k_strict; then
    echo "  $1 FAILED: not run ($2), refused in strict mode ($(strict_why))"
    echo "$1: 0 passed, 1 failed, 0 skipped"
    failed=$((failed + 1))
  else
    echo "  $1: not run ($2)"
    echo "$1: 0 passed, 0 failed, 1 skipped"
    skipped=$((skipped + 1))
  fi
}

# go_tap RAW RC: go test -v output as TAP. "--- PASS/FAIL/SKIP: name" lines,
# indented for subtests; the plan only when go test exited 0 and said so.
go_tap() {
  awk '/^ *--- PASS: /{n++; print "ok " n " - " $3}
       /^ *--- FAIL: /{n++; print "not ok " n " - " $3}
       /^ *--- SKIP: /{n++; print "ok " n " - " $3 " # SKIP"}
       /^(PASS$|ok[ \t])/{done = 1}
       END { if (rc == 0 && done) print "1.." n + 0 }' rc="$2" "$1"
}

# timed COMMAND...: COMMAND under the per-suite time limit, stdin /dev/null.
# timeout(1) runs it in a process group of its own, which the terminal's
# Ctrl-C does not reach: the runner waits for it in the background, and on
# INT or TERM sends it TERM (timeout signals the whole group) and stops.
TIMED_PID=
timed() {
  timeout -k 30 "${V2K_SUITE_TIMEOUT:-1800}" "$@" </dev/null &
  TIMED_PID=$!
  wait "$TIMED_PID"
  local rc=$?
  TIMED_PID=
  return "$rc"
}

interrupted() {  # interrupted SIGNAL
  [ -n "$TIMED_PID" ] && kill -TERM "$TIMED_PID" 2>/dev/null && wait "$TIMED_PID"
  [ -n "${logdir:-}" ] && rm -rf "$logdir"
  # fd 3: the runner's stdout (a trap runs with the redirections of the
  # suite that was running, whose log is gone).
  echo "interrupted (SIG$1): $passed passed, $failed failed, $skipped skipped so far" >&3
  exit 130
}

# The suites. They run from the top of the tree, with BUILD (absolute) the
# plain build, logdir a scratch directory and passed/failed/skipped the totals.

run_selftest() {
  local log=$logdir/selftest.log rc
  timed bash tests/runner/selftest.sh >"$log" 2>&1
  rc=$?
  count "runner/selftest" "$log" "$rc"
}

run_unit() {  # run_unit BUILD LABEL
  local src t log rc
  for src in tests/unit/test_*.c; do
    t=$1/$(basename "$src" .c)
    if [ ! -x "$t" ]; then
      missing "$2 unit/$(basename "$t")" "$t (cmocka not found? meson -Dtests=true)"
      continue
    fi
    log=$logdir/$2-$(basename "$t").log
    CMOCKA_MESSAGE_OUTPUT=TAP timed "$t" >"$log" 2>&1
    rc=$?
    count "$2 unit/$(basename "$t")" "$log" "$rc"
  done
}

run_integration() {  # run_integration BUILD LABEL
  local t log rc
  for t in ${SUITES:-tests/integration/test_*.sh}; do
    log=$logdir/$2-$(basename "$t").log
    V2K_BIN=$1/ablestack_v2k V2K_PLAIN_BIN=$BUILD/ablestack_v2k V2K_VCSIM=$BUILD/v2k-vcsim \
      timed bash "$t" >"$log" 2>&1
    rc=$?
    count "$2 $(basename "$(dirname "$t")")/$(basename "$t" .sh)" "$log" "$rc"
  done
}

run_sim() {
  local log=$logdir/sim.log rc
  timed env -C tests/sim V2K_VCSIM="$BUILD/v2k-vcsim" GO111MODULE=off \
    GOPATH=/usr/share/gocode GOCACHE="$BUILD/gocache" go test -count=1 -v . >"$log.raw" 2>&1
  rc=$?
  { go_tap "$log.raw" "$rc"; sed 's/^/# /' "$log.raw"; } >"$log"
  count "simulator (go test)" "$log" "$rc"
}

# The fuzz harnesses replayed over their seed corpus and every saved crasher.
run_replay() {  # run_replay BUILD LABEL
  local src h log rc
  for src in tests/fuzz/fuzz_*.c; do
    h=$(basename "$src" .c)
    h=${h#fuzz_}
    if [ ! -x "$1/replay_$h" ]; then
      missing "$2 fuzz-replay/$h" "$1/replay_$h"
      continue
    fi
    log=$logdir/$2-replay-$h.log
    timed "$1/replay_$h" "tests/fuzz/corpus/$h" "tests/fuzz/crashers/$h" >"$log" 2>&1
    rc=$?
    count "$2 fuzz-replay/$h" "$log" "$rc"
  done
}

# The guest suite: a real Debian guest migrated, converted and booted (minutes).
run_guest() {  # run_guest BUILD
  local t log rc
  if [ "${V2K_SKIP_GUEST:-0}" = 1 ]; then
    not_run "guest suite" "V2K_SKIP_GUEST=1"
    return
  fi
  for t in tests/guest/test_*.sh; do
    log=$logdir/guest-$(basename "$t").log
    V2K_BIN=$1/ablestack_v2k V2K_VCSIM=$BUILD/v2k-vcsim V2K_GUEST_CACHE=$BUILD/guest \
      timed bash "$t" >"$log" 2>&1
    rc=$?
    count "guest/$(basename "$t" .sh)" "$log" "$rc"
  done
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0   # sourced: the functions only

cd "$(dirname "$0")/.."
BUILD=${1:-build}
ASAN=${2:-}
[ -d "$BUILD" ] && BUILD=$(cd "$BUILD" && pwd)
[ -n "$ASAN" ] && [ -d "$ASAN" ] && ASAN=$(cd "$ASAN" && pwd)
passed=0
failed=0
skipped=0
logdir=$(mktemp -d /tmp/v2k-tests-XXXXXX)
v2k_strict && echo "strict mode ($(strict_why)): every skip is a failure"
exec 3>&1
trap 'interrupted INT' INT
trap 'interrupted TERM' TERM

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_selftest
run_unit "$BUILD" plain
run_replay "$BUILD" plain
run_sim
# The reliability and security suites (faults, hostile input, security) run
# once, under ASan+UBSan when that build is there: that is where their
# promises must hold, and running them twice would cost minutes.
HARDENING="tests/security/test_*.sh tests/input/test_*.sh tests/faults/test_*.sh"
run_integration "$BUILD" plain
[ -n "$ASAN" ] || [ -n "${SUITES:-}" ] || SUITES=$HARDENING run_integration "$BUILD" plain
if [ -n "${SUITES:-}" ]; then
  not_run "hardening and guest suites" "SUITES=$SUITES"
else
  run_guest "$BUILD"
fi
if [ -n "$ASAN" ] && [ ! -x "$ASAN/ablestack_v2k" ]; then
  missing "asan build" "$ASAN/ablestack_v2k"
elif [ -n "$ASAN" ]; then
  run_unit "$ASAN" asan
  run_replay "$ASAN" asan
  run_integration "$ASAN" asan
  [ -n "${SUITES:-}" ] || SUITES=$HARDENING run_integration "$ASAN" asan
elif v2k_strict; then
  missing "asan build" "the ASan build (tests/run.sh BUILD ASAN_BUILD; strict mode, $(strict_why))"
fi
rm -rf "$logdir"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
