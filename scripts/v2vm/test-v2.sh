#!/usr/bin/env bash
# `npm run test:v2 [-- VITEST ARGS]`: the v2 guest suite. Builds the project if its sources changed,
# makes sure the boot kit exists (scripts/v2vm/build.sh), boots the guest and runs there
#   vitest run --config vitest.v2.config.ts [VITEST ARGS]
# then exits with vitest's status. VITEST ARGS narrow the run, e.g. `npm run test:v2 -- test/v2/guest.v2.ts`.
# The guest's size and timeout can be changed with V2VM_MEM, V2VM_SMP, V2VM_TIMEOUT (see run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s%N)

echo "== v2 guest suite: QEMU guest, Debian's Linux 6.1, real cgroup2, FUSE 7.38 (vitest.v2.config.ts) =="

[ -d node_modules/vitest ] || { echo "test:v2: node_modules is missing: run npm ci first" >&2; exit 1; }
if [ ! -f dist/cli.js ] || [ -n "$(find src tsconfig.json package-lock.json -newer dist/cli.js -print -quit)" ]; then
  echo "test:v2: building dist/"
  npm run --silent build
fi
scripts/v2vm/build.sh >/dev/null

# In the guest: this node first, then the standard directories (Debian's python3, lxcfs, util-linux),
# so that a version manager's shims in the caller's PATH do not slow every test process down.
guest_path="$(dirname "$(command -v node)"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
vitest_args=''
[ $# -eq 0 ] || vitest_args=$(printf ' %q' "$@")
status=0
# The checkout goes in as a local filesystem (V2VM_LOCAL_CWD, see run.sh), and Node (>= 22) keeps the
# code it compiled in the guest's tmpfs for the next process: the suite starts Node processes and
# threads by the hundred, and loading modules was much of their start under emulation. While vitest
# starts, one lxcfs-ts command fills that cache and reads the pinned Node binary through 9p once: the
# first daemon a test starts then starts as fast as the later ones. The suite takes 8 to 14 minutes beside
# the host suite; the timeout only catches a guest that hangs.
V2VM_LOCAL_CWD=1 V2VM_TIMEOUT=${V2VM_TIMEOUT:-1500} scripts/v2vm/run.sh \
  "export PATH=$(printf %q "$guest_path") NODE_COMPILE_CACHE=/run/v2vm/node-compile-cache; bin/lxcfs-ts --version >/dev/null 2>&1 & exec node node_modules/vitest/vitest.mjs run --config vitest.v2.config.ts$vitest_args" ||
  status=$?

elapsed=$((($(date +%s%N) - started) / 1000000000))
echo "== v2 guest suite: exit $status, ${elapsed} s in all (build check, boot, tests, power-off) =="
exit "$status"
