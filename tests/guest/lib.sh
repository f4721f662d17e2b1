# Helpers for the real-guest suite and `make demo GUEST=debian`. Source it.
#   guest_image CACHE_DIR          prints the guest image, building it (about a
#                                  minute) when missing or when its recipe changed
#   guest_write_round FLAT N       writes "round N" into /data/v2k-round.txt of
#                                  the guest disk FLAT (its second partition),
#                                  and fails unless it reads it back (debugfs
#                                  exits 0 even when its request failed)
guest_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

guest_image() {
  local cache=$1 img sum
  mkdir -p "$cache" || return 1
  img=$cache/debian12.raw
  sum=$(sha256sum "$guest_lib_dir/build-guest.sh" | cut -c1-16)
  if [ ! -s "$img" ] || [ "$(cat "$img.recipe" 2>/dev/null)" != "$sum" ]; then
    echo "building the Debian 12 guest image with debootstrap (about a minute)" >&2
    bash "$guest_lib_dir/build-guest.sh" "$img" >&2 || return 1
    echo "$sum" >"$img.recipe"
  fi
  echo "$img"
}

guest_write_round() {
  local flat=$1 n=$2 start size dev f
  start=$(sfdisk -J "$flat" | jq '.partitiontable.partitions[1].start')
  size=$(sfdisk -J "$flat" | jq '.partitiontable.partitions[1].size')
  dev=$(losetup --show -f -o $((start * 512)) --sizelimit $((size * 512)) "$flat") || return 1
  f=$(mktemp)
  echo "round $n" >"$f"
  debugfs -w -R "rm /v2k-round.txt" "$dev" >/dev/null 2>&1   # absent the first time
  local rc=0
  debugfs -w -R "write $f /v2k-round.txt" "$dev" >/dev/null 2>&1 || rc=1
  [ "$(debugfs -R "cat /v2k-round.txt" "$dev" 2>/dev/null)" = "round $n" ] || rc=1
  rm -f "$f"
  losetup -d "$dev" || rc=1
  return $rc
}
