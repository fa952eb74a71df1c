// `lxcfs-ts webhook` over real HTTPS, as kube-apiserver calls it: certificates from
// scripts/webhook-cert.sh (openssl), the client checking the server against the CA under the Service's
// name, AdmissionReview documents shaped like the API server's, and every returned JSONPatch applied
// with an RFC 6902 implementation and the resulting pod checked.

import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { INJECTED_FILES } from '../../src/webhook/injected-files.js';
import { MAX_BODY_BYTES } from '../../src/webhook/server.js';
import { admissionReview, container, deploymentPod, KUBE_API_ACCESS, type Json, type ReviewVersion } from '../fixtures/admission.js';
import { Cleanup, LXCFS_TS, REPO, run } from '../helpers/processes.js';
import { applyReviewPatch, makeWebhookCerts, postReview, request, SERVICE_HOST, startWebhook, type Webhook, type WebhookCerts } from '../helpers/webhook.js';

const MOUNTPOINT = '/var/lib/lxcfs-ts/lxcfs';
const HEAL_DIR = '/var/lib/lxcfs-ts';
const OWN_NAMESPACE = 'lxcfs-ts-system';
const NAMESPACE = 'shop';

const cleanup = new Cleanup();
let certs: WebhookCerts;
let ca: Buffer;
let webhook: Webhook;

type Container = { name: string; volumeMounts?: Json[] };
type Pod = { spec: { volumes?: Json[]; containers: Container[]; initContainers?: Container[] } };

