#!/usr/bin/env bash
# Sets up everything the tests need on a Debian host and runs them (as root: they mount FUSE
# filesystems and make cgroups). This is the README's test command and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the tests mount filesystems and create cgroups; run them as root" >&2
  exit 1
fi

# Debian packages: lxcfs is the reference peer of the differential tests; docker.io and mmdebstrap run
# the Docker suite (a private dockerd, images built from Debian's mirror); openssl makes the webhook
# tests' certificates; qemu-system-x86, busybox-static, cpio and kmod build and boot the two guests (installed
# here, once: the guests' builds start together and would race for apt's lock); the rest are the real clients
# the tests read our files with.
packages=(lxcfs procps util-linux python3 coreutils openssl docker.io mmdebstrap qemu-system-x86 busybox-static cpio kmod)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  # Others may be installing packages at the same moment: wait for dpkg's lock instead of failing.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
# `npm test` in its three steps (lint, build, vitest), so that the guests can start between the build and
# the host suite: the v2 guest runs the built dist/ of this tree, which nothing rebuilds after this point.
npm run lint
npm run build
# As npm does for its scripts: the project's binaries first, among them the pinned Node.js runtime.
export PATH="$PWD/node_modules/.bin:$PATH"
# The guest suites boot in the background, QEMU under TCG at a lower priority, so that the timing-sensitive
# host suite keeps the CPUs it needs; QEMU takes what the host suite leaves. Their output is shown once each
# ends.
# - v2: Debian's 6.1 kernel and a real cgroup2 hierarchy (scripts/v2vm);
# - systemd: systemd as pid 1, the packed project installed with scripts/install.sh (scripts/sdvm).
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
nice -n 10 npm run --silent test:v2 >"$logs/v2" 2>&1 &
v2_suite=$!
nice -n 10 npm run --silent test:systemd >"$logs/systemd" 2>&1 &
systemd_suite=$!
echo "== host suite: this machine, Linux $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup) (vitest.config.ts) =="
host_status=0
vitest run 2>&1 | tee "$logs/host" || host_status=$?
# The Docker suite (npm run test:docker without its build: dist/ is built above): the README's Docker recipes
# and the Kubernetes DaemonSet's image under a private dockerd.
echo "== Docker suite: a private dockerd (vitest.docker.config.ts) =="
docker_status=0
vitest run --config vitest.docker.config.ts 2>&1 | tee "$logs/docker" || docker_status=$?
v2_status=0
wait "$v2_suite" || v2_status=$?
echo "== v2 guest suite =="
cat "$logs/v2"
systemd_status=0
wait "$systemd_suite" || systemd_status=$?
echo "== systemd guest suite =="
cat "$logs/systemd"
# What failed, once more at the very end: a CI page may show only the tail of this long log. Each failed
# test comes with the first lines of its error and where it was thrown (up to the source excerpt). A suite
# that failed before naming a test (a guest that did not boot) shows its last lines instead.
declare -A statuses=([host]=$host_status [docker]=$docker_status [v2]=$v2_status [systemd]=$systemd_status)
for suite in host docker v2 systemd; do
  [ "${statuses[$suite]}" -eq 0 ] && continue
  failed=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/$suite" | awk '
    BEGIN { shown = -1 }
    /^ *FAIL / { shown = 0; print; next }
    shown >= 0 && shown < 8 && NF > 0 { print "    " substr($0, 1, 300); shown++; if ($1 == "❯") shown = -1 }
  ' | head -80 || true)
  [ -n "$failed" ] || failed=$(tail -n 10 "$logs/$suite")
  printf '%s\n' "$failed" | sed "s/^/failed in $suite: /"
done
echo "suites: host $host_status, docker $docker_status, v2 $v2_status, systemd $systemd_status (0 = passed)"
[ "$host_status" -eq 0 ] && [ "$docker_status" -eq 0 ] && [ "$v2_status" -eq 0 ] && [ "$systemd_status" -eq 0 ]
