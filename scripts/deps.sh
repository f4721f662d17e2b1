#!/bin/sh
# Installs the Debian packages that the build, the tests and the simulator
# need, in one non-interactive apt-get call, and only those that are missing.
set -eu
PACKAGES="
  build-essential pkg-config meson ninja-build git ca-certificates
  golang-go golang-github-vmware-govmomi-dev
  libjansson-dev libcurl4-openssl-dev libssl-dev libxml2-dev libnbd-dev librbd-dev libvirt-dev
  libcmocka-dev uuid-dev python3 clang libclang-rt-14-dev
  nbdkit libnbd-bin qemu-utils libvirt-clients libxml2-utils
  ceph-mon ceph-osd ceph-common librados-dev fdisk
  jq openssl curl procps util-linux coreutils time bc
  virt-v2v libguestfs-tools qemu-system-x86 linux-image-amd64 debootstrap zerofree e2fsprogs
"
missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
echo "make deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "make deps: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists; update them before the install.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
