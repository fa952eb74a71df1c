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
  const lines = hostCpuinfo.split(/(?<=\n)/); // keeps each line's newline
  let s390 = false;
  let printing = false;
  let shown = 0;
  let out = '';

  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (index === 0 && line.includes('IBM/S390')) {
      s390 = true;
      printing = true;
      continue;
    }
    if (line.startsWith('# processors')) continue;

    const x86 = X86_PROCESSOR.exec(line);
    if (x86) {
      if (shown === limit) break;
      printing = inCpuset.has(Number(x86[1]));
      if (printing) out += `processor\t: ${shown++}\n`;
      continue;
    }
    const s390Processor = s390 ? S390_PROCESSOR.exec(line) : null;
    if (s390Processor) {
      if (shown === limit) break;
      if (inCpuset.has(Number(s390Processor[1]))) out += `processor ${shown++}:${s390Processor[2]}`;
      continue;
    }
    if (printing) out += line;
  }

  return s390 ? `vendor_id       : IBM/S390\n# processors    : ${shown}\n${out}` : out;
}
