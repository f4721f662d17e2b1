# Minimal TAP output for the shell test suites: each check prints
# "ok N - name" or "not ok N - name", a check that cannot run here
# "ok N - name # SKIP reason"; tap_done prints the plan "1..N" and must be
# the suite's last word. tests/run.sh counts passed, failed and skipped apart,
# and fails a suite without a plan (one that died midway). A "#" in a name is
# written "\#", so a name never reads as a SKIP or TODO directive.
TAP_N=0
TAP_FAILED=0

ok() {
  local name="$*"
  TAP_N=$((TAP_N + 1))
  echo "ok $TAP_N - ${name//#/\\#}"
}

not_ok() {
  local name="$*"
  TAP_N=$((TAP_N + 1))
  TAP_FAILED=$((TAP_FAILED + 1))
  echo "not ok $TAP_N - ${name//#/\\#}"
}

# check NAME COMMAND...: passes when the command succeeds.
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# expect_exit NAME CODE COMMAND...: the command exits with CODE.
expect_exit() {
  local name=$1 want=$2
  shift 2
  local rc=0
  "$@" >/dev/null 2>&1 || rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else not_ok "$name (exit $rc, want $want)"; fi
}

tap_done() {
  echo "1..$TAP_N"
  [ "$TAP_FAILED" -eq 0 ]
}

# jq_true EXPR FILE: the jq expression holds for FILE.
jq_true() {
  jq -e "$@" >/dev/null
}

# skip NAME REASON: a check that cannot run here, and why.
skip() {
  local name=$1
  TAP_N=$((TAP_N + 1))
  echo "ok $TAP_N - ${name//#/\\#} # SKIP $2"
}
