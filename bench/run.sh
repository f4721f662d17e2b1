#!/bin/bash
# make bench: ablestack_v2k copy against nbdcopy, qemu-img convert and the
# incumbent's synchronous loop, on the same machine and data in one run.
# Prints a table of medians and ratios and writes docs/performance.md.
#   RUNS=3 SIZE_GIB=4 bench/run.sh [BUILD_DIR]
#   SIZE_MIB=256 RUNS=1 BENCH_DOC=/tmp/perf.md bench/run.sh build   (a quick check)
# Every run of every tool (the untimed warm-up passes too) is checked: once
# the target's server has exited, qemu-img compare must find the whole target
# equal to the source. Each incremental run starts from a fresh copy of the
# replica before the change, which must differ from the source, so a tool
# that wrote nothing fails. Any failure prints "BENCH FAILED: ...", exits 1
# and leaves the document alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RUNS=${RUNS:-3}
SIZE_GIB=${SIZE_GIB:-4}
SIZE_MIB=${SIZE_MIB:-$((SIZE_GIB * 1024))}
DOC=$(realpath -m "${BENCH_DOC:-docs/performance.md}")
V2K=$PWD/$BUILD/ablestack_v2k
SYNCLOOP=$PWD/$BUILD/v2k-syncloop
fail() { echo "BENCH FAILED: $*" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || fail "RUNS must be a positive integer, not '$RUNS'"
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]] && [ "$SIZE_MIB" -ge 16 ] || fail "SIZE_MIB must be an integer of at least 16, not '$SIZE_MIB'"
[ -x "$V2K" ] && [ -x "$SYNCLOOP" ] || fail "build $BUILD first ($V2K, $SYNCLOOP)"
if [ $((SIZE_MIB % 1024)) = 0 ]; then SIZE_TEXT="$((SIZE_MIB / 1024)) GiB"; else SIZE_TEXT="$SIZE_MIB MiB"; fi
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/v2k-bench-XXXXXX")

# The servers this script started, by name (their socket's name) and pid.
declare -A pids=()
stop() {  # stop NAME: ends that server and waits until it has exited
  local pid=${pids[$1]:-}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "pids[$1]"
  rm -f "$work/$1"
}
cleanup() { local n; for n in "${!pids[@]}"; do stop "$n"; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

echo "Preparing a $SIZE_TEXT source with about 40% allocated in scattered 1 MiB extents..."
truncate -s "${SIZE_MIB}M" src.raw
perl -e 'my ($n) = @ARGV; srand(20261126); my %used; my $want = int($n * 0.4);
  open(my $f, "+<", "src.raw") or die; my $buf = join("", map { chr(32 + $_ % 90) } 0 .. 1048575);
  while (keys %used < $want) { my $m = int(rand($n)); next if $used{$m}++;
    seek($f, $m * 1048576, 0); print $f substr($buf, $m % 997) . substr($buf, 0, $m % 997); }
  close $f' "$SIZE_MIB"
sync

wait_socket() {  # wait_socket NAME: until the server NAME listens (or has died)
  for _ in $(seq 200); do
    [ -S "$work/$1" ] && return 0
    kill -0 "${pids[$1]}" 2>/dev/null || break
    sleep 0.05
  done
  fail "the server on $1 did not start"
}
serve_src() {  # serve_src NAME FILE [--filter=F] [params after the plugin...]
  local name=$1 file=$2 filter=()
  shift 2
  case "${1:-}" in --filter=*) filter=("$1"); shift ;; esac
  nbdkit -f -U "$work/$name" "${filter[@]}" file "$file" "$@" >/dev/null 2>&1 &
  pids[$name]=$!
  wait_socket "$name"
}
serve_dst() {  # serve_dst NAME FORMAT FILE
  local opts=(--cache=none --aio=native)
  dd if=/dev/zero of="$3.probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null || opts=(--cache=writeback)
  rm -f "$3.probe"
  qemu-nbd -f "$2" -k "$work/$1" -t --shared=16 "${opts[@]}" --discard=unmap --detect-zeroes=unmap "$3" >/dev/null 2>&1 &
  pids[$1]=$!
  wait_socket "$1"
}

