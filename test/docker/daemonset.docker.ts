// deploy/kubernetes/ without a cluster: lxcfs-ts's image (scripts/build-image.sh) runs the way the
// DaemonSet's pod template says (host pid namespace, privileged, the parent directory Bidirectional, the
// node's cgroup hierarchy), and applications run the way examples/example-pod.yaml says (one read-only file each,
// the parent directory HostToContainer); test/docker/kubernetes.ts translates the YAML into docker run.
// The daemon's container is killed and started again, as a kubelet restarts it, and its postStart hook
// heals the applications, including a distroless one with no shell, no mount and no nsenter inside.
// Also: which files runc lets a container bind inside /proc.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SERVED_FILES } from '../../src/lxcfs/paths.js';
import { mountsAt, probeFile } from '../../src/fuse/mount.js';
import { makeSharedDirectory } from '../helpers/container.js';
import { Docker } from '../helpers/docker.js';
import { Cleanup } from '../helpers/processes.js';
import { DISTROLESS_IMAGE, LXCFS_IMAGE } from './global-setup.js';
import {
  daemonSetPod,
  dockerRunArgs,
  examplePod,
  privilegedFlags,
  type K8sContainer,
  type PodSpec,
} from './kubernetes.js';
import { MEMORY_KB, readerCommand, expectDownThenHealed, stopReader, waitForReads } from './readers.js';
import { LEVEL_DOWN_RECIPE, USUAL_RECIPE, dockerRecipe, recipeList } from './readme.js';

/** The files runc (1.1 to 1.5) accepts as bind targets inside /proc (libcontainer's checkProcMount). */
const RUNC_PROC_TARGETS = ['cpuinfo', 'diskstats', 'meminfo', 'stat', 'swaps', 'uptime', 'loadavg', 'slabinfo'].map(
  (file) => `/proc/${file}`,
);

const cleanup = new Cleanup();
const docker = new Docker(inject('dockerHost'));
let varLib: string;
let mnt: string;
let daemonPod: PodSpec;
let daemon: K8sContainer;
let appPod: PodSpec;

const DAEMON = 'lxcfs-ts-daemon';
const APP = 'app';
const DISTROLESS = 'distroless-app';

afterAll(() => cleanup.run());

beforeAll(() => {
  const dir = cleanup.tempDir('lxcfs-ts-daemonset-');
  varLib = path.join(dir, 'var-lib');
  daemonPod = daemonSetPod();
  daemon = daemonPod.containers[0]!;
  appPod = examplePod();
  // A Bidirectional hostPath must sit on a shared mount (systemd makes / shared; this host's / is
  // private): the README's instruction, on our stand-in for /var/lib/lxcfs-ts.
  makeSharedDirectory(cleanup, path.join(varLib, 'lxcfs-ts'));
  mnt = path.join(varLib, 'lxcfs-ts/lxcfs');
});

const hostPath = (specPath: string): string =>
  specPath.startsWith('/var/lib/') ? path.join(varLib, specPath.slice('/var/lib/'.length)) : specPath;

/** Runs a container of a pod spec; `imageAndCommand` replaces the spec's image and command. */
function start(pod: PodSpec, container: K8sContainer, name: string, image: string, imageAndCommand?: string[]): void {
  const args = dockerRunArgs(pod, container, { name, image, hostPath });
  cleanup.add(() => void docker.run(['rm', '-f', name]));
  docker.ok(imageAndCommand ? [...args.slice(0, args.lastIndexOf(image)), ...imageAndCommand] : args);
}

/** The kubelet runs postStart right after the container starts. Here it is limited to this test's
 * containers (--pid each): on a node, the daemon's remount finds every pod, but on this shared test host
 * the other namespaces are other tests' (and from inside the container pid 1's namespace, which
 * remount leaves alone, cannot be read). */
function postStart(containers: string[]): string {
  const [shell, flag, script] = daemon.lifecycle!.postStart!.exec!.command;
  expect([shell, flag]).toEqual(['/bin/sh', '-c']);
  const pids = containers.map((name) => `--pid ${docker.pid(name)}`).join(' ');
  expect(script).toMatch(/ \|\| true$/);
  return docker.ok(['exec', DAEMON, shell!, flag!, script!.replace(/ \|\| true$/, ` ${pids} || true`)], 60_000);
}

