#!/bin/bash
# make fuzz: runs every libFuzzer harness for SECONDS (default 60) from its
# seed corpus (tests/fuzz/corpus/<name>), with ASan and UBSan. A crash, leak,
# timeout or sanitizer report is saved under BUILD/fuzz-artifacts/ and fails
# the run; copy the input into tests/fuzz/crashers/<name>/ once fixed, so
# that make check replays it forever.
#   tests/fuzz/run.sh [BUILD [SECONDS]]   FUZZ_HARNESSES="units areas" for some only
# UBSan's checks are built recoverable (meson's b_sanitize adds no
# -fno-sanitize-recover), so a report alone would not stop libFuzzer:
# halt_on_error makes the first one fatal (libFuzzer saves the input), and a
# "runtime error:" in a harness's log fails the run even if it exited 0.
set -u
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
cd "$(dirname "$0")/../.."
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1
out=$BUILD/fuzz-artifacts
mkdir -p "$out"
failed=0
for h in ${FUZZ_HARNESSES:-soap manifest areas dspath units}; do
  if [ ! -x "$BUILD/fuzz_$h" ]; then
    echo "fuzz_$h: FAILED: $BUILD/fuzz_$h is missing (make fuzz builds it)"
    failed=1
    continue
  fi
  work=$(mktemp -d /tmp/v2k-fuzz-$h-XXXXXX)
  log=$out/$h.log
  "$BUILD/fuzz_$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
    -artifact_prefix="$out/$h-" -print_final_stats=1 "$work" "tests/fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  if [ $rc -eq 0 ] && ! grep -q 'runtime error:' "$log"; then
    echo "fuzz_$h: clean, ${execs:-?} runs in ${SECONDS_EACH} s, coverage ${cov:-?}"
  else
    echo "fuzz_$h: FAILED (exit $rc); see $log and $out/$h-*"
    grep -m3 -E 'ERROR|runtime error|SUMMARY' "$log" | sed 's/^/  /'
    failed=1
  fi
  rm -rf "$work"
done
exit $failed