# measure NAME CMD...: appends "NAME seconds maxrss_kib" to results
measure() {
  local name=$1
  shift
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o rss.txt "$@" >/dev/null 2>err.txt || { cat err.txt >&2; fail "$name: the tool exited non-zero"; }
  t1=$(date +%s.%N)
  rss=$(tail -n 1 rss.txt)
  echo "$name $(echo "$t1 - $t0" | bc -l) $rss" >>results
}

# same SOURCE FORMAT TARGET WHAT: the whole TARGET must hold what SOURCE holds.
compared=0
same() {
  local rc=0
  qemu-img compare -f raw -F "$2" "$1" "$3" >cmp.txt 2>&1 || rc=$?
  [ $rc = 0 ] || fail "$4: the target is not the source (qemu-img compare exit $rc: $(head -n 1 cmp.txt))"
  compared=$((compared + 1))
}
# differs SOURCE TARGET WHAT: the qcow2 TARGET must not (yet) equal SOURCE.
differed=0
differs() {
  local rc=0
  qemu-img compare -q -f raw -F qcow2 "$1" "$2" >cmp.txt 2>&1 || rc=$?
  [ $rc = 1 ] || fail "$3: the replica before the apply does not differ from the source (qemu-img compare exit $rc)"
  differed=$((differed + 1))
}

S="nbd+unix:///?socket=$work/src.sock"
D="nbd+unix:///?socket=$work/dst.sock"
serve_src src.sock src.raw
for fmt in qcow2 raw; do
  # Into raw, ablestack_v2k also writes the file itself with pwrite (--pwrite,
  # what sync does for raw targets) instead of through qemu-nbd.
  tools=(ablestack_v2k nbdcopy qemu-img)
  [ $fmt = raw ] && tools+=(ablestack_v2k-pwrite)
  for r in $(seq "$RUNS"); do
    # Rotate the order every run, so that no tool always goes first (cold).
    k=$((r % ${#tools[@]}))
    order=("${tools[@]:$k}" "${tools[@]:0:$k}")
    for tool in "${order[@]}"; do
      # A fresh, empty target: the source has data, so a tool that wrote
      # nothing fails the comparison below.
      rm -f "dst.$fmt"
      if [ $fmt = qcow2 ]; then qemu-img create -q -f qcow2 -o lazy_refcounts=on "dst.$fmt" "${SIZE_MIB}M"; else truncate -s "${SIZE_MIB}M" "dst.$fmt"; fi
      [ $tool = ablestack_v2k-pwrite ] || serve_dst dst.sock $fmt "dst.$fmt"
      case $tool in
        ablestack_v2k) measure "base-$fmt-$tool" "$V2K" -q copy --target-is-zero "$S" "$D" ;;
        ablestack_v2k-pwrite) measure "base-$fmt-$tool" "$V2K" -q copy --pwrite --target-is-zero "$S" "dst.$fmt" ;;
        nbdcopy) measure "base-$fmt-$tool" nbdcopy --target-is-zero "$S" "$D" ;;
        qemu-img) measure "base-$fmt-$tool" qemu-img convert -n --target-is-zero -f raw -O raw "$S" "$D" ;;
      esac
      stop dst.sock
      same src.raw $fmt "dst.$fmt" "base copy into $fmt, $tool, run $r"
    done
  done
done
stop src.sock
rm -f dst.qcow2 dst.raw

echo "Preparing $((SIZE_MIB * 8 < 20000 ? SIZE_MIB * 8 : 20000)) scattered 64 KiB blocks to change..."
perl -e 'my ($n) = @ARGV; srand(42); my %s; my $want = $n / 2 < 20000 ? int($n / 2) : 20000; $s{int(rand($n))} = 1 while keys %s < $want;
  my @o = sort { $a <=> $b } keys %s; my @ar; for my $b (@o) { my $st = $b * 65536;
  if (@ar && $ar[-1][0] + $ar[-1][1] == $st) { $ar[-1][1] += 65536 } else { push @ar, [$st, 65536] } }
  open(my $j, ">", "areas.json"); open(my $t, ">", "areas.txt"); open(my $e, ">", "extents.txt");
  print $j "[" . join(",", map { "{\"start\":$_->[0],\"length\":$_->[1]}" } @ar) . "]\n";
  print $t "$_->[0] $_->[1]\n" for @ar; print $e "$_->[0] $_->[1]\n" for @ar;' $((SIZE_MIB * 16))
