import { afterEach, describe, expect, it } from 'vitest';
import { layoutFromMountinfo } from '../../../src/host/cgroup-layout.js';
import {
  cgroupFilePath,
  cgroupOfProcess,
  isHierarchyTop,
  normalizeCgroupPath,
  parentCgroup,
  parseProcCgroup,
  type CgroupLocation,
} from '../../../src/host/cgroup-location.js';
import { HostTree } from '../../fixtures/host-tree.js';
import { HYBRID_MOUNTINFO, UNIFIED_MOUNTINFO, hybridProcCgroup, unifiedProcCgroup } from '../../fixtures/proc-text.js';

describe('parseProcCgroup', () => {
  it('splits id, controller list and path, keeping colons inside the path', () => {
    expect(parseProcCgroup('4:memory:/a:b\n1:cpu,cpuacct:/\n0::/x.slice\n')).toEqual([
      { hierarchyId: 4, controllers: ['memory'], path: '/a:b' },
      { hierarchyId: 1, controllers: ['cpu', 'cpuacct'], path: '/' },
      { hierarchyId: 0, controllers: [], path: '/x.slice' },
    ]);
  });
});

describe('normalizeCgroupPath', () => {
  it('strips one trailing init.scope', () => {
    expect(normalizeCgroupPath('/lxc/c1/init.scope')).toBe('/lxc/c1');
    expect(normalizeCgroupPath('/init.scope')).toBe('/');
    expect(normalizeCgroupPath('/init.scope/x')).toBe('/init.scope/x');
  });

  it('normalises and refuses to climb above the root', () => {
    expect(normalizeCgroupPath('//a/./b/../c/')).toBe('/a/c');
    expect(normalizeCgroupPath('/../sibling')).toBeUndefined();
    expect(normalizeCgroupPath('/a/../../b')).toBeUndefined();
  });
});

describe('cgroupOfProcess', () => {
  let tree: HostTree;
  afterEach(() => tree.remove());

  function setUp(mountinfo: string, pid: number, procCgroup: string) {
    tree = HostTree.create();
    tree.write(`proc/${pid}/cgroup`, procCgroup);
    return layoutFromMountinfo(mountinfo, tree.roots.cgroupRoot);
  }

  it('v1: uses the line whose controller list names the controller', () => {
    const layout = setUp(HYBRID_MOUNTINFO, 42, hybridProcCgroup({ memory: '/lxc/c1/init.scope', cpu: '/other' }));
    expect(cgroupOfProcess(layout, tree.roots.procRoot, 42, 'memory')).toEqual({
      ok: true,
      value: { hierarchy: layout.hierarchies.find((h) => h.controllers.includes('memory')), path: '/lxc/c1', directory: `${tree.roots.cgroupRoot}/memory/lxc/c1` },
    });
    const cpu = cgroupOfProcess(layout, tree.roots.procRoot, 42, 'cpu');
    expect(cpu.ok && cpu.value.directory).toBe(`${tree.roots.cgroupRoot}/cpu/other`);
  });

  it('v2: uses the 0:: line', () => {
    const layout = setUp(UNIFIED_MOUNTINFO, 42, unifiedProcCgroup('/system.slice/docker-1.scope'));
    tree.cgroup('', '/', { 'cgroup.controllers': 'memory\n' });
    const withMemory = layoutFromMountinfo(UNIFIED_MOUNTINFO, tree.roots.cgroupRoot);
    const result = cgroupOfProcess(withMemory, tree.roots.procRoot, 42, 'memory');
    expect(result.ok && result.value.directory).toBe(`${tree.roots.cgroupRoot}/system.slice/docker-1.scope`);
    // before cgroup.controllers existed, memory was not a usable controller
    expect(cgroupOfProcess(layout, tree.roots.procRoot, 42, 'memory')).toMatchObject({ ok: false });
  });

  it('fails with a reason for a missing controller, a vanished process and a path outside the namespace', () => {
    const layout = setUp(HYBRID_MOUNTINFO, 42, hybridProcCgroup({ memory: '/../escaped' }));
    expect(cgroupOfProcess(layout, tree.roots.procRoot, 42, 'net_cls')).toEqual({
      ok: false,
      error: 'no cgroup hierarchy with the net_cls controller is mounted under the cgroup root (layout: hybrid)',
    });
    expect(cgroupOfProcess(layout, tree.roots.procRoot, 43, 'memory')).toMatchObject({ ok: false, error: expect.stringMatching(/43\/cgroup.*exited/) });
    expect(cgroupOfProcess(layout, tree.roots.procRoot, 42, 'memory')).toMatchObject({ ok: false, error: expect.stringMatching(/outside the daemon's cgroup namespace/) });
  });

  it('follows a process to another cgroup, and gives every process of one cgroup the same location', () => {
    const layout = setUp(HYBRID_MOUNTINFO, 42, hybridProcCgroup({ memory: '/lxc/c1' }));
    tree.write('proc/43/cgroup', hybridProcCgroup({ memory: '/lxc/c1' }));
    const first = cgroupOfProcess(layout, tree.roots.procRoot, 42, 'memory');
    const second = cgroupOfProcess(layout, tree.roots.procRoot, 43, 'memory');
    expect(first.ok && second.ok && first.value === second.value).toBe(true);
    expect(first.ok && cgroupFilePath(first.value, 'memory.stat')).toBe(`${tree.roots.cgroupRoot}/memory/lxc/c1/memory.stat`);
    tree.write('proc/42/cgroup', hybridProcCgroup({ memory: '/lxc/c2' }));
    const moved = cgroupOfProcess(layout, tree.roots.procRoot, 42, 'memory');
    expect(moved.ok && moved.value.directory).toBe(`${tree.roots.cgroupRoot}/memory/lxc/c2`);
    expect(moved.ok && cgroupFilePath(moved.value, 'memory.stat')).toBe(`${tree.roots.cgroupRoot}/memory/lxc/c2/memory.stat`);
  });

  it('maps paths below a mounted subtree and refuses paths outside it', () => {
    const mountinfo = '35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n';
    const layout = setUp(mountinfo, 42, '4:memory:/docker/abc/app\n');
    tree.write('proc/43/cgroup', '4:memory:/docker/other\n');
    const inside = cgroupOfProcess(layout, tree.roots.procRoot, 42, 'memory');
    expect(inside.ok && inside.value.directory).toBe(`${tree.roots.cgroupRoot}/memory/app`);
    expect(cgroupOfProcess(layout, tree.roots.procRoot, 43, 'memory')).toMatchObject({ ok: false, error: expect.stringMatching(/outside the subtree \/docker\/abc/) });
  });
});

describe('parentCgroup', () => {
  it('walks up to the top of what is mounted, then stops', () => {
    const hierarchy = { version: 1 as const, controllers: ['memory'], mountPoint: '/cg/memory', mountRoot: '/docker' };
    const start: CgroupLocation = { hierarchy, path: '/docker/a/b', directory: '/cg/memory/a/b' };
    const chain: string[] = [];
    for (let level: CgroupLocation | undefined = start; level !== undefined; level = parentCgroup(level)) {
      chain.push(`${level.path} ${level.directory} ${isHierarchyTop(level)}`);
    }
    expect(chain).toEqual(['/docker/a/b /cg/memory/a/b false', '/docker/a /cg/memory/a false', '/docker /cg/memory true']);
  });
});
