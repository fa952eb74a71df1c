// Restarting without breaking containers: readers in simulated containers keep reading every file
// while the serving process is upgraded five times and killed three times. Not one read may fail.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroup, createCgroups } from '../helpers/cgroups.js';
import { childPids, Cleanup, LXCFS_TS, REPO, isMounted, run, servingPid, startDaemon, upgradeDaemon, waitForLog, type Daemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let daemon: Daemon;

const FILES = ['proc/meminfo', 'proc/cpuinfo', 'proc/stat', 'proc/uptime', 'proc/loadavg', 'proc/swaps', 'proc/diskstats', 'sys/devices/system/cpu/online'];

// Reads every file (bind-mounted over the container's own) in a loop until the stop file appears; a
// read fails if it errors or is not a complete, well-formed file. Prints a JSON summary.
const READER = `
import json, os, sys, time
stop = sys.argv[1]
files = ['/' + f for f in sys.argv[2:]]
def well_formed(name, text):
    if not text.endswith('\\n'): return False
    if name.endswith('meminfo'): return text.startswith('MemTotal:') and 'SwapFree:' in text and text.count('\\n') > 20
    if name.endswith('cpuinfo'): return text.startswith('processor') and text.endswith('\\n\\n')
    if name.endswith('/stat'): return text.startswith('cpu ') and 'btime ' in text and 'procs_blocked' in text
    if name.endswith('uptime'): return len(text.split()) == 2
    if name.endswith('loadavg'): return len(text.split()) == 5
    if name.endswith('swaps'): return text.startswith('Filename')
    return True
reads = failures = 0
slowest = 0.0
examples = []
while not os.path.exists(stop):
    for name in files:
        started = time.monotonic()
        try:
            fd = os.open(name, os.O_RDONLY)
            chunks = []
            while True:
                b = os.read(fd, 1 << 20)
                if not b: break
                chunks.append(b)
            os.close(fd)
            ok = well_formed(name, b''.join(chunks).decode())
            why = 'malformed'
        except OSError as e:
            ok, why = False, e.strerror
        slowest = max(slowest, time.monotonic() - started)
        reads += 1
        if not ok:
            failures += 1
            if len(examples) < 5: examples.append(name + ': ' + why)
print(json.dumps({'reads': reads, 'failures': failures, 'slowest': slowest, 'examples': examples}))
`;

beforeAll(async () => {
  dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
}, 30_000);

afterAll(() => cleanup.run());

/** A daemon started from a copy of the installation, whose serving process a bad update can then break
 * (only there: every lxcfs-ts command loads that module too). */
async function daemonOfACopy(): Promise<{ serverModule: string; command: string; pidFile: string; mnt: string; daemon: Daemon }> {
  const copyDir = cleanup.tempDir();
  const installed = path.join(copyDir, 'lxcfs-ts');
  fs.mkdirSync(installed);
  for (const part of ['bin', 'dist']) fs.cpSync(path.join(REPO, part), path.join(installed, part), { recursive: true });
  for (const part of ['node_modules', 'package.json']) fs.symlinkSync(path.join(REPO, part), path.join(installed, part));
  const command = path.join(installed, 'bin/lxcfs-ts');
  const pidFile = path.join(copyDir, 'pid');
  const copyMnt = path.join(copyDir, 'mnt');
  const started = await startDaemon(cleanup, ['-p', pidFile, copyMnt], copyMnt, {}, { command: [command] });
  return { serverModule: path.join(installed, 'dist/daemon/server-process.js'), command, pidFile, mnt: copyMnt, daemon: started };
}

/** Adds `code` to the copy's serving process and asks its daemon to upgrade to it: the upgrade must fail,
 * in one line, which this returns. */
function upgradeToBadUpdate(copy: { serverModule: string; command: string; pidFile: string }, code: string): string {
  fs.appendFileSync(copy.serverModule, `\nif (process.argv[1] === new URL(import.meta.url).pathname) ${code}\n`);
  const failed = run(copy.command, ['upgrade', '-p', copy.pidFile], { timeout: 60_000 });
  expect(failed.status, failed.stdout).toBe(1);
  expect(failed.stderr.trim().split('\n'), failed.stderr).toHaveLength(1);
  return failed.stderr;
}

/** A daemon of the test's own, on a mountpoint in a temp dir. */
async function daemonOfItsOwn(): Promise<{ dir: string; mnt: string; pidFile: string; daemon: Daemon }> {
  const ownDir = cleanup.tempDir();
  const ownMnt = path.join(ownDir, 'mnt');
  const pidFile = path.join(ownDir, 'pid');
  return { dir: ownDir, mnt: ownMnt, pidFile, daemon: await startDaemon(cleanup, ['-p', pidFile, ownMnt], ownMnt) };
}

describe('upgrades and crashes of the serving process', () => {
  it('lose no read of 8 container readers over 5 graceful upgrades and 3 kill -9, and never make a mount stale', async () => {
    const cgroup = createCgroup(cleanup, 'memory', 'lxcfs-ts-restart');
    cgroup.write('memory.limit_in_bytes', 512 * 1024 * 1024);
    const stopFile = path.join(dir, 'stop-readers');
    fs.writeFileSync(path.join(dir, 'reader.py'), READER);
    const binds = FILES.map((f) => `mount --bind ${mnt}/${f} /${f}`).join(' && ');
    const readers: Array<Promise<string>> = [];
    const children: ChildProcess[] = [];
    for (let i = 0; i < 8; i++) {
      const child = spawn('sh', [
        '-c',
        `echo $$ > ${cgroup.dir}/cgroup.procs && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`,
        'sh',
        `${binds} && exec python3 ${dir}/reader.py ${stopFile} ${FILES.join(' ')}`,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      cleanup.own(child);
      children.push(child);
      readers.push(
        new Promise((resolve, reject) => {
          let out = '';
          let err = '';
          child.stdout.on('data', (c: Buffer) => (out += c.toString()));
          child.stderr.on('data', (c: Buffer) => (err += c.toString()));
          child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`reader ${i} failed: ${err}`))));
        }),
      );
    }
    cleanup.add(() => fs.writeFileSync(stopFile, ''));
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const servers = new Set([await servingPid(daemon)]);
    for (let round = 1; round <= 5; round++) {
      await upgradeDaemon(path.join(dir, 'pid'));
      await waitForLog(daemon, /"msg":"upgraded the serving process"/, round);
      servers.add(await servingPid(daemon));
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (round <= 3) {
        process.kill(await servingPid(daemon), 'SIGKILL');
        await waitForLog(daemon, /"msg":"serving again"/, round);
        servers.add(await servingPid(daemon));
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    fs.writeFileSync(stopFile, '');
    // A reader whose request was lost hangs in the kernel: fail in bounded time, not at the test timeout.
    const finished = await Promise.race([Promise.all(readers), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000))]);
    if (!finished) throw new Error('readers still blocked 15 s after being told to stop: a request was lost');
    const results = finished.map((out) => JSON.parse(out) as { reads: number; failures: number; slowest: number; examples: string[] });

    expect(servers.size).toBe(9); // the first, 5 successors, 3 restarted after kill -9
    expect(daemon.output()).toMatch(/"handedOver":true/);
    const total = results.reduce((sum, r) => sum + r.reads, 0);
    expect(total).toBeGreaterThan(8 * FILES.length * 10);
    expect(results.flatMap((r) => r.examples)).toEqual([]);
    expect(results.map((r) => r.failures)).toEqual(Array(8).fill(0));
    expect(Math.max(...results.map((r) => r.slowest))).toBeLessThan(2);
    expect(isMounted(mnt)).toBe(true);
    const { code } = await daemon.stop();
    expect(code).toBe(0);
    expect(isMounted(mnt)).toBe(false);
    expect(children.every((c) => c.exitCode === 0)).toBe(true);
  }, 120_000);
});

