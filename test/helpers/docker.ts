// Real Docker for tests: Debian's docker.io, run as a private dockerd (its own data root, exec root,
// pid file, socket and config; no bridge, no iptables) so that it never meets the host's Docker or
// another test's. Containers land below a cgroup named after this process, relative to dockerd's own
// cgroups: beneath our own memory cgroup, and as a uniquely named child of the root elsewhere.

import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CGROUP_ROOT } from './cgroups.js';
import { unmountAll } from './processes.js';

/** Debian's docker CLI (another docker on PATH, such as /usr/local/bin's, is not the one under test). */
export const DOCKER_CLI = '/usr/bin/docker';
const DOCKERD = '/usr/sbin/dockerd';

export interface DockerResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A docker CLI bound to one daemon. */
export class Docker {
  constructor(readonly host: string) {}

  /** The environment under which `docker` (and scripts calling it) talk to this daemon. */
  env(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_HOST: this.host, DOCKER: DOCKER_CLI, LC_ALL: 'C' };
  }

  /** Runs `docker ARGS` and returns what it did, whatever its exit status. */
  run(args: string[], timeoutMs = 60_000): DockerResult {
    const result: SpawnSyncReturns<string> = spawnSync(DOCKER_CLI, args, {
      encoding: 'utf8',
      timeout: timeoutMs,
      env: this.env(),
    });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? String(result.error ?? '') };
  }

  /** Runs `docker ARGS`, returns its stdout, and throws with its stderr when it fails. */
  ok(args: string[], timeoutMs = 60_000): string {
    const result = this.run(args, timeoutMs);
    if (result.status !== 0)
      throw new Error(`docker ${args.join(' ')} exited with ${result.status}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  /** `docker ARGS` as a child process (for readers that run while the test does other things). */
  spawn(args: string[]): ChildProcess {
    return spawn(DOCKER_CLI, args, { stdio: ['ignore', 'pipe', 'pipe'], env: this.env() });
  }

  /** Host pid of a container's init. */
  pid(container: string): number {
    return Number(this.ok(['inspect', '-f', '{{.State.Pid}}', container]).trim());
  }

  /** Removes every container of this daemon (its own, private data root: nobody else's). */
  removeAllContainers(): void {
    const ids = this.ok(['ps', '-aq']).split('\n').filter(Boolean);
    if (ids.length > 0) this.ok(['rm', '-f', '-v', ...ids], 120_000);
  }
}

export interface Dockerd {
  docker: Docker;
  pid: number;
  /** The relative cgroup its containers are created below (see cgroupParentDirs). */
  cgroupParent: string;
  /** Removes every container, stops dockerd (by its pid), unmounts and removes what it left. */
  stop(): Promise<void>;
}

/** Every directory the relative cgroup parent became: below our own cgroup in each v1 hierarchy (and in
 * the named and unified ones, which runc fills too). */
function cgroupParentDirs(cgroupParent: string): string[] {
  const mounts = fs.readdirSync(CGROUP_ROOT);
  const dirs: string[] = [];
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean)) {
    const [, controllers, own] = line.split(':') as [string, string, string];
    const name = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    const mount = mounts.find((entry) => entry === name || entry.split(',').includes(name));
    if (mount) dirs.push(path.join(CGROUP_ROOT, mount, own, cgroupParent));
  }
  return dirs;
}

async function waitFor(what: string, ms: number, check: () => boolean, log: () => string): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); await sleep(100)) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms / 1000} s; dockerd's log:\n${log().slice(-3000)}`);
  }
}

