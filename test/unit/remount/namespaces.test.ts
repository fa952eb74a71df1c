// Which mount namespaces remount picks, over a procfs laid out in a temp directory: the namespace links
// are symlinks there as in /proc, so the host's pid 1 can be made unreadable, as it may be in a hostPID
// container.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
