// End to end without a kubelet: a pod mutated by `lxcfs-ts webhook` is turned into the mounts its
// volumes mean (hostPath File volumes bound over the container's files, the HostToContainer directory
// as an rslave bind, as kubelet and runc make them), in containers with their own namespaces and
// cgroups. The containers see their limits, lose the files when the daemon dies, and `lxcfs-ts remount`
// (the DaemonSet's postStart) heals them through the directory the webhook injected, also a container
// whose own mount binary is booby-trapped (distroless-style: nothing in it is run).

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INJECTED_FILES } from '../../src/webhook/injected-files.js';
import { admissionReview, container as podContainer, deploymentPod, type Json } from '../fixtures/admission.js';
import { createCgroup } from '../helpers/cgroups.js';
import { makeSharedDirectory, startContainer, type Bind, type Container } from '../helpers/container.js';
import { Cleanup, killDaemonHard, LXCFS_TS, run, startDaemon, type Daemon } from '../helpers/processes.js';
import { applyReviewPatch, makeWebhookCerts, postReview, startWebhook } from '../helpers/webhook.js';

const MEMORY_LIMIT = 256 << 20;
const CPUS = '0';
/** Each step runs a few dozen processes (nsenter, cat, a daemon): slow on a busy 2-core host. */
const STEP_MS = 120_000;

const cleanup = new Cleanup();
let mnt: string;
let pidFile: string;
let daemon: Daemon;
let pod: Json;
const containers: Container[] = [];

type VolumeMount = { name: string; mountPath: string; mountPropagation?: string };
type Volume = { name: string; hostPath?: { path: string; type?: string } };

/** The host mounts one container of the pod gets for its hostPath volumes, as kubelet asks runc for
 * them: a plain bind per mount, rslave for HostToContainer. Other volumes (the service account token)
 * have nothing to do with lxcfs and are left out. */
function mountsOf(podJson: Json, name: string): { binds: Bind[]; propagated: Bind[] } {
  const spec = podJson.spec as { volumes: Volume[]; containers: Array<{ name: string; volumeMounts: VolumeMount[] }> };
  const volumeMounts = spec.containers.find((c) => c.name === name)!.volumeMounts;
  const binds: Bind[] = [];
  const propagated: Bind[] = [];
  for (const mount of volumeMounts) {
    const source = spec.volumes.find((volume) => volume.name === mount.name)?.hostPath?.path;
    if (source === undefined) continue;
    (mount.mountPropagation === 'HostToContainer' ? propagated : binds).push({ source, target: mount.mountPath });
  }
  return { binds, propagated };
}

function expectOwnLimits(container: Container): void {
  const meminfo = container.exec('cat', ['/proc/meminfo']);
  expect(meminfo.status, meminfo.stderr).toBe(0);
  expect(meminfo.stdout).toMatch(new RegExp(`^MemTotal:\\s+${MEMORY_LIMIT / 1024} kB$`, 'm'));
  expect(container.exec('cat', ['/sys/devices/system/cpu/online']).stdout).toBe(`${CPUS}\n`);
  for (const file of INJECTED_FILES) expect(container.exec('cat', ['/' + file]).status, file).toBe(0);
}

function expectDeadFiles(container: Container): void {
  for (const file of INJECTED_FILES) expect(container.exec('cat', ['/' + file]).stderr, file).toMatch(/Transport endpoint is not connected/);
}

function remount(): { status: number | null; output: string } {
  const result = run(LXCFS_TS, ['remount', '--mountpoint', mnt, ...containers.flatMap((c) => ['--pid', String(c.pid)])], { timeout: 30_000 });
  return { status: result.status, output: result.stdout + result.stderr };
}

beforeAll(async () => {
  const dir = cleanup.tempDir('lxcfs-ts-webhook-heal-');
  // The one-level-down layout: the daemon on .../lxcfs-ts/lxcfs, pods given .../lxcfs-ts.
  const lxcfsDir = path.join(dir, 'lxcfs-ts');
  makeSharedDirectory(cleanup, lxcfsDir);
  mnt = path.join(lxcfsDir, 'lxcfs');
  pidFile = path.join(dir, 'lxcfs-ts.pid');
  daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);

  const certs = makeWebhookCerts(path.join(dir, 'certs'));
  const ca = fs.readFileSync(certs.ca);
  const webhook = await startWebhook(cleanup, ['--cert', certs.cert, '--key', certs.key, '--mountpoint', mnt]);
  const original = deploymentPod('shop', { containers: [podContainer('app'), podContainer('distroless')] });
  const reply = await postReview(webhook.port, ca, admissionReview('v1', original, { namespace: 'shop' }));
  expect(reply.status, reply.text).toBe(200);
  pod = applyReviewPatch(original, reply.review!.response as Json);

  for (const name of ['app', 'distroless']) {
    const memory = createCgroup(cleanup, 'memory', `lxcfs-ts-webhook-${name}`);
    memory.write('memory.limit_in_bytes', MEMORY_LIMIT);
    const cpuset = createCgroup(cleanup, 'cpuset', `lxcfs-ts-webhook-${name}`);
    cpuset.write('cpuset.cpus', CPUS);
    containers.push(await startContainer(cleanup, { ...mountsOf(pod, name), cgroups: [memory.dir, cpuset.dir], trapped: name === 'distroless' }));
  }
}, 60_000);

afterAll(() => cleanup.run());

describe('a pod as the webhook mutated it', () => {
  it('mounts every injected file and the directory above the mountpoint (HostToContainer)', () => {
    const { binds, propagated } = mountsOf(pod, 'app');
    expect(binds.map((bind) => bind.target).sort()).toEqual(INJECTED_FILES.map((file) => '/' + file).sort());
    expect(propagated).toEqual([{ source: path.dirname(mnt), target: path.dirname(mnt) }]);
  });

  it('each container sees its own memory limit and CPUs', () => {
    for (const container of containers) expectOwnLimits(container);
  });
});

describe('after the daemon dies', () => {
  it('kill -9 of the daemon, a new one, and remount: healed, the distroless-style container too', async () => {
    await killDaemonHard(daemon);
    for (const container of containers) expectDeadFiles(container);

    daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
    const healed = remount();
    expect(healed.status, healed.output).toBe(0);
    for (const container of containers) expectOwnLimits(container);
    // Nothing from inside the distroless-style container was run.
    expect(containers[1]!.trapRuns()).toEqual([]);
  }, STEP_MS);

  it('a clean stop and start (systemctl restart) and remount: healed, because the pod has the directory above the mount', async () => {
    const stopped = await daemon.stop();
    expect(stopped.code).toBe(0);
    for (const container of containers) expectDeadFiles(container);
    daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
    const healed = remount();
    expect(healed.status, healed.output).toBe(0);
    for (const container of containers) expectOwnLimits(container);
  }, STEP_MS);
});
