#!/usr/bin/env bash
# Builds the boot kit of the v2 guest: a throw-away Linux VM with a real cgroup-v2 hierarchy and
# Debian 12's kernel (6.1, FUSE protocol 7.38), whose root filesystem is this machine's own `/`.
#
#   scripts/v2vm/build.sh [KITDIR]      default KITDIR: $V2VM_KIT, else /var/tmp/lxcfs-ts-v2vm
#
# What it does, once (about 10 s, plus any package installs; afterwards it only checks a stamp):
#   * installs the Debian packages it needs if they are missing: qemu-system-x86 (the emulator),
#     busybox-static (the initramfs userland), cpio (to pack it) and kmod (depmod/modprobe);
#   * downloads Debian's linux-image-<version>-amd64 package with `apt-get download` and unpacks it
#     with `dpkg-deb -x` into the kit: nothing is installed on this machine;
#   * keeps the kernel and the modules a test may want (filesystems, block, virtio, crypto...) with their
#     modules.dep, and packs an initramfs with busybox, the modules the root filesystem needs, and the
#     two boot stages (stage1.sh, stage2.sh beside this script).
# Prints the kit directory. Needs root (apt-get). Run scripts/v2vm/run.sh to boot it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
KIT=${1:-${V2VM_KIT:-/var/tmp/lxcfs-ts-v2vm}}
case "$KIT" in
  /*) ;;
  *) KIT=$PWD/$KIT ;;
esac
case "$KIT/" in
  # The guest reads the kit's modules through its own view of this machine's /, where these are
  # replaced by its own filesystems.
  /run/* | /proc/* | /sys/* | /dev/*) echo "v2vm build: the kit cannot live in $KIT (the guest has its own /run, /proc, /sys, /dev)" >&2; exit 1 ;;
esac

# Modules the initramfs loads to reach the root filesystem (9p over virtio-pci, then overlayfs).
ROOT_MODULES="virtio_pci 9pnet_virtio 9p overlay"
# Parts of the kernel's module tree kept in the kit (the guest loads from it with modprobe).
KEEP_MODULES="kernel/fs kernel/lib kernel/crypto kernel/mm kernel/block kernel/arch kernel/net/9p
  kernel/drivers/block kernel/drivers/virtio kernel/drivers/char kernel/drivers/md kernel/drivers/nvdimm"

log() { echo "v2vm build: $*" >&2; }

# 1. Tools. Checked on every call (cheap), because a kit in /var/tmp can outlive the packages.
need=()
for pair in qemu-system-x86:qemu-system-x86_64 busybox-static:busybox cpio:cpio kmod:depmod; do
  command -v "${pair#*:}" >/dev/null 2>&1 || need+=("${pair%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { log "missing ${need[*]}; run as root to install them"; exit 1; }
  log "installing ${need[*]}"
  aptlog=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$aptlog" 2>&1; then
    cat "$aptlog" >&2
    rm -f "$aptlog"
    log "could not install ${need[*]}"
    exit 1
  fi
  rm -f "$aptlog"
fi
# busybox-static is the one to copy into the initramfs (the dynamic busybox would need its libraries).
busybox=$(command -v busybox)
if LC_ALL=C ldd "$busybox" >/dev/null 2>&1; then
  log "$busybox is dynamically linked; install busybox-static"; exit 1
fi

# 2. The stamp: a kit built by this same recipe (these three files) is reused as it is. Builds are
# serialized by a lock, so that runs started together build the kit once.
recipe=$(cat "$here/build.sh" "$here/stage1.sh" "$here/stage2.sh" | sha256sum | cut -c1-16)
ready() { [ -f "$KIT/stamp" ] && [ "$(cat "$KIT/stamp")" = "$recipe" ] && [ -f "$KIT/vmlinuz" ] && [ -f "$KIT/initrd.gz" ]; }
if ready; then
  echo "$KIT"
  exit 0
fi
mkdir -p "$KIT"
exec 9>"$KIT/.lock"
flock 9
if ready; then
  echo "$KIT"
  exit 0
fi

log "building the kit in $KIT"
work=$(mktemp -d "$KIT/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 3. The kernel package: the version linux-image-amd64 currently points at, unless one was already
# fetched (a rebuild for a changed recipe keeps the kernel, and so its version).
if [ -f "$KIT/kernel.deb" ]; then
  deb="$KIT/kernel.deb"
else
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -qq >/dev/null
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || { log "apt knows no linux-image-*-amd64 package"; exit 1; }
  log "downloading $pkg"
  (cd "$work" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null)
  mv "$work"/*.deb "$KIT/kernel.deb.part" && mv "$KIT/kernel.deb.part" "$KIT/kernel.deb"
  deb="$KIT/kernel.deb"
fi
dpkg-deb -x "$deb" "$work/k"
ver=$(ls "$work/k/lib/modules")
[ "$(echo "$ver" | wc -l)" -eq 1 ] || { log "expected one kernel in $deb, found: $ver"; exit 1; }

# 4. The module tree kept in the kit: a subset, made usable by modprobe with depmod.
tree="$work/modules"
mkdir -p "$tree/lib/modules/$ver"
for part in $KEEP_MODULES; do
  if [ -d "$work/k/lib/modules/$ver/$part" ]; then
    mkdir -p "$tree/lib/modules/$ver/$(dirname "$part")"
    cp -a "$work/k/lib/modules/$ver/$part" "$tree/lib/modules/$ver/$part"
  fi
done
cp "$work/k/lib/modules/$ver"/modules.{builtin,builtin.modinfo,order} "$tree/lib/modules/$ver/"
depmod -b "$tree" "$ver"

# 5. The initramfs: busybox, the root modules in load order, stage 1 as /init, stage 2 to hand over.
rd="$work/initrd"
mkdir -p "$rd"/{bin,mods,proc,sys,dev,host,rw,new}
cp "$busybox" "$rd/bin/busybox"
: >"$rd/mods/order"
for m in $ROOT_MODULES; do
  modprobe -d "$tree" -S "$ver" --show-depends "$m" | while read -r kind path _; do
    [ "$kind" = insmod ] || continue  # "builtin NAME": nothing to load
    name=$(basename "$path")
    grep -qx "$name" "$rd/mods/order" && continue
    case "$name" in
      *.ko) cp "$path" "$rd/mods/$name" ;;
      *.ko.xz) xz -dc "$path" >"$rd/mods/${name%.xz}"; name=${name%.xz} ;;
      *.ko.zst) zstd -qdc "$path" >"$rd/mods/${name%.zst}"; name=${name%.zst} ;;
      *) log "cannot unpack $path"; exit 1 ;;
    esac
    echo "$name" >>"$rd/mods/order"
  done
done
cp "$here/stage1.sh" "$rd/init"
cp "$here/stage2.sh" "$rd/stage2.sh"
chmod 755 "$rd/init" "$rd/stage2.sh"
(cd "$rd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 >"$work/initrd.gz")

# 6. Into place; the stamp last, so that an interrupted build is redone.
rm -rf "$KIT/modules" "$KIT/stamp"
mv "$tree" "$KIT/modules"
cp "$work/k/boot/vmlinuz-$ver" "$KIT/vmlinuz"
# The uncompressed kernel boots straight through its PVH entry: no firmware and no self-decompression,
# which under software emulation halves the boot (2 s instead of 4). run.sh falls back to vmlinuz.
rm -f "$KIT/vmlinux"
offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KIT/vmlinuz" | head -1 | cut -d: -f1)
if [ -n "$offset" ] && xz -dcq --single-stream <(tail -c +$((offset + 1)) "$KIT/vmlinuz") >"$work/vmlinux" 2>/dev/null &&
  [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
  mv "$work/vmlinux" "$KIT/vmlinux"
else
  log "could not unpack an ELF kernel from vmlinuz (not xz?); booting the compressed one"
fi
mv "$work/initrd.gz" "$KIT/initrd.gz"
echo "$ver" >"$KIT/kernel-version"
echo "$recipe" >"$KIT/stamp"
log "kit ready: kernel $ver"
echo "$KIT"
