#!/usr/bin/env bash
# Sets up everything the tests need on a Debian host and runs them (as root: they mount FUSE
# filesystems and make cgroups). This is the README's test command and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the tests mount filesystems and create cgroups; run them as root" >&2
  exit 1
fi

# Debian packages: lxcfs is the reference peer of the differential tests; the rest are the real
# clients the tests read our files with.
packages=(lxcfs procps util-linux python3 coreutils openssl)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
echo "== host suite: this machine, Linux $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup) (vitest.config.ts) =="
npm test
# The v2 guest suite: a QEMU guest with Debian's 6.1 kernel and a real cgroup2 hierarchy (scripts/v2vm).
npm run test:v2
