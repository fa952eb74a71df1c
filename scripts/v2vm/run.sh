#!/usr/bin/env bash
# Boots the v2 guest (see build.sh and test/v2/README.md), runs COMMAND there with /bin/sh in the
# current directory, prints its output and exits with its status.
#
#   scripts/v2vm/run.sh 'COMMAND'
#
# Environment:
#   V2VM_KIT       kit directory (default /var/tmp/lxcfs-ts-v2vm; built on first use)
#   V2VM_MEM       guest memory in MiB (default 2048)
#   V2VM_SMP       guest CPUs (default 2)
#   V2VM_TIMEOUT   seconds before the guest is killed (default 600); the exit status is then 124
#   V2VM_ACCEL     tcg (default) or kvm: these machines have /dev/kvm but nested KVM does not run there
#   V2VM_CPU       QEMU CPU model (default max)
#   V2VM_DISK_MB   attach a blank virtio disk of that many MiB as /dev/vda (default: none)
#   V2VM_LOCAL_CWD if set, the current directory (but .git and files over 16 MiB) is copied into an ext4
#                  image that the guest overlays on it: see local_cwd below
#   V2VM_ENV       names of more variables to pass to the command (PATH, HOME, LANG and CI always are)
#   V2VM_QUIET     if set, the guest does not print its "v2vm: up in ..." line before the command's output
# Exit status: the command's; 124 on timeout; 125 if the guest stopped without running it to the end.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 'COMMAND'" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
KIT=$("$here/build.sh" "${V2VM_KIT:-/var/tmp/lxcfs-ts-v2vm}") || { echo "v2vm: the kit could not be built" >&2; exit 125; }

x=$(mktemp -d "${TMPDIR:-/tmp}/v2vm.XXXXXX")
trap 'rm -rf "$x"' EXIT

# The exchange directory: what stage 2 needs, the job, and (afterwards) the exit status.
printf 'V2VM_KIT=%q V2VM_QUIET=%q\n' "$KIT" "${V2VM_QUIET:-}" >"$x/config"

# Over 9p, every open and close of a file is a round trip to QEMU, and on a loaded machine each one waits
# for QEMU's threads to be scheduled: a Node process that loads a few hundred modules (every lxcfs-ts
# command, every serving process and reader thread of the daemon) spent seconds on that alone. A local
# filesystem answers opens from the guest's own caches. So the current directory goes into an ext4
# image (hard links where the filesystem allows, so the copy costs little), attached read-only and
# overlaid on the directory, with a tmpfs for writes; what the image leaves out (.git, big files such as
# a pinned Node binary, read once through the page cache anyway) still comes through from 9p beneath.
local_cwd() {
  local stage=$x/cwd-stage files mb
  mkdir "$stage"
  find . -path ./.git -prune -o -type f -size +16M -o -print0 | cpio -0 -pdlm --quiet "$stage" 2>/dev/null ||
    { echo "v2vm: cannot copy $PWD for the guest" >&2; return 1; }
  files=$(find "$stage" | wc -l)
  mb=$(du -sm "$stage" | cut -f1)
  mke2fs -q -t ext4 -O ^has_journal -N $((files + files / 4 + 1024)) -d "$stage" "$x/cwd.img" "$((mb + mb / 4 + 64))M" ||
    { echo "v2vm: cannot make the image of $PWD" >&2; return 1; }
  rm -rf "$stage"
  disk+=(-drive "file=$x/cwd.img,format=raw,if=none,id=cwd,readonly=on" -device "virtio-blk-pci,drive=cwd,serial=v2vm-cwd")
}
disk=()
if [ -n "${V2VM_DISK_MB:-}" ]; then
  truncate -s "${V2VM_DISK_MB}M" "$x/disk.img"
  disk=(-drive "file=$x/disk.img,format=raw,if=virtio,cache=unsafe")
fi
if [ -n "${V2VM_LOCAL_CWD:-}" ]; then
  local_cwd || exit 125
fi

{
  for name in PATH HOME LANG CI ${V2VM_ENV:-}; do
    [ -n "${!name+set}" ] && printf 'export %s=%q\n' "$name" "${!name}"
  done
  if [ -n "${V2VM_LOCAL_CWD:-}" ]; then
    # In the guest: the disk whose serial says so, mounted and overlaid on the directory before the cd.
    printf 'cwd=%q\n' "$PWD"
    cat <<'GUEST'
bb=/run/v2vm/busybox dev=
for block in /sys/block/vd*; do [ "$($bb cat "$block/serial" 2>/dev/null)" = v2vm-cwd ] && dev=/dev/${block##*/}; done
[ -n "$dev" ] && $bb mkdir -p /run/v2vm/cwd/image /run/v2vm/cwd/upper /run/v2vm/cwd/work &&
  $bb modprobe ext4 && $bb mount -t ext4 -o ro "$dev" /run/v2vm/cwd/image &&
  $bb mount -t overlay -o "lowerdir=/run/v2vm/cwd/image:$cwd,upperdir=/run/v2vm/cwd/upper,workdir=/run/v2vm/cwd/work" v2vm-cwd "$cwd" ||
  { echo "v2vm: cannot overlay the image of $cwd" >&2; exit 126; }
GUEST
  fi
  printf 'cd %q || exit 126\n' "$PWD"
  printf '%s\n' "$1"
} >"$x/job"

kernel=$KIT/vmlinux
[ -f "$kernel" ] || kernel=$KIT/vmlinuz
accel=${V2VM_ACCEL:-tcg}
[ "$accel" = tcg ] && accel=tcg,thread=multi

# Console on the serial port (stdout); no network or graphics. The guest's lines end in \r\n: the \r
# go, and so does the kernel's last word. tsc=reliable: the emulated CPUs claim no constant TSC, so the
# kernel would fall back to the HPET, whose every read (each clock_gettime, no vDSO) is an emulated
# device access, about 5 times the cost of a TSC read; the TSC here is the host's own, and the kernel
# still calibrates its rate against the HPET.
timeout -k 5 "${V2VM_TIMEOUT:-600}" qemu-system-x86_64 \
  -nodefaults -no-user-config -machine pc -accel "$accel" -cpu "${V2VM_CPU:-max}" -m "${V2VM_MEM:-2048}" -smp "${V2VM_SMP:-2}" \
  -display none -monitor none -serial stdio -no-reboot \
  -kernel "$kernel" -initrd "$KIT/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 8250.nr_uarts=1 tsc=reliable" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$x,mount_tag=v2x,security_model=none,multidevs=remap" \
  -device virtio-rng-pci "${disk[@]}" </dev/null | sed -u -e 's/\r$//' -e '/\] reboot: Power down$/d'
status=("${PIPESTATUS[@]}")

if [ -s "$x/rc" ]; then
  exit "$(cat "$x/rc")"
elif [ "${status[0]}" -eq 124 ] || [ "${status[0]}" -eq 137 ]; then
  echo "v2vm: timed out after ${V2VM_TIMEOUT:-600} s" >&2
  exit 124
else
  echo "v2vm: the guest stopped before the command finished (qemu exit ${status[0]})" >&2
  exit 125
fi
