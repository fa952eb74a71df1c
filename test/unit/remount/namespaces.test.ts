// Which mount namespaces remount picks, over a procfs laid out in a temp directory: the namespace links
// are symlinks there as in /proc, so the host's pid 1 can be made unreadable, as it may be in a hostPID
// container.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseMountInfo, type MountInfoEntry } from '../../../src/fuse/mount.js';
import { findLxcfsNamespaces } from '../../../src/remount/namespaces.js';

const HOST_NS = 'mnt:[4026531841]';
const OWN_NS = 'mnt:[4026532500]';
const CONTAINER_NS = 'mnt:[4026532600]';
const LXCFS_LINE = '900 800 0:61 /proc/meminfo /proc/meminfo ro,relatime - fuse.lxcfs lxcfs rw\n';
// stat lines up to the flags field; kthreadd's flags have PF_KTHREAD (0x200000), a process's do not.
const KTHREAD_STAT = '2 (kthreadd) S 0 0 0 0 -1 2129984 0 0\n';
const PROCESS_STAT = '2 (kthreadd) S 1 2 2 0 -1 4194560 0 0\n';

let proc: string;

function addProcess(pid: string, options: { ns?: string; stat?: string; nspid?: string }): void {
  const dir = path.join(proc, pid);
  fs.mkdirSync(path.join(dir, 'ns'), { recursive: true });
  if (options.ns) fs.symlinkSync(options.ns, path.join(dir, 'ns', 'mnt'));
  fs.writeFileSync(path.join(dir, 'mountinfo'), LXCFS_LINE);
  fs.writeFileSync(path.join(dir, 'status'), `Name:\tx\nNSpid:\t${options.nspid ?? pid}\n`);
  if (options.stat) fs.writeFileSync(path.join(dir, 'stat'), options.stat);
}

function namespaceIds(pids?: number[]): string[] {
  const found = findLxcfsNamespaces(pids, proc);
  if (!found.ok) throw new Error(found.error);
  return found.value.map((ns) => ns.id);
}

beforeEach(() => {
  proc = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-fake-proc-'));
  addProcess('self', { ns: OWN_NS });
  addProcess('300', { ns: HOST_NS }); // a host process whose mount table lists the daemon's mount
  addProcess('400', { ns: CONTAINER_NS, nspid: '400 1' });
});

afterEach(() => {
  fs.rmSync(proc, { recursive: true, force: true });
});

describe('findLxcfsNamespaces: the host namespace is never a target', () => {
  it('knows it by pid 1', () => {
    addProcess('1', { ns: HOST_NS });
    expect(namespaceIds()).toEqual([CONTAINER_NS]);
  });

  it('knows it by kthreadd where pid 1 cannot be read (a hostPID container)', () => {
    addProcess('1', {}); // no readable ns/mnt
    addProcess('2', { ns: HOST_NS, stat: KTHREAD_STAT });
    expect(namespaceIds()).toEqual([CONTAINER_NS]);
    expect(findLxcfsNamespaces([300], proc)).toEqual({
      ok: false,
      error: "--pid 300: the process is in the host's mount namespace, which remount never changes",
    });
  });

  it('does not take a pid 2 that is no kernel thread for the host (a pid namespace of its own)', () => {
    addProcess('1', {});
    addProcess('2', { ns: HOST_NS, stat: PROCESS_STAT });
    expect(namespaceIds()).toEqual([HOST_NS, CONTAINER_NS]);
  });
});

describe('findLxcfsNamespaces: which lxcfs mounts of a table it lists', () => {
  /** What it lists, worked out the plain way: parse every line, then drop the lxcfs mounts that another
   * mount is stacked on (same mountpoint, with the lxcfs mount as its parent). */
  function expected(table: string): MountInfoEntry[] {
    const entries = parseMountInfo(table);
    const stackedOn = new Set(entries.map((entry) => `${entry.parentId} ${entry.mountPoint}`));
    return entries.filter(
      (entry) => entry.fsType === 'fuse.lxcfs' && !stackedOn.has(`${entry.mountId} ${entry.mountPoint}`),
    );
  }

  function listed(table: string): MountInfoEntry[] {
    fs.writeFileSync(path.join(proc, '400', 'mountinfo'), table);
    const found = findLxcfsNamespaces([400], proc);
    if (!found.ok) throw new Error(found.error);
    return found.value[0]?.lxcfsMounts ?? [];
  }

  it('the same as parsing every line, among thousands of other mounts and lines made to look like ours', () => {
    const lines = [
      '20 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      // live and dead binds of our files, one with propagation fields
      '30 20 0:61 /proc/meminfo /proc/meminfo rw,relatime master:2 - fuse.lxcfs lxcfs rw,user_id=0',
      '31 20 0:61 /proc/cpuinfo /proc/cpuinfo rw,relatime - fuse.lxcfs lxcfs rw,user_id=0',
      // covered: a tmpfs stacked on the lxcfs mount at its own mountpoint
      '32 20 0:61 / /var/lib/lxcfs rw,relatime - fuse.lxcfs lxcfs rw',
      '33 32 0:70 / /var/lib/lxcfs rw,relatime - tmpfs fake rw',
      // not covered: a mount below it, at another mountpoint
      '34 20 0:61 /proc /srv/proc rw,relatime - fuse.lxcfs lxcfs rw',
      '35 34 0:71 / /srv/proc/sub rw,relatime - tmpfs x rw',
      // paths that spell the type, escaped as the kernel does; another type that starts like ours
      '36 20 0:72 / /srv/a\\040-\\040fuse.lxcfs\\040b rw,relatime - tmpfs x rw',
      '37 20 0:73 / /srv/c rw,relatime - fuse.lxcfs2 lxcfs rw',
      '38 20 0:74 / /srv/d rw,relatime - tmpfs - rw',
      // not a field a kernel writes, but what a match must be checked against
      '40 20 0:75 / /srv/g rw,relatime - tmpfs - fuse.lxcfs x',
      '39 20 0:61 /proc/uptime /srv/e\\040f/uptime rw,relatime - fuse.lxcfs lxcfs rw',
    ];
    for (let i = 0; i < 5000; i++) lines.push(`${1000 + i} 20 0:${100 + i} / /srv/u/${i} rw,relatime - tmpfs none rw`);
    // ours again after the others, and stacked twice over at the same point: only the top one is listed
    lines.push(
      '9000 20 0:62 /proc/stat /proc/stat rw - fuse.lxcfs lxcfs rw',
      '9001 9000 0:62 /proc/stat /proc/stat rw - fuse.lxcfs lxcfs rw',
      // no newline after the last line
      '9002 20 0:62 /proc/swaps /proc/swaps rw - fuse.lxcfs lxcfs rw',
    );
    const table = lines.join('\n');
    const want = expected(table);
    expect(want.map((entry) => entry.mountId)).toEqual([30, 31, 34, 39, 9001, 9002]);
    expect(listed(table)).toEqual(want);
    expect(listed(table + '\n')).toEqual(want);
  });

  it('a namespace whose table has no lxcfs mount is not listed', () => {
    fs.writeFileSync(path.join(proc, '400', 'mountinfo'), '20 1 254:0 / / rw - ext4 /dev/vda rw\n');
    expect(findLxcfsNamespaces([400], proc)).toEqual({ ok: true, value: [] });
  });
});
