#!/bin/bash
# A resumed base copy must rewrite everything past its checkpoint. A SIGKILL
# loses nothing the page cache holds, so a resume that skipped part of the
# disk would still look right after a kill; a power loss would not be that
# kind. So after the kill, everything past the recorded checkpoint is
# overwritten (as if those writes had never reached the disk), and the
# resumed copy must still end identical to the snapshot. (Found by make
# mutate: a resume starting 1 MiB past its checkpoint passed test_sync.)
# Then: a failed incremental sync removes no snapshot and commits nothing
# (make mutate: removing older snapshots before looking at the disks'
# failures passed every suite).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/tap.sh"
. "$here/../lib/sim.sh"
BIN=${V2K_BIN:?V2K_BIN must name ablestack_v2k}
tmp=$(mktemp -d /tmp/v2k-resume-XXXXXX)
trap 'sim_stop; pkill -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
sim_start "$tmp" --vm r1 --disk scsi:32M --power on || exit 1
v2k() {
  "$BIN" -q "$@" --vcenter "$(sim_info .url)" --username user --password-file <(echo pass) \
    --ca-file "$(sim_info .cert_file)"
}
W=$(v2k init --vm r1 --dst "$tmp/dst" --workdir-root "$tmp/root" --transport file --target-format raw \
    --datastore-map "LocalDS_0=$(sim_info '.datastores.LocalDS_0')")
T=$(jq -r '.disks[0].target_path' "$W/manifest.json")
CAP=$(jq -r '.disks[0].capacity' "$W/manifest.json")
v2k --workdir "$W" cbt enable >/dev/null
sim_fill r1 2000 0 "$CAP" 65             # data everywhere: any byte skipped shows
v2k --workdir "$W" snapshot base >/dev/null
snap=$(jq -r '.snapshots[-1].disks[0].file_name' "$W/manifest.json")
flat="$(sim_info '.datastores.LocalDS_0')/$(sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/' <<<"$snap")"

# Kill the base copy at a checkpoint; again if the kill came before any
# checkpoint past 0 was saved (then the next run starts over).
ckpt=0 kills=0
for _ in 1 2 3 4 5; do
  V2K_CRASHPOINT=sync:checkpoint@2 v2k --workdir "$W" sync base --checkpoint-interval 0.01 \
    --request-size 64K --max-inflight 256K >"$tmp/kill.out" 2>&1
  rc=$?
  [ $rc -eq 137 ] && kills=$((kills + 1))
  [ $rc -eq 137 ] || cat "$tmp/kill.out" >&2
  ckpt=$(jq '.disks[0].base.checkpoint' "$W/manifest.json")
  [ "$ckpt" -gt 0 ] && break
done
check "the base copy was killed at a checkpoint ($kills kills)" test "$kills" -ge 1
check "a checkpoint inside the disk was saved ($ckpt of $CAP)" test "$ckpt" -gt 0 -a "$ckpt" -lt "$CAP"
# Everything past the checkpoint lost, as after a power cut.
perl -e 'print "Z" x ($ARGV[0] - $ARGV[1])' "$CAP" "$ckpt" |
  dd of="$T" bs=65536 seek="$ckpt" oflag=seek_bytes conv=notrunc status=none
check "the target differs from the snapshot before the resume" bash -c "! cmp -s '$flat' '$T'"
v2k --workdir "$W" sync base
check "the resumed base copy: exit 0" test $? -eq 0
check "it resumed from the checkpoint" jq_true -s \
  'map(select(.event == "sync.disk.start")) | .[-1].detail.resume_from == true' "$W/events.log"
check "the resumed copy rewrote everything past the checkpoint: identical" cmp "$flat" "$T"
check "the base copy is committed" jq_true \
  '.disks[0].base.state == "done" and .disks[0].cbt.change_id != null and .disks[0].base.checkpoint == .disks[0].capacity' \
  "$W/manifest.json"

# A failed incremental sync commits nothing and removes no snapshot: the
# older migration snapshots go only after every disk is committed.
sim_fill r1 2000 4096 65536 66
v2k --workdir "$W" snapshot incr >/dev/null
before=$(jq -c '[.disks[] | {change_id: .cbt.change_id, base: .base.state}]' "$W/manifest.json")
iflat="$(sim_info '.datastores.LocalDS_0')/$(jq -r '.snapshots[-1].disks[0].file_name' "$W/manifest.json" |
        sed 's/^\[[^]]*\] *//; s/\.vmdk$/-flat.vmdk/')"
mv "$iflat" "$iflat.away"
v2k --workdir "$W" sync incr >"$tmp/o" 2>&1
rc=$?
mv "$iflat.away" "$iflat"
check "an incr whose source vanished fails (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 137
check "the failed incr removed no snapshot" test "$(sim_snapshot_names r1 | wc -l)" -eq 2
check "the failed incr committed no changeId" test \
  "$(jq -c '[.disks[] | {change_id: .cbt.change_id, base: .base.state}]' "$W/manifest.json")" = "$before"
v2k --workdir "$W" sync incr
check "the incr then succeeds" test $? -eq 0
check "... identical to its snapshot" cmp "$iflat" "$T"
check "... and the base snapshot is removed" test "$(sim_snapshot_names r1 | wc -l)" -eq 1
tap_done
