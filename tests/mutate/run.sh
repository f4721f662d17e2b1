#!/bin/bash
# make mutate: applies each mutation of tests/mutate/mutants.txt to a scratch
# copy of the tree, rebuilds, and runs the suites the list names for it until
# one fails (killed) or all pass (survived). Not part of make check.
#   tests/mutate/run.sh                 every mutant
#   MUTANTS=id1,id2 tests/mutate/run.sh a subset
# Environment: MUTATE_DIR (scratch directory; default a new /tmp/v2k-mutate-*,
# removed at the end unless KEEP=1), MUTANTS_FILE (the list).
# One line per mutant, then "killed K/T" naming the survivors. Exit status 1
# if a mutant survived (unless the list marks it equivalent, with a reason),
# was stillborn (did not build), did not apply, or names a suite that fails on
# the unmutated tree and no other of its suites kills it (the baseline: a
# suite that fails without the mutant cannot judge it). Logs: MUTATE_DIR/logs (kept when something failed).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
LIST=${MUTANTS_FILE:-$here/mutants.txt}
tool() { python3 "$here/mutants.py" "$LIST" "$@"; }

mutants=$(tool list "${MUTANTS:-}") || exit 2
[ -n "$mutants" ] || { echo "no mutants selected" >&2; exit 2; }

work=${MUTATE_DIR:-$(mktemp -d /tmp/v2k-mutate-XXXXXX)}
mkdir -p "$work/logs"
src=$work/src
build=$work/build
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

# The working tree's sources, tracked and untracked (not ignored: no build
# directories), copied once.
if [ ! -d "$src" ]; then
  mkdir -p "$src"
  (cd "$top" && git ls-files -z -co --exclude-standard |
     while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -xf - -C "$src" || { echo "copying the tree failed" >&2; exit 2; }
fi
tool check "$src" >/dev/null || exit 2
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" >"$work/logs/setup.log" 2>&1 ||
    { echo "meson setup failed: $work/logs/setup.log" >&2; KEEP=1; exit 2; }
fi
echo "building the unmutated tree in $build"
ninja -C "$build" >"$work/logs/build.log" 2>&1 ||
  { echo "the unmutated tree does not build: $work/logs/build.log" >&2; KEEP=1; exit 2; }

# run_suite NAME LOG: 0 when the suite passes. test_X is a unit test binary
# of the build; anything else a shell suite under tests/.
run_suite() {
  local name=$1 log=$2 rc
  case $name in
    test_*)
      [ -x "$build/$name" ] || { echo "no unit test $name" >"$log"; return 3; }
      (cd "$src" && CMOCKA_MESSAGE_OUTPUT=TAP timeout 600 "$build/$name") </dev/null >"$log" 2>&1
      rc=$? ;;
    *)
      [ -f "$src/tests/$name" ] || { echo "no suite tests/$name" >"$log"; return 3; }
      (cd "$src" && V2K_BIN=$build/ablestack_v2k V2K_PLAIN_BIN=$build/ablestack_v2k \
         V2K_VCSIM=$build/v2k-vcsim timeout 1800 bash "tests/$name") </dev/null >"$log" 2>&1
      rc=$? ;;
  esac
  [ $rc -eq 0 ] && ! grep -q '^not ok' "$log"
}

# The baseline: every listed suite must pass on the unmutated tree. The
# mutants that name a suite that does not are not run (an error).
suites=$(cut -f3 <<<"$mutants" | tr ' ' '\n' | sort -u)
bad_baseline=" "
for s in $suites; do
  log=$work/logs/baseline-${s//\//_}.log
  if run_suite "$s" "$log"; then
    echo "baseline: $s passes"
  else
    echo "baseline: $s FAILS on the unmutated tree ($(grep -m1 '^not ok' "$log" || echo "exit status"))"
    bad_baseline+="$s "
    KEEP=1
  fi
done

total=0 killed=0 survived=() equivalent=() stillborn=() broken=()
while IFS=$'\t' read -r -u 3 id file msuites equiv; do
  total=$((total + 1))
  log=$work/logs/$id.log
  # Suites that fail without the mutant cannot judge it: the others run.
  skipped=
  runnable=
  for s in $msuites; do
    if [[ $bad_baseline == *" $s "* ]]; then skipped+="$s "; else runnable+="$s "; fi
  done
  cp "$src/$file" "$work/original"
  if ! tool apply "$src" "$id" 2>"$log"; then
    echo "ERROR     $id: $(cat "$log")"
    broken+=("$id")
    continue
  fi
  # Only what the suites need: the binary and the named unit tests.
  targets="ablestack_v2k $(tr ' ' '\n' <<<"$msuites" | grep '^test_' | tr '\n' ' ')"
  if ! ninja -C "$build" $targets >>"$log" 2>&1; then
    echo "STILLBORN $id (does not build; $log)"
    stillborn+=("$id")
  else
    by=
    for s in $runnable; do
      slog=$work/logs/$id-${s//\//_}.log
      run_suite "$s" "$slog"
      case $? in
        0) ;;
        3) by="?"; echo "ERROR     $id: $(cat "$slog")"; break ;;
        *) by=$s; break ;;
      esac
    done
    if [ "$by" = "?" ]; then
      broken+=("$id")
    elif [ -n "$by" ]; then
      first=$(grep -m1 '^not ok' "$slog" | cut -c1-100)
      killed=$((killed + 1))
      if [ -n "$equiv" ]; then
        echo "KILLED    $id by $by: ${first:-exit status}, but the list calls it equivalent"
        broken+=("$id")
      else
        echo "KILLED    $id by $by: ${first:-exit status}"
      fi
    elif [ -n "$skipped" ]; then
      echo "NOT RUN   $id: not killed by '${runnable% }', and ${skipped% } fails without the mutant"
      broken+=("$id")
    elif [ -n "$equiv" ]; then
      echo "SURVIVED  $id (equivalent: $equiv)"
      equivalent+=("$id")
    else
      echo "SURVIVED  $id: no test in '$msuites' fails"
      survived+=("$id")
    fi
  fi
  # Restore, with a new mtime, so that the next build recompiles it.
  cp "$work/original" "$src/$file"
  touch "$src/$file"
done 3<<<"$mutants"

names() { [ $# -gt 0 ] && echo " ($*)" || true; }
echo "killed $killed/$total; survived ${#survived[@]}$(names "${survived[@]}"); equivalent ${#equivalent[@]}$(names "${equivalent[@]}"); stillborn ${#stillborn[@]}$(names "${stillborn[@]}"); errors ${#broken[@]}$(names "${broken[@]}")"
if [ ${#survived[@]} -eq 0 ] && [ ${#stillborn[@]} -eq 0 ] && [ ${#broken[@]} -eq 0 ]; then
  exit 0
fi
KEEP=1
echo "logs: $work/logs"
exit 1
