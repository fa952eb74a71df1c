#!/bin/bash
# Builds lxcfs-ts's container image without a registry or a Dockerfile: a Debian root filesystem from
# Debian's mirror (scripts/debian-rootfs.sh: perl-base for remount's helper, coreutils) plus the
# package installed under /opt/lxcfs-ts by scripts/install.sh (it brings its pinned Node.js runtime),
# imported with `docker import`. This is the image deploy/kubernetes/ runs.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/build-image.sh [options]
  --package FILE   the npm pack tarball to install (default: npm pack this checkout, which builds it)
  --tag NAME       image name (default lxcfs-ts:VERSION)
  --output FILE    write the image's root filesystem tarball to FILE instead of importing it
                   (then: docker import --change ... FILE, or copy it to a host without mmdebstrap)
  --rootfs FILE    the Debian root filesystem tarball (default: scripts/debian-rootfs.sh's)
The image is imported with the docker command in $DOCKER (default: docker), which honours $DOCKER_HOST.
EOF
}

die() {
  echo "build-image.sh: $*" >&2
  exit 1
}

checkout=$(dirname "$(dirname "$(readlink -f "$0")")")
package_file=
tag=
output=
rootfs=
while [ $# -gt 0 ]; do
  case "$1" in
    --package) package_file=${2:?--package needs a file}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --output) output=${2:?--output needs a file}; shift 2 ;;
    --rootfs) rootfs=${2:?--rootfs needs a file}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -z "$package_file" ] || [ -f "$package_file" ] || die "$package_file: no such package file"
[ -z "$rootfs" ] || [ -f "$rootfs" ] || die "$rootfs: no such root filesystem tarball"
docker=${DOCKER:-docker}
[ -n "$output" ] || command -v "$docker" >/dev/null || die "$docker is not on PATH; pass --output FILE to write the image tarball instead"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -n "$rootfs" ] || rootfs=$("$checkout/scripts/debian-rootfs.sh")

# The same install as on a host, staged below $work/stage; the systemd unit it writes is not needed.
stage=$work/stage
"$checkout/scripts/install.sh" --root "$stage" --prefix /opt/lxcfs-ts --no-start ${package_file:+--package "$package_file"} >&2
version=$("$stage/opt/lxcfs-ts/bin/lxcfs-ts" --version)
[ -n "$tag" ] || tag=lxcfs-ts:$version

image=${output:-$work/image.tar}
cp "$rootfs" "$image"
tar --append --file "$image" --owner=0 --group=0 --directory "$stage" ./opt/lxcfs-ts
if [ -n "$output" ]; then
  echo "wrote the root filesystem of lxcfs-ts $version to $output" >&2
  exit 0
fi
"$docker" import \
  --change 'ENV PATH=/opt/lxcfs-ts/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENTRYPOINT ["/opt/lxcfs-ts/bin/lxcfs-ts"]' \
  --change 'CMD ["/var/lib/lxcfs-ts/lxcfs"]' \
  --change "LABEL org.opencontainers.image.title=lxcfs-ts org.opencontainers.image.version=$version" \
  --message "lxcfs-ts $version on Debian bookworm" \
  "$image" "$tag" >/dev/null
echo "$tag"
