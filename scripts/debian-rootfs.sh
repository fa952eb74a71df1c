#!/bin/bash
# Prints the path of a Debian root filesystem tarball (bookworm, minbase + procps), built with mmdebstrap
# from Debian's mirror the first time and cached afterwards. It is the base of lxcfs-ts's image
# (scripts/build-image.sh) and of the Docker suite's application image: no image registry is needed.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/debian-rootfs.sh [--cache DIR] [--mirror URL]
  --cache DIR    where the tarball is kept (default /var/tmp/lxcfs-ts-rootfs)
  --mirror URL   Debian mirror (default: mmdebstrap's, deb.debian.org)
EOF
}

die() {
  echo "debian-rootfs.sh: $*" >&2
  exit 1
}

cache=/var/tmp/lxcfs-ts-rootfs
mirror=
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"

# procps: free, uptime, top for the applications; libatomic1: the Node.js runtime links it. The daemon
# also needs util-linux's mount, umount and nsenter and coreutils' timeout, which minbase has.
suite=bookworm
options=(--variant=minbase --include=procps,libatomic1
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/locale/*')
key=$(printf '%s\n' "$suite" "${options[@]}" "$mirror" | sha256sum | cut -c1-12)
tarball=$cache/$suite-$key.tar
if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  partial=$(mktemp --suffix=.tar "$cache/.partial-XXXXXX")
  trap 'rm -f "$partial"' EXIT
  echo "debian-rootfs.sh: building $tarball with mmdebstrap (a few minutes, once)" >&2
  mmdebstrap --quiet --format=tar "${options[@]}" "$suite" "$partial" ${mirror:+"$mirror"} >&2 || die "mmdebstrap failed (see above)"
  chmod 644 "$partial"
  mv "$partial" "$tarball"
fi
echo "$tarball"