function allContainers(pod: Json): Container[] {
  const { spec } = pod as Pod;
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** Posts the review and returns its AdmissionResponse, checked for what every answer must hold. */
async function review(reviewDoc: Json, reviewPath = '/mutate'): Promise<Json> {
  const reply = await postReview(webhook.port, ca, reviewDoc, reviewPath);
  expect(reply.status, reply.text).toBe(200);
  expect(reply.review).toMatchObject({ apiVersion: reviewDoc.apiVersion, kind: 'AdmissionReview' });
  const response = reply.review!.response as Json;
  expect(response.uid).toBe((reviewDoc.request as Json).uid);
  expect(response.allowed).toBe(true);
  return response;
}

/** Mutates `pod` in NAMESPACE through the webhook; returns the patched pod and the response. */
async function mutate(pod: Json, version: ReviewVersion = 'v1', reviewPath = '/mutate'): Promise<{ pod: Json; response: Json; sent: Json }> {
  const sent = admissionReview(version, pod, { namespace: NAMESPACE });
  const response = await review(sent, reviewPath);
  return { pod: applyReviewPatch(pod, response), response, sent };
}

/**
 * What a pod must look like after injection: every container has each served file mounted once from
 * a hostPath File volume of the daemon's mountpoint, and the healing directory with HostToContainer;
 * no two volumes share a name, no container mounts a path twice, every mount names a volume.
 * `except` lists mount paths the user had mounted from elsewhere (left as they were).
 */
function expectInjected(pod: Json, except: string[] = []): void {
  const volumes = (pod as Pod).spec.volumes ?? [];
  const names = volumes.map((volume) => volume.name as string);
  expect(new Set(names).size, `duplicate volume names: ${names.join(', ')}`).toBe(names.length);
  const volume = (name: unknown): Json => {
    const found = volumes.find((v) => v.name === name);
    expect(found, `volume ${String(name)}`).toBeDefined();
    return found!;
  };
  for (const c of allContainers(pod)) {
    const mounts = c.volumeMounts ?? [];
    const paths = mounts.map((m) => m.mountPath as string);
    expect(new Set(paths).size, `container ${c.name} mounts a path twice: ${paths.join(', ')}`).toBe(paths.length);
    for (const mount of mounts) volume(mount.name);
    for (const file of INJECTED_FILES) {
      if (except.includes('/' + file)) continue;
      const mount = mounts.find((m) => m.mountPath === '/' + file);
      expect(mount, `container ${c.name}: /${file}`).toMatchObject({ readOnly: true });
      expect(volume(mount!.name).hostPath).toEqual({ path: `${MOUNTPOINT}/${file}`, type: 'File' });
    }
    const heal = mounts.find((m) => m.mountPath === HEAL_DIR);
    expect(heal, `container ${c.name}: ${HEAL_DIR}`).toMatchObject({ mountPropagation: 'HostToContainer' });
    expect(volume(heal!.name).hostPath).toEqual({ path: HEAL_DIR, type: 'Directory' });
  }
}

/** The webhook's log line about the review with this uid (it is written after the answer is sent). */
async function logOf(reviewDoc: Json): Promise<Json> {
  const uid = (reviewDoc.request as Json).uid;
  for (let i = 0; i < 100; i++) {
    const line = webhook.logs().find((entry) => entry.uid === uid);
    if (line) return line;
    await sleep(20);
  }
  throw new Error(`no log line for review ${String(uid)}:\n${webhook.output()}`);
}

beforeAll(async () => {
  const dir = cleanup.tempDir('lxcfs-ts-webhook-');
  certs = makeWebhookCerts(path.join(dir, 'certs'));
  ca = fs.readFileSync(certs.ca);
  webhook = await startWebhook(cleanup, ['--cert', certs.cert, '--key', certs.key, '--mountpoint', MOUNTPOINT], { POD_NAMESPACE: OWN_NAMESPACE });
});

afterAll(async () => {
  await cleanup.run();
});

describe('the served set', () => {
  it('is the daemon\'s files that runc accepts as bind targets: /sys/devices/system/cpu/online yes, /proc/pressure/* no', () => {
    expect(INJECTED_FILES).toContain('sys/devices/system/cpu/online');
    expect(INJECTED_FILES).toEqual(expect.arrayContaining(['proc/meminfo', 'proc/cpuinfo', 'proc/stat', 'proc/uptime', 'proc/loadavg', 'proc/swaps', 'proc/diskstats']));
    expect(INJECTED_FILES.filter((file) => file.startsWith('proc/pressure'))).toEqual([]);
  });

  it('the certificate script prints the CA as one base64 line for caBundle', () => {
    expect(Buffer.from(certs.caBundle, 'base64').equals(ca)).toBe(true);
  });
});

describe('Pod CREATE', () => {
  it('v1: a Deployment\'s pod (with its service account volume) gets every file and the healing directory', async () => {
    const pod = deploymentPod(NAMESPACE);
    const { pod: mutated, response, sent } = await mutate(pod);
    expect(response.patchType).toBe('JSONPatch');
    expectInjected(mutated);
    // What the pod had is still there, unchanged.
    const spec = (mutated as Pod).spec;
    expect(spec.volumes![0]).toEqual(KUBE_API_ACCESS);
    expect(spec.containers[0]!.volumeMounts![0]).toEqual((container('web').volumeMounts as Json[])[0]);
    expect(response.warnings).toBeUndefined();
    expect(await logOf(sent)).toMatchObject({ msg: 'pod injected', namespace: NAMESPACE, pod: 'web-7d4b9c6f58-*', mounts: INJECTED_FILES.length + 1, containers: 1 });
  });

  it('v1beta1: a pod without any volume or volume mount gets them, and the answer is v1beta1', async () => {
    const bare = deploymentPod(NAMESPACE, { volumes: undefined, automountServiceAccountToken: false, containers: [container('web', { volumeMounts: undefined })] });
    const { pod: mutated } = await mutate(JSON.parse(JSON.stringify(bare)) as Json, 'v1beta1');
    expectInjected(mutated);
  });

  it('init containers get the files too, and so does a container without volumeMounts next to one with', async () => {
    const pod = deploymentPod(NAMESPACE, {
      initContainers: [container('migrate'), container('warm-cache', { volumeMounts: undefined })],
      containers: [container('web'), container('sidecar', { volumeMounts: undefined })],
    });
    const { pod: mutated, response } = await mutate(JSON.parse(JSON.stringify(pod)) as Json);
    expectInjected(mutated);
    expect(allContainers(mutated).map((c) => c.name)).toEqual(['migrate', 'warm-cache', 'web', 'sidecar']);
    // One volume per file, shared by the four containers.
    expect((mutated as Pod).spec.volumes).toHaveLength(1 + INJECTED_FILES.length + 1);
    expect(response.warnings).toBeUndefined();
  });

  it("a user's own /proc/meminfo is left alone and named in a warning; the rest is injected", async () => {
    const pod = deploymentPod(NAMESPACE, {
      volumes: [KUBE_API_ACCESS, { name: 'fake-meminfo', configMap: { name: 'fake-meminfo' } }],
      containers: [
        container('web', { volumeMounts: [...(container('web').volumeMounts as Json[]), { name: 'fake-meminfo', mountPath: '/proc/meminfo', subPath: 'meminfo' }] }),
        container('sidecar'),
      ],
    });
    const { pod: mutated, response } = await mutate(pod);
    const web = (mutated as Pod).spec.containers[0]!;
    expect(web.volumeMounts!.filter((m) => m.mountPath === '/proc/meminfo')).toEqual([{ name: 'fake-meminfo', mountPath: '/proc/meminfo', subPath: 'meminfo' }]);
    expectInjected({ spec: { ...(mutated as Pod).spec, containers: [web] } }, ['/proc/meminfo']);
    // The other container has no mount of its own there: it gets ours.
    expectInjected({ spec: { ...(mutated as Pod).spec, containers: [(mutated as Pod).spec.containers[1]!] } });
    expect(response.warnings).toEqual(['container "web" already mounts /proc/meminfo (volume "fake-meminfo"): left as it is']);
  });

  it('an already mutated pod (re-created from its spec, or the webhook called again) gets no patch', async () => {
    const { pod: once } = await mutate(deploymentPod(NAMESPACE));
    const sent = admissionReview('v1', once, { namespace: NAMESPACE });
    const response = await review(sent);
    expect(response.patch).toBeUndefined();
    expect(response.patchType).toBeUndefined();
    expect(response.warnings).toBeUndefined();
    expect(await logOf(sent)).toMatchObject({ msg: 'pod already injected', mounts: 0 });
  });

  it('reinvocation after another webhook added a container: only that container is patched, no volume is added twice', async () => {
    const { pod: once } = await mutate(deploymentPod(NAMESPACE));
    (once as Pod).spec.containers.push(container('istio-proxy') as Container);
    const { pod: twice } = await mutate(once);
    expectInjected(twice);
    expect((twice as Pod).spec.volumes).toEqual((once as Pod).spec.volumes);
  });

  it('volume names that collide with the pod\'s own are made unique', async () => {
    const pod = deploymentPod(NAMESPACE, {
      volumes: [KUBE_API_ACCESS, { name: 'lxcfs-ts-proc-meminfo', emptyDir: {} }, { name: 'lxcfs-ts-dir', emptyDir: {} }],
      containers: [container('web', { volumeMounts: [{ name: 'lxcfs-ts-proc-meminfo', mountPath: '/scratch' }] })],
    });
    const { pod: mutated } = await mutate(pod);
    expectInjected(mutated);
    const names = (mutated as Pod).spec.volumes!.map((v) => v.name);
    expect(names).toEqual(expect.arrayContaining(['lxcfs-ts-proc-meminfo', 'lxcfs-ts-proc-meminfo-2', 'lxcfs-ts-dir', 'lxcfs-ts-dir-2']));
  });

  it('a pod mutated by lxcfs-admission-webhook keeps its volumes for the same host files and gets the rest', async () => {
    const old = ['cpuinfo', 'meminfo', 'diskstats', 'stat', 'swaps', 'uptime', 'loadavg'];
    const pod = deploymentPod(NAMESPACE, {
      volumes: [KUBE_API_ACCESS, ...old.map((f) => ({ name: `lxcfs-proc-${f}`, hostPath: { path: `${MOUNTPOINT}/proc/${f}`, type: '' } }))],
      containers: [container('web', { volumeMounts: [...(container('web').volumeMounts as Json[]), ...old.map((f) => ({ name: `lxcfs-proc-${f}`, mountPath: `/proc/${f}` }))] })],
    });
    const { pod: mutated, response } = await mutate(pod);
    expect(response.warnings).toBeUndefined();
    const mounts = (mutated as Pod).spec.containers[0]!.volumeMounts!;
    expect(mounts.filter((m) => (m.mountPath as string).startsWith('/proc/')).map((m) => m.name)).toEqual(
      expect.arrayContaining(old.map((f) => `lxcfs-proc-${f}`)),
    );
    expect(mounts.find((m) => m.mountPath === '/sys/devices/system/cpu/online')).toBeDefined();
    expect(mounts.find((m) => m.mountPath === HEAL_DIR)).toMatchObject({ mountPropagation: 'HostToContainer' });
  });
});

describe('selection', () => {
  it('a pod that opts out (annotation lxcfs-ts.io/inject: "false") is allowed unchanged', async () => {
    const pod = deploymentPod(NAMESPACE, {}, { annotations: { 'lxcfs-ts.io/inject': 'false' } });
    const sent = admissionReview('v1', pod, { namespace: NAMESPACE });
    const response = await review(sent);
    expect(response.patch).toBeUndefined();
    expect(await logOf(sent)).toMatchObject({ msg: 'pod left alone', skipped: 'opted out (lxcfs-ts.io/inject: "false")' });
  });

  it('on an unlabelled namespace (/mutate/opt-in) only a pod that opts in is injected', async () => {
    const plain = await review(admissionReview('v1', deploymentPod(NAMESPACE), { namespace: NAMESPACE }), '/mutate/opt-in');
    expect(plain.patch).toBeUndefined();
    for (const metadata of [{ annotations: { 'lxcfs-ts.io/inject': 'true' } }, { labels: { app: 'web', 'lxcfs-ts.io/inject': 'true' } }]) {
      const { pod } = await mutate(deploymentPod(NAMESPACE, {}, metadata), 'v1', '/mutate/opt-in');
      expectInjected(pod);
    }
  });

  it('lxcfs-admission-webhook\'s path /mutating-pods works the same as /mutate', async () => {
    const { pod } = await mutate(deploymentPod(NAMESPACE), 'v1', '/mutating-pods');
    expectInjected(pod);
  });

  it('the webhook\'s own namespace is never injected, whatever the configuration sends', async () => {
    const pod = deploymentPod(OWN_NAMESPACE);
    const sent = admissionReview('v1', pod, { namespace: OWN_NAMESPACE });
    const response = await review(sent);
    expect(response.patch).toBeUndefined();
    expect(await logOf(sent)).toMatchObject({ msg: 'pod left alone', namespace: OWN_NAMESPACE });
  });

  it('hostUsers: false and Windows pods are left alone with the reason in the log; hostPID pods are injected', async () => {
    for (const [spec, reason] of [
      [{ hostUsers: false }, /^hostUsers: false/],
      [{ os: { name: 'windows' } }, /Windows/],
    ] as const) {
      const sent = admissionReview('v1', deploymentPod(NAMESPACE, spec), { namespace: NAMESPACE });
      const response = await review(sent);
      expect(response.patch).toBeUndefined();
      expect((await logOf(sent)).skipped).toMatch(reason);
    }
    const { pod, sent } = await mutate(deploymentPod(NAMESPACE, { hostPID: true }));
    expectInjected(pod);
    expect((await logOf(sent)).note).toMatch(/hostPID/);
  });

  it('anything but a Pod CREATE is allowed unchanged: a pod UPDATE, a pods/binding, a Deployment', async () => {
    const pod = deploymentPod(NAMESPACE, {}, { name: 'web-7d4b9c6f58-x2x9k' });
    const others = [
      admissionReview('v1', pod, { namespace: NAMESPACE, operation: 'UPDATE', oldObject: pod }),
      admissionReview('v1', { metadata: { name: 'web-7d4b9c6f58-x2x9k' }, target: { kind: 'Node', name: 'node-1' } }, { namespace: NAMESPACE, subResource: 'binding', kind: { group: '', version: 'v1', kind: 'Binding' } }),
      admissionReview('v1', { metadata: { name: 'web', namespace: NAMESPACE }, spec: { template: pod } }, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, resource: { group: 'apps', version: 'v1', resource: 'deployments' } }),
    ];
    for (const other of others) {
      const response = await review(other);
      expect(response).toEqual({ uid: (other.request as Json).uid, allowed: true });
    }
  });
});