async function waitUntilServing(): Promise<void> {
  for (
    const deadline = Date.now() + 60_000;
    !(mountsAt(mnt).length > 0 && (await probeFile(path.join(mnt, 'proc/uptime'), 1000)).state === 'live');
    await sleep(100)
  ) {
    if (Date.now() > deadline) {
      const logs = docker.run(['logs', DAEMON]);
      throw new Error(`the daemon's container did not serve on ${mnt} within 60 s:\n${logs.stdout}${logs.stderr}`);
    }
  }
}

function memoryUsage(container: string, file: string): number {
  const id = docker.ok(['inspect', '-f', '{{.Id}}', container]).trim();
  const pid = docker.pid(container);
  const cgroup = fs
    .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((line) => line.split(':')[1] === 'memory')!
    .split(':')[2]!;
  expect(cgroup.endsWith(id)).toBe(true);
  return Number(fs.readFileSync(path.join('/sys/fs/cgroup/memory', cgroup, file), 'utf8'));
}

describe('the DaemonSet, run by Docker as a kubelet would', () => {
  it("runs the image with the pod template's privileges and mounts: it mounts on the node and serves", async () => {
    expect(daemonPod.hostPID).toBe(true);
    expect(daemon.securityContext?.privileged).toBe(true);
    expect(daemon.volumeMounts).toContainEqual(
      expect.objectContaining({ mountPath: '/var/lib/lxcfs-ts', mountPropagation: 'Bidirectional' }),
    );
    const { note } = privilegedFlags();
    if (note) console.log(note);
    start(daemonPod, daemon, DAEMON, LXCFS_IMAGE);
    await waitUntilServing();
    expect(mountsAt(mnt).at(-1)).toMatchObject({ fsType: 'fuse.lxcfs', source: 'lxcfs' });
  });

  it('the liveness probe reads a served file within its timeout', () => {
    const probe = daemon.livenessProbe!.exec!.command;
    expect(probe.join(' ')).toMatch(/^timeout -s KILL \d+ cat \/var\/lib\/lxcfs-ts\/lxcfs\/proc\/uptime$/);
    const result = docker.run(['exec', DAEMON, ...probe], daemon.livenessProbe!.timeoutSeconds! * 1000);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+ \d+\.\d+\n$/);
  });

  it('the example pod sees its own memory limit and uptime', () => {
    const app = appPod.containers[0]!;
    start(appPod, app, APP, 'debian');
    expect(docker.ok(['exec', APP, 'free', '-m'])).toMatch(/^Mem:\s+256\s/m);
    const age = Number(docker.ok(['exec', APP, 'cat', '/proc/uptime']).split(' ')[0]);
    expect(age).toBeLessThan(60);
  });

  it('a distroless container mounted the same way (no shell, no mount, no nsenter) sees its limit', () => {
    const app = { ...appPod.containers[0]!, command: ['/usr/bin/sleep', 'infinity'] };
    start(appPod, app, DISTROLESS, DISTROLESS_IMAGE);
    for (const missing of ['/bin/sh', '/usr/bin/mount', '/usr/bin/nsenter']) {
      expect(docker.run(['exec', DISTROLESS, missing, '--help']).status, missing).not.toBe(0);
    }
    expect(docker.ok(['exec', DISTROLESS, 'cat', '/proc/meminfo'])).toMatch(
      new RegExp(`^MemTotal:\\s+${MEMORY_KB} kB$`, 'm'),
    );
    // postStart with nothing to heal: it succeeds and says so.
    expect(postStart([APP, DISTROLESS])).toMatch(
      /\nremount: 2 namespaces seen, 0 files re-bound, 18 skipped, 0 failed; nothing changed\n$/,
    );
  });

  it("the daemon's container is killed and started again: postStart heals both apps, and no app read the host's numbers", async () => {
    // A second app that reads in a loop through all of it.
    const hostCpus = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    start(
      appPod,
      { ...appPod.containers[0]!, command: undefined },
      'looping-app',
      'debian',
      readerCommand('debian', hostCpus),
    );
    await waitForReads(docker, 'looping-app', 200);
    // The measured footprint the DaemonSet's memory request is based on.
    const atRest = memoryUsage(DAEMON, 'memory.usage_in_bytes');
    const requested = daemon.resources!.requests!.memory!;
    console.log(
      `daemon container memory: ${(atRest / 2 ** 20).toFixed(0)} MiB, at most ${(memoryUsage(DAEMON, 'memory.max_usage_in_bytes') / 2 ** 20).toFixed(0)} MiB since it started; requested ${requested}`,
    );
    expect(atRest).toBeLessThan(Number(requested.replace('Mi', '')) * 2 ** 20);

    docker.ok(['kill', DAEMON]);
    // Its serving process lets go of the connection once it sees its supervisor gone.
    for (
      const deadline = Date.now() + 30_000;
      docker.run(['exec', APP, 'cat', '/proc/meminfo']).status === 0;
      await sleep(100)
    ) {
      expect(Date.now(), "the mount still answers 30 s after the daemon's container was killed").toBeLessThan(deadline);
    }
    for (const name of [APP, DISTROLESS]) {
      expect(docker.run(['exec', name, 'cat', '/proc/meminfo']).stderr, name).toMatch(
        /Transport endpoint is not connected/,
      );
    }
    docker.ok(['start', DAEMON]);
    const healed = postStart([APP, DISTROLESS, 'looping-app']);
    await waitUntilServing();
    for (const name of [APP, DISTROLESS, 'looping-app']) {
      expect(healed, name).toContain(`(pid ${docker.pid(name)}): re-bound 8 mounts: `);
      expect(docker.ok(['exec', name, 'cat', '/proc/meminfo']), name).toMatch(
        new RegExp(`^MemTotal:\\s+${MEMORY_KB} kB$`, 'm'),
      );
    }
    await sleep(500);
    expectDownThenHealed(stopReader(docker, 'looping-app'));
  }, 300_000);
});

