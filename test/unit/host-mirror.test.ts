// The mirrored /sys/devices/system/cpu: which files a caller's view may change, and that the others are
// read as the host's without looking up who reads them (a lookup is a readlink and two kernel files per
// read, for a file such as kernel_max that is the same for everyone).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { errnoOf, HostMirror, type MirrorShape } from '../../src/fuse/host-mirror.js';
import type { Caller } from '../../src/fuse/filesystem.js';
import { cpuDirectoryShape } from '../../src/lxcfs/cpu-directory.js';
import type { FileContext } from '../../src/lxcfs/served-file.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-mirror-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function write(relative: string, content: string): string {
  const file = path.join(root, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

const caller: Caller = { pid: 4242, uid: 0, gid: 0 };

describe('the cpu directory shape', () => {
  // Only the predicate is asked here: the context is never used by it.
  const shape = cpuDirectoryShape({} as FileContext, () => true);

  // Each path with its answer, so that a failure names the path.
  const rewritten = (paths: string[]): Array<[string, boolean]> =>
    paths.map((relative) => [relative, shape.rewrites(relative)]);

  it('rewrites CPU lists, masks and spaced lists at any depth, and a CPU entry online', () => {
    const paths = [
      'cpu0/topology/core_siblings_list',
      'cpu1/topology/thread_siblings',
      'cpufreq/policy0/related_cpus',
      'cpu0/online',
    ];
    expect(rewritten(paths)).toEqual(paths.map((relative) => [relative, true]));
  });

  it('leaves everything else as the host has it', () => {
    const paths = ['kernel_max', 'isolated', 'modalias', 'cpu0/cpufreq/scaling_cur_freq', 'cpu0/topology/core_id'];
    expect(rewritten(paths)).toEqual(paths.map((relative) => [relative, false]));
  });
});

describe('a mirror with a shape', () => {
  let views = 0;
  const shape: MirrorShape = {
    isShaped: (name) => /^cpu\d+$/.test(name),
    addedFiles: ['online'],
    rewrites: (relative) => relative.endsWith('_list'),
    viewFor() {
      views++;
      return { entries: new Map(), rewrite: (_relative, host) => Buffer.from(`seen: ${host.toString()}`) };
    },
  };
  const readFile = (hostPath: string): Buffer | number => {
    try {
      return fs.readFileSync(hostPath);
    } catch (err) {
      return errnoOf(err);
    }
  };
  const mirror = new HostMirror(100, { hostRoot: root, shape, readFile });
  const node = (relative: string) => ({
    ino: mirror.idOf(path.join(root, relative)),
    hostPath: path.join(root, relative),
    relative,
    kind: 'file' as const,
    mirror,
  });

  it("reads a file no view changes without asking for the caller's view", () => {
    write('kernel_max', '8191\n');
    views = 0;
    expect(mirror.readFor(node('kernel_max'), caller).toString()).toBe('8191\n');
    expect(views).toBe(0);
  });

  it("asks for the caller's view of a file it may change", () => {
    write('cpu0/topology/core_siblings_list', '0-1\n');
    views = 0;
    expect(mirror.readFor(node('cpu0/topology/core_siblings_list'), caller).toString()).toBe('seen: 0-1\n');
    expect(views).toBe(1);
  });
});