describe('a graceful upgrade of a slow daemon', () => {
  it('hands over in-band even when stopping the old serving process takes seconds, and loses no read', async () => {
    // A daemon held to 10 % of a CPU stands for a slow host (a loaded one, a guest under emulation): each
    // step of the in-band stop (starting the process that sends the stop lookups, a reader answering and
    // leaving) then takes a long while. Killing the old serving process instead would lose the requests its
    // readers had taken on a kernel without FUSE_NOTIFY_RESEND (6.1): the readers of containers hang.
    const { dir: slowDir, mnt: slowMnt, pidFile, daemon: slow } = await daemonOfItsOwn();
    const reader = spawn('python3', ['-c', READER, path.join(slowDir, 'stop'), ...['proc/meminfo', 'proc/uptime'].map((f) => path.join(slowMnt, f).slice(1))], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanup.own(reader);
    cleanup.add(() => fs.writeFileSync(path.join(slowDir, 'stop'), ''));
    let out = '';
    reader.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const finished = new Promise<number | null>((resolve) => reader.on('close', resolve));
    const [cpu] = createCgroups(cleanup, ['cpu'], 'lxcfs-ts-slow-upgrade');
    cpu!.write('cpu.cfs_period_us', 100_000);
    cpu!.write('cpu.cfs_quota_us', 10_000);
    cpu!.add(slow.pid);
    cpu!.add(await servingPid(slow));
    await upgradeDaemon(pidFile);
    cpu!.write('cpu.cfs_quota_us', -1);
    const upgraded = slow
      .output()
      .split('\n')
      .find((line) => line.includes('"msg":"upgraded the serving process"'));
    expect(upgraded, slow.output().slice(-3000)).toMatch(/"handedOver":true/);
    fs.writeFileSync(path.join(slowDir, 'stop'), '');
    const code = await Promise.race([finished, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))]);
    expect(code, 'the reader is blocked: a request was lost').toBe(0);
    const result = JSON.parse(out) as { reads: number; failures: number; examples: string[] };
    expect(result.examples).toEqual([]);
    expect(result.reads).toBeGreaterThan(10);
    expect((await slow.stop()).code).toBe(0);
  }, 120_000);
});

