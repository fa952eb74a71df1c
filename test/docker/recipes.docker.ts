// The README's Docker recipes, verbatim (test/docker/readme.ts reads them from README.md), against real
// Docker (Debian's docker.io, runc, the cgroupfs driver) and the daemon of this checkout on the host:
// what the container sees, then the restarts: graceful upgrades and crashes of the serving process under
// looping readers, kill -9 of the whole daemon with restart and remount, and the one-level-down layout
// across a clean stop. This host's / is private, so each test does what the README tells such hosts to
// do (a shared bind of the directory holding the mountpoint), on a directory it made.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ACCOUNTING_CGROUP } from '../../src/lxcfs/blkio-accounting.js';
import { makeSharedDirectory } from '../helpers/container.js';
import { Docker, DOCKER_CLI } from '../helpers/docker.js';
import {
  Cleanup,
  killDaemonHard,
  LXCFS_TS,
  run,
  servingPid,
  startDaemon,
  upgradeDaemon,
  waitForLog,
  type Daemon,
} from '../helpers/processes.js';
import { readerCommand, expectDownThenHealed, stopReader, waitForReads } from './readers.js';
import {
  LEVEL_DOWN_RECIPE,
  USUAL_RECIPE,
  dockerRecipe,
  forTestHost,
  parseDockerRun,
  recipeLine,
  recipeList,
} from './readme.js';

const HOST_CPUS = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();

const cleanup = new Cleanup();
const docker = new Docker(inject('dockerHost'));
let dir: string;
/** Stands in for the host's /var/lib in every recipe. */
let varLib: string;
/** PATH with Debian's docker first, for the README's lines run through bash. */
let shellPath: string;

afterAll(() => cleanup.run());

beforeAll(() => {
  dir = cleanup.tempDir('lxcfs-ts-recipes-');
  varLib = path.join(dir, 'var-lib');
  fs.mkdirSync(varLib);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(DOCKER_CLI, path.join(bin, 'docker'));
  shellPath = `${bin}:${process.env.PATH}`;
});

/** Runs one README line (after the list's prelude) through bash. */
function shell(script: string, timeoutMs = 60_000): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-c', script], {
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...docker.env(), PATH: shellPath },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Removes a container at cleanup time, whatever happened to it. */
function removeLater(name: string): void {
  cleanup.add(() => void docker.run(['rm', '-f', name]));
}

function memTotalMb(freeOutput: string): number {
  const mem = /^Mem:\s+(\d+)/m.exec(freeOutput);
  expect(mem, freeOutput).not.toBeNull();
  return Number(mem![1]);
}

/** Starts a detached reader container with the recipe's options (for this host; -it dropped) and a CPU quota. */
function startReader(name: string, options: string[], cpus: string): void {
  const detached = options.filter((option) => option !== '-it');
  docker.ok(['run', '-d', '--name', name, ...detached, '--cpus', '0.5', ...readerCommand('debian', cpus)]);
  removeLater(name);
}

