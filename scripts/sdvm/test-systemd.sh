#!/usr/bin/env bash
# `npm run test:systemd [-- VITEST ARGS]`: the systemd guest suite. Packs the built project (npm pack, as
# users get it), boots a QEMU guest whose pid 1 is systemd 252 (scripts/sdvm), and runs there
#   vitest run --config vitest.systemd.config.ts [VITEST ARGS]
# whose tests install that tarball with scripts/install.sh (npm runs here, see below) and drive the unit
# with systemctl. One boot for the whole suite; exits with vitest's status.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s%N)

echo "== systemd guest suite: QEMU guest, systemd 252 as pid 1, Debian's Linux 6.1, cgroup2 (vitest.systemd.config.ts) =="

[ -d node_modules/vitest ] || { echo "test:systemd: node_modules is missing: run npm ci first" >&2; exit 1; }
if [ ! -f dist/cli.js ] || [ -n "$(find src tsconfig.json package-lock.json -newer dist/cli.js -print -quit)" ]; then
  echo "test:systemd: building dist/"
  npm run --silent build
fi
scripts/sdvm/build.sh >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/lxcfs-ts-sdvm-suite.XXXXXX")
trap 'rm -rf "$work"' EXIT
package=$work/$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -n 1)
# The project's rule: build on the host, install into the guest from the result. npm installs the tarball
# here (with its 210 MB Node.js runtime), staged below $work/stage as a packager stages it; the guest
# unpacks that prefix from one tar file, as a package manager would, and install.sh finds it installed
# from this very tarball. Unpacking the runtime with npm, or copying its 4,700 files one by one over 9p,
# takes the emulated guest many minutes; one sequential file does not.
scripts/install.sh --package "$package" --root "$work/stage" --no-start >/dev/null
tar -C "$work/stage" -cf "$work/prefix.tar" opt/lxcfs-ts
rm -rf "$work/stage"

guest_path="$(dirname "$(command -v node)"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
vitest_args=''
[ $# -eq 0 ] || vitest_args=$(printf ' %q' "$@")
status=0
SDVM_PACKAGE=$package SDVM_PREFIX_TAR=$work/prefix.tar V2VM_ENV="SDVM_PACKAGE SDVM_PREFIX_TAR ${V2VM_ENV:-}" SDVM_SHOW_STATUS=${SDVM_SHOW_STATUS:-error} V2VM_TIMEOUT=${V2VM_TIMEOUT:-1800} \
  nice scripts/sdvm/run.sh "export PATH=$(printf %q "$guest_path"); exec node node_modules/vitest/vitest.mjs run --config vitest.systemd.config.ts$vitest_args" ||
  status=$?

elapsed=$((($(date +%s%N) - started) / 1000000000))
echo "== systemd guest suite: exit $status, ${elapsed} s in all (pack, boot, install, tests, power-off) =="
exit "$status"