describe('connections', () => {
  /** Posts a review through `agent`; resolves with whether the agent reused a connection for it. */
  function postOn(agent: https.Agent): Promise<{ status: number; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify(admissionReview('v1', deploymentPod(NAMESPACE), { namespace: NAMESPACE }));
      const req = https.request(
        { host: '127.0.0.1', port: webhook.port, servername: SERVICE_HOST, ca, agent, method: 'POST', path: '/mutate', headers: { 'Content-Type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('a kept-alive connection left idle for 11 s still carries the next review (no new TLS handshake)', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await postOn(agent)).toEqual({ status: 200, reused: false });
      // Longer than Node's default keep-alive (5 s) and the server's headers timeout (10 s).
      await sleep(11_000);
      expect(await postOn(agent)).toEqual({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  }, 40_000);
});

describe('bad input', () => {
  const post = (body: string | Buffer | Buffer[], headers: Record<string, string> = { 'Content-Type': 'application/json' }) =>
    request(webhook.port, ca, { method: 'POST', path: '/mutate', headers, body });

  async function expectBadRequest(reply: Promise<{ status: number; text: string }>, reason: RegExp): Promise<void> {
    const { status, text } = await reply;
    expect(status).toBe(400);
    expect(text).toMatch(reason);
    expect(text.trimEnd().split('\n'), 'one line').toHaveLength(1);
    // And the server still serves.
    expect(await request(webhook.port, ca, { path: '/healthz' })).toMatchObject({ status: 200, text: 'ok\n' });
  }

  it('malformed JSON, a JSON that is no AdmissionReview, a missing uid: 400 with the reason', async () => {
    await expectBadRequest(post('{"apiVersion": "admission.k8s.io/v1", "kind": '), /^malformed JSON/);
    await expectBadRequest(post('[1,2]'), /not a JSON object/);
    await expectBadRequest(post(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'CREATE' } })), /request\.uid is missing/);
    const noObject = admissionReview('v1', null, { namespace: NAMESPACE });
    await expectBadRequest(post(JSON.stringify(noObject)), /request\.object is missing/);
  });

  it('an unknown review version: 400 naming the versions served', async () => {
    const future = { ...admissionReview('v1', deploymentPod(NAMESPACE)), apiVersion: 'admission.k8s.io/v2' };
    await expectBadRequest(post(JSON.stringify(future)), /unsupported apiVersion "admission\.k8s\.io\/v2"; expected admission\.k8s\.io\/v1 or admission\.k8s\.io\/v1beta1/);
  });

  it('a wrong Content-Type: 400', async () => {
    await expectBadRequest(post(JSON.stringify(admissionReview('v1', deploymentPod(NAMESPACE))), { 'Content-Type': 'application/yaml' }), /Content-Type must be application\/json/);
  });

  it('a body over 1 MiB, declared or streamed without a length: 400, and the server goes on', async () => {
    const big = JSON.stringify({ ...admissionReview('v1', deploymentPod(NAMESPACE)), padding: 'x'.repeat(MAX_BODY_BYTES) });
    await expectBadRequest(post(big), /body is over 1048576 bytes/);
    const chunks = Array.from({ length: 20 }, () => Buffer.alloc(128 * 1024, 0x20));
    await expectBadRequest(post(chunks), /body is over 1048576 bytes/);
  });

  it('a client that goes away in the middle of its body leaves the server serving', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: webhook.port, servername: SERVICE_HOST, ca });
    await once(socket, 'secureConnect');
    socket.write('POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"apiVersion":');
    await sleep(100);
    socket.destroy();
    expect(await request(webhook.port, ca, { path: '/healthz' })).toMatchObject({ status: 200, text: 'ok\n' });
    expect(webhook.child.exitCode).toBeNull();
  });

  it('a wrong method or path: 405 or 404, one line', async () => {
    expect(await request(webhook.port, ca, { path: '/mutate' })).toMatchObject({ status: 405, text: '/mutate takes POST\n' });
    expect(await request(webhook.port, ca, { path: '/validate', method: 'POST' })).toMatchObject({ status: 404 });
    expect(webhook.child.exitCode).toBeNull();
  });
});