describe('which files runc lets a container bind inside /proc', () => {
  it("every served /proc file: accepted exactly when runc lists it, refused with runc's message otherwise", () => {
    const bind = (target: string): string[] => ['-v', `${path.join(mnt, target)}:${target}:ro`];
    const served = SERVED_FILES.map((file) => '/' + file);
    const accepted = served.filter((target) => RUNC_PROC_TARGETS.includes(target) || !target.startsWith('/proc/'));
    // One container binds every accepted file at once; each refused one gets a container of its own.
    const all = docker.run(['run', '--rm', '--network', 'none', ...accepted.flatMap(bind), 'debian', 'true']);
    expect(all.status, all.stderr).toBe(0);
    const refused = served.filter((target) => !accepted.includes(target));
    for (const target of refused) {
      const result = docker.run(['run', '--rm', '--network', 'none', ...bind(target), 'debian', 'true']);
      expect(result.stderr, target).toMatch(
        new RegExp(`"[^"]*${target}" cannot be mounted because it is inside /proc`),
      );
    }
    expect(refused).toEqual(['/proc/pressure/cpu', '/proc/pressure/io', '/proc/pressure/memory']);
  });

  it("the README's recipes and the example pod bind only accepted targets", () => {
    const targets = [
      ...dockerRecipe(USUAL_RECIPE).options,
      ...dockerRecipe(LEVEL_DOWN_RECIPE).options,
      ...recipeList().flags,
    ]
      .filter((option) => option.includes(':/proc/'))
      .map((option) => option.split(':')[1]!);
    targets.push(
      ...appPod.containers[0]!.volumeMounts!.map((mount) => mount.mountPath).filter((target) =>
        target.startsWith('/proc/'),
      ),
    );
    expect(targets.length).toBeGreaterThan(20);
    for (const target of targets) expect(RUNC_PROC_TARGETS, target).toContain(target);
  });
});
