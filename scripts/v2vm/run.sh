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
{
  for name in PATH HOME LANG CI ${V2VM_ENV:-}; do
    [ -n "${!name+set}" ] && printf 'export %s=%q\n' "$name" "${!name}"
  done
  printf 'cd %q || exit 126\n' "$PWD"
  printf '%s\n' "$1"
} >"$x/job"

kernel=$KIT/vmlinux
[ -f "$kernel" ] || kernel=$KIT/vmlinuz
accel=${V2VM_ACCEL:-tcg}
[ "$accel" = tcg ] && accel=tcg,thread=multi
disk=()
if [ -n "${V2VM_DISK_MB:-}" ]; then
  truncate -s "${V2VM_DISK_MB}M" "$x/disk.img"
  disk=(-drive "file=$x/disk.img,format=raw,if=virtio,cache=unsafe")
fi

# Console on the serial port (stdout); no network or graphics. The guest's lines end in \r\n: the \r
# go, and so does the kernel's last word.
timeout -k 5 "${V2VM_TIMEOUT:-600}" qemu-system-x86_64 \
  -nodefaults -no-user-config -machine pc -accel "$accel" -cpu "${V2VM_CPU:-max}" -m "${V2VM_MEM:-2048}" -smp "${V2VM_SMP:-2}" \
  -display none -monitor none -serial stdio -no-reboot \
  -kernel "$kernel" -initrd "$KIT/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 8250.nr_uarts=1" \
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
