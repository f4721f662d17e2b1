# Minimal TAP output for the shell test suites: each check prints
# "ok N - name" or "not ok N - name"; tests/run.sh counts them.
TAP_N=0
TAP_FAILED=0

ok() {
  TAP_N=$((TAP_N + 1))
  echo "ok $TAP_N - $*"
}

not_ok() {
  TAP_N=$((TAP_N + 1))
  TAP_FAILED=$((TAP_FAILED + 1))
  echo "not ok $TAP_N - $*"
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
  TAP_N=$((TAP_N + 1))
  echo "ok $TAP_N - $1 # SKIP $2"
}
