#!/bin/bash
# boot.sh IMAGE FORMAT BUS LOG [TIMEOUT]: boots IMAGE under QEMU (TCG,
# -snapshot, so the image is never written) with its disk on BUS (virtio,
# sata or pvscsi) and the serial console in LOG, until the guest prints its
# marker or emergency line and powers off, the initramfs gives up finding
# the root disk, or TIMEOUT seconds (default 150) pass. Prints the marker
# line, "V2K-EMERGENCY …", "NO-ROOT …" or "TIMEOUT".
set -u
img=$1 fmt=$2 bus=$3 log=$4 timeout=${5:-150}
case "$bus" in
  virtio) disk=(-drive "file=$img,format=$fmt,if=virtio") ;;
  sata) disk=(-device ahci,id=ahci -drive "file=$img,format=$fmt,if=none,id=d0" -device ide-hd,drive=d0,bus=ahci.0) ;;
  pvscsi) disk=(-device pvscsi,id=scsi -drive "file=$img,format=$fmt,if=none,id=d0" -device scsi-hd,drive=d0,bus=scsi.0) ;;
  *) echo "boot.sh: unknown bus $bus" >&2; exit 2 ;;
esac
rm -f "$log"
qemu-system-x86_64 -machine pc,accel=tcg -cpu max -m 1024 -nodefaults -display none -no-reboot \
  -serial "file:$log" -snapshot "${disk[@]}" </dev/null >/dev/null 2>&1 &
pid=$!
end=$((SECONDS + timeout))
while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $end ]; do
  grep -qa "V2K-MARKER\|V2K-EMERGENCY\|Gave up waiting for root" "$log" 2>/dev/null && sleep 2 && break
  sleep 1
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null
if grep -qa "V2K-MARKER" "$log"; then grep -a "V2K-MARKER" "$log" | head -1 | tr -d '\r'
elif grep -qa "V2K-EMERGENCY" "$log"; then echo "V2K-EMERGENCY $(grep -a -A3 V2K-EMERGENCY "$log" | tail -3 | tr -d '\r' | tr '\n' ' ')"
elif grep -qa "Gave up waiting for root" "$log"; then echo "NO-ROOT $(grep -a "ALERT\|Gave up" "$log" | head -2 | tr -d '\r' | tr '\n' ' ')"
else echo TIMEOUT; fi
