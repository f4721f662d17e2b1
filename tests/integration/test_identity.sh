#!/bin/bash
# Target identity: a target that vanished, was replaced, truncated or resized
# after this run recorded it is refused (exit 9, one line naming what changed
# and 'sync base --full') with nothing committed, for qcow2 and raw files,
# block devices and RBD images; the same target put back syncs again, and
# 'sync base --full' recovers. Also the resume of a base copy, verify, convert and the
# cutover's preflight.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
. "$here/../lib/ceph.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-identity-XXXXXX)
sims=()
loops=()
links=()
cleanup() {
  local p
  for p in "${links[@]}"; do rm -f "$p"; done
  for p in "${sims[@]}"; do kill -TERM "$p" 2>/dev/null; done
  pkill -f "$tmp/" 2>/dev/null
  for p in "${loops[@]}"; do losetup -d "$p" 2>/dev/null; done
  ceph_stop "$tmp/ceph" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

start() {  # start NAME FLAGS...: a simulator of our own in $tmp/NAME
  local dir=$tmp/$1
  shift
  mkdir -p "$dir"
  sim_start "$dir" "$@" || { echo "simulator failed" >&2; exit 1; }
  sims+=("$SIM_PID")
  SIM_PID=
}

v2k() {
  "$BIN" -q "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}

init_vm() {  # init_vm VM [init args]: prints the workdir
  local vm=$1 dir=${SIM_INFO%/*}
  shift
  v2k init --vm "$vm" --dst "$dir/dst" --workdir-root "$dir/root" --transport file \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')" "$@"
}

# snap_flat W KEY: the data file of the latest snapshot's copy of disk KEY.
snap_flat() {
  local f
  f=$(jq -r --argjson k "$2" '[.snapshots[] | select(.removed | not)][-1].disks[] | select(.key == $k) | .file_name' "$1/manifest.json")
  echo "$(sim_info '.datastores.LocalDS_0')/$(sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/' <<<"$f")"
}

# target_bytes W I OUT: disk I's target as raw bytes in OUT.
target_bytes() {
  local t fmt
  t=$(jq -r ".disks[$2].target_path" "$1/manifest.json")
  fmt=$(jq -r .target.format "$1/manifest.json")
  case "$t" in
    rbd:*) rm -f "$3"; rbd -c "$conf" export "${t#rbd:}" "$3" >/dev/null 2>&1 ;;
    *) qemu-img convert -U -f "$fmt" -O raw "$t" "$3" 2>/dev/null ;;
  esac
}

# same W: every target equals the data of the latest snapshot, byte for byte.
same() {
  local w=$1 i key
  # No disks to compare (or no manifest to read) is no comparison.
  [ "$(jq '.disks | length' "$w/manifest.json")" -gt 0 ] 2>/dev/null || { echo "no disks in $w" >&2; return 1; }
  for i in $(seq 0 $(($(jq '.disks | length' "$w/manifest.json") - 1))); do
    key=$(jq -r ".disks[$i].key" "$w/manifest.json")
    target_bytes "$w" "$i" "$tmp/bytes" || { echo "disk $i: cannot read the target" >&2; return 1; }
    cmp -s "$(snap_flat "$w" "$key")" "$tmp/bytes" || { echo "disk $i differs" >&2; return 1; }
  done
  rm -f "$tmp/bytes"
}

# committed_state W: what a refused sync must leave alone: every disk's
# target, identity, changeId and sync records, and the snapshots.
committed_state() {   # an unreadable manifest never equals a readable one
  jq -S '[.disks[] | del(.last_error)], .snapshots' "$1/manifest.json" || echo "unreadable manifest"
}

# one_line_saying FILE TEXT...: FILE is one line holding each TEXT.
one_line_saying() {
  local f=$1 t
  shift
  [ "$(wc -l <"$f")" -eq 1 ] || { cat "$f" >&2; return 1; }
  for t in "$@"; do grep -qF -- "$t" "$f" || { echo "no '$t' in: $(cat "$f")" >&2; return 1; }; done
}

# migrated VM W ROUND: base copied (checked), then guest writes and an incr
# snapshot, so that the next 'sync incr' has changed areas to write.
migrated() {
  local vm=$1 w=$2 round=$3
  v2k --workdir "$w" cbt enable >/dev/null
  sim_fill "$vm" 2000 0 1000000 65
  sim_fill "$vm" 2001 100000 70000 66 2>/dev/null   # one-disk VMs have no 2001
  v2k --workdir "$w" snapshot base >/dev/null
  v2k --workdir "$w" sync base
  check "$vm: base synced" same "$w"
  sim_fill "$vm" 2000 3000000 200000 $((70 + round))
  v2k --workdir "$w" snapshot incr >/dev/null
}

# refused LABEL VM W WANT...: 'sync incr' is refused: exit 9, one line that
# names what changed (WANT) and the recovery; nothing committed, no snapshot
# removed.
refused() {
  local label=$1 vm=$2 w=$3 before snaps rc=0
  shift 3
  before=$(committed_state "$w")
  snaps=$(sim_snapshot_names "$vm")
  v2k --workdir "$w" sync incr >"$tmp/out" 2>&1 || rc=$?
  check "$label: sync incr exits 9" test "$rc" -eq 9
  check "$label: one line saying what changed and how to recover" \
    one_line_saying "$tmp/out" "$@" "sync base --full"
  check "$label: nothing committed" test "$(committed_state "$w")" = "$before"
  check "$label: no snapshot removed" test -n "$snaps" -a "$(sim_snapshot_names "$vm")" = "$snaps"
}

# synced LABEL W: with the target put back, 'sync incr' goes through.
synced() {
  local rc=0
  v2k --workdir "$2" sync incr >"$tmp/out" 2>&1 || rc=$?
  check "$1: the same target put back syncs (exit $rc)" test "$rc" -eq 0
  check "$1: identical to the source" same "$2"
}

# recovered LABEL W: a new base snapshot and 'sync base --full' make it whole
# again (the first base snapshot went with the first incremental round).
recovered() {
  local rc=0
  v2k --workdir "$2" snapshot base >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] && { v2k --workdir "$2" sync base --full >>"$tmp/out" 2>&1 || rc=$?; }
  check "$1: snapshot base and sync base --full recover (exit $rc)" test "$rc" -eq 0
  check "$1: identical to the source after the recovery" same "$2"
}

# ---------------------------------------------------------------- files: qcow2 and raw
start f --vm q1 --disk scsi:16M --disk sata:8M --power on --vm r1 --disk scsi:16M --disk sata:8M --power on
for fmt in qcow2 raw; do
  vm=${fmt:0:1}1
  W=$(init_vm "$vm" --target-format "$fmt")
  migrated "$vm" "$W" 1
  check "$fmt: the identity is recorded" jq_true \
    '[.disks[].target_identity | .device > 0 and .inode > 0 and .size > 0 and (.recorded | length) > 0] == [true, true]' "$W/manifest.json"
  check "$fmt: the recorded size is the virtual size" jq_true \
    '[.disks[] | .target_identity.size == .capacity] == [true, true]' "$W/manifest.json"
  T=$(jq -r '.disks[0].target_path' "$W/manifest.json")

  mv "$T" "$T.aside"
  refused "$fmt deleted" "$vm" "$W" "target $T is missing"
  check "$fmt deleted: the target is not created again" test ! -e "$T"
  mv "$T.aside" "$T"

  mv "$T" "$T.aside"; cp "$T.aside" "$T"
  refused "$fmt replaced by a copy of itself" "$vm" "$W" "target $T was replaced"
  rm -f "$T"; mv "$T.aside" "$T"

  cp "$T" "$T.saved"
  if [ "$fmt" = qcow2 ]; then
    : >"$T"
    refused "qcow2 truncated" "$vm" "$W" "target $T was truncated (its qcow2 header is gone)"
  else
    truncate -s 8M "$T"
    refused "raw truncated" "$vm" "$W" "target $T was truncated from 16777216 to 8388608 bytes"
  fi
  cat "$T.saved" >"$T"

  if [ "$fmt" = qcow2 ]; then qemu-img resize -q -f qcow2 "$T" 32M; else truncate -s 32M "$T"; fi
  refused "$fmt resized" "$vm" "$W" "target $T was resized from 16777216 to 33554432 bytes"
  cat "$T.saved" >"$T"; rm -f "$T.saved"

  synced "$fmt" "$W"
  # The verify and the cutover refuse a missing target too, the cutover
  # before it touches the source.
  mv "$T" "$T.aside"
  rc=0; v2k --workdir "$W" verify >"$tmp/out" 2>&1 || rc=$?
  check "$fmt deleted: verify exits 9 (not a difference: the target is gone)" test "$rc" -eq 9
  check "$fmt deleted: verify says so in one line" one_line_saying "$tmp/out" "target $T is missing"
  rc=0; v2k --workdir "$W" cutover --shutdown poweroff --target-provider none >"$tmp/out" 2>&1 || rc=$?
  check "$fmt deleted: cutover refuses with exit 9" test "$rc" -eq 9
  check "$fmt deleted: cutover refused before the shutdown" test "$(sim_power_state "$vm")" = poweredOn
  check "$fmt deleted: cutover recorded no shutdown" jq_true '.cutover.shutdown == null and .cutover.powered_off == null' "$W/manifest.json"
  recovered "$fmt deleted" "$W"
done

# A workdir from before identities were recorded: a deleted target is still
# refused, and the one put back is adopted (its identity recorded).
jq 'del(.disks[].target_identity)' "$W/manifest.json" >"$tmp/m.json" && cat "$tmp/m.json" >"$W/manifest.json"
T=$(jq -r '.disks[0].target_path' "$W/manifest.json")
sim_fill r1 2000 5000000 100000 90
v2k --workdir "$W" snapshot incr >/dev/null
mv "$T" "$T.aside"
refused "no identity recorded, target deleted" r1 "$W" "target $T, created by this run, is missing"
mv "$T.aside" "$T"
synced "no identity recorded" "$W"
check "no identity recorded: the target put back is adopted when next written" jq_true \
  '.disks[0].target_identity.inode > 0' "$W/manifest.json"

# ---------------------------------------------------------------- the resume of a base copy
start k --vm k1 --disk scsi:64M --power on
W=$(init_vm k1 --target-format raw)
v2k --workdir "$W" cbt enable >/dev/null
sim_fill k1 2000 0 60000000 77
v2k --workdir "$W" snapshot base >/dev/null
rc=0
V2K_CRASHPOINT=sync:checkpoint v2k --workdir "$W" sync base --checkpoint-interval 0.01 --request-size 64K --max-inflight 256K >/dev/null 2>&1 || rc=$?
check "resume: the base copy was killed after a checkpoint" test "$rc" -eq 137
check "resume: a checkpoint was saved" jq_true '.disks[0].base.checkpoint > 0 and .disks[0].target_identity != null' "$W/manifest.json"
T=$(jq -r '.disks[0].target_path' "$W/manifest.json")
before=$(committed_state "$W")
mv "$T" "$T.aside"
rc=0; v2k --workdir "$W" sync base >"$tmp/out" 2>&1 || rc=$?
check "resume over a deleted target: exit 9" test "$rc" -eq 9
check "resume over a deleted target: one line" one_line_saying "$tmp/out" "target $T is missing" "sync base --full"
check "resume over a deleted target: nothing committed, checkpoint kept" test "$(committed_state "$W")" = "$before"
check "resume over a deleted target: not created again" test ! -e "$T"
mv "$T.aside" "$T"
rc=0; v2k --workdir "$W" sync base >/dev/null 2>&1 || rc=$?
check "resume onto the same target finishes" test "$rc" -eq 0
check "resume onto the same target: identical" same "$W"

# ---------------------------------------------------------------- convert after the cutover
# The cutover without conversion leaves the targets final; a deleted target
# is then refused by 'convert' (before virt-v2v touches anything), in one line.
start v --vm v1 --disk scsi:16M --power on --vm v2 --disk scsi:16M --power on
W=$(init_vm v1)
migrated v1 "$W" 1
rc=0; v2k --workdir "$W" cutover --target-provider none --convert off --shutdown poweroff >"$tmp/out" 2>&1 || rc=$?
check "convert: the cutover without conversion (exit $rc)" test "$rc" -eq 0
T=$(jq -r '.disks[0].target_path' "$W/manifest.json")
conv_state() { jq -S '.conversion, [.disks[] | del(.last_error)], .snapshots' "$1/manifest.json" || echo "unreadable manifest"; }
before=$(conv_state "$W")
mv "$T" "$T.aside"
rc=0; "$BIN" -q --workdir "$W" convert >"$tmp/out" 2>&1 || rc=$?
check "convert over a deleted target: exit 9 (exit $rc)" test "$rc" -eq 9
check "convert over a deleted target: one line" one_line_saying "$tmp/out" "target $T is missing" "sync base --full"
check "convert over a deleted target: nothing converted or committed" test "$(conv_state "$W")" = "$before"
check "convert over a deleted target: not created again" test ! -e "$T"
mv "$T.aside" "$T"

# The define checks again: a target that vanishes after the preflight (here
# during the conversion: a stand-in virt-v2v-in-place deletes it and fails,
# so the cutover falls back to SATA and goes on to the define) is refused
# before the domain is defined.
W=$(init_vm v2)
migrated v2 "$W" 1
T=$(jq -r '.disks[0].target_path' "$W/manifest.json")
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\nrm -f %q && touch %q\necho "stand-in virt-v2v-in-place: deleted the target, failing" >&2\nexit 1\n' \
  "$T" "$tmp/fakebin/ran" >"$tmp/fakebin/virt-v2v-in-place"
chmod +x "$tmp/fakebin/virt-v2v-in-place"
rc=0; PATH=$tmp/fakebin:$PATH v2k --workdir "$W" cutover --libvirt-uri test:///default --net-default bridge:br0 \
  --shutdown poweroff >"$tmp/out" 2>"$tmp/err" || rc=$?
check "define: the stand-in conversion ran and deleted the target" test -e "$tmp/fakebin/ran" -a ! -e "$T"
check "define over a target deleted after the preflight: exit 9 (exit $rc)" test "$rc" -eq 9
check "define over a target deleted after the preflight: one line" one_line_saying "$tmp/err" "target $T is missing" "sync base --full"
check "define over a target deleted after the preflight: no domain defined" \
  jq_true '.cutover.defined == false and .cutover.started == false' "$W/manifest.json"

# ---------------------------------------------------------------- block devices
start b --vm b1 --disk scsi:16M --power on
if truncate -s 16M "$tmp/b/l0.img" "$tmp/b/other.img" && L0=$(losetup -f --show "$tmp/b/l0.img" 2>/dev/null); then
  loops+=("$L0")
  # A name under /dev of our own (block targets live there), so that the
  # device can vanish from its path as an unplugged disk does.
  D0=/dev/v2k-identity-$$-disk0
  links+=("$D0")
  ln -s "$L0" "$D0"
  W=$(init_vm b1 --target-storage block --target-format raw --target-map "scsi0:0=$D0")
  migrated b1 "$W" 1
  check "block: the identity names the device and its backing file" jq_true \
    '.disks[0].target_identity | .device > 0 and .size == 16777216 and (.serial | startswith("loop:"))' "$W/manifest.json"
  rm "$D0"
  refused "block device gone" b1 "$W" "target $D0 is missing"
  ln -s "$L0" "$D0"
  losetup -d "$L0" && losetup "$L0" "$tmp/b/other.img"
  refused "block device re-attached to another file" b1 "$W" "target $D0 was replaced"
  losetup -d "$L0" && losetup "$L0" "$tmp/b/l0.img"
  truncate -s 32M "$tmp/b/l0.img" && losetup -c "$L0"
  refused "block device grown" b1 "$W" "target $D0 was resized from 16777216 to 33554432 bytes"
  truncate -s 16M "$tmp/b/l0.img" && losetup -c "$L0"
  synced "block" "$W"
else
  skip "block device targets" "no loop device can be set up here"
fi

# ---------------------------------------------------------------- RBD images
if ! command -v ceph-mon >/dev/null; then
  skip "rbd targets" "ceph-mon is not installed (make deps installs it)"
else
  port=$((20000 + ($$ % 100) * 100 + 50))
  if ceph_start "$tmp/ceph" "$port"; then
    conf=$tmp/ceph/ceph.conf
    start c --vm c1 --disk scsi:16M --disk sata:8M --power on
    W=$(init_vm c1 --target-storage rbd --target-format raw --target-map scsi0:0=rbd:rbd/c1-disk0 \
        --target-map sata0:0=rbd:rbd/c1-disk1 --ceph-conf "$conf" --ceph-id admin)
    migrated c1 "$W" 1
    check "rbd: the identity is the image id" jq_true \
      '[.disks[].target_identity | (.image_id | length) > 0] == [true, true]' "$W/manifest.json"
    R="rbd -c $conf"
    $R mv rbd/c1-disk0 rbd/c1-aside
    refused "rbd image deleted" c1 "$W" "target rbd:rbd/c1-disk0 is missing"
    check "rbd image deleted: not created again" bash -c "! $R info rbd/c1-disk0 >/dev/null 2>&1"
    $R create --size 16M rbd/c1-disk0
    refused "rbd image re-created under the same name" c1 "$W" "target rbd:rbd/c1-disk0 was replaced"
    $R rm rbd/c1-disk0 >/dev/null 2>&1; $R mv rbd/c1-aside rbd/c1-disk0
    $R resize --size 32M rbd/c1-disk0 >/dev/null 2>&1
    refused "rbd image resized" c1 "$W" "target rbd:rbd/c1-disk0 was resized from 16777216 to 33554432 bytes"
    $R resize --allow-shrink --size 16M rbd/c1-disk0 >/dev/null 2>&1
    synced "rbd" "$W"
    $R rm rbd/c1-disk1 >/dev/null 2>&1
    recovered "rbd image deleted" "$W"
  else
    not_ok "the test Ceph cluster starts"
  fi
fi

tap_done
