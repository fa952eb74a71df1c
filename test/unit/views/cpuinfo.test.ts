import { describe, expect, it } from 'vitest';
import { renderCpuinfo } from '../../../src/views/cpuinfo.js';
import { visibleCpus } from '../../../src/views/cpuset.js';
import { s390Cpuinfo, x86Cpuinfo } from '../../fixtures/proc-text.js';

const cpus = (cpuset: string, quota?: number, cfsView = false) => visibleCpus({ cpuset, quota, cfsView }, 4);
const blocks = (text: string) => text.split('\n\n').filter(Boolean);

describe('renderCpuinfo, x86', () => {
  const host = x86Cpuinfo(4);

  it('shows every CPU unchanged for the whole cpuset', () => {
    expect(renderCpuinfo(host, cpus('0-3'))).toBe(host);
  });

  it('keeps only the cpuset\'s blocks, renumbered from 0, with every other line verbatim', () => {
    const out = renderCpuinfo(host, cpus('1,3'));
    const hostBlocks = blocks(host);
    expect(blocks(out)).toEqual([hostBlocks[1]!.replace('processor\t: 1', 'processor\t: 0'), hostBlocks[3]!.replace('processor\t: 3', 'processor\t: 1')]);
    expect(out).toContain('core id\t\t: 3\n');
    expect(out).toContain('siblings\t: 4\n');
    expect(out.endsWith('\n\n')).toBe(true);
  });

  it('renumbers without the CFS view too, and ignores the quota then', () => {
    expect(renderCpuinfo(host, cpus('2', 0.5)).match(/^processor.*$/gm)).toEqual(['processor\t: 0']);
    expect(renderCpuinfo(host, cpus('0-3', 0.5)).match(/^processor/gm)).toHaveLength(4);
  });

  it('shows the first ceil(quota) CPUs of the cpuset in the CFS view', () => {
    const out = renderCpuinfo(host, cpus('1-3', 1.5, true));
    expect(out.match(/^processor.*$/gm)).toEqual(['processor\t: 0', 'processor\t: 1']);
    expect(out.match(/^apicid.*$/gm)).toEqual(['apicid\t\t: 1', 'apicid\t\t: 2']);
  });

  it('drops lines before the first processor and "# processors:" lines', () => {
    expect(renderCpuinfo(`preamble\n# processors: 4\n${host}`, cpus('0'))).toBe(blocks(host)[0] + '\n\n');
  });
});

describe('renderCpuinfo, s390x', () => {
  it('keeps the header, filters and renumbers the processor lines, and prefixes vendor and count', () => {
    const out = renderCpuinfo(s390Cpuinfo(4), cpus('1,3'));
    const lines = out.split('\n');
    expect(lines.slice(0, 3)).toEqual(['vendor_id       : IBM/S390', '# processors    : 2', 'bogomips per cpu: 3033.00']);
    expect(out.match(/^processor.*$/gm)).toEqual([
      'processor 0: version = FF,  identification = 0A1B47,  machine = 2964',
      'processor 1: version = FF,  identification = 0A3B47,  machine = 2964',
    ]);
    expect(out).toContain('features\t: esan3 zarch');
    expect(out.match(/^vendor_id/gm)).toHaveLength(1);
  });

  it('counts only the CPUs shown in the CFS view', () => {
    expect(renderCpuinfo(s390Cpuinfo(4), cpus('0-3', 0.2, true))).toMatch(/^vendor_id {7}: IBM\/S390\n# processors {4}: 1\n/);
  });
});
