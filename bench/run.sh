#!/bin/bash
# make bench: ablestack_v2k copy against nbdcopy, qemu-img convert and the
# incumbent's synchronous loop, on the same machine and data in one run.
# Prints a table of medians and ratios and writes docs/performance.md.
#   RUNS=3 SIZE_GIB=4 bench/run.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
RUNS=${RUNS:-3}
SIZE_GIB=${SIZE_GIB:-4}
V2K=$PWD/$BUILD/ablestack_v2k
SYNCLOOP=$PWD/$BUILD/v2k-syncloop
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/v2k-bench-XXXXXX")
cleanup() { pkill -f "$work/" 2>/dev/null || true; sleep 0.2; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

echo "Preparing a ${SIZE_GIB} GiB source with about 40% allocated in scattered 1 MiB extents..."
truncate -s "${SIZE_GIB}G" src.raw
perl -e 'my ($n) = @ARGV; srand(20261126); my %used; my $want = int($n * 0.4);
  open(my $f, "+<", "src.raw") or die; my $buf = join("", map { chr(32 + $_ % 90) } 0 .. 1048575);
  while (keys %used < $want) { my $m = int(rand($n)); next if $used{$m}++;
    seek($f, $m * 1048576, 0); print $f substr($buf, $m % 997) . substr($buf, 0, $m % 997); }
  close $f' $((SIZE_GIB * 1024))
sync

serve_src() {  # serve_src SOCK FILE [--filter=F] [params after the plugin...]
  local sock=$1 file=$2 filter=()
  shift 2
  case "${1:-}" in --filter=*) filter=("$1"); shift ;; esac
  nbdkit -U "$sock" "${filter[@]}" file "$file" "$@" >/dev/null 2>&1 &
  for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "nbdkit did not start" >&2; exit 1
}
serve_dst() {  # serve_dst SOCK FORMAT FILE
  local opts=(--cache=none --aio=native)
  dd if=/dev/zero of="$3.probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null || opts=(--cache=writeback)
  rm -f "$3.probe"
  qemu-nbd -f "$2" -k "$1" -t --shared=16 "${opts[@]}" --discard=unmap --detect-zeroes=unmap "$3" >/dev/null 2>&1 &
  for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "qemu-nbd did not start" >&2; exit 1
}
stop() { pkill -f "$work/$1" 2>/dev/null || true; for _ in $(seq 50); do pgrep -f "$work/$1" >/dev/null || break; sleep 0.05; done; rm -f "$work/$1"; }

# measure NAME CMD...: appends "NAME seconds maxrss_kib" to results
measure() {
  local name=$1
  shift
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o rss.txt "$@" >/dev/null 2>err.txt || { echo "$name failed:"; cat err.txt; exit 1; }
  t1=$(date +%s.%N)
  rss=$(tail -n 1 rss.txt)
  echo "$name $(echo "$t1 - $t0" | bc -l) $rss" >>results
}

S="nbd+unix:///?socket=$work/src.sock"
D="nbd+unix:///?socket=$work/dst.sock"
serve_src "$work/src.sock" src.raw
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
      rm -f "dst.$fmt"
      if [ $fmt = qcow2 ]; then qemu-img create -q -f qcow2 -o lazy_refcounts=on "dst.$fmt" "${SIZE_GIB}G"; else truncate -s "${SIZE_GIB}G" "dst.$fmt"; fi
      [ $tool = ablestack_v2k-pwrite ] || serve_dst "$work/dst.sock" $fmt "dst.$fmt"
      case $tool in
        ablestack_v2k) measure "base-$fmt-$tool" "$V2K" -q copy --target-is-zero "$S" "$D" ;;
        ablestack_v2k-pwrite) measure "base-$fmt-$tool" "$V2K" -q copy --pwrite --target-is-zero "$S" "dst.$fmt" ;;
        nbdcopy) measure "base-$fmt-$tool" nbdcopy --target-is-zero "$S" "$D" ;;
        qemu-img) measure "base-$fmt-$tool" qemu-img convert -n --target-is-zero -f raw -O raw "$S" "$D" ;;
      esac
      stop dst.sock
      if [ "$r" = 1 ] && ! qemu-img compare -q -f raw -F $fmt src.raw "dst.$fmt"; then
        echo "$tool produced a different $fmt image" >&2; exit 1
      fi
    done
  done
done
stop src.sock

