// `lxcfs-ts webhook` end to end without a cluster: the README's pod, as its user writes it, goes through
// the webhook over HTTPS as the API server sends it (an AdmissionReview, the server checked against the
// CA), with the flags deploy/kubernetes/webhook-deployment.yaml gives it. The returned JSONPatch is
// applied by an RFC 6902 implementation, and test/docker/kubernetes.ts turns the mutated pod into the
// `docker run`s a kubelet would ask for: init containers first, to completion, then the containers,
// each hostPath volume a bind, the HostToContainer directory an rslave bind. The daemon of this checkout
// runs on the host as the DaemonSet would on the node (same mountpoint, below a stand-in for /var/lib).
// The containers see their limits; after a kill -9 of the whole daemon, a new one and `lxcfs-ts remount`,
// they read their own numbers again (never the host's), a distroless one (no shell, no mount) too.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { INJECTED_FILES } from '../../src/webhook/injected-files.js';
import { admissionReview, type Json } from '../fixtures/admission.js';
import { makeSharedDirectory } from '../helpers/container.js';
import { Docker } from '../helpers/docker.js';
import { Cleanup, killDaemonHard, LXCFS_TS, run, servingPid, startDaemon, type Daemon } from '../helpers/processes.js';
import { applyReviewPatch, makeWebhookCerts, postReview, startWebhook } from '../helpers/webhook.js';
import { DISTROLESS_IMAGE } from './global-setup.js';
import { dockerRunArgs, webhookDeployment, type K8sContainer, type Pod } from './kubernetes.js';
import { MEMORY_KB, readerCommand, expectDownThenHealed, stopReader, waitForReads } from './readers.js';
import { readmePod } from './readme.js';

const HOST_CPUS = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
const DEAD = /Transport endpoint is not connected/;

const cleanup = new Cleanup();
const docker = new Docker(inject('dockerHost'));
/** Stands in for the node's /var/lib. */
let varLib: string;
let mnt: string;
let pidFile: string;
let daemon: Daemon;
let written: Pod;
let mutated: Pod;
/** The containers started from the mutated pod (and the copies of its app), by docker name. */
const started: string[] = [];

afterAll(() => cleanup.run());

const hostPath = (nodePath: string): string =>
  nodePath.startsWith('/var/lib/') ? path.join(varLib, nodePath.slice('/var/lib/'.length)) : nodePath;

/** Starts one container of the mutated pod as a kubelet would; `imageAndCommand` replaces the spec's. */
function start(container: K8sContainer, name: string, imageAndCommand?: string[]): void {
  const args = dockerRunArgs(mutated.spec, container, { name, image: container.image, hostPath });
  cleanup.add(() => void docker.run(['rm', '-f', name]));
  docker.ok(imageAndCommand ? [...args.slice(0, args.lastIndexOf(container.image)), ...imageAndCommand] : args);
  started.push(name);
}

function memTotalKb(meminfo: string): number {
  const match = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  expect(match, meminfo).not.toBeNull();
  return Number(match![1]);
}

beforeAll(async () => {
  const dir = cleanup.tempDir('lxcfs-ts-webhook-docker-');
  varLib = path.join(dir, 'var-lib');
  const { container: webhookContainer, namespace: webhookNamespace } = webhookDeployment();
  const [, subcommand, ...flags] = webhookContainer.command!;
  expect(subcommand).toBe('webhook');
  const nodeMountpoint = flags.find((flag) => flag.startsWith('--mountpoint='))!.slice('--mountpoint='.length);
  // The node's / is shared under systemd; this host's is not: the README's bind for such nodes.
  makeSharedDirectory(cleanup, hostPath(path.dirname(nodeMountpoint)));
  mnt = hostPath(nodeMountpoint);
  pidFile = path.join(dir, 'lxcfs-ts.pid');
  daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);

  const certs = makeWebhookCerts(path.join(dir, 'certs'));
  const local = flags.filter((flag) => !/^--(cert|key|listen)=/.test(flag));
  const webhook = await startWebhook(cleanup, [...local, '--cert', certs.cert, '--key', certs.key], {
    POD_NAMESPACE: webhookNamespace,
  });
  written = readmePod();
  const review = admissionReview('v1', written as unknown as Json, { namespace: written.metadata.namespace });
  const reply = await postReview(webhook.port, fs.readFileSync(certs.ca), review);
  expect(reply.status, reply.text).toBe(200);
  mutated = applyReviewPatch(written as unknown as Json, reply.review!.response as Json) as unknown as Pod;

  // The README's image under its own name (no registry here): the suite's Debian image.
  docker.ok(['tag', 'debian', 'debian:bookworm']);
  cleanup.add(() => void docker.run(['rmi', 'debian:bookworm']));
}, 120_000);

