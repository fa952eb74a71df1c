import type { VisibleCpus } from './cpuset.js';

const X86_PROCESSOR = /^processor\s*:\s*(\d+)/;
const S390_PROCESSOR = /^processor\s+(\d+):(.*)$/s;

/**
 * /proc/cpuinfo for a container (lxcfs's rules): only the blocks of CPUs in its cpuset, and with the CFS
 * view only the first `count` of them; `processor` lines renumbered from 0 (always, view or not); every
 * other line of a shown block verbatim (`siblings`, `core id`, `apicid` keep the host's values). Lines
 * before the first processor block and `# processors:` lines are dropped.
 *
 * s390x (first line mentions IBM/S390): the header lines are kept, the `processor N: ...` lines are
 * filtered and renumbered, and the output starts with `vendor_id       : IBM/S390` and
 * `# processors    : <count>`.
 */
export function renderCpuinfo(hostCpuinfo: string, cpus: VisibleCpus): string {
  const inCpuset = new Set(cpus.cpuset);
  const limit = cpus.cfsView && cpus.count > 0 ? cpus.count : Infinity;
  let s390 = false;
  let printing = false;
  let shown = 0;
  let out = '';
  // Walked line by line with indexOf, and the lines of a shown block copied as one run: this file is
  // large and read often, and garbage makes the reader threads pause to collect it.
  let run = -1; // where the shown lines not yet copied begin
  for (let start = 0; start < hostCpuinfo.length;) {
    const newline = hostCpuinfo.indexOf('\n', start);
    const end = newline < 0 ? hostCpuinfo.length : newline + 1; // the line with its newline
    const kept = lineKind(hostCpuinfo, s390, start, end);
    if (kept !== 'verbatim' || !printing) {
      if (run >= 0) out += hostCpuinfo.slice(run, start);
      run = -1;
    }
    if (typeof kept === 'object') {
      if (shown === limit) break;
      const shownHere = inCpuset.has(kept.cpu);
      if (kept.s390) {
        if (shownHere) out += `processor ${shown++}:${kept.tail}`;
      } else {
        printing = shownHere;
        if (printing) out += `processor\t: ${shown++}\n`;
      }
    } else if (kept === 's390-header') {
      s390 = true;
      printing = true;
    } else if (kept === 'verbatim' && printing && run < 0) {
      run = start;
    }
    start = end;
  }
  if (run >= 0) out += hostCpuinfo.slice(run);
  return s390 ? `vendor_id       : IBM/S390\n# processors    : ${shown}\n${out}` : out;
}

type LineKind = 'verbatim' | 'dropped' | 's390-header' | { cpu: number; s390: boolean; tail: string };

/** What a line of the host's cpuinfo is; only processor lines are sliced out to be parsed. */
function lineKind(text: string, s390: boolean, start: number, end: number): LineKind {
  if (start === 0 && text.slice(0, end).includes('IBM/S390')) return 's390-header';
  if (text.startsWith('# processors', start)) return 'dropped';
  if (!text.startsWith('processor', start)) return 'verbatim';
  const line = text.slice(start, end);
  const x86 = X86_PROCESSOR.exec(line);
  if (x86) return { cpu: Number(x86[1]), s390: false, tail: '' };
  const s390Processor = s390 ? S390_PROCESSOR.exec(line) : null;
  if (s390Processor) return { cpu: Number(s390Processor[1]), s390: true, tail: s390Processor[2]! };
  return 'verbatim';
}