describe('where the files are on the nodes', () => {
  it("the daemon's config file decides the mountpoint when --mountpoint is not given", async () => {
    const config = path.join(certs.dir, 'lxcfs-ts.conf');
    fs.writeFileSync(config, '[lxcfs-ts]\nmountpoint = /srv/lxcfs\n');
    const configured = await startWebhook(cleanup, ['--cert', certs.cert, '--key', certs.key, '--config', config]);
    const original = deploymentPod(NAMESPACE);
    const reply = await postReview(configured.port, ca, admissionReview('v1', original, { namespace: NAMESPACE }));
    const volumes = ((applyReviewPatch(original, (reply.review as Json).response as Json) as Pod).spec.volumes ?? []).map((v) => (v.hostPath as Json | undefined)?.path);
    // lxcfs's usual layout: the mountpoint itself is the directory given with HostToContainer.
    expect(volumes).toEqual(expect.arrayContaining(['/srv/lxcfs/proc/meminfo', '/srv/lxcfs/sys/devices/system/cpu/online', '/srv/lxcfs']));
  });
});

describe('start-up errors: one line on stderr, exit 1', () => {
  function start(args: string[]): { status: number | null; stderr: string } {
    const result = run(LXCFS_TS, ['webhook', ...args], { timeout: 20_000 });
    return { status: result.status, stderr: result.stderr };
  }

  it.each([
    ['a missing certificate', () => ['--cert', '/nonexistent/tls.crt', '--key', certs.key], /^lxcfs-ts webhook: cannot read --cert \/nonexistent\/tls\.crt: no such file$/],
    ['a key that is not the certificate\'s', () => ['--cert', certs.cert, '--key', certs.ca.replace('ca.crt', 'ca.key')], /^lxcfs-ts webhook: --cert .* and --key .* do not match/],
    ['a key file given as the certificate', () => ['--cert', certs.key, '--key', certs.key], /holds no PEM certificate$/],
    ['a bad --listen', () => ['--cert', certs.cert, '--key', certs.key, '--listen', 'localhost'], /--listen.*expected HOST:PORT/],
    ['a config file with an unknown key', () => {
      const config = path.join(certs.dir, 'bad.conf');
      fs.writeFileSync(config, '[lxcfs-ts]\nmount_point = /srv/lxcfs\n');
      return ['--cert', certs.cert, '--key', certs.key, '--config', config];
    }, /^lxcfs-ts webhook: .*mount_point/],
    ['a port in use', () => ['--cert', certs.cert, '--key', certs.key, '--listen', `127.0.0.1:${webhook.port}`], /cannot listen on 127\.0\.0\.1:\d+: the address is in use$/],
  ])('%s', (_name, args, message) => {
    const { status, stderr } = start(args());
    expect(status).toBe(1);
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(message);
  });
});

