// The installed service under a real systemd (pid 1 of the sdvm guest), one step after another as an
// operator meets them: install.sh with the packed tarball (npm without network fails; the install finds
// the prefix npm staged on the host, unpacked as a package would be), start through READY=1, the journal, a memory-limited container reading through reload and kills of the serving process, a
// kill -9 of the main process that systemd must recover from alone, a move of the mountpoint, stop,
// and uninstall. Each step relies on the ones before it.

import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { mountsAt } from '../../src/fuse/mount.js';
import { lxcfsFileBinds, startContainer, type Container } from '../helpers/container.js';
import { Cleanup, REPO } from '../helpers/processes.js';

const PACKAGE = process.env.SDVM_PACKAGE!;
// PACKAGE installed on the host with install.sh --root STAGE --no-start (npm, the pinned runtime): the
// prefix below STAGE as one tar file (scripts/sdvm/test-systemd.sh).
const PREFIX_TAR = process.env.SDVM_PREFIX_TAR!;
const INSTALL = path.join(REPO, 'scripts/install.sh');
const UNIT_FILE = '/etc/systemd/system/lxcfs-ts.service';
const MOUNTPOINT = '/var/lib/lxcfs';
const MOVED = '/var/lib/lxcfs-ts-moved';
const PID_FILE = '/run/lxcfs-ts.pid';
const CONTAINER_UNIT = 'lxcfs-ts-sdtest-container.service';
// Bounds for what systemd and the daemon do by themselves; software emulation makes them slow, and they
// are bounds, not measurements.
const GENEROUS_MS = 300_000;

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

function sh(
  command: string,
  args: string[],
  options: { timeout?: number; env?: NodeJS.ProcessEnv } = {},
): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    encoding: 'utf8',
    timeout: options.timeout ?? GENEROUS_MS,
    env: { ...process.env, LC_ALL: 'C', ...options.env },
  });
}

function show(property: string): string {
  return sh('systemctl', ['show', '-p', property, '--value', 'lxcfs-ts.service']).stdout.trim();
}

/** The journal of the unit (or of the identifier), one message per line. */
function journal(...filters: string[]): string[] {
  return sh('journalctl', ['--no-pager', '-o', 'cat', ...filters])
    .stdout.split('\n')
    .filter(Boolean);
}

/** For a command that failed: its output and the unit's last journal lines. */
function whyFailed(result: SpawnSyncReturns<string>): string {
  if (result.status === 0) return '';
  const lines = journal('-u', 'lxcfs-ts', '-n', '40').join('\n');
  return `${result.stdout}${result.stderr}\n--- journalctl -u lxcfs-ts -n 40:\n${lines}`;
}

/** The serving process: the node process running server-process.js in the unit's cgroup. */
function servingPid(): number | undefined {
  const group = show('ControlGroup');
  if (!group) return undefined;
  let procs: string[];
  try {
    procs = fs.readFileSync(`/sys/fs/cgroup${group}/cgroup.procs`, 'utf8').split('\n').filter(Boolean);
  } catch {
    return undefined;
  }
  for (const pid of procs) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server-process.js')) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = GENEROUS_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    await sleep(250);
  }
}

function fuseMountsAt(dir: string): string[] {
  return mountsAt(dir).map((entry) => entry.fsType);
}

/** A process in the container reading /proc/meminfo in a loop, one line per read: "ok MemTotal: ..." or
 * "fail <error>". Between reads it stops while /run/pause exists (and says "paused"). */
