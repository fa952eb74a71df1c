// What real clients count as "the CPUs", each from the files it reads itself, and what a container sees
// in its /sys/devices/system/cpu: shell scripts run inside simulated containers (host and v2 suites).

/** Every client's CPU count, one `name: count` line each (parse with `namedLines`). */
export const CPU_COUNTS = `echo "getconf CONF: $(getconf _NPROCESSORS_CONF)"
echo "getconf ONLN: $(getconf _NPROCESSORS_ONLN)"
echo "nproc --all: $(nproc --all)"
echo "nproc: $(nproc)"
echo "lscpu CPU(s): $(lscpu | sed -n 's/^CPU(s): *//p')"
echo "lscpu on-line: $(lscpu | sed -n 's/^On-line CPU(s) list: *//p')"
echo "python3: $(python3 -c 'import os; print(os.cpu_count())')"
echo "node: $(node -e 'console.log(require("os").cpus().length)')"
echo "cpuinfo: $(grep -c ^processor /proc/cpuinfo)"
echo "stat: $(grep -c '^cpu[0-9]' /proc/stat)"`;

/** The cpu directory: its cpuN names, its CPU lists, and per cpuN its online and topology lists and masks. */
export const CPU_DIRECTORY = `cd /sys/devices/system/cpu
echo "cpus: $(ls -d cpu[0-9]* | tr '\\n' ' ')"
for f in online present possible offline; do echo "$f: $(cat $f)"; done
for c in cpu[0-9]*; do
  echo "$c/online: $(cat $c/online)"
  for f in thread_siblings_list core_cpus_list package_cpus_list core_siblings_list thread_siblings package_cpus; do
    echo "$c/topology/$f: $(cat $c/topology/$f)"
  done
done
echo "cpu0/online writable: $(test -w cpu0/online && echo yes || echo no)"`;

/** `name: value` lines as an object. */
export function namedLines(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => line.split(': ') as [string, string]),
  );
}

/** The counts of CPU_COUNTS when every client sees `count` CPUs listed as `onlineList`. */
export function allCounting(count: string, onlineList: string): Record<string, string> {
  return {
    'getconf CONF': count,
    'getconf ONLN': count,
    'nproc --all': count,
    nproc: count,
    'lscpu CPU(s)': count,
    'lscpu on-line': onlineList,
    python3: count,
    node: count,
    cpuinfo: count,
    stat: count,
  };
}