describe('lxcfs-ts upgrade', () => {
  it('replaces the serving process of the daemon named by the pid file, and refuses a bad pid file', async () => {
    const { dir: upgradeDir, mnt: upgradeMnt, pidFile, daemon: target } = await daemonOfItsOwn();
    const before = await servingPid(target);
    // A file read halfway: the successor serves the rest from the snapshot the reader started with (a
    // handle it does not know would read as ended).
    const halfway = fs.openSync(path.join(upgradeMnt, 'proc/meminfo'), 'r');
    const head = Buffer.alloc(100);
    expect(fs.readSync(halfway, head)).toBe(100);
    const ok = run(LXCFS_TS, ['upgrade', '-p', pidFile]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^upgraded: daemon ${target.pid} now serves from process \\d+ \\(was ${before}\\)\\n$`));
    const rest = Buffer.alloc(1 << 16);
    const restLength = fs.readSync(halfway, rest);
    fs.closeSync(halfway);
    const whole = Buffer.concat([head, rest.subarray(0, restLength)]).toString();
    expect(whole).toMatch(/^MemTotal: .*\n(.*\n)*SwapFree: .*\n/);
    expect(whole.split('\n').length).toBe(fs.readFileSync(path.join(upgradeMnt, 'proc/meminfo'), 'utf8').split('\n').length);
    expect(fs.readFileSync(path.join(upgradeMnt, 'proc/uptime'), 'utf8')).toMatch(/^\d+\.\d\d /);
    const bad = run(LXCFS_TS, ['upgrade', '-p', path.join(upgradeDir, 'missing.pid')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/cannot read pid file .*missing\.pid: ENOENT/);
    expect((await target.stop()).code).toBe(0);
  });

  it('fails, in one line, when the new serving process cannot start, and the old one keeps serving', async () => {
    const copy = await daemonOfACopy();
    const { mnt: upgradeMnt, daemon: target } = copy;
    const before = await servingPid(target);
    // A bad update: its serving process throws at start.
    expect(upgradeToBadUpdate(copy, "throw new Error('a broken update');")).toMatch(new RegExp(`daemon ${target.pid} could not upgrade: .+; the old one keeps serving`));
    // Nothing changed for the containers: the same serving process answers.
    expect(childPids(target.pid)).toEqual([before]);
    expect(fs.readFileSync(path.join(upgradeMnt, 'proc/uptime'), 'utf8')).toMatch(/^\d+\.\d\d /);
    expect((await target.stop()).code).toBe(0);
  });

  it('fails, in one line, when the new serving process dies once the old one has stopped, and a fresh one serves', async () => {
    const copy = await daemonOfACopy();
    const { mnt: upgradeMnt, daemon: target } = copy;
    // A bad update: its serving process dies when told to read, after the old one has stopped reading.
    expect(upgradeToBadUpdate(copy, "process.on('message', (m) => m.type === 'go' && process.exit(3));")).toMatch(/could not upgrade: the new serving process failed once the old one had stopped: .+; starting a fresh one/);
    // The fresh one starts without waiting for "go": the containers' reads go on.
    const read = run('cat', [path.join(upgradeMnt, 'proc/uptime')], { timeout: 30_000 });
    expect(read.stdout, `${read.stderr}\n${target.output().slice(-2000)}`).toMatch(/^\d+\.\d\d /);
    // The restart's line says the supervisor killed it, not an exit status it did not have yet.
    await waitForLog(target, /the serving process died/, 1);
    const restart = target.output().split('\n').find((line) => line.includes('the serving process died'));
    expect(restart).toContain('"killed":"by the supervisor');
    expect(restart).not.toContain('"code":null');
    expect((await target.stop()).code).toBe(0);
  });
});
