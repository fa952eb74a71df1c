// /proc/pressure/{cpu,io,memory} for a container: its cgroup's PSI file, which has the same format as the
// host's (`some avg10=.. avg60=.. avg300=.. total=..` and a `full` line).

const PSI_LINE = /^(some|full) avg10=\d+\.\d\d avg60=\d+\.\d\d avg300=\d+\.\d\d total=\d+$/;

/** The cgroup's text when it is PSI text, else undefined (host values apply). */
export function renderPressure(cgroupPressure: string): string | undefined {
  const lines = cgroupPressure.split('\n').filter((line) => line !== '');
  return lines.length > 0 && lines.every((line) => PSI_LINE.test(line)) ? lines.join('\n') + '\n' : undefined;
}