# A source where every byte is data: there the source has no holes to skip,
# and every changed area is read and written.
perl -e 'my ($n) = @ARGV; open(my $f, ">", "src-data.raw") or die;
  my $buf = join("", map { chr(33 + $_ % 90) } 0 .. 1048575);
  print $f substr($buf, $_ % 991) . substr($buf, 0, $_ % 991) for 0 .. $n - 1; close $f' "$SIZE_MIB"

# prechange SOURCE-FILE QCOW2: the replica as it was before the change: the
# source everywhere except in the changed areas, which hold 0xA5 bytes. No
# source holds that byte (they hold 32..122 and zeros), so every byte of
# every area differs, and a tool that skips an area leaves a difference.
prechange() {
  cp --sparse=always "$1" old.raw
  perl -e 'my ($img, $areas) = @ARGV; open(my $f, "+<", $img) or die; open(my $ar, "<", $areas) or die;
    while (<$ar>) { my ($s, $l) = split; seek($f, $s, 0) or die; print $f "\xa5" x $l or die; }
    close $f or die' old.raw areas.txt
  qemu-img create -q -f qcow2 -o lazy_refcounts=on "$2" "${SIZE_MIB}M"
  qemu-img convert -n -f raw -O qcow2 old.raw "$2"
  rm -f old.raw
}
prechange src.raw pre.qcow2
prechange src-data.raw pre-data.qcow2

# incremental NAME SOURCE-FILE PRE-REPLICA [nbdkit delay params]: the three
# tools apply the same areas from SOURCE-FILE, each run onto a fresh copy of
# PRE-REPLICA (untimed, checked to differ from the source), and the result is
# compared with SOURCE-FILE.
incremental() {
  local name=$1 file=$2 pre=$3 r tool
  shift 3
  serve_src src.sock "$file" ${1:+--filter=delay} "$@"
  serve_src srcx.sock "$file" --filter=extentlist extentlist="$work/extents.txt"
  local x="nbd+unix:///?socket=$work/srcx.sock"
  if [ $# -gt 0 ]; then
    nbdkit -f -U "$work/srcxd.sock" --filter=delay nbd socket="$work/srcx.sock" "$@" >/dev/null 2>&1 &
    pids[srcxd.sock]=$!
    wait_socket srcxd.sock
    x="nbd+unix:///?socket=$work/srcxd.sock"
  fi
  # One untimed pass first (checked like the others): the source's page
  # cache warms up.
  for r in warmup $(seq "$RUNS"); do
    for tool in ablestack_v2k nbdcopy syncloop; do
      [ $r != warmup ] || [ $tool = nbdcopy ] || continue
      cp --sparse=always "$pre" replica.qcow2
      sync replica.qcow2
      differs "$file" replica.qcow2 "$name, $tool, run $r"
      serve_dst dst.sock qcow2 replica.qcow2
      local m="$name-$tool"
      [ $r != warmup ] || m="warmup-$m"
      case $tool in
        ablestack_v2k) measure "$m" "$V2K" -q copy --areas areas.json "$S" "$D" ;;
        nbdcopy) measure "$m" nbdcopy --target-is-zero --sparse=0 "$x" "$D" ;;
        syncloop) measure "$m" "$SYNCLOOP" "$S" "$D" areas.txt ;;
      esac
      stop dst.sock
      same "$file" qcow2 replica.qcow2 "incremental apply ($name), $tool, run $r"
    done
  done
  stop src.sock
  stop srcxd.sock
  stop srcx.sock
  rm -f replica.qcow2
}
incremental incr src.raw pre.qcow2
incremental data src-data.raw pre-data.qcow2
# The same apply when every source request takes 1 ms longer, as VDDK reads
# over a LAN do: latency, not bandwidth, is then what a copier must hide.
incremental lat src.raw pre.qcow2 delay-read=1ms delay-extents=1ms
echo "Checked: $compared results identical to the source; $differed replicas differed from it before their apply."

