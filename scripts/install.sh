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
  --offline          take the package's dependencies from the npm cache only (no network)
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
offline=0
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --mountpoint) mountpoint=${2:?--mountpoint needs a directory}; shift 2 ;;
    --package) package_file=${2:?--package needs a file}; shift 2 ;;
    --root) root=${2:?--root needs a directory}; shift 2 ;;
    --no-start) start=0; shift ;;
    --offline) offline=1; shift ;;
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

# The mountpoint an installed unit serves (its ExecStart's last word), or nothing.
installed_mountpoint() {
  if [ -f "$unit" ]; then sed -n 's|^ExecStart=.* \(/[^ ]*\)$|\1|p' "$unit" | tail -n 1; fi
}

if [ "$action" = uninstall ]; then
  systemctl_if_starting disable --now lxcfs-ts.service || true
  rm -f "$unit"
  systemctl_if_starting daemon-reload
  # What npm install -g put there: the package (its runtime inside) and its two commands. Plain rm, no
  # npm: a host given the staged tree by a package (--root) may have none.
  rm -rf "$root$package_dir"
  rm -f "$root$bin_dir/lxcfs-ts" "$root$bin_dir/lxcfs-ts-remount"
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
  echo "building the package from $checkout (npm pack)"
  # npm pack runs the package's prepare script, which builds dist/.
  package_file=$work/$(cd "$checkout" && npm pack --pack-destination "$work" --silent | tail -n 1)
fi
[ -f "$package_file" ] || die "$package_file: no such package file"

mkdir -p "$root$prefix"
# --ignore-scripts: the tarball holds the built code; its prepare script would need the dev tools. The
# pinned Node.js runtime comes with it (an optional dependency, for linux-x64). Dependencies already in
# the npm cache are taken from there without asking the registry; without network, a missing one fails
# within a minute (few, short retries) instead of npm retrying for long in silence.
npm_network=(--prefer-offline --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=30000)
[ "$offline" = 0 ] || npm_network=(--offline)
# Re-running with the same package (to change the mountpoint, say) only rewrites the unit: unpacking the
# runtime again takes long on a small machine.
package_sum=$(sha256sum "$package_file" | cut -d' ' -f1)
installed_from=$root$package_dir/.installed-from-sha256
if [ -f "$installed_from" ] && [ "$(cat "$installed_from")" = "$package_sum" ] && [ -x "$root$bin_dir/lxcfs-ts" ]; then
  echo "$(basename "$package_file") is already installed in $root$prefix"
else
  echo "installing $(basename "$package_file") and its dependencies to $root$prefix (npm install$([ "$offline" = 0 ] || echo ' --offline'))"
  npm_log=$work/npm.log
  if ! npm install --global --prefix "$root$prefix" --ignore-scripts --no-audit --no-fund "${npm_network[@]}" "$package_file" >"$npm_log" 2>&1; then
    cat "$npm_log" >&2
    if [ "$offline" = 1 ]; then
      die "npm could not install the package from the npm cache alone (see above): run it once with network access, or without --offline"
    fi
    die "npm could not install the package (see above); without network access, fill the npm cache elsewhere (npm cache add) and run with --offline"
  fi
  echo "$package_sum" >"$installed_from"
fi
# The mountpoint's parent; the daemon makes the mountpoint itself (it may be a dead FUSE mount, on which
# mkdir fails).
mkdir -p "$root$(dirname "$mountpoint")"
ln -sfn ../lib/node_modules/lxcfs-ts/scripts/lxcfs-ts-remount "$root$bin_dir/lxcfs-ts-remount"

mkdir -p "$(dirname "$unit")"
version=$("$root$bin_dir/lxcfs-ts" --version) || die "the installed $root$bin_dir/lxcfs-ts does not run (see above)"
old_mountpoint=$(installed_mountpoint)
sed -e "s|@PACKAGE@|$package_dir|g" -e "s|@BIN_DIR@|$bin_dir|g" -e "s|@MOUNTPOINT@|$mountpoint|g" \
  "$root$package_dir/systemd/lxcfs-ts.service" >"$unit"
echo "installed lxcfs-ts $version to $root$prefix and $unit"

if [ "$start" = 1 ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet lxcfs-ts.service && [ -n "$old_mountpoint" ] && [ "$old_mountpoint" != "$mountpoint" ]; then
    # A reload keeps the mount where it is: only a restart moves it.
    systemctl restart lxcfs-ts.service
    echo "restarted lxcfs-ts.service: it now serves $mountpoint instead of $old_mountpoint"
    echo "containers given files from $old_mountpoint read nothing until they are restarted with $mountpoint" >&2
  elif systemctl is-active --quiet lxcfs-ts.service; then
    # The running daemon hands over to the code just installed, without unmounting; the reload returns
    # once the new code serves, and fails if it could not.
    systemctl reload lxcfs-ts.service
    echo "reloaded the running lxcfs-ts.service: it now serves from the new code"
  else
    systemctl enable --now lxcfs-ts.service
    echo "enabled and started lxcfs-ts.service"
  fi
fi
