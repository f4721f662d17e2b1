#!/bin/bash
# build-guest.sh OUT.raw: a small real Debian 12 guest as a VMware VM would
# have it, from Debian's packages (about a minute). A 2 GiB MBR disk: p1 ext4
# root (bootable), p2 ext4 data. grub on the serial console, a VMware-style
# fstab (/dev/sda1, /dev/sda2), an initramfs with only VMware's storage
# drivers (no virtio), open-vm-tools, and two units: one prints a marker
# line to the serial port and powers off; the other reports an emergency.
# Needs root, loop devices and debootstrap.
set -euo pipefail
out=$1
mirror=${V2K_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/v2k-guest-XXXXXX)
loop=
cleanup() {
  set +e
  for m in dev/pts dev proc sys; do umount "$work/mnt/$m" 2>/dev/null; done
  umount "$work/mnt/data" 2>/dev/null
  umount "$work/mnt" 2>/dev/null
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT

img=$work/disk.raw
truncate -s 2G "$img"
sfdisk -q "$img" <<'PARTS'
label: dos
start=2048, size=3143680, type=83, bootable
type=83
PARTS
loop=$(losetup -P --show -f "$img")
partx -u "$loop" 2>/dev/null || true
for p in 1 2; do
  # No udev here: make the partition nodes if the kernel did not.
  if [ ! -b "${loop}p$p" ]; then
    mm=$(cat "/sys/class/block/$(basename "$loop")p$p/dev")
    mknod "${loop}p$p" b "${mm%%:*}" "${mm##*:}"
  fi
done
mkfs.ext4 -q -L root "${loop}p1"
mkfs.ext4 -q -L data "${loop}p2"
mkdir -p "$work/mnt"
mount "${loop}p1" "$work/mnt"
mkdir -p "$work/mnt/data"
mount "${loop}p2" "$work/mnt/data"
echo "round 0" >"$work/mnt/data/v2k-round.txt"

debootstrap --variant=minbase \
  --include=systemd-sysv,udev,kmod,initramfs-tools,e2fsprogs,procps,util-linux \
  bookworm "$work/mnt" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }

root=$work/mnt
for m in proc sys dev dev/pts; do mkdir -p "$root/$m"; mount --bind "/$m" "$root/$m"; done
uuid=$(blkid -s UUID -o value "${loop}p1")
# update-grub writes root=/dev/loop… unless the by-uuid link exists.
mkdir -p /dev/disk/by-uuid
ln -sf "${loop}p1" "/dev/disk/by-uuid/$uuid"

cat >"$root/etc/fstab" <<'FSTAB'
/dev/sda1  /      ext4  defaults,errors=remount-ro  0 1
/dev/sda2  /data  ext4  defaults,x-systemd.device-timeout=20s  0 2
FSTAB
echo v2k-guest >"$root/etc/hostname"
# Only VMware's storage drivers in the initramfs: Debian's default
# MODULES=most would bring virtio along and hide the problem.
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/v2k-modules"
printf '%s\n' vmw_pvscsi mptsas ata_piix ahci sd_mod ext4 >"$root/etc/initramfs-tools/modules"
mkdir -p "$root/etc/default"
cat >"$root/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB

cat >"$root/usr/local/sbin/v2k-marker" <<'MARKER'
#!/bin/sh
tools=absent
dpkg -s open-vm-tools >/dev/null 2>&1 && tools=present
echo "V2K-MARKER root=$(findmnt -no SOURCE /) data=$(findmnt -no SOURCE /data) vmware-tools=$tools file=$(cat /data/v2k-round.txt 2>/dev/null | tr ' ' _)" >/dev/ttyS0
sync
systemctl poweroff
MARKER
cat >"$root/usr/local/sbin/v2k-emergency" <<'EMERG'
#!/bin/sh
{ echo "V2K-EMERGENCY"; journalctl -b -p err --no-pager | tail -20; } >/dev/ttyS0
sync
poweroff -f
EMERG
chmod +x "$root/usr/local/sbin/v2k-marker" "$root/usr/local/sbin/v2k-emergency"
cat >"$root/etc/systemd/system/v2k-marker.service" <<'UNIT'
[Unit]
Description=ablestack-v2k boot marker
After=local-fs.target
Requires=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/v2k-marker

[Install]
WantedBy=multi-user.target
UNIT
cat >"$root/etc/systemd/system/v2k-emergency.service" <<'UNIT'
[Unit]
Description=ablestack-v2k emergency marker
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/v2k-emergency

[Install]
WantedBy=emergency.target rescue.target
UNIT

chroot "$root" /bin/sh -ec '
  export DEBIAN_FRONTEND=noninteractive
  echo "grub-pc grub-pc/install_devices multiselect" | debconf-set-selections
  apt-get install -y --no-install-recommends linux-image-amd64 grub-pc open-vm-tools >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; exit 1; }
  systemctl enable v2k-marker.service v2k-emergency.service >/dev/null 2>&1
  systemctl mask open-vm-tools.service vgauth.service >/dev/null 2>&1 || true
  update-initramfs -u -k all >/dev/null 2>&1
  apt-get clean
  rm -rf /var/lib/apt/lists/*
'
# grub on the loop device, the configuration naming root by UUID.
chroot "$root" grub-install --target=i386-pc "$loop" >/dev/null 2>&1
chroot "$root" update-grub >/dev/null 2>&1
grep -q "root=UUID=$uuid" "$root/boot/grub/grub.cfg" || { echo "grub.cfg does not name root by UUID" >&2; exit 1; }
# The initramfs must not carry virtio (pipefail-safe count, see the notes).
n=$(chroot "$root" sh -c 'lsinitramfs /boot/initrd.img-* | grep -c virtio_blk' || true)
[ "$n" = 0 ] || { echo "the initramfs has virtio_blk" >&2; exit 1; }
rm -f "/dev/disk/by-uuid/$uuid"
for m in dev/pts dev proc sys; do umount "$root/$m"; done
umount "$root/data"
umount "$root"
zerofree "${loop}p1"
zerofree "${loop}p2"
losetup -d "$loop"
loop=
cp --sparse=always "$img" "$out.tmp"
mv "$out.tmp" "$out"