describe("the README's pod, mutated by the webhook and run by Docker as a kubelet would", () => {
  it('the webhook gave every container and init container each file and the directory above the mountpoint', () => {
    const all = [...(mutated.spec.initContainers ?? []), ...mutated.spec.containers];
    expect(written.spec.initContainers).toHaveLength(1);
    for (const container of all) {
      const mounts = container.volumeMounts ?? [];
      expect(mounts.map((mount) => mount.mountPath).sort(), container.name).toEqual(
        [...INJECTED_FILES.map((file) => '/' + file), '/var/lib/lxcfs-ts'].sort(),
      );
      expect(mounts.find((mount) => mount.mountPath === '/var/lib/lxcfs-ts')?.mountPropagation).toBe('HostToContainer');
    }
  });

  it('the init container runs first, to completion, and reads its own memory limit', () => {
    const [init] = mutated.spec.initContainers!;
    expect(init!.resources?.limits?.memory).toBe('128Mi');
    start(init!, 'webhook-init');
    const status = docker.ok(['wait', 'webhook-init'], 120_000).trim();
    const logs = docker.run(['logs', 'webhook-init']);
    expect(status, logs.stdout + logs.stderr).toBe('0');
    expect(memTotalKb(logs.stdout)).toBe(128 * 1024);
  });

  it('the app sees its own memory limit in free and /proc/meminfo, the distroless copy of it too', () => {
    const [app] = mutated.spec.containers;
    expect(app!.resources?.limits?.memory).toBe('256Mi');
    expect(MEMORY_KB).toBe(256 * 1024);
    start(app!, 'webhook-app');
    // The README's image is the suite's Debian with procps (free).
    expect(docker.ok(['exec', 'webhook-app', 'free', '-m'])).toMatch(/^Mem:\s+256\s/m);
    expect(memTotalKb(docker.ok(['exec', 'webhook-app', 'cat', '/proc/meminfo']))).toBe(MEMORY_KB);

    // The same container on an image with no shell and no mount: cat and sleep and their libraries.
    start({ ...app!, image: DISTROLESS_IMAGE, command: ['/usr/bin/sleep', 'infinity'] }, 'webhook-distroless');
    for (const missing of ['/bin/sh', '/usr/bin/mount', '/bin/mount']) {
      expect(docker.run(['exec', 'webhook-distroless', missing, '--help']).status, missing).not.toBe(0);
    }
    expect(memTotalKb(docker.ok(['exec', 'webhook-distroless', 'cat', '/proc/meminfo']))).toBe(MEMORY_KB);
  });

  it("kill -9 of the whole daemon, a new one and remount: every container heals, and never reads the host's numbers", async () => {
    const [app] = mutated.spec.containers;
    start({ ...app!, command: undefined }, 'webhook-reader', readerCommand(app!.image, HOST_CPUS));
    await waitForReads(docker, 'webhook-reader', 200);

    // Supervisor and serving process at once: nothing is left to take the connection over. The serving
    // process exits by itself once its supervisor is gone, and may be reaped before a kill that comes a
    // moment late (ESRCH): stopped first, it is still there to be killed.
    const serving = await servingPid(daemon);
    process.kill(serving, 'SIGSTOP');
    process.kill(daemon.pid, 'SIGKILL');
    process.kill(serving, 'SIGKILL');
    await killDaemonHard(daemon);
    const apps = started.filter((name) => name !== 'webhook-init');
    for (const name of apps) {
      expect(docker.run(['exec', name, 'cat', '/proc/meminfo']).stderr, name).toMatch(DEAD);
    }

    daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
    const pids = apps.map((name) => docker.pid(name));
    const remount = run(LXCFS_TS, ['remount', '--mountpoint', mnt, ...pids.flatMap((pid) => ['--pid', String(pid)])], {
      timeout: 60_000,
    });
    const output = remount.stdout + remount.stderr;
    expect(remount.status, output).toBe(0);
    for (const pid of pids) expect(output).toContain(`(pid ${pid}): re-bound ${INJECTED_FILES.length} mounts`);
    expect(docker.ok(['exec', 'webhook-app', 'free', '-m'])).toMatch(/^Mem:\s+256\s/m);
    for (const name of apps) {
      expect(memTotalKb(docker.ok(['exec', name, 'cat', '/proc/meminfo'])), name).toBe(MEMORY_KB);
    }
    await sleep(500);

    expectDownThenHealed(stopReader(docker, 'webhook-reader'));
  }, 300_000);
});
