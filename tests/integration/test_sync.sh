#!/bin/bash
# The data plane against the simulator, qemu-nbd and nbdkit: sync base, incr
# and final into qcow2, raw and block targets, over the file, vddk (stand-in
# plugin) and nbd transports; kills at seeded points; source and target
# failures. Every target is compared with the snapshot it was copied from.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/vddk-standin.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-sync-XXXXXX)
sims=()
mounts=()
loops=()
cleanup() {
  local p
  for p in "${sims[@]}"; do kill -TERM "$p" 2>/dev/null; done
  pkill -f "$tmp/" 2>/dev/null
  for p in "${mounts[@]}"; do umount "$p" 2>/dev/null; done
  for p in "${loops[@]}"; do losetup -d "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
PASSWORD='Pa$$ w0rd-"quoted"'

start() {  # start NAME FLAGS...
  local dir=$tmp/$1
  shift
  mkdir -p "$dir"
  sim_start "$dir" --password "$PASSWORD" --user admin "$@" || { echo "simulator failed" >&2; exit 1; }
  sims+=("$SIM_PID")
  SIM_PID=
  printf '%s\n' "$PASSWORD" >"$dir/pw"
}

v2k() {
  local dir=${SIM_INFO%/*}
  "$BIN" -q "$@" --vcenter "$(sim_info .url)" --username admin --password-file "$dir/pw" \
    --ca-file "$(sim_info .cert_file)"
}

init_vm() {  # init_vm VM [init args]: prints the workdir
  local vm=$1 dir=${SIM_INFO%/*}
  shift
  v2k init --vm "$vm" --dst "$dir/dst" --workdir-root "$dir/root" "$@"
}

file_init() {  # file transport
  init_vm "$@" --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')"
}

# snap_flat W KEY: the data file of the latest snapshot's copy of disk KEY.
snap_flat() {
  local f
  f=$(jq -r --argjson k "$2" '[.snapshots[] | select(.removed | not)][-1].disks[] | select(.key == $k) | .file_name' "$1/manifest.json")
  echo "$(sim_info '.datastores.LocalDS_0')/$(sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/' <<<"$f")"
}

# same W: every target equals the data of the latest snapshot.
same() {
  local w=$1 fmt i key tgt
  fmt=$(jq -r '.target.format' "$w/manifest.json")
  [ "$(jq -r .target.storage "$w/manifest.json")" = block ] && fmt=raw
  # No disks to compare is no comparison.
  [ "$(jq '.disks | length' "$w/manifest.json")" -gt 0 ] || { echo "no disks in $w" >&2; return 1; }
  for i in $(seq 0 $(($(jq '.disks | length' "$w/manifest.json") - 1))); do
    key=$(jq -r ".disks[$i].key" "$w/manifest.json")
    tgt=$(jq -r ".disks[$i].target_path" "$w/manifest.json")
    qemu-img compare -q -f raw -F "$fmt" "$(snap_flat "$w" "$key")" "$tgt" || { echo "disk $i differs" >&2; return 1; }
  done
}

# committed W: each disk's committed changeId is the latest snapshot's.
committed() {
  jq -e '([.snapshots[] | select(.removed | not)][-1].disks | map({key, change_id})) as $s |
         [.disks[] | {key, change_id: .cbt.change_id}] == $s' "$1/manifest.json" >/dev/null
}

no_helpers_left() {
  # Helpers of a killed command get SIGTERM as it dies: give them time to go.
  local i
  for i in $(seq 50); do
    pgrep -f "$1/run/" >/dev/null || return 0
    sleep 0.1
  done
  pgrep -af "$1/run/" >&2
  return 1
}

done_event() {  # done_event W DISK FIELD: the field of the disk's last sync.disk.done
  jq -rs --arg d "$2" "[.[] | select(.event == \"sync.disk.done\" and .disk == \$d)][-1].detail.$3" "$1/events.log"
}

# ---------------------------------------------------------------- qcow2, 3 disks, file transport
start q --vm web01 --disk scsi:64M --disk sata:32M --disk ide:16M --nic "VM Network" --power on
W=$(file_init web01)
v2k --workdir "$W" cbt enable >/dev/null
sim_fill web01 2000 0 1000000 65
sim_fill web01 2000 10485760 300000 66
sim_fill web01 2001 5000000 70000 67
v2k --workdir "$W" snapshot base >/dev/null
v2k --workdir "$W" sync base
check "sync base: exit 0" test $? -eq 0
check "sync base: targets identical to the base snapshot" same "$W"
check "sync base: changeIds committed" committed "$W"
check "sync base: '*' areas copy only allocated data" test "$(done_event "$W" scsi0:0 bytes_copied)" -eq 1376256
check "sync base: the areas came from CBT" test "$(done_event "$W" scsi0:0 method)" = cbt
check "sync base: an all-zero disk sends no data" test "$(done_event "$W" ide0:0 bytes_copied)" -eq 0 -a "$(done_event "$W" ide0:0 bytes_zeroed)" -eq 0
check "sync base: qcow2 targets stay sparse" test "$(qemu-img info --output=json "$tmp/q/dst/web01-disk0.qcow2" | jq '."actual-size"')" -lt 8000000
check "sync base: no helper process left" no_helpers_left "$W"
check "sync base: manifest records the phase" jq_true '.phase == "sync_base" and .phases.sync_base.state == "done" and ([.disks[].base.state] | unique) == ["done"]' "$W/manifest.json"
starts=$(jq -s 'map(select(.event == "sync.disk.start")) | length' "$W/events.log")
v2k --workdir "$W" sync base
check "sync base again: exit 0" test $? -eq 0
check "sync base again: nothing to do (no disk sync started)" test "$(jq -s 'map(select(.event == "sync.disk.start")) | length' "$W/events.log")" -eq "$starts"
for round in 1 2 3; do
  sim_fill web01 2000 $((round * 3000000)) 200000 $((70 + round))
  [ $round = 1 ] && sim_fill web01 2001 4980736 65536 0    # zeros over a whole block of data
  sim_fill web01 2002 $((round * 1000000)) 100 $((80 + round))
  v2k --workdir "$W" snapshot incr >/dev/null
  v2k --workdir "$W" sync incr
  check "sync incr round $round: exit 0" test $? -eq 0
  check "sync incr round $round: targets identical" same "$W"
  check "sync incr round $round: changeIds committed" committed "$W"
  check "sync incr round $round: one migration snapshot left" test "$(sim_snapshot_names web01 | wc -l)" -eq 1
done
check "zeros written in the guest arrive as zero writes" test "$(jq '.disks[1].counters.bytes_zeroed' "$W/manifest.json")" -gt 0
check "incr rounds counted" jq_true '.incr_rounds == 3' "$W/manifest.json"
v2k --workdir "$W" snapshot incr >/dev/null
# A server's log (run/NAME.log) is created when it starts and kept after it
# stops: with the earlier rounds' logs moved away, any log is a new server.
check "the rounds with changes started servers (their logs are there)" bash -c "ls '$W/run/'*.log >/dev/null 2>&1"
mkdir -p "$tmp/q/old-logs" && mv "$W/run/"*.log "$tmp/q/old-logs/"
v2k --workdir "$W" sync incr
check "an incr with no changes succeeds" test $? -eq 0
check "an incr with no changes copies nothing" test "$(done_event "$W" scsi0:0 bytes_copied)" = 0 -a "$(done_event "$W" scsi0:0 areas)" = 0
check "an incr with no changes starts no server" bash -c "! ls '$W/run/'*.log 2>/dev/null | grep ."
sim_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$(sim_info '.vms[0].moref')</_this></PowerOffVM_Task>" >/dev/null
sim_fill web01 2000 20000000 65536 99
v2k --workdir "$W" snapshot final >/dev/null
v2k --workdir "$W" sync final
check "sync final: exit 0" test $? -eq 0
check "sync final: targets identical to the final snapshot" same "$W"
for k in 2000 2001 2002; do
  i=$((k - 2000))
  check "sync final: disk $i identical to the powered-off VM's disk" qemu-img compare -q -f raw -F qcow2 "$(sim_disk_flat web01 $k)" "$tmp/q/dst/web01-disk$i.qcow2"
done
v2k --workdir "$W" sync incr >"$tmp/o" 2>&1
rc=$?
check "sync incr after final is refused (exit 2; exit $rc)" test $rc -eq 2 -a -n "$(grep "no incr snapshot to sync from" "$tmp/o")"
check "status after final" bash -c "'$BIN' --workdir '$W' status --json | jq -e '.phase == \"sync_final\" and (.disks | all(.cbt.change_id != null))' >/dev/null"

# ---------------------------------------------------------------- raw targets
start r --vm r1 --disk scsi:16M --disk sata:16M --power on
WR=$(file_init r1 --target-format raw)
v2k --workdir "$WR" cbt enable >/dev/null
sim_fill r1 2000 4096 500000 11
v2k --workdir "$WR" snapshot base >/dev/null
v2k --workdir "$WR" sync base
check "raw: sync base" same "$WR"
check "raw: targets are sparse files" test "$(du -k "$tmp/r/dst/r1-disk1.raw" | cut -f1)" -lt 1024
sim_fill r1 2001 8000000 70000 12
v2k --workdir "$WR" snapshot incr >/dev/null
v2k --workdir "$WR" sync incr
check "raw: sync incr" same "$WR"
check "raw: the target has the disk's size" test "$(stat -c %s "$tmp/r/dst/r1-disk0.raw")" -eq 16777216

# ---------------------------------------------------------------- vddk transport (stand-in plugin)
start v --vm v1 --disk scsi:16M --disk sata:8M --power on
make_vddk_standin "$tmp/v/standin.sh" "$(sim_info '.datastores.LocalDS_0')" "$PASSWORD" "$tmp/v/ev"
make_vddk_libdir "$tmp/v"
WV=$(init_vm v1 --vddk-libdir "$tmp/v")
v2k --workdir "$WV" cbt enable >/dev/null
sim_fill v1 2000 0 3000000 21
v2k --workdir "$WV" snapshot base >/dev/null
( while :; do
    for p in $(pgrep -f "$WV/run/" 2>/dev/null); do
      tr '\0' ' ' </proc/$p/cmdline 2>/dev/null; echo
      tr '\0' '\n' </proc/$p/environ 2>/dev/null
    done
    sleep 0.02
  done ) >"$tmp/v/procscan" 2>/dev/null &
scanner=$!
V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/v/standin.sh" v2k --workdir "$WV" sync base
rc=$?
kill "$scanner" 2>/dev/null; wait "$scanner" 2>/dev/null
check "vddk: sync base through nbdkit" test $rc -eq 0
check "vddk: identical" same "$WV"
check "vddk: the plugin got the password through a descriptor" grep -qx ok "$tmp/v/ev/password"
check "vddk: vm, snapshot and file parameters" bash -c "grep -qx 'vm=moref=$(sim_info '.vms[0].moref')' '$tmp/v/ev/params' && grep -q '^snapshot=snapshot-' '$tmp/v/ev/params' && grep -q '^file=\[LocalDS_0\] v1/' '$tmp/v/ev/params'"
check "vddk: the vCenter's thumbprint (not the host's) and transports passed" bash -c "grep -qx 'thumbprint=$(sim_info .thumbprint_sha1)' '$tmp/v/ev/params' && grep -qx 'transports=nbdssl:nbd' '$tmp/v/ev/params'"
# The stand-in checks the thumbprint against the server's certificate, as
# VDDK does: the ESXi host's (what was passed before) is refused.
WT=$(init_vm v1 --vddk-libdir "$tmp/v" --dst "$tmp/v/dst-host-tp" --vddk-thumbprint "$(sim_info .host_thumbprint_sha1)")
v2k --workdir "$WT" cbt enable >/dev/null; v2k --workdir "$WT" snapshot base >/dev/null
V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/v/standin.sh" v2k --workdir "$WT" sync base >"$tmp/o" 2>&1
rc=$?
check "vddk: the host's thumbprint is refused by the server (exit 8; exit $rc)" test $rc -eq 8
check "vddk: ... by the stand-in's certificate check" grep -qx "$(sim_info .host_thumbprint_sha1)" "$tmp/v/ev/thumbprint-refused"
check "vddk: ... with nothing committed for the disk it could not read" jq_true '.disks[0].cbt.change_id == null and .disks[0].base.state == "failed"' "$WT/manifest.json"
check "vddk: an empty per-run config file" bash -c "f=\$(sed -n 's/^config=//p' '$tmp/v/ev/params' | head -1); [ -f \"\$f\" ] && [ ! -s \"\$f\" ]"
check "vddk: retry and blocksize filters in front" grep -q -- "--filter=retry --filter=blocksize" "$tmp/v/ev/cmdline"
# (A missing evidence file would make grep fail, and these checks pass.)
check "no password in nbdkit's argv or environment" bash -c "[ -s '$tmp/v/ev/cmdline' ] && [ -s '$tmp/v/ev/environ' ] && ! grep -qF -- '$PASSWORD' '$tmp/v/ev/cmdline' '$tmp/v/ev/environ'"
check "no password in any helper's argv or environment" bash -c "[ -s '$tmp/v/procscan' ] && ! grep -qF -- '$PASSWORD' '$tmp/v/procscan'"
check "no GOVC or VDDK secrets in helper environments" bash -c "[ -s '$tmp/v/ev/environ' ] && ! grep -qE '^(GOVC_|VDDK_|LD_LIBRARY_PATH)' '$tmp/v/ev/environ'"
check "no password in the workdir" bash -c "[ -s '$WV/manifest.json' ] && ! grep -rqF -- '$PASSWORD' '$WV'"
sim_fill v1 2001 100000 5000 22
v2k --workdir "$WV" snapshot incr >/dev/null
V2K_NBDKIT_VDDK_PLUGIN="sh $tmp/v/standin.sh" v2k --workdir "$WV" sync incr
check "vddk: sync incr" same "$WV"

# ---------------------------------------------------------------- kill -9 at seeded points
start k --vm k1 --disk scsi:64M --disk sata:32M --power on
WK=$(file_init k1)
v2k --workdir "$WK" cbt enable >/dev/null
scatter() {  # scatter VM KEY SEED COUNT: COUNT scattered 4 KiB writes
  perl -e 'my ($f, $seed, $n) = @ARGV; srand($seed); open(my $h, "+<", $f) or die;
           my $size = -s $f; for (1..$n) { my $o = int(rand($size / 4096)) * 4096;
           seek($h, $o, 0); print $h chr(1 + int(rand(250))) x 4096; } close $h' "$(sim_disk_flat "$1" "$2")" "$3" "$4"
}
scatter k1 2000 1 600
scatter k1 2001 2 300
v2k --workdir "$WK" snapshot base >/dev/null
RANDOM=20261126
kills=0
slow=(--checkpoint-interval 0.01 --request-size 64K --max-inflight 256K --jobs 2)
# crash_until_done KIND POINTS...: kill the sync at each point in turn (a
# point that is not reached lets it finish), then re-run until it is done.
# Only a kill (exit 137) may be followed by another try: any other exit (an
# ASan abort, an internal error) is a failure.
crash_until_done() {
  local kind=$1 p rc
  shift
  for p in "$@"; do
    V2K_CRASHPOINT=$p v2k --workdir "$WK" sync "$kind" "${slow[@]}" >"$tmp/k/out" 2>&1
    rc=$?
    if [ $rc -eq 137 ]; then kills=$((kills + 1))
    elif [ $rc -eq 0 ]; then break
    else not_ok "sync $kind with V2K_CRASHPOINT=$p: exit $rc, neither the kill nor success"; sed 's/^/# /' "$tmp/k/out"
    fi
  done
  v2k --workdir "$WK" sync "$kind" >"$tmp/k/out" 2>&1
  rc=$?
  check "sync $kind re-run after the kills: exit 0 (exit $rc)" test $rc -eq 0
  [ $rc -eq 0 ] || sed 's/^/# /' "$tmp/k/out"
}
crash_until_done base "sync:checkpoint@$((RANDOM % 3 + 1))" "atomic-write:rename@$((RANDOM % 4 + 2))" \
  "sync:checkpoint@$((RANDOM % 3 + 2))" "atomic-write:tmp@$((RANDOM % 4 + 2))" "sync:before-commit@1" \
  "sync:checkpoint@1" "atomic-write:fsync@$((RANDOM % 5 + 2))" "sync:before-commit@2"
check "kill -9 during base, then re-run: identical" same "$WK"
check "kill -9 during base, then re-run: changeIds right" committed "$WK"
check "kill -9 during base: a checkpoint was resumed" jq_true -s 'map(select(.event == "sync.disk.start" and .detail.resume_from == true)) | length >= 1' "$WK/events.log"
# Timed kills in the middle of copying.
scatter k1 2000 3 400
v2k --workdir "$WK" snapshot incr >/dev/null
timed=0
for i in 1 2 3; do
  # The binary itself in the background (not a function's subshell), so
  # that kill -9 reaches it.
  "$BIN" -q --workdir "$WK" sync incr "${slow[@]}" --vcenter "$(sim_info .url)" --username admin \
    --password-file "$tmp/k/pw" --ca-file "$(sim_info .cert_file)" >/dev/null 2>&1 &
  pid=$!
  sleep "0.0$((RANDOM % 9 + 1))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  # A sync that finished before the kill is not a kill; any other exit fails.
  case $rc in
    137) kills=$((kills + 1)); timed=$((timed + 1)) ;;
    0) ;;
    *) not_ok "timed kill $i during incr: exit $rc, neither the kill nor success" ;;
  esac
done
echo "# timed kills that landed: $timed of 3"
v2k --workdir "$WK" sync incr >/dev/null
check "timed kills during incr, then re-run: exit 0" test $? -eq 0
check "timed kills during incr, then re-run: identical" same "$WK"
check "timed kills during incr: changeIds right" committed "$WK"
for round in 1 2 3; do
  scatter k1 $((2000 + round % 2)) $((10 + round)) 100
  V2K_CRASHPOINT=snapshot:created v2k --workdir "$WK" snapshot incr >/dev/null 2>&1
  rc=$?
  check "snapshot incr killed at snapshot:created, round $round (exit $rc)" test $rc -eq 137
  [ $rc -eq 137 ] && kills=$((kills + 1))
  v2k --workdir "$WK" snapshot incr >/dev/null
  check "snapshot incr re-run after the kill, round $round" test $? -eq 0
  crash_until_done incr "sync:before-commit@$((RANDOM % 2 + 1))" "atomic-write:rename@$((RANDOM % 3 + 1))" \
    "atomic-write:tmp@$((RANDOM % 3 + 1))" "atomic-write:fsync@$((RANDOM % 3 + 1))" "sync:before-commit@1"
  check "kills during incr round $round, then re-run: identical" same "$WK"
  check "kills during incr round $round: changeIds right" committed "$WK"
done
sim_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$(sim_info '.vms[0].moref')</_this></PowerOffVM_Task>" >/dev/null
scatter k1 2001 99 50
v2k --workdir "$WK" snapshot final >/dev/null
crash_until_done final "sync:before-commit@1" "atomic-write:rename@2" "sync:before-commit@2"
check "kills during final, then re-run: identical to the VM's disks" bash -c \
  "qemu-img compare -q -f raw -F qcow2 '$(sim_disk_flat k1 2000)' '$tmp/k/dst/k1-disk0.qcow2' && qemu-img compare -q -f raw -F qcow2 '$(sim_disk_flat k1 2001)' '$tmp/k/dst/k1-disk1.qcow2'"
check "kills during final: changeIds right" committed "$WK"
check "no stale manifest temp file after the kills" bash -c "! ls '$WK'/manifest.json.tmp.* >/dev/null 2>&1"
check "at least 20 kills at seeded points ($kills)" test "$kills" -ge 20
check "no helper process left after the kills" no_helpers_left "$WK"
check "one migration snapshot left after the kills" test "$(sim_snapshot_names k1 | wc -l)" -eq 1

# ---------------------------------------------------------------- source errors (nbdkit error filter)
start e --vm e1 --disk scsi:16M --power on
WE=$(init_vm e1 --transport nbd --source-nbd "nbd+unix:///?socket=$tmp/e/src-{key}.sock")
v2k --workdir "$WE" cbt enable >/dev/null
sim_fill e1 2000 0 4000000 31
v2k --workdir "$WE" snapshot base >/dev/null
serve_source() {  # serve_source RATE: nbdkit with the error filter on the snapshot's data
  pkill -f "$tmp/e/src-2000.sock" 2>/dev/null; sleep 0.1
  rm -f "$tmp/e/src-2000.sock"
  nbdkit -r --unix "$tmp/e/src-2000.sock" --filter=error file "$(snap_flat "$WE" 2000)" \
    error-pread=EIO error-pread-rate="$1" >"$tmp/e/nbdkit.log" 2>&1 &
  for _ in $(seq 50); do [ -S "$tmp/e/src-2000.sock" ] && break; sleep 0.1; done
}
serve_source 100%
v2k --workdir "$WE" sync base --request-size 256K >"$tmp/o" 2>&1
rc=$?
check "persistent source errors fail the disk: exit 8" test $rc -eq 8
check "persistent source errors name the offset and the error" grep -q "reading .* at offset [0-9]* failed after 5 tries: Input/output error" "$tmp/o"
check "persistent source errors commit no changeId" jq_true '.disks[0].cbt.change_id == null and .disks[0].base.state == "failed" and .disks[0].last_error.code == "transfer"' "$WE/manifest.json"
# Transient errors, scheduled (no coin toss): an nbdkit sh plugin serving the
# same data fails the first read that covers each of three bytes, once each
# (mkdir is atomic, so of parallel readers exactly one fails).
pkill -f "$tmp/e/src-2000.sock"; sleep 0.1; rm -f "$tmp/e/src-2000.sock"
mkdir -p "$tmp/e/once"
cat >"$tmp/e/once.sh" <<EOF
#!/bin/sh
case "\$1" in
  get_size) stat -L -c %s '$(snap_flat "$WE" 2000)' ;;
  pread)
    for b in 100000 1500000 3900000; do
      [ \$b -ge \$4 ] && [ \$b -lt \$((\$4 + \$3)) ] || continue
      if mkdir "$tmp/e/once/\$b" 2>/dev/null; then echo "EIO injected at \$b" >&2; exit 1; fi
    done
    dd if='$(snap_flat "$WE" 2000)' iflag=skip_bytes,count_bytes skip="\$4" count="\$3" status=none ;;
  thread_model) echo parallel ;;
  open) echo handle ;;
  can_write|can_trim|can_zero|can_extents) exit 3 ;;
  *) exit 2 ;;
esac
EOF
chmod +x "$tmp/e/once.sh"
nbdkit -r --unix "$tmp/e/src-2000.sock" sh "$tmp/e/once.sh" >"$tmp/e/nbdkit.log" 2>&1 &
for _ in $(seq 50); do [ -S "$tmp/e/src-2000.sock" ] && break; sleep 0.1; done
v2k --workdir "$WE" sync base --request-size 64K >"$tmp/o" 2>&1
rc=$?
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/o" "$tmp/e/nbdkit.log"
check "transient source errors are retried (exit $rc)" test $rc -eq 0
check "transient source errors: identical" same "$WE"
check "the three scheduled errors were injected" test "$(ls "$tmp/e/once" | wc -l)" -eq 3
check "each retry is counted in the event ($(done_event "$WE" scsi0:0 retried) of 3)" test "$(done_event "$WE" scsi0:0 retried)" -eq 3
pkill -f "$tmp/e/src-2000.sock"

# ---------------------------------------------------------------- the target filesystem fills up
start f --vm f1 --disk scsi:64M --power on
mkdir -p "$tmp/f/full"
if mount -t tmpfs -o size=3M tmpfs "$tmp/f/full" 2>/dev/null; then
  mounts+=("$tmp/f/full")
  WF=$(init_vm f1 --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" --dst "$tmp/f/full")
  v2k --workdir "$WF" cbt enable >/dev/null
  sim_fill f1 2000 0 8000000 41
  v2k --workdir "$WF" snapshot base >/dev/null
  v2k --workdir "$WF" sync base >"$tmp/o" 2>&1
  rc=$?
  check "target full: exit 9" test $rc -eq 9
  check "target full: a clear error" grep -q "No space left on device" "$tmp/o"
  check "target full: nothing committed" jq_true '.disks[0].cbt.change_id == null and .disks[0].base.state == "failed"' "$WF/manifest.json"
  check "target full: the error is one line" test "$(wc -l <"$tmp/o")" -eq 1
else
  skip "target full" "cannot mount a tmpfs here"
fi

# ---------------------------------------------------------------- block device targets
start b --vm b1 --disk scsi:16M --disk sata:8M --power on
if truncate -s 16M "$tmp/b/l0.img" && L0=$(losetup -f --show "$tmp/b/l0.img" 2>/dev/null) &&
   truncate -s 4M "$tmp/b/l1.img" && L1=$(losetup -f --show "$tmp/b/l1.img" 2>/dev/null); then
  loops+=("$L0" "$L1")
  blk_init() { init_vm b1 --transport file --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" \
                 --target-storage block --target-format raw "$@"; }
  WB=$(blk_init --target-map "scsi0:0=$L0" --target-map "sata0:0=$L1")
  v2k --workdir "$WB" cbt enable >/dev/null
  sim_fill b1 2000 1000000 100000 51
  v2k --workdir "$WB" snapshot base >/dev/null
  v2k --workdir "$WB" sync base >"$tmp/o" 2>&1
  rc=$?
  check "block: a device smaller than the disk is refused (exit 9; exit $rc)" test $rc -eq 9
  check "block: ... saying so" grep -q "block target $L1 has 4194304 bytes; the disk needs 8388608" "$tmp/o"
  losetup -d "$L1"; truncate -s 8M "$tmp/b/l1.img"; L1=$(losetup -f --show "$tmp/b/l1.img"); loops+=("$L1")
  WB=$(blk_init --target-map "scsi0:0=$L0" --target-map "sata0:0=$L1")
  v2k --workdir "$WB" cbt enable >/dev/null
  v2k --workdir "$WB" snapshot base >/dev/null
  if command -v mkswap >/dev/null; then
    mkswap "$L1" >/dev/null 2>&1
    v2k --workdir "$WB" sync base >"$tmp/o" 2>&1
    rc=$?
    check "block: a device with a signature is refused (exit 9; exit $rc)" test $rc -eq 9
    check "block: ... naming it" grep -q "block target $L1 carries a signature (TYPE=swap)" "$tmp/o"
    v2k --workdir "$WB" sync base --force-block-device >"$tmp/o" 2>&1
    check "block: --force-block-device skips the signature check" test $? -eq 0
  else
    skip "block: signature" "mkswap is not installed"
    v2k --workdir "$WB" sync base >/dev/null 2>&1
  fi
  dd if=/dev/urandom of="$L0" bs=1M count=16 status=none   # old data must not survive
  v2k --workdir "$WB" sync base --full --force-block-device >"$tmp/o" 2>&1
  rc=$?
  check "block: base --full over old data (exit $rc)" test $rc -eq 0
  check "block: base overwrites the whole device" same "$WB"
  sim_fill b1 2001 2000000 50000 52
  v2k --workdir "$WB" snapshot incr >/dev/null
  v2k --workdir "$WB" sync incr >/dev/null 2>&1
  check "block: incr" same "$WB"
  WB2=$(blk_init --target-map "scsi0:0=$tmp/b/l0.img" --target-map "sata0:0=$L1" 2>&1)
  check "block: a map to a regular file is refused at init" grep -q "needs a device path under /dev/" <<<"$WB2"
  WB3=$(blk_init --target-map "scsi0:0=/dev/null" --target-map "sata0:0=$L1")
  v2k --workdir "$WB3" cbt enable >/dev/null; v2k --workdir "$WB3" snapshot base >/dev/null 2>&1
  v2k --workdir "$WB3" sync base >"$tmp/o" 2>&1
  rc=$?
  check "block: a character device is refused (exit 9; exit $rc)" test $rc -eq 9 -a -n "$(grep "is not a block device" "$tmp/o")"
  if command -v sfdisk >/dev/null && truncate -s 16M "$tmp/b/l2.img" && L2=$(losetup -P -f --show "$tmp/b/l2.img"); then
    loops+=("$L2")
    echo 'label: dos
,8M' | sfdisk -q "$L2" >/dev/null 2>&1; losetup -d "$L2"; L2=$(losetup -P -f --show "$tmp/b/l2.img"); loops+=("$L2")
    # A kernel without the DOS partition parser (this one) reads no table:
    # the partition is added by hand (BLKPG), as the table describes it.
    [ -e "${L2}p1" ] || addpart "$L2" 1 2048 16384 2>/dev/null
    for _ in $(seq 20); do [ -e "${L2}p1" ] && break; sleep 0.1; done
    if [ -e "${L2}p1" ]; then
      v2k_try() { WB4=$(blk_init --target-map "scsi0:0=$1" --target-map "sata0:0=$L1"); v2k --workdir "$WB4" cbt enable >/dev/null; v2k --workdir "$WB4" snapshot base >/dev/null 2>&1; v2k --workdir "$WB4" sync base --force-block-device >"$tmp/o" 2>&1; }
      v2k_try "$L2"
      check "block: a disk with partitions is refused" grep -q "has partitions" "$tmp/o"
      v2k_try "${L2}p1"
      check "block: a partition is refused" grep -q "is a partition; give a whole disk" "$tmp/o"
    else
      skip "block: partitions" "the kernel here creates no partition devices for loop devices"
    fi
  else
    skip "block: partitions" "sfdisk or partitioned loop devices are not available"
  fi
else
  skip "block device targets" "loop devices are not available here"
fi

# ---------------------------------------------------------------- no CBT: block status, and --full
start n --vm n1 --disk scsi:16M --power on
WN=$(file_init n1)
sim_fill n1 2000 0 300000 61
v2k --workdir "$WN" snapshot base >/dev/null
v2k --workdir "$WN" sync base
check "without CBT, base falls back to the source's block status" test "$(done_event "$WN" scsi0:0 method)" = block_status
check "the fallback is logged as a warning" jq_true -s 'map(select(.event == "sync.areas" and .level == "warn" and .detail.method == "block_status")) | length == 1' "$WN/events.log"
check "without CBT: identical" same "$WN"
v2k --workdir "$WN" snapshot incr >"$tmp/o" 2>&1
v2k --workdir "$WN" sync incr >"$tmp/o" 2>&1
check "without CBT, incr is refused as a CBT integrity error" test $? -eq 7
check "without CBT, incr says to run the base sync" grep -q "has no committed changeId" "$tmp/o"
jq '.snapshots[-1].removed = true' "$WN/manifest.json" >"$tmp/m" && cp "$tmp/m" "$WN/manifest.json"
sim_fill n1 2000 8000000 100000 62
v2k --workdir "$WN" snapshot base >/dev/null
v2k --workdir "$WN" sync base >"$tmp/o" 2>&1
check "a second base into a filled target is refused" grep -q "run 'sync base --full'" "$tmp/o"
v2k --workdir "$WN" sync base --full
check "sync base --full recreates the target and copies again" same "$WN"

# ---------------------------------------------------------------- progress while a sync runs
start p --vm p1 --disk scsi:16M --power on
WP=$(init_vm p1 --transport nbd --source-nbd "nbd+unix:///?socket=$tmp/p/src-{key}.sock")
v2k --workdir "$WP" cbt enable >/dev/null
sim_fill p1 2000 0 2097152 71
v2k --workdir "$WP" snapshot base >/dev/null
nbdkit -r --unix "$tmp/p/src-2000.sock" --filter=delay file "$(snap_flat "$WP" 2000)" delay-read=200ms >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S "$tmp/p/src-2000.sock" ] && break; sleep 0.1; done
v2k --workdir "$WP" sync base --request-size 64K --max-inflight 64K --connections 1 >/dev/null 2>&1 &
syncpid=$!
seen=no
for _ in $(seq 100); do
  "$BIN" --workdir "$WP" status --json >"$tmp/p/s.json" 2>/dev/null
  if jq -e '.state == "running" and .pid != null and .disks[0].state == "running" and .disks[0].bytes_done > 0 and .disks[0].bytes_done < .disks[0].bytes_total and .disks[0].rate_bps > 0' "$tmp/p/s.json" >/dev/null; then
    seen=yes
    break
  fi
  sleep 0.1
done
check "status --json shows a running sync's progress" test $seen = yes
wait "$syncpid"
check "the slow sync completes" test $? -eq 0
# 32 reads of 64 KiB one at a time, each delayed 0.2 s: at least 6.4 s, so
# the progress event (every 5 s) is logged at least once.
check "the slow sync logged its progress" jq_true -s 'map(select(.event == "sync.progress")) | length >= 1' "$WP/events.log"
pkill -f "$tmp/p/src-2000.sock"

# ---------------------------------------------------------------- memory does not grow with the disk
rss_for() {  # rss_for SIZE: peak RSS (KiB) of copying a SIZE disk with a few bytes set
  local s=$tmp/mem-$1
  nbdkit -U "$s-src.sock" data "1 @1048576 2 @$(( $2 - 4096 )) 3" size="$1" >/dev/null 2>&1 &
  nbdkit -U "$s-dst.sock" memory "$1" >/dev/null 2>&1 &
  for _ in $(seq 50); do [ -S "$s-src.sock" ] && [ -S "$s-dst.sock" ] && break; sleep 0.1; done
  # /usr/bin/time exits with the command's status; the copy must succeed and
  # the three bytes must have arrived, or its RSS says nothing.
  /usr/bin/time -f %M -o "$s.rss" "$BIN" -q copy "nbd+unix:///?socket=$s-src.sock" "nbd+unix:///?socket=$s-dst.sock" >"$s.out" 2>&1
  echo $? >"$s.rc"
  for o in 0 1048576 $(( $2 - 4096 )); do
    qemu-io -r -f raw "nbd+unix:///?socket=$s-dst.sock" -c "read -v $o 1" | awk 'NR == 1 { printf "%d", $2 }'
  done >"$s.bytes"
  pkill -f "$s-"
  tail -1 "$s.rss"
}
small=$(rss_for 1G 1073741824)
large=$(rss_for 100G 107374182400)
check "copying 1 GiB and 100 GiB: both exit 0 ($(cat "$tmp/mem-1G.rc"), $(cat "$tmp/mem-100G.rc"))" test "$(cat "$tmp/mem-1G.rc")" = 0 -a "$(cat "$tmp/mem-100G.rc")" = 0
check "copying 1 GiB and 100 GiB: the data arrived ($(cat "$tmp/mem-1G.bytes"), $(cat "$tmp/mem-100G.bytes"))" test "$(cat "$tmp/mem-1G.bytes")" = 123 -a "$(cat "$tmp/mem-100G.bytes")" = 123
check "peak RSS copying 100 GiB is that of copying 1 GiB ($large KiB, $small KiB)" test "$large" -le $((small + small / 5 + 4096))

tap_done
