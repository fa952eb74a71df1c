// Test cgroups on this host (cgroup v1 hybrid): memory cgroups only beneath our own memory cgroup,
// other controllers as uniquely named children of the hierarchy root. Everything made is removed by
// the Cleanup, children before parents, after moving any leftover process back to where it came from.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Cleanup } from './processes.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';

/** Our own cgroup path in a v1 hierarchy (e.g. the memory line of /proc/self/cgroup). */
export function ownCgroup(controller: string): string {
  const line = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (!line) throw new Error(`no ${controller} hierarchy in /proc/self/cgroup`);
  return line.split(':').slice(2).join(':');
}

export interface TestCgroup {
  controller: string;
  /** Path as /proc/<pid>/cgroup shows it. */
  path: string;
  /** Directory in the cgroup filesystem. */
  dir: string;
  write(file: string, value: string | number): void;
  read(file: string): string;
  /** Moves a process in (all its threads). */
  add(pid: number): void;
  child(name: string): TestCgroup;
}

function makeCgroup(cleanup: Cleanup, controller: string, cgroupPath: string): TestCgroup {
  const dir = path.join(CGROUP_ROOT, controller, cgroupPath);
  fs.mkdirSync(dir);
  cleanup.add(() => removeCgroup(controller, dir));
  const cgroup: TestCgroup = {
    controller,
    path: cgroupPath,
    dir,
    write: (file, value) => fs.writeFileSync(path.join(dir, file), String(value)),
    read: (file) => fs.readFileSync(path.join(dir, file), 'utf8'),
    add: (pid) => fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid)),
    child: (name) => makeCgroup(cleanup, controller, path.posix.join(cgroupPath, name)),
  };
  if (controller === 'cpuset') {
    // A v1 cpuset child starts empty and refuses tasks until it inherits cpus and mems.
    for (const file of ['cpuset.cpus', 'cpuset.mems']) cgroup.write(file, fs.readFileSync(path.join(path.dirname(dir), file), 'utf8').trim());
  }
  return cgroup;
}

/** A new cgroup for `controller`: beneath our own for memory, else a child of the root. */
export function createCgroup(cleanup: Cleanup, controller: string, name = 'lxcfs-ts-test'): TestCgroup {
  const unique = `${name}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const base = controller === 'memory' ? ownCgroup('memory') : '/';
  return makeCgroup(cleanup, controller, path.posix.join(base, unique));
}

/** One new cgroup, under one unique name, in each of `controllers` (children of their roots; not memory):
 * a container whose cgroup paths agree across controllers, as with Docker's cgroupfs driver. */
export function createCgroups(cleanup: Cleanup, controllers: readonly string[], name = 'lxcfs-ts-test'): TestCgroup[] {
  if (controllers.includes('memory')) throw new Error('createCgroups: memory cgroups go beneath our own; use createCgroup');
  const unique = `${name}-${process.pid}-${randomBytes(3).toString('hex')}`;
  return controllers.map((controller) => makeCgroup(cleanup, controller, `/${unique}`));
}

/** Moves leftover processes to the parent (they would keep the cgroup busy) and removes it. */
function removeCgroup(controller: string, dir: string): void {
  if (!fs.existsSync(dir)) return;
  const procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  for (const pid of procs) {
    try {
      fs.writeFileSync(path.join(path.dirname(dir), 'cgroup.procs'), pid);
    } catch {
      // The process exited meanwhile.
    }
  }
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      // Exiting tasks can keep a cgroup busy for a moment.
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || attempt > 50) throw new Error(`cannot remove ${controller} cgroup ${dir}: ${(err as Error).message}`, { cause: err });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}
