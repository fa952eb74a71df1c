import { afterEach, describe, expect, it } from 'vitest';
import { detectCgroupLayout, findHierarchy, layoutFromMountinfo } from '../../../src/host/cgroup-layout.js';
import { HostTree } from '../../fixtures/host-tree.js';
import { HYBRID_MOUNTINFO, LEGACY_MOUNTINFO, UNIFIED_MOUNTINFO, V2_ROOT_CONTROLLERS } from '../../fixtures/proc-text.js';

describe('cgroup layout from mountinfo', () => {
  let tree: HostTree | undefined;
  afterEach(() => tree?.remove());

  function layoutOf(mountinfo: string, files: (tree: HostTree) => void = () => {}) {
    tree = HostTree.create();
    files(tree);
    return layoutFromMountinfo(mountinfo, tree.roots.cgroupRoot);
  }

  it('hybrid: v1 controllers, named hierarchies and the cgroup2 mount, re-based under the cgroup root', () => {
    const layout = layoutOf(HYBRID_MOUNTINFO, (t) => t.cgroup('unified', '/', { 'cgroup.controllers': 'hugetlb\n' }));
    const root = tree!.roots.cgroupRoot;
    expect(layout.kind).toBe('hybrid');
    expect(findHierarchy(layout, 'memory')).toEqual({ version: 1, controllers: ['memory'], mountPoint: `${root}/memory`, mountRoot: '/' });
    expect(findHierarchy(layout, 'name=systemd')?.mountPoint).toBe(`${root}/systemd`);
    expect(findHierarchy(layout, 'hugetlb')).toEqual({ version: 2, controllers: ['hugetlb'], mountPoint: `${root}/unified`, mountRoot: '/' });
    expect(layout.hierarchies).toHaveLength(10);
  });

  it('legacy: co-mounted controllers; mount options such as xattr, release_agent and clone_children are not controllers', () => {
    const layout = layoutOf(LEGACY_MOUNTINFO);
    expect(layout.kind).toBe('legacy');
    expect(findHierarchy(layout, 'cpuacct')).toBe(findHierarchy(layout, 'cpu'));
    expect(findHierarchy(layout, 'cpu')?.mountPoint).toBe(`${tree!.roots.cgroupRoot}/cpu,cpuacct`);
    expect(findHierarchy(layout, 'name=systemd')?.controllers).toEqual(['name=systemd']);
    expect(findHierarchy(layout, 'cpuset')?.controllers).toEqual(['cpuset']);
    expect(findHierarchy(layout, 'xattr')).toBeUndefined();
  });

  it('unified: the usable controllers are those of the root cgroup.controllers', () => {
    const layout = layoutOf(UNIFIED_MOUNTINFO, (t) => t.cgroup('', '/', { 'cgroup.controllers': V2_ROOT_CONTROLLERS }));
    expect(layout.kind).toBe('unified');
    expect(findHierarchy(layout, 'memory')).toEqual({
      version: 2,
      controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
      mountPoint: tree!.roots.cgroupRoot,
      mountRoot: '/',
    });
    // v1 names do not exist on cgroup2 (lxcfs then serves host data)
    expect(findHierarchy(layout, 'cpuacct')).toBeUndefined();
    expect(findHierarchy(layout, 'blkio')).toBeUndefined();
  });

  it('ignores cgroup mounts outside /sys/fs/cgroup and second mounts of a hierarchy', () => {
    const extra = [
      '90 31 0:32 / /run/lxcfs/controllers/memory rw,relatime - cgroup cgroup rw,memory',
      '91 31 0:32 / /sys/fs/cgroup/memory-again rw,relatime - cgroup cgroup rw,memory',
    ].join('\n');
    const layout = layoutOf(extra + '\n' + HYBRID_MOUNTINFO);
    expect(findHierarchy(layout, 'memory')?.mountPoint).toBe(`${tree!.roots.cgroupRoot}/memory-again`);
    expect(layout.hierarchies.filter((h) => h.controllers.includes('memory'))).toHaveLength(1);
  });

  it('decodes octal escapes in paths and keeps the mounted subtree (field 4)', () => {
    const layout = layoutOf('35 31 0:32 /docker/abc /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory\n');
    expect(findHierarchy(layout, 'memory')).toMatchObject({ mountPoint: `${tree!.roots.cgroupRoot}/my memory`, mountRoot: '/docker/abc' });
  });

  it('finds no hierarchy without cgroup mounts, and says why when mountinfo is unreadable', () => {
    expect(layoutOf('22 1 0:21 / /proc rw - proc proc rw\n')).toEqual({ kind: 'none', hierarchies: [] });
    const layout = detectCgroupLayout(tree!.roots);
    expect(layout.kind).toBe('none');
    expect(layout.problem).toMatch(/cannot read .*\/proc\/self\/mountinfo/);
  });
});
