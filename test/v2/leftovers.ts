// A setup file of the v2 suite (vitest.v2.config.ts): after each test file, and after that file's own
// afterAll cleanup, fails the file if it left a cgroup, a mount, a swap area or a loop device behind
// in the guest. Later files then start from the same clean guest.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll } from 'vitest';

interface State {
  cgroups: string[];
  mounts: string[];
  swaps: string[];
  loops: string[];
}

function state(): State {
  const cgroups = fs
    .readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => `${line.split(' ')[4]} (${line.split(' - ')[1]?.split(' ')[0]})`);
  const swaps = fs.readFileSync('/proc/swaps', 'utf8').split('\n').slice(1).filter(Boolean);
  const loops = spawnSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
  return { cgroups, mounts, swaps, loops };
}

let before: State;

// Registered before the test file's own hooks: this beforeAll runs first and, hooks after tests
// running in reverse order, this afterAll runs last.
beforeAll(() => {
  before = state();
});

afterAll(() => {
  const after = state();
  const left: string[] = [];
  for (const key of Object.keys(after) as Array<keyof State>) {
    const added = after[key].filter((item) => !before[key].includes(item));
    if (added.length > 0) left.push(`${key}: ${added.join(', ')}`);
  }
  if (left.length > 0) throw new Error(`this file left things behind in the guest (undo what a test makes):\n  ${left.join('\n  ')}`);
});