echo "Preparing 20,000 scattered 64 KiB areas..."
perl -e 'my ($n) = @ARGV; srand(42); my %s; my $want = $n / 2 < 20000 ? int($n / 2) : 20000; $s{int(rand($n))} = 1 while keys %s < $want;
  my @o = sort { $a <=> $b } keys %s; my @ar; for my $b (@o) { my $st = $b * 65536;
  if (@ar && $ar[-1][0] + $ar[-1][1] == $st) { $ar[-1][1] += 65536 } else { push @ar, [$st, 65536] } }
  open(my $j, ">", "areas.json"); open(my $t, ">", "areas.txt"); open(my $e, ">", "extents.txt");
  print $j "[" . join(",", map { "{\"start\":$_->[0],\"length\":$_->[1]}" } @ar) . "]\n";
  print $t "$_->[0] $_->[1]\n" for @ar; print $e "$_->[0] $_->[1]\n" for @ar;' $((SIZE_GIB * 16384))
qemu-img create -q -f qcow2 -o lazy_refcounts=on incr.qcow2 "${SIZE_GIB}G"
qemu-img convert -n -f raw -O qcow2 src.raw incr.qcow2   # an existing replica to apply to
cp incr.qcow2 incrd.qcow2
# A source where every byte is data: there the source has no holes to skip,
# and every changed area is read and written.
perl -e 'my ($n) = @ARGV; open(my $f, ">", "src-data.raw") or die;
  my $buf = join("", map { chr(33 + $_ % 90) } 0 .. 1048575);
  print $f substr($buf, $_ % 991) . substr($buf, 0, $_ % 991) for 0 .. $n - 1; close $f' $((SIZE_GIB * 1024))

# incremental NAME SOURCE-FILE REPLICA [nbdkit delay params]: the three tools
# apply the same areas from SOURCE-FILE into REPLICA.
incremental() {
  local name=$1 file=$2 replica=$3
  shift 3
  serve_src "$work/src.sock" "$file" ${1:+--filter=delay} "$@"
  serve_src "$work/srcx.sock" "$file" --filter=extentlist extentlist="$work/extents.txt"
  local x="nbd+unix:///?socket=$work/srcx.sock"
  if [ $# -gt 0 ]; then
    nbdkit -U "$work/srcxd.sock" --filter=delay nbd socket="$work/srcx.sock" "$@" >/dev/null 2>&1 &
    for _ in $(seq 100); do [ -S "$work/srcxd.sock" ] && break; sleep 0.05; done
    x="nbd+unix:///?socket=$work/srcxd.sock"
  fi
  serve_dst "$work/dst.sock" qcow2 "$replica"
  # One untimed pass first: the replica's metadata and the page cache warm up.
  nbdcopy --target-is-zero "$x" "$D"
  for r in $(seq "$RUNS"); do
    measure "$name-ablestack_v2k" "$V2K" -q copy --areas areas.json "$S" "$D"
    measure "$name-nbdcopy" nbdcopy --target-is-zero "$x" "$D"
    measure "$name-syncloop" "$SYNCLOOP" "$S" "$D" areas.txt
  done
  stop dst.sock
  stop src.sock
  stop srcxd.sock
  stop srcx.sock
}
incremental incr src.raw incr.qcow2
incremental data src-data.raw incrd.qcow2
# The same apply when every source request takes 1 ms longer, as VDDK reads
# over a LAN do: latency, not bandwidth, is then what a copier must hide.
incremental lat src.raw incr.qcow2 delay-read=1ms delay-extents=1ms

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
cat >docs/performance.md <<DOC
# Performance

Written by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d). Each number is the
median of $RUNS runs, measured in the same run on the same machine and data.
Benchmarks are not tests: \`make check\` asserts no timing.

## Machine and versions
- $(nproc) CPUs ($cpu), $mem of memory, $(uname -sr)
- $("$V2K" --version), $(nbdcopy --version | head -1), $(qemu-img --version | head -1),
  $(nbdkit --version)

## What is measured
1. **Base copy**: a ${SIZE_GIB} GiB source with about 40% allocated in scattered 1 MiB
   extents, served by nbdkit's file plugin, into a fresh target served by qemu-nbd
   (qcow2, then raw; \`--cache=none --aio=native --discard=unmap --detect-zeroes=unmap\`).
   Every tool is told the target reads zeros (\`--target-is-zero\`), as \`sync base\`
   knows of the targets it creates. Each result is compared with the source.
   Into raw, ablestack_v2k is measured twice: through qemu-nbd, and writing the
   file itself (\`copy --pwrite\`: four threads, O_DIRECT where aligned, holes
   punched for zeros), which is how \`sync\` writes raw files and block devices.
2. **Incremental apply**: 20,000 scattered 64 KiB areas (coalesced where they touch)
   into an existing qcow2 replica. \`ablestack_v2k copy --areas\`; nbdcopy over the
   same areas (nbdkit's extentlist filter on the source plus \`--target-is-zero\`, so
   that only the listed extents are written); and the incumbent tool's method, a
   synchronous loop that reads and writes one coalesced area at a time
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

## Results
$table

$ratios
DOC
echo
echo "Wrote docs/performance.md"
