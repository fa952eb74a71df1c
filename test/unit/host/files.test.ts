// readRenderedFile keeps kernel files open between reads. These tests pin down why that is safe, on the
// real kernel (root, cgroup v1 pids hierarchy for the cgroup case): a kept fd follows the process or
// cgroup it was opened for, never a later one under the same path, and fixture files are not kept.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KeptFiles, readRenderedBytes, readRenderedFile } from '../../../src/host/files.js';
import { createCgroup } from '../../helpers/cgroups.js';
import { Cleanup, openFileTargets } from '../../helpers/processes.js';

const cleanup = new Cleanup();
const BTF = '/sys/kernel/btf/vmlinux';
afterEach(() => cleanup.run());

/** The fds of this process that point at `target`. */
function fdsOpenOn(target: string): number {
  return openFileTargets('self').filter((open) => open === target).length;
}

describe('readRenderedFile', () => {
  it('keeps a /proc file open, and stops answering for a process once it has exited', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    cleanup.own(child);
    await once(child, 'spawn');
    const statPath = `/proc/${child.pid}/stat`;
    const first = readRenderedFile(statPath, { singleRecord: true });
    expect(first).toMatch(new RegExp(`^${child.pid} \\(sleep\\) `));
    expect(fdsOpenOn(statPath)).toBe(1);
    // read again through the kept fd: the kernel renders it afresh (same process, same start time)
    expect(readRenderedFile(statPath, { singleRecord: true })?.split(' ')[21]).toBe(first!.split(' ')[21]);

    child.kill('SIGKILL');
    await once(child, 'exit'); // reaped: the pid is free for anyone
    expect(readRenderedFile(statPath, { singleRecord: true })).toBeUndefined();
    expect(fdsOpenOn(statPath)).toBe(0);
  });

  it.skipIf(process.getuid?.() !== 0 || !fs.existsSync('/sys/fs/cgroup/pids/cgroup.procs'))(
    'reads a cgroup that was removed and made again under the same name afresh',
    () => {
      const cgroup = createCgroup(cleanup, 'pids', 'lxcfs-ts-files');
      cgroup.write('pids.max', 50);
      const file = path.join(cgroup.dir, 'pids.max');
      expect(readRenderedFile(file, { singleRecord: true })).toBe('50\n');
      fs.rmdirSync(cgroup.dir);
      fs.mkdirSync(cgroup.dir);
      cgroup.write('pids.max', 70);
      expect(readRenderedFile(file, { singleRecord: true })).toBe('70\n');
    },
  );

  it('reads multi-record files (cpuinfo) to the end, and single-record ones in one piece', () => {
    const cpuinfo = readRenderedFile('/proc/cpuinfo')!;
    expect(cpuinfo.match(/^processor\s*:/gm)?.length).toBe(fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length);
    expect(readRenderedFile('/proc/meminfo', { singleRecord: true })).toMatch(/^MemTotal:.*\n[\s\S]*\n$/);
  });

  // A binary sysfs attribute comes a page per read (the cpu topology masks and lists on Linux >= 5.14 are
  // such, and pass a page on hosts with a thousand CPUs); the kernel's BTF is one, of megabytes.
  it.runIf(fs.existsSync(BTF))('reads a binary sysfs attribute to the end, although one record, page by page', () => {
    const files = new KeptFiles(4);
    try {
      const content = readRenderedBytes(BTF, { singleRecord: true }, files);
      expect(typeof content === 'string' ? content : content.length).toBe(fs.statSync(BTF).size);
      // The thread's buffer has grown past 4 MiB, a read size sysctl files refuse (ENOMEM): reads stay smaller.
      expect(files.text('/proc/sys/kernel/pid_max')).toBe(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    } finally {
      files.closeAll();
    }
  });

  it('does not keep regular files open: a fixture file replaced under its path is read afresh', () => {
    const dir = cleanup.tempDir();
    const file = path.join(dir, 'stat');
    fs.writeFileSync(file, 'old\n');
    expect(readRenderedFile(file, { singleRecord: true })).toBe('old\n');
    expect(fdsOpenOn(file)).toBe(0);
    fs.rmSync(file);
    fs.writeFileSync(file, 'new\n');
    expect(readRenderedFile(file, { singleRecord: true })).toBe('new\n');
  });

  it('closes the least recently used files beyond its capacity, and keeps the recent ones open', () => {
    const files = new KeptFiles(16);
    const paths: string[] = []; // the first 40 readable sysctl files, in the order read
    for (const entry of fs.readdirSync('/proc/sys/kernel', { withFileTypes: true })) {
      const file = `/proc/sys/kernel/${entry.name}`;
      if (paths.length < 40 && entry.isFile() && readRenderedFile(file, {}, files) !== undefined) paths.push(file);
    }
    expect(paths.length).toBe(40);
    expect(files.size).toBeLessThanOrEqual(16);
    expect(files.size).toBeGreaterThanOrEqual(14);
    // the open ones are exactly the most recently read, and each has one fd; the others none
    const open = paths.filter((file) => files.isOpen(file));
    expect(open).toEqual(paths.slice(paths.length - files.size));
    expect(paths.map((file) => fdsOpenOn(file))).toEqual(paths.map((file) => (files.isOpen(file) ? 1 : 0)));
    // reading an old one again reopens it, and what was read since survives the next eviction
    const recent = paths.slice(-8);
    for (const file of recent) readRenderedFile(file, {}, files);
    for (const file of paths.slice(0, 5)) readRenderedFile(file, {}, files);
    expect(paths.slice(0, 5).every((file) => files.isOpen(file))).toBe(true);
    expect(recent.every((file) => files.isOpen(file))).toBe(true);
    expect(files.size).toBeLessThanOrEqual(16);
  });

  it('read-through: beyond its capacity reads by path; sweep() closes what was not read since the last sweep', () => {
    const files = new KeptFiles(2, 'read-through');
    const [a, b, c] = ['/proc/sys/kernel/ostype', '/proc/sys/kernel/osrelease', '/proc/sys/kernel/hostname'];
    for (const file of [a, b, c]) expect(files.text(file)).toBe(fs.readFileSync(file, 'utf8'));
    expect([a, b, c].map((file) => files.isOpen(file))).toEqual([true, true, false]);
    expect(fdsOpenOn(c)).toBe(0);
    files.sweep();
    expect(files.size).toBe(2); // both read since the last sweep
    files.text(a);
    files.sweep();
    expect([files.isOpen(a), files.isOpen(b)]).toEqual([true, false]);
    expect(fdsOpenOn(b)).toBe(0);
    files.closeAll();
    expect(fdsOpenOn(a)).toBe(0);
  });

  it('answers a missing file with its error code, also when it is often missing', () => {
    expect(readRenderedBytes('/proc/no-such-file')).toBe('ENOENT');
    expect(readRenderedBytes('/proc/no-such-file', { oftenMissing: true })).toBe('ENOENT');
    expect(readRenderedFile('/proc/no-such-file', { oftenMissing: true })).toBeUndefined();
  });
});
