# Stage 2 of the v2 guest's boot, run by busybox sh as pid 1 on the overlay root (see stage1.sh).
# It sets up what the tests need from the kernel, runs the command that run.sh left in the exchange
# directory, writes its exit status there and powers off.
bb=/run/v2vm/busybox
x=/run/v2vm/x # the exchange directory: run.sh's temporary directory, shared read-write (tag v2x)

note() { echo "v2vm: $*"; }
off() {
  $bb sync
  $bb poweroff -f
}

$bb mkdir -p $x
$bb mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 v2x $x || { note "no exchange directory"; off; }
# shellcheck disable=SC1091
. $x/config # sets V2VM_KIT (the kit directory, on the host and so also here) and V2VM_QUIET

# A fresh cgroup2 hierarchy, every controller enabled for the root's children.
$bb mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || { note "cannot mount cgroup2"; off; }
for c in $($bb cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || note "cannot enable the $c controller"
done

# The kit's module tree, where modprobe (the kernel's request_module too) looks for it.
ver=$($bb uname -r)
$bb mkdir -p /usr/lib/modules
$bb rm -rf "/usr/lib/modules/$ver"
$bb ln -s "$V2VM_KIT/modules/lib/modules/$ver" "/usr/lib/modules/$ver"
for m in fuse loop zram virtio_blk; do
  $bb modprobe "$m" || note "cannot load $m"
done
$bb mount -t fusectl fusectl /sys/fs/fuse/connections || note "cannot mount fusectl"

# What a booted Debian has and the host's files cannot give: /dev/shm (POSIX semaphores: Python's
# multiprocessing), /dev/pts, a loopback interface, a host name. /tmp stays the host's, overlaid
# like everything else: the command's directory may well be below it.
$bb mkdir -p /dev/shm /dev/pts
$bb mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
$bb mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$bb ln -sf pts/ptmx /dev/ptmx
$bb ln -sf /proc/self/fd /dev/fd
$bb ip link set lo up
$bb hostname v2vm

[ -n "${V2VM_QUIET:-}" ] || note "up in $($bb cut -d' ' -f1 /proc/uptime) s: Linux $ver, $($bb nproc) CPUs," \
  "$(($($bb awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024)) MiB, cgroup2: $($bb cat /sys/fs/cgroup/cgroup.subtree_control)"

# The command, with its output through a pipe rather than the console itself: programs then see no
# terminal (no progress redrawing), as in CI. V2VM_GUEST=1 tells them where they are.
$bb mkfifo /run/v2vm/out
$bb cat /run/v2vm/out &
reader=$!
V2VM_GUEST=1 /bin/sh $x/job </dev/null >/run/v2vm/out 2>&1
echo $? >$x/rc
# Processes the command left running keep the pipe open: give them a moment, then stop listening.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  $bb kill -0 $reader 2>/dev/null || break
  $bb sleep 0.2
done
if $bb kill -0 $reader 2>/dev/null; then
  note "the command left processes running:" $($bb ps -o pid,args | $bb awk 'NR > 1 && $2 !~ /^\[/ && $0 !~ /\/run\/v2vm\// {print; printf ";"}')
  $bb kill $reader
fi
# Let the serial port drain before the power goes.
$bb sleep 0.2
off