describe('the README recipe and what the container sees', () => {
  let daemon: Daemon;

  // Stopped rather than killed by the cleanup: with --enable-blkio-accounting the daemon removes the
  // cgroup of its no-op throttle rules as it exits. If it could not (it died), the cgroup goes here.
  afterAll(async () => {
    if (daemon !== undefined) await daemon.stop(10_000);
    try {
      fs.rmdirSync(path.join('/sys/fs/cgroup/blkio', ACCOUNTING_CGROUP));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  });

  it('Docker refuses the recipe while the directory is a private mount, as the README says', () => {
    const privateDir = path.join(varLib, 'lxcfs');
    fs.mkdirSync(privateDir);
    const refused = docker.run([
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${privateDir}:${privateDir}:rslave`,
      'debian',
      'true',
    ]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/is not a shared or slave mount/);
  });

  it("after the README's fix (a shared bind of the directory), the recipe runs verbatim: free -m shows 256 MB", async () => {
    makeSharedDirectory(cleanup, varLib);
    const mnt = path.join(varLib, 'lxcfs');
    daemon = await startDaemon(
      cleanup,
      ['-p', path.join(dir, 'usual.pid'), '-l', '--enable-cfs', '--enable-blkio-accounting', mnt],
      mnt,
    );
    const recipe = dockerRecipe(USUAL_RECIPE);
    expect(recipe.options).toContain('-it');
    // -it needs a terminal: script(1) gives it one.
    const result = spawnSync(
      'script',
      ['-qec', forTestHost(recipe.command, varLib).replace('docker run ', `${DOCKER_CLI} run --rm `), '/dev/null'],
      {
        encoding: 'utf8',
        timeout: 60_000,
        env: docker.env(),
      },
    );
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(memTotalMb(result.stdout)).toBe(256);
  });

  it("the list repeats exactly the recipe's -v flags", () => {
    const recipe = dockerRecipe(USUAL_RECIPE);
    expect(recipeList().flags).toEqual(
      recipe.options.filter((option) => option !== '-it' && !option.startsWith('--memory') && option !== '256m'),
    );
  });

  const line = (marker: string): { status: number | null; stdout: string; stderr: string } => {
    const list = recipeList();
    const result = shell(`${forTestHost(list.prelude, varLib)}\n${forTestHost(recipeLine(list, marker), varLib)}`);
    expect(result.status, `${recipeLine(list, marker)}\n${result.stderr}`).toBe(0);
    return result;
  };

  it('free -m: the memory limit, and no swap beyond what the host has', () => {
    const out = line('debian free -m').stdout;
    expect(memTotalMb(out)).toBe(256);
    expect(out).toMatch(/^Swap:\s+0\s+0\s+0$/m);
    expect(
      fs.readFileSync('/proc/swaps', 'utf8').trim().split('\n'),
      'this host has swap: the assertion above needs its limit',
    ).toHaveLength(1);
  });

  it('/proc/swaps: the header only', () => {
    expect(line('cat /proc/swaps').stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^Filename\s+Type\s+Size\s+Used\s+Priority$/),
    ]);
  });

  it('--cpuset-cpus 1: one CPU, numbered 0', () => {
    expect(HOST_CPUS).not.toBe('0');
    expect(line('--cpuset-cpus').stdout.trim()).toBe('0');
  });

  it('--cpus 0.5 with --enable-cfs: one processor in cpuinfo', () => {
    expect(Number(line('--cpus 0.5').stdout.trim())).toBe(1);
    expect(fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)!.length).toBeGreaterThan(1);
  });

  it("uptime: the container's age, not the host's", () => {
    const started = Date.now();
    const [age, idle] = line('cat /proc/uptime').stdout.trim().split(/\s+/).map(Number);
    const hostUptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    expect(age).toBeLessThanOrEqual((Date.now() - started) / 1000 + 1);
    expect(idle).toBeLessThanOrEqual(age!);
    expect(hostUptime).toBeGreaterThan(age! + 60);
  });

  it('loadavg with -l: 0.00 and its own thread count at first, then its own busy loop', () => {
    const [first, second] = line('/proc/loadavg').stdout.trim().split('\n');
    expect(first).toMatch(/^0\.00 0\.00 0\.00 [01]\/1 \d+$/);
    const [load1, , , threads] = second!.split(' ');
    expect(Number(load1)).toBeGreaterThanOrEqual(0.08);
    expect(Number(threads!.split('/')[1])).toBeLessThan(10); // the host runs hundreds
  }, 30_000);

  it("diskstats with --enable-blkio-accounting: only the container's own writes", () => {
    const lines = line('/proc/diskstats').stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    const written = lines.map((entry) => Number(entry.trim().split(/\s+/)[9]));
    expect(Math.max(...written), lines.join('\n')).toBeGreaterThanOrEqual(16_384);
    const host = fs.readFileSync('/proc/diskstats', 'utf8').trim().split('\n');
    expect(lines.length).toBeLessThan(host.length);
  });

  it("docker exec sees the same limits as the container's init", () => {
    removeLater('app');
    expect(memTotalMb(line('docker exec').stdout)).toBe(256);
  });

  describe('restarts under looping readers', () => {
    it('graceful upgrades and crashes of the serving process: not one failed or foreign read', async () => {
      const options = parseDockerRun(forTestHost(dockerRecipe(USUAL_RECIPE).command, varLib)).options;
      for (const name of ['reader-a', 'reader-b']) startReader(name, options, '0');
      for (const name of ['reader-a', 'reader-b']) await waitForReads(docker, name, 200);
      for (let round = 1; round <= 2; round++) {
        await upgradeDaemon(path.join(dir, 'usual.pid'));
        await sleep(300);
        process.kill(await servingPid(daemon), 'SIGKILL');
        await waitForLog(daemon, /"msg":"serving again"/, round);
        await sleep(300);
      }
      for (const name of ['reader-a', 'reader-b']) {
        const { runs, count, other } = stopReader(docker, name);
        expect(other, `${name} read foreign values: ${runs}`).toBe('');
        expect(runs, name).toMatch(/^o×\d+$/);
        expect(count).toBeGreaterThan(200);
      }
    }, 300_000);

    it("kill -9 of the whole daemon, a restart and remount: healed, and never the host's numbers", async () => {
      const mnt = daemon.mountPoint;
      const options = parseDockerRun(forTestHost(dockerRecipe(USUAL_RECIPE).command, varLib)).options;
      startReader('crash-reader', options, '0');
      await waitForReads(docker, 'crash-reader', 200);
      await killDaemonHard(daemon);
      const dead = docker.run(['exec', 'crash-reader', 'cat', '/proc/meminfo']);
      expect(dead.stderr).toMatch(/Transport endpoint is not connected/);

      daemon = await startDaemon(
        cleanup,
        ['-p', path.join(dir, 'usual.pid'), '-l', '--enable-cfs', '--enable-blkio-accounting', mnt],
        mnt,
      );
      const remount = run(LXCFS_TS, ['remount', '--mountpoint', mnt, '--pid', String(docker.pid('crash-reader'))]);
      expect(remount.status, remount.stdout + remount.stderr).toBe(0);
      expect(remount.stdout).toMatch(/re-bound 8 mounts/);
      expect(memTotalMb(docker.ok(['exec', 'crash-reader', 'free', '-m']))).toBe(256);
      await sleep(500);

      expectDownThenHealed(stopReader(docker, 'crash-reader'));
    }, 300_000);

    it('one level down (the Deploying recipe), across a clean stop: remount heals', async () => {
      const recipe = dockerRecipe(LEVEL_DOWN_RECIPE);
      // The README's instruction for hosts whose / is not shared, on our stand-in for /var/lib/lxcfs-ts
      // (below a /var/lib of its own: shared binds nested in one another leave propagated copies behind).
      const levelVarLib = path.join(dir, 'var-lib-level');
      const parent = path.join(levelVarLib, 'lxcfs-ts');
      makeSharedDirectory(cleanup, parent);
      const mnt = path.join(parent, 'lxcfs');
      const args = ['-p', path.join(dir, 'level.pid'), mnt];
      let levelDaemon = await startDaemon(cleanup, args, mnt);
      const options = parseDockerRun(forTestHost(recipe.command, levelVarLib)).options;
      expect(options).toContain(`${parent}:${parent}:rslave`);
      startReader('level-reader', options, HOST_CPUS);
      await waitForReads(docker, 'level-reader', 200);

      const { code } = await levelDaemon.stop();
      expect(code).toBe(0);
      expect(docker.run(['exec', 'level-reader', 'cat', '/proc/meminfo']).stderr).toMatch(
        /Transport endpoint is not connected/,
      );
      levelDaemon = await startDaemon(cleanup, args, mnt);
      const remount = run(LXCFS_TS, ['remount', '--mountpoint', mnt, '--pid', String(docker.pid('level-reader'))]);
      expect(remount.status, remount.stdout + remount.stderr).toBe(0);
      expect(memTotalMb(docker.ok(['exec', 'level-reader', 'free', '-m']))).toBe(256);
      await sleep(500);

      expectDownThenHealed(stopReader(docker, 'level-reader'));
      await levelDaemon.stop();
    }, 300_000);
  });
});
