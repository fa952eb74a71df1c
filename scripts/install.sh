#!/bin/bash
# Installs lxcfs-ts to a fixed prefix (npm pack + npm install -g --prefix: nothing is fetched at boot)
# and its systemd unit, then enables and starts it; --uninstall removes both.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install.sh [options]
  --prefix DIR       where to install (default /opt/lxcfs-ts)
  --mountpoint DIR   the daemon's mountpoint in the unit (default /var/lib/lxcfs)
  --package FILE     install this npm pack tarball (default: npm pack this checkout, which builds it)
  --root DIR         stage everything below DIR (packaging, tests); the unit names the final paths
  --no-start         do not run systemctl (no daemon-reload, enable, start, stop)
  --uninstall        stop and disable the service, remove the unit and the installed package
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

prefix=/opt/lxcfs-ts
mountpoint=/var/lib/lxcfs
package_file=
root=
start=1
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --mountpoint) mountpoint=${2:?--mountpoint needs a directory}; shift 2 ;;
    --package) package_file=${2:?--package needs a file}; shift 2 ;;
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --no-start) start=0; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# The unit takes these paths unquoted, and sed below uses | as its separator.
for path in "$prefix" "$mountpoint"; do
  [[ $path == /* && $path != *[[:space:]\|\'\"\\%\$]* ]] || die "$path: expected an absolute path without spaces, quotes, |, \\, % or \$"
done
[ -z "$root" ] || [[ $root == /* ]] || die "--root $root: expected an absolute path"

package_dir=$prefix/lib/node_modules/lxcfs-ts
bin_dir=$prefix/bin
unit=$root/etc/systemd/system/lxcfs-ts.service

systemctl_if_starting() {
  if [ "$start" = 1 ]; then systemctl "$@"; fi
}

if [ "$action" = uninstall ]; then
  systemctl_if_starting disable --now lxcfs-ts.service || true
  rm -f "$unit"
  systemctl_if_starting daemon-reload
  if [ -d "$root$package_dir" ]; then
    npm uninstall --global --prefix "$root$prefix" --no-audit --no-fund lxcfs-ts >/dev/null
  fi
  rm -f "$root$bin_dir/lxcfs-ts-remount"
  # Only directories that are now empty; whatever else lives under the prefix stays.
  for dir in "$root$bin_dir" "$root$prefix/lib/node_modules" "$root$prefix/lib" "$root$prefix"; do
    [ ! -d "$dir" ] || rmdir --ignore-fail-on-non-empty "$dir"
  done
  echo "uninstalled lxcfs-ts from $root$prefix and removed $unit"
  exit 0
fi

command -v npm >/dev/null || die "npm is not on PATH; it installs the package (lxcfs-ts then runs on the Node.js the package pins)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$package_file" ]; then
  checkout=$(dirname "$(dirname "$(readlink -f "$0")")")
  # npm pack runs the package's prepare script, which builds dist/.
  package_file=$work/$(cd "$checkout" && npm pack --pack-destination "$work" --silent | tail -n 1)
fi
[ -f "$package_file" ] || die "$package_file: no such package file"

mkdir -p "$root$prefix"
# --ignore-scripts: the tarball holds the built code; its prepare script would need the dev tools. The
# pinned Node.js runtime comes with it (an optional dependency, for linux-x64).
npm install --global --prefix "$root$prefix" --ignore-scripts --no-audit --no-fund "$package_file" >/dev/null
ln -sfn ../lib/node_modules/lxcfs-ts/scripts/lxcfs-ts-remount "$root$bin_dir/lxcfs-ts-remount"

mkdir -p "$(dirname "$unit")"
version=$("$root$bin_dir/lxcfs-ts" --version) || die "the installed $root$bin_dir/lxcfs-ts does not run (see above)"
sed -e "s|@PACKAGE@|$package_dir|g" -e "s|@BIN_DIR@|$bin_dir|g" -e "s|@MOUNTPOINT@|$mountpoint|g" \
  "$root$package_dir/systemd/lxcfs-ts.service" >"$unit"
echo "installed lxcfs-ts $version to $root$prefix and $unit"

if [ "$start" = 1 ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet lxcfs-ts.service; then
    # The running daemon hands over to the code just installed, without unmounting.
    systemctl reload lxcfs-ts.service
    echo "reloaded the running lxcfs-ts.service: it now serves from the new code"
  else
    systemctl enable --now lxcfs-ts.service
    echo "enabled and started lxcfs-ts.service"
  fi
fi