describe('certificate rotation', () => {
  async function servedFingerprint(): Promise<string> {
    return (await request(webhook.port, ca, { path: '/healthz' })).fingerprint;
  }

  async function waitForFingerprint(wanted: string): Promise<void> {
    for (let i = 0; i < 200 && (await servedFingerprint()) !== wanted; i++) await sleep(100);
    expect(await servedFingerprint()).toBe(wanted);
  }

  function fingerprintOf(file: string): string {
    return new X509Certificate(fs.readFileSync(file)).fingerprint256;
  }

  it('a new certificate in the same files is served without a restart; a mismatched pair is refused and the old one kept', async () => {
    const first = await servedFingerprint();
    expect(first).toBe(fingerprintOf(certs.cert));
    const pid = webhook.child.pid;

    makeWebhookCerts(certs.dir);
    const second = fingerprintOf(certs.cert);
    expect(second).not.toBe(first);
    await waitForFingerprint(second);

    // A key that does not belong to the certificate: logged, and the current pair goes on serving.
    const goodKey = fs.readFileSync(certs.key);
    fs.copyFileSync(certs.ca.replace('ca.crt', 'ca.key'), certs.key);
    for (let i = 0; i < 50 && !webhook.logs().some((line) => String(line.reason).includes('do not match')); i++) await sleep(100);
    expect(webhook.logs().find((line) => String(line.reason).includes('do not match'))).toMatchObject({ level: 40 });
    expect(await servedFingerprint()).toBe(second);
    fs.writeFileSync(certs.key, goodKey);
    makeWebhookCerts(certs.dir);
    await waitForFingerprint(fingerprintOf(certs.cert));
    expect(webhook.child.pid).toBe(pid);
    expect(webhook.child.exitCode).toBeNull();
  }, 90_000);
});