/** Starts a private dockerd with everything below `dir` (a directory the caller made and removes). */
export async function startDockerd(dir: string, name: string): Promise<Dockerd> {
  for (const binary of [DOCKERD, DOCKER_CLI]) {
    if (!fs.existsSync(binary))
      throw new Error(`${binary} is missing: install Debian's docker.io (bash scripts/test.sh does)`);
  }
  const cgroupParent = `${name}-${process.pid}`;
  const socket = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'dockerd.log');
  // Its trust key goes to the data directory instead of /etc/docker/key.json.
  fs.writeFileSync(
    path.join(dir, 'daemon.json'),
    JSON.stringify({ 'deprecated-key-path': path.join(dir, 'key.json') }) + '\n',
  );
  const log = fs.openSync(logFile, 'w');
  const args = [
    '--data-root',
    path.join(dir, 'data'),
    '--exec-root',
    path.join(dir, 'exec'),
    '--pidfile',
    path.join(dir, 'dockerd.pid'),
    '--config-file',
    path.join(dir, 'daemon.json'),
    '-H',
    `unix://${socket}`,
    '--bridge=none',
    '--iptables=false',
    '--ip6tables=false',
    '--storage-driver',
    'overlay2',
    '--exec-opt',
    'native.cgroupdriver=cgroupfs',
    '--cgroup-parent',
    cgroupParent,
    '--log-level',
    'warn',
  ];
  // Its own process group: its containerd and shims are stopped through it, never through a name.
  const child = spawn(DOCKERD, args, { stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  const readLog = (): string => fs.readFileSync(logFile, 'utf8');
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const docker = new Docker(`unix://${socket}`);
  const stop = async (): Promise<void> => {
    const errors: unknown[] = [];
    try {
      if (child.exitCode === null && child.signalCode === null) docker.removeAllContainers();
    } catch (err) {
      errors.push(err);
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    // Its containerd exits with it; wait until nothing of its group is left before unmounting.
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        process.kill(-child.pid!, 0);
      } catch {
        break;
      }
      await sleep(100);
    }
    unmountAll(dir);
    for (const cgroup of cgroupParentDirs(cgroupParent)) {
      try {
        if (fs.existsSync(cgroup)) fs.rmdirSync(cgroup);
      } catch (err) {
        errors.push(new Error(`cannot remove ${cgroup}: ${(err as Error).message}`));
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'stopping the private dockerd failed');
  };
  try {
    await waitFor(
      'dockerd did not answer',
      60_000,
      () => {
        if (child.exitCode !== null)
          throw new Error(`dockerd exited with ${child.exitCode}:\n${readLog().slice(-3000)}`);
        return fs.existsSync(socket) && docker.run(['version', '--format', '{{.Server.Version}}'], 10_000).status === 0;
      },
      readLog,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { docker, pid: child.pid!, cgroupParent, stop };
}

/** Imports a root filesystem tarball as an image. */
export function importImage(docker: Docker, tarball: string, tag: string, changes: string[] = []): void {
  docker.ok(['import', ...changes.flatMap((change) => ['--change', change]), tarball, tag], 300_000);
}

/** A root filesystem with only the given host programs and the libraries they link: no shell, no
 * mount, no nsenter, like a distroless image. Written as a tarball to `tarball`. */
export function writeMinimalRootfs(tarball: string, programs: string[]): void {
  const stage = fs.mkdtempSync(path.join(path.dirname(tarball), 'rootfs-'));
  try {
    const files = new Set<string>();
    for (const program of programs) {
      files.add(program);
      const ldd = spawnSync('ldd', [program], { encoding: 'utf8' });
      if (ldd.status !== 0) throw new Error(`ldd ${program}: ${ldd.stderr}`);
      for (const match of ldd.stdout.matchAll(/(\/\S+) \(0x/g)) files.add(match[1]!);
    }
    for (const file of files) {
      fs.mkdirSync(path.join(stage, path.dirname(file)), { recursive: true });
      fs.copyFileSync(fs.realpathSync(file), path.join(stage, file));
      fs.chmodSync(path.join(stage, file), 0o755);
    }
    for (const empty of ['proc', 'sys', 'dev', 'etc', 'tmp'])
      fs.mkdirSync(path.join(stage, empty), { recursive: true });
    const tar = spawnSync('tar', ['--create', '--file', tarball, '--owner=0', '--group=0', '--directory', stage, '.'], {
      encoding: 'utf8',
    });
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