median() {  # median NAME FIELD(2=seconds,3=rss)
  grep "^$1 " results | awk -v f="$2" '{print $f}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
row() { printf '| %s | %s | %.2f s | %d MiB |\n' "$1" "$2" "$(median "$3" 2)" $(( $(median "$3" 3) / 1024 )); }
ratio() { echo "scale=2; $(median "$1" 2) / $(median "$2" 2)" | bc -l; }

table=$(
  echo "| benchmark | tool | median time | peak RSS |"
  echo "|---|---|---:|---:|"
  for fmt in qcow2 raw; do
    for tool in ablestack_v2k nbdcopy qemu-img; do row "base copy into $fmt" "$tool" "base-$fmt-$tool"; done
  done
  row "base copy into raw" "ablestack_v2k --pwrite" "base-raw-ablestack_v2k-pwrite"
  for tool in ablestack_v2k nbdcopy syncloop; do row "incremental apply (qcow2)" "$tool" "incr-$tool"; done
  for tool in ablestack_v2k nbdcopy syncloop; do row "incremental apply, every area data" "$tool" "data-$tool"; done
  for tool in ablestack_v2k nbdcopy syncloop; do row "incremental apply, 1 ms source latency" "$tool" "lat-$tool"; done
)
ratios=$(
  echo "| ratio | value | goal |"
  echo "|---|---:|---|"
  echo "| base qcow2: ablestack_v2k / nbdcopy | $(ratio base-qcow2-ablestack_v2k base-qcow2-nbdcopy)× | ≤ 1.0× |"
  echo "| base qcow2: ablestack_v2k / qemu-img convert | $(ratio base-qcow2-ablestack_v2k base-qcow2-qemu-img)× | |"
  echo "| base raw: ablestack_v2k / nbdcopy | $(ratio base-raw-ablestack_v2k base-raw-nbdcopy)× | ≤ 1.0× |"
  echo "| base raw: ablestack_v2k / qemu-img convert | $(ratio base-raw-ablestack_v2k base-raw-qemu-img)× | |"
  echo "| base raw: ablestack_v2k --pwrite / nbdcopy | $(ratio base-raw-ablestack_v2k-pwrite base-raw-nbdcopy)× | ≤ 1.0× |"
  echo "| base raw: ablestack_v2k --pwrite / through qemu-nbd | $(ratio base-raw-ablestack_v2k-pwrite base-raw-ablestack_v2k)× | |"
  echo "| incremental: ablestack_v2k / nbdcopy | $(ratio incr-ablestack_v2k incr-nbdcopy)× | ≤ 1.0× |"
  echo "| incremental: synchronous loop / ablestack_v2k | $(ratio incr-syncloop incr-ablestack_v2k)× faster | ≥ 3× |"
  echo "| incremental, every area data: ablestack_v2k / nbdcopy | $(ratio data-ablestack_v2k data-nbdcopy)× | |"
  echo "| incremental, every area data: synchronous loop / ablestack_v2k | $(ratio data-syncloop data-ablestack_v2k)× faster | |"
  echo "| incremental, 1 ms latency: ablestack_v2k / nbdcopy | $(ratio lat-ablestack_v2k lat-nbdcopy)× | |"
  echo "| incremental, 1 ms latency: synchronous loop / ablestack_v2k | $(ratio lat-syncloop lat-ablestack_v2k)× faster | |"
  echo "| peak RSS of ablestack_v2k (any run) | $(( $(grep ablestack_v2k results | awk '{print $3}' | sort -g | tail -1) / 1024 )) MiB | ≤ 256 MiB |"
)
echo
echo "$table"
echo
echo "$ratios"
cd - >/dev/null
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
cat >"$DOC" <<DOC
# Performance

Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d). Each number is the
median of $RUNS runs, measured in the same run on the same machine and data.
Benchmarks are not tests: \`make check\` asserts no timing; the bench asserts
only that every result is identical to the source (below).

## Machine and versions
- $(nproc) CPUs ($cpu), $mem of memory, $(uname -sr)
- $("$V2K" --version), $(nbdcopy --version | head -1), $(qemu-img --version | head -1),
  $(nbdkit --version)

## What is measured
1. **Base copy**: a $SIZE_TEXT source with about 40% allocated in scattered 1 MiB
   extents, served by nbdkit's file plugin, into a fresh target served by qemu-nbd
   (qcow2, then raw; \`--cache=none --aio=native --discard=unmap --detect-zeroes=unmap\`).
   Every tool is told the target reads zeros (\`--target-is-zero\`), as \`sync base\`
   knows of the targets it creates.
   Into raw, ablestack_v2k is measured twice: through qemu-nbd, and writing the
   file itself (\`copy --pwrite\`: four threads, O_DIRECT where aligned, holes
   punched for zeros), which is how \`sync\` writes raw files and block devices.
2. **Incremental apply**: $(wc -l <"$work/areas.txt" 2>/dev/null || echo "the") areas made of $((SIZE_MIB * 16 / 2 < 20000 ? SIZE_MIB * 8 : 20000)) scattered 64 KiB
   blocks (coalesced where they touch) into an existing qcow2 replica.
   \`ablestack_v2k copy --areas\`; nbdcopy over the same areas (nbdkit's extentlist
   filter on the source plus \`--target-is-zero --sparse=0\`, so that only the
   listed extents are written, zeros included: with its default zero detection
   nbdcopy skips the all-zero blocks of an area and leaves the replica's old
   bytes there, which the comparison below caught); and the incumbent tool's
   method, a synchronous loop that reads and writes one coalesced area at a time
   (bench/syncloop.c, in C with libnbd: a faster loop than the incumbent's Python
   over kernel NBD devices). On this source about 60% of the areas' bytes are
   holes; ablestack_v2k learns that from the source's block status and writes
   them as zeros without reading them (\`bytes_unread\`); nbdcopy sees only the
   extentlist filter's extents, all data, and the loop reads everything.
   \`sync\` does this for file and nbd sources, not for vddk (docs/design.md says
   why): for VDDK, read the "every area data" rows. ablestack_v2k coalesces
   areas less than 64 KiB apart (its default), so it moves more bytes than the
   loop, which gets the areas merged only where they touch.
3. The same apply from a source where **every byte is data**: nothing can be
   skipped, so this shows the copying alone.
4. The first apply with 1 ms added to every source read and block-status request
   (nbdkit's delay filter), as VDDK requests over a LAN have: on local page cache a
   read costs microseconds, so the synchronous loop loses little to its lack of
   parallelism there.
5. **Peak RSS** of each tool's process, from \`/usr/bin/time\`.

## What is checked
- **Every run of every tool** (the timed runs and the untimed warm-up pass of
  each incremental row) ends with \`qemu-img compare\` of the whole target
  against the source file, after the tool and the target's qemu-nbd exited. A
  difference, or a comparison that cannot run, stops the bench with
  \`BENCH FAILED:\` naming the row, tool and run, exit status 1, and this
  document unchanged. This run compared $compared results, all identical.
- **The incremental replica differs from the source before each apply.** Every
  incremental run starts from a fresh copy of the replica before the change
  (the source everywhere except in the changed areas, which hold 0xA5 bytes
  that neither source contains, so every byte of every area differs), and
  \`qemu-img compare\` must find it different from the source before the tool
  runs. A tool that writes nothing, or skips an area, fails the comparison
  after its run. This run checked $differed replicas. The copy is not timed.
- The base copies go into a fresh, empty target; the source has data there, so
  a tool that writes nothing fails the comparison too.

## Results
$table

$ratios
DOC
echo
echo "Wrote $DOC"