function startReader(container: Container): {
  lines: string[];
  pause(): Promise<void>;
  resume(): void;
  reads(count: number): Promise<void>;
} {
  const loop = [
    'while :; do',
    '  if [ -e /run/pause ]; then echo paused; while [ -e /run/pause ]; do sleep 0.1; done; fi',
    '  if out=$(grep "^MemTotal:" /proc/meminfo 2>&1); then echo "ok $out"; else echo "fail $out"; fi',
    '  sleep 0.1',
    'done',
  ].join('\n');
  const child = spawn('nsenter', ['-t', String(container.pid), '-m', '-p', '--', 'sh', '-c', loop], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.own(child);
  const lines: string[] = [];
  let rest = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.on('data', (chunk: Buffer) => lines.push(`stderr ${chunk.toString().trim()}`));
  const pauseFile = `/proc/${container.pid}/root/run/pause`;
  return {
    lines,
    pause: async () => {
      fs.writeFileSync(pauseFile, '');
      const from = lines.length;
      await waitFor("the container's reader pauses", () => lines.slice(from).includes('paused'));
    },
    resume: () => fs.rmSync(pauseFile),
    reads: async (count) => {
      const from = lines.length;
      await waitFor(
        `${count} more reads in the container`,
        () => lines.slice(from).filter((line) => line.startsWith('ok ') || line.startsWith('fail ')).length >= count,
      );
    },
  };
}

describe('lxcfs-ts.service under systemd', () => {
  let reader: ReturnType<typeof startReader>;

  it('install.sh without network and an empty npm cache says what it does, then fails with what to do', () => {
    const cache = cleanup.tempDir('lxcfs-ts-empty-npm-cache-');
    const result = sh(INSTALL, ['--package', PACKAGE], { env: { npm_config_cache: cache }, timeout: 600_000 });
    expect(result.status, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(/^installing lxcfs-ts-[\d.]+\.tgz and its dependencies to \/opt\/lxcfs-ts/m);
    expect(result.stderr).toMatch(
      /^install\.sh: npm could not install the package .*without network access.*--offline$/m,
    );
    expect(fs.existsSync(UNIT_FILE)).toBe(false);
  });

  it('installs the packed tarball (its prefix staged on the host, unpacked here); the unit passes systemd-analyze verify and reaches active through READY=1', () => {
    // Under software emulation a start (node, the probe of a dead mount, the remount helper entering
    // containers) can pass systemd's default 90 s start timeout; the guest allows more.
    const dropIn = '/etc/systemd/system/lxcfs-ts.service.d/sdvm-emulation.conf';
    fs.mkdirSync(path.dirname(dropIn), { recursive: true });
    fs.writeFileSync(dropIn, '[Service]\nTimeoutStartSec=600\n');
    cleanup.add(() => fs.rmSync(path.dirname(dropIn), { recursive: true, force: true }));
    // What a package built from `install.sh --root` brings: the installed prefix, nothing else.
    let started = Date.now();
    const unpacked = sh('tar', ['-C', '/', '-xf', PREFIX_TAR]);
    expect(unpacked.status, unpacked.stderr).toBe(0);
    console.log(`unpacking the staged prefix: ${Math.round((Date.now() - started) / 1000)} s in the guest`);
    started = Date.now();
    const result = sh(INSTALL, ['--package', PACKAGE], { timeout: 1_200_000 });
    console.log(`install.sh --package: ${Math.round((Date.now() - started) / 1000)} s in the guest`);
    expect(result.status, whyFailed(result)).toBe(0);
    // install.sh checks that what is there was installed from this very tarball, and runs no npm.
    expect(result.stdout).toMatch(/^lxcfs-ts-[\d.]+\.tgz is already installed in \/opt\/lxcfs-ts$/m);
    expect(result.stdout).toMatch(/^enabled and started lxcfs-ts\.service$/m);

    const verified = sh('systemd-analyze', ['verify', UNIT_FILE]);
    expect({ status: verified.status, stderr: verified.stderr }).toEqual({ status: 0, stderr: '' });
    // Type=notify: systemd calls the unit active only once the daemon sent READY=1.
    expect({ Type: show('Type'), ActiveState: show('ActiveState'), SubState: show('SubState') }).toEqual({
      Type: 'notify',
      ActiveState: 'active',
      SubState: 'running',
    });
    expect(fuseMountsAt(MOUNTPOINT)).toEqual(['fuse.lxcfs']);
    expect(fs.readFileSync(PID_FILE, 'utf8').trim()).toBe(show('MainPID'));
  });

  it('the journal has the daemon under its own name, one readable line per event, each with its priority', () => {
    const entries = sh('journalctl', ['--no-pager', '-o', 'json', '-t', 'lxcfs-ts'])
      .stdout.split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { MESSAGE: string; PRIORITY: string; _SYSTEMD_UNIT?: string });
    const serving = entries.find((entry) => entry.MESSAGE.startsWith('serving '));
    expect(
      serving,
      JSON.stringify(
        entries.map((entry) => entry.MESSAGE),
        null,
        1,
      ),
    ).toMatchObject({ PRIORITY: '6', _SYSTEMD_UNIT: 'lxcfs-ts.service' });
    expect(serving!.MESSAGE).toContain(`mountPoint=${MOUNTPOINT}`);
    // Linux 6.1 has no FUSE_NOTIFY_RESEND: the daemon warns about what that costs, once, at warning priority.
    const resend = entries.filter((entry) => entry.MESSAGE.includes('FUSE_NOTIFY_RESEND'));
    expect(resend.map((entry) => entry.PRIORITY)).toEqual(['4']);
    expect(journal('-u', 'lxcfs-ts', '-p', 'warning').some((line) => line.includes('FUSE_NOTIFY_RESEND'))).toBe(true);
    expect(entries.filter((entry) => entry.MESSAGE.startsWith('{'))).toEqual([]);
  });

  it('a memory-limited container sees its limit and loses no read across systemctl reload and three kill -9 of the serving process', async () => {
    const unit = sh('systemd-run', [
      '--unit',
      CONTAINER_UNIT,
      '-p',
      'MemoryMax=256M',
      '--service-type=exec',
      '--quiet',
      'sleep',
      'infinity',
    ]);
    expect(unit.status, unit.stderr).toBe(0);
    cleanup.add(() => void sh('systemctl', ['stop', CONTAINER_UNIT]));
    // lxcfs's recipe (-v /var/lib/lxcfs:/var/lib/lxcfs:rslave and the files bound from there): after a
    // crash of the daemon, the new mount propagates into the container, and the remount helper re-binds
    // the files from it.
    const container = await startContainer(cleanup, {
      cgroups: [`/sys/fs/cgroup/system.slice/${CONTAINER_UNIT}`],
      binds: lxcfsFileBinds(MOUNTPOINT, ['proc/meminfo']),
      propagated: [{ source: MOUNTPOINT, target: MOUNTPOINT }],
    });
    reader = startReader(container);
    await reader.reads(3);

    const beforeReload = servingPid();
    const reload = sh('systemctl', ['reload', 'lxcfs-ts.service']);
    expect(reload.status, whyFailed(reload)).toBe(0);
    // The reload returned only once the new serving process served.
    expect(servingPid()).not.toBe(beforeReload);
    expect(journal('-u', 'lxcfs-ts').some((line) => line.startsWith('upgraded the serving process'))).toBe(true);
    await reader.reads(3);

    for (let kill = 0; kill < 3; kill++) {
      // Between two reads: the guest's kernel (6.1) cannot replay a request a killed serving process had
      // taken (no FUSE_NOTIFY_RESEND), so a read in flight would wait until the connection is aborted.
      await reader.pause();
      const old = servingPid()!;
      process.kill(old, 'SIGKILL');
      await waitFor('a new serving process', () => servingPid() !== undefined && servingPid() !== old);
      reader.resume();
      await reader.reads(3);
    }
    const reads = reader.lines.filter((line) => line !== 'paused');
    expect(reads.filter((line) => !line.startsWith('ok '))).toEqual([]);
    expect(new Set(reads)).toEqual(new Set(['ok MemTotal:         262144 kB']));
    // Still one warning about RESEND: upgrades and restarts of the serving process do not repeat it.
    expect(journal('-t', 'lxcfs-ts').filter((line) => line.includes('FUSE_NOTIFY_RESEND'))).toHaveLength(1);
  });

  it("after kill -9 of the main process systemd restarts the unit by itself, and the container's reads heal through the remount", async () => {
    const main = show('MainPID');
    const restarts = Number(show('NRestarts'));
    const killed = Date.now();
    const kill = sh('systemctl', ['kill', '-s', 'KILL', '--kill-who=main', 'lxcfs-ts.service']);
    expect(kill.status, kill.stderr).toBe(0);
    await waitFor(
      'lxcfs-ts.service active again with a new main process',
      () => show('ActiveState') === 'active' && show('MainPID') !== main && show('MainPID') !== '0',
    );
    console.log(
      `active again ${Math.round((Date.now() - killed) / 1000)} s after kill -9 of the main process (software emulation)`,
    );
    // At the first try: no loop of failed starts.
    expect(Number(show('NRestarts')), journal('-u', 'lxcfs-ts', '-n', '40').join('\n')).toBe(restarts + 1);
    // ExecStartPost (the remount) ran before the unit became active: the container reads again.
    const from = reader.lines.length;
    await reader.reads(3);
    const remount = journal('-u', 'lxcfs-ts', '-n', '30').join('\n');
    expect(
      reader.lines
        .slice(from)
        .filter((line) => line.startsWith('ok ') || line.startsWith('fail '))
        .at(-1),
      remount,
    ).toBe('ok MemTotal:         262144 kB');
    expect(fs.readFileSync(PID_FILE, 'utf8').trim()).toBe(show('MainPID'));
  });

  it('journalctl -u lxcfs-ts -p err shows the crash, and -t lxcfs-ts finds the daemon', () => {
    const errors = journal('-u', 'lxcfs-ts', '-p', 'err');
    expect(
      errors.some((line) => line.startsWith('the previous daemon died without unmounting')),
      errors.join('\n'),
    ).toBe(true);
    expect(journal('-t', 'lxcfs-ts', '-p', 'err').length).toBeGreaterThan(0);
  });

  it('install.sh --mountpoint on the running service moves the mount, and leaves none at the old one', () => {
    const result = sh(INSTALL, ['--package', PACKAGE, '--mountpoint', MOVED], { timeout: 1_200_000 });
    expect(result.status, whyFailed(result)).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^restarted lxcfs-ts\\.service: it now serves ${MOVED} instead of ${MOUNTPOINT}$`, 'm'),
    );
    expect(show('ActiveState')).toBe('active');
    expect(fuseMountsAt(MOVED)).toEqual(['fuse.lxcfs']);
    // Neither the daemon's mount nor the dead one of the crashed daemon below it: the restart's stop
    // detached both.
    expect(fuseMountsAt(MOUNTPOINT)).toEqual([]);
  });

  it('systemctl stop leaves no mount, no pid file and no control socket', () => {
    const stop = sh('systemctl', ['stop', 'lxcfs-ts.service']);
    expect(stop.status, whyFailed(stop)).toBe(0);
    expect(show('ActiveState')).toBe('inactive');
    expect(fuseMountsAt(MOVED)).toEqual([]);
    expect(fs.existsSync(PID_FILE)).toBe(false);
    expect(fs.existsSync('/run/lxcfs-ts.sock')).toBe(false);
  });

  it('install.sh --uninstall leaves nothing behind', () => {
    const result = sh(INSTALL, ['--uninstall']);
    expect(result.status, whyFailed(result)).toBe(0);
    expect(fuseMountsAt(MOVED)).toEqual([]);
    expect(fuseMountsAt(MOUNTPOINT)).toEqual([]);
    for (const leftover of [
      UNIT_FILE,
      '/etc/systemd/system/multi-user.target.wants/lxcfs-ts.service',
      '/opt/lxcfs-ts',
      PID_FILE,
      '/run/lxcfs-ts.sock',
    ]) {
      expect(fs.existsSync(leftover), leftover).toBe(false);
    }
    expect(sh('systemctl', ['list-unit-files', 'lxcfs-ts.service']).stdout).toMatch(/^0 unit files listed\.$/m);
  });
});
