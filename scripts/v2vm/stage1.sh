#!/bin/busybox sh
# Stage 1 of the v2 guest's boot: /init of the initramfs (busybox only). It builds the guest's root:
#   lower layer  this machine's /, shared by QEMU over 9p (tag hostroot), mounted read-only;
#   upper layer  a tmpfs, so the guest can write anywhere and every write vanishes at power-off;
# then moves /proc, /sys and /dev over and switches root to stage 2 (stage2.sh), which prepares the
# kernel side (cgroup2, fusectl, modules) and runs the command.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "v2vm: stage 1: $*"
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
  insmod "/mods/$module" || fail "cannot load $module"
done </mods/order

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host || fail "cannot mount the host's / over 9p"
mount -t tmpfs -o mode=755 overlay-rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /new || fail "cannot mount the overlay root"

# Stage 2 and busybox go to a fresh /run, so that stage 2 does not depend on the host having them.
mount -t tmpfs -o mode=755,nosuid,nodev run /new/run || fail "no /run in the new root"
mkdir -p /new/run/v2vm
cp /bin/busybox /stage2.sh /new/run/v2vm/
for fs in proc sys dev; do
  mount --move "/$fs" "/new/$fs" || fail "cannot move /$fs"
done
# switch_root, not chroot: a chroot would leave the initramfs as the real root, and programs that
# look at / through /proc (lxcfs does) would see the wrong one.
exec switch_root /new /run/v2vm/busybox sh /run/v2vm/stage2.sh