describe('the shipped manifests (deploy/kubernetes/webhook-*.yaml)', () => {
  function objects(file: string): Json[] {
    return parseAllDocuments(fs.readFileSync(path.join(REPO, 'deploy/kubernetes', file), 'utf8')).map((doc) => doc.toJS() as Json).filter(Boolean);
  }
  const [configuration] = objects('webhook-configuration.yaml') as [{ webhooks: Json[] }];
  const [service] = objects('webhook-service.yaml') as [{ metadata: Json; spec: { ports: Json[] } }];
  const [deployment] = objects('webhook-deployment.yaml') as [{ metadata: Json; spec: Json }];
  const podSpec = (deployment.spec as { template: { spec: { containers: Array<{ command: string[]; env: Json[] }> } } }).template.spec;

  it('the configuration calls the Service on paths the webhook serves, with the settings the API server needs', () => {
    expect(`${String(service.metadata.name)}.${String(service.metadata.namespace)}.svc`).toBe(SERVICE_HOST);
    expect(configuration.webhooks.map((webhook) => (webhook.clientConfig as { service: Json }).service)).toEqual([
      { namespace: service.metadata.namespace, name: service.metadata.name, path: '/mutate', port: service.spec.ports[0]!.port },
      { namespace: service.metadata.namespace, name: service.metadata.name, path: '/mutate/opt-in', port: service.spec.ports[0]!.port },
    ]);
    for (const webhook of configuration.webhooks) {
      expect(webhook).toMatchObject({ sideEffects: 'None', failurePolicy: 'Ignore', timeoutSeconds: 5, reinvocationPolicy: 'IfNeeded', admissionReviewVersions: ['v1', 'v1beta1'] });
      expect(webhook.rules).toEqual([{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
      // Never the namespace of the webhook (and of the DaemonSet).
      const selector = (webhook.namespaceSelector as { matchExpressions: Json[] }).matchExpressions;
      expect(selector).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [deployment.metadata.namespace] });
      // Pod Security admission would reject an injected pod there (hostPath volumes).
      expect(selector).toContainEqual({ key: 'pod-security.kubernetes.io/enforce', operator: 'NotIn', values: ['baseline', 'restricted'] });
    }
    expect((configuration.webhooks[0]!.namespaceSelector as { matchExpressions: Json[] }).matchExpressions).toContainEqual({ key: 'lxcfs-admission-webhook', operator: 'In', values: ['enabled'] });
  });

  it("the Deployment's command line starts and injects its --mountpoint's files and the directory above it", async () => {
    const [command, ...args] = podSpec.containers[0]!.command;
    expect(command).toMatch(/\/bin\/lxcfs-ts$/);
    expect(podSpec.containers[0]!.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    const local = args
      .slice(1)
      .filter((arg) => !arg.startsWith('--listen'))
      .map((arg) => arg.replace(/^--cert=.*/, `--cert=${certs.cert}`).replace(/^--key=.*/, `--key=${certs.key}`));
    const shipped = await startWebhook(cleanup, local, { POD_NAMESPACE: String(deployment.metadata.namespace) });
    const original = deploymentPod(NAMESPACE);
    const reply = await postReview(shipped.port, ca, admissionReview('v1', original, { namespace: NAMESPACE }));
    const volumes = ((applyReviewPatch(original, (reply.review as Json).response as Json) as Pod).spec.volumes ?? []).map((v) => (v.hostPath as Json | undefined)?.path);
    expect(volumes).toContain('/var/lib/lxcfs-ts/lxcfs/proc/meminfo');
    expect(volumes).toContain('/var/lib/lxcfs-ts');
    const own = await postReview(shipped.port, ca, admissionReview('v1', deploymentPod('kube-system'), { namespace: 'kube-system' }));
    expect(((own.review as Json).response as Json).patch).toBeUndefined();
  });
});
