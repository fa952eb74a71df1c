#!/usr/bin/env node
// `lxcfs-ts webhook` under load: the time per AdmissionReview (p50/p99, measured by the client from
// sending the request to the end of the answer, on kept-alive HTTPS connections as the API server
// uses them) with 1 client, then with 8 concurrent clients, and reviews per second. The webhook runs
// as users run it (bin/lxcfs-ts, default log level: one log line per review). The API server's budget
// per call is the configuration's timeoutSeconds (5 s).
// With each round, from the kernel's schedstat of the webhook: its time on a CPU per review, and how long
// it was ready to run but waited for a CPU. The client threads share this machine's cores with it, so
// when the second figure dominates, the latencies measure the machine rather than the webhook.
// Last, the quiet cluster: a review after the connection sat idle for 6 s (longer than Node's default
// keep-alive), which is every review when pods are created now and then; whether the connection was
// still open, and the latency, against a review that opens a new TLS connection.
//
//   node scripts/bench-webhook.mjs [--quick] [--reviews N]     (alone; `npm run bench` runs it too)
//
// Only node built-ins; certificates from scripts/webhook-cert.sh (openssl); everything it makes is in
// a temp dir removed at the end, and the webhook it starts is stopped by its pid.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const SERVICE_HOST = 'lxcfs-ts-webhook.kube-system.svc';

/** A Deployment's pod as the API server sends it: two containers and an init container, each with the
 * service account token mount. */
function reviewBody(uid) {
  const tokenMount = { name: 'kube-api-access-7xq2m', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true };
  const container = (name) => ({
    name,
    image: 'registry.example/shop/web:1.27.3',
    resources: { limits: { cpu: '500m', memory: '256Mi' } },
    terminationMessagePath: '/dev/termination-log',
    imagePullPolicy: 'IfNotPresent',
    volumeMounts: [tokenMount],
  });
  const pod = {
    metadata: { generateName: 'web-7d4b9c6f58-', namespace: 'shop', labels: { app: 'web' } },
    spec: {
      volumes: [{ name: tokenMount.name, projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } }],
      initContainers: [container('migrate')],
      containers: [container('web'), container('sidecar')],
      restartPolicy: 'Always',
      serviceAccountName: 'default',
    },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: pod,
      oldObject: null,
      dryRun: false,
    },
  });
}

// ---------------------------------------------------------------------------------------------
// a client thread: `count` reviews one after the other on one kept-alive connection

async function client({ port, ca, count, id }) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, servername: SERVICE_HOST, ca, agent, method: 'POST', path: '/mutate', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => (res.statusCode === 200 && text.includes('"patch"') ? resolve() : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const latencies = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const body = reviewBody(`bench-${id}-${i}`);
    const started = process.hrtime.bigint();
    await post(body);
    latencies[i] = Number(process.hrtime.bigint() - started) / 1000;
  }
  agent.destroy();
  return latencies;
}

if (!isMainThread) {
  client(workerData).then(
    (latencies) => parentPort.postMessage({ latencies }, [latencies.buffer]),
    (err) => parentPort.postMessage({ error: err.message }),
  );
}

// ---------------------------------------------------------------------------------------------
// the run

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function round(port, ca, clients, perClient, warmup, prefix = '') {
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    Array.from({ length: clients }, (_, id) =>
      new Promise((resolve, reject) => {
        const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { port, ca, count: perClient, id: prefix + id } });
        worker.once('message', (message) => (message.error ? reject(new Error(message.error)) : resolve(message.latencies)));
        worker.once('error', reject);
      }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (warmup) return undefined;
  const all = Float64Array.from(results.flatMap((latencies) => [...latencies])).sort();
  return { clients, reviews: all.length, p50_us: percentile(all, 0.5), p99_us: percentile(all, 0.99), max_us: all[all.length - 1], reviews_per_s: all.length / seconds, seconds };
}

/** The webhook's own time per review (its log's "ms": from the request to the answer written, without
 * the client's side of TLS), over the measured rounds. */
function serverSide(log) {
  const all = log
    .split('\n')
    .filter((line) => line.includes('"msg":"pod injected"') && !line.includes('"uid":"bench-w'))
    .map((line) => JSON.parse(line).ms * 1000)
    .sort((a, b) => a - b);
  return { reviews: all.length, p50_us: percentile(all, 0.5), p99_us: percentile(all, 0.99) };
}

/** The process's time on a CPU and time ready to run but waiting for one, in ns (/proc/PID/schedstat). */
function schedstat(pid) {
  const [onCpu, waiting] = fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return { onCpu, waiting };
}

/** A round, with the webhook's CPU time per review and its wait for a CPU over the round. */
async function measuredRound(pid, ...args) {
  const before = schedstat(pid);
  const result = await round(...args);
  const after = schedstat(pid);
  return { ...result, server_cpu_us: (after.onCpu - before.onCpu) / 1e3 / result.reviews, server_wait_ms: (after.waiting - before.waiting) / 1e6, wall_ms: result.seconds * 1e3 };
}

/** One review on `agent`; resolves with the latency in µs and whether a kept-alive connection carried it. */
function timedReview(port, ca, agent, uid) {
  const body = reviewBody(uid);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, servername: SERVICE_HOST, ca, agent, method: 'POST', path: '/mutate', headers: { 'Content-Type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve({ us: Number(process.hrtime.bigint() - started) / 1000, reused: req.reusedSocket }) : reject(new Error(`status ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const IDLE_MS = 6000;

/** Reviews after the connection sat idle, and reviews on a new connection each, one client. */
async function quietCluster(port, ca, samples) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const afterIdle = [];
  try {
    await timedReview(port, ca, agent, 'idle-first');
    for (let i = 0; i < samples; i++) {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      // A connection the webhook closes as the review is sent fails it (the API server then applies
      // failurePolicy): counted, not fatal.
      afterIdle.push(await timedReview(port, ca, agent, `idle-${i}`).catch((err) => ({ error: err.code ?? err.message })));
    }
  } finally {
    agent.destroy();
  }
  const fresh = [];
  for (let i = 0; i < 200; i++) fresh.push((await timedReview(port, ca, false, `fresh-${i}`)).us);
  fresh.sort((a, b) => a - b);
  const answered = afterIdle.filter((r) => r.error === undefined).sort((a, b) => a.us - b.us);
  return {
    afterIdle: { samples, reused: answered.filter((r) => r.reused).length, failed: afterIdle.filter((r) => r.error !== undefined).map((r) => r.error), p50_us: answered.length > 0 ? answered[answered.length >> 1].us : NaN },
    newConnection: { p50_us: percentile(fresh, 0.5), p99_us: percentile(fresh, 0.99) },
  };
}

function rssKb(pid) {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/** Starts the webhook, measures, stops it. Returns the figures. */
export async function benchWebhook({ reviews, idleSamples = 3 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-bench-webhook-'));
  let child;
  try {
    const certs = spawnSync('bash', [path.join(ROOT, 'scripts/webhook-cert.sh'), '--out', path.join(dir, 'certs')], { encoding: 'utf8' });
    if (certs.status !== 0) throw new Error(`webhook-cert.sh failed: ${certs.stderr.trim()}`);
    const ca = fs.readFileSync(path.join(dir, 'certs/ca.crt'), 'utf8');
    const log = path.join(dir, 'webhook.log');
    const out = fs.openSync(log, 'w');
    child = spawn(path.join(ROOT, 'bin/lxcfs-ts'), ['webhook', '--cert', path.join(dir, 'certs/tls.crt'), '--key', path.join(dir, 'certs/tls.key'), '--listen', '127.0.0.1:0'], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    let port;
    for (let waited = 0; port === undefined; waited += 50) {
      if (child.exitCode !== null || waited > 15_000) throw new Error(`the webhook did not start: ${fs.readFileSync(log, 'utf8').slice(-500)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      port = /"port":(\d+),.*"msg":"webhook listening"/.exec(fs.readFileSync(log, 'utf8'))?.[1];
    }
    port = Number(port);
    // V8 compiles the request path over the first few thousand reviews.
    await round(port, ca, 2, Math.ceil(reviews / 4), true, 'w');
    const single = await measuredRound(child.pid, port, ca, 1, reviews, false);
    const concurrent = await measuredRound(child.pid, port, ca, 8, Math.ceil(reviews / 8) * 2, false);
    const server = serverSide(fs.readFileSync(log, 'utf8'));
    const quiet = await quietCluster(port, ca, idleSamples);
    return { single, concurrent, server, quiet, rss_kb: rssKb(child.pid) };
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatWebhook(result) {
  const us = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`);
  const row = (r) =>
    `  ${String(r.clients).padStart(2)} client${r.clients > 1 ? 's' : ' '}  ${String(r.reviews).padStart(6)} reviews  p50 ${us(r.p50_us).padStart(8)}  p99 ${us(r.p99_us).padStart(8)}  max ${us(r.max_us).padStart(8)}  ${r.reviews_per_s.toFixed(0).padStart(6)} reviews/s` +
    `\n      the webhook: ${us(r.server_cpu_us)} on a CPU per review; over the ${(r.wall_ms / 1000).toFixed(1)} s, ready but waiting for a CPU ${(r.server_wait_ms / 1000).toFixed(1)} s`;
  const { afterIdle, newConnection } = result.quiet;
  return [
    'Webhook: AdmissionReview of a 3-container pod (Pod CREATE, v1), over kept-alive HTTPS, one log line per review',
    row(result.single),
    row(result.concurrent),
    `  the webhook's own time per review (its log, both runs): p50 ${us(result.server.p50_us)}, p99 ${us(result.server.p99_us)}; RSS at the end ${(result.rss_kb / 1024).toFixed(0)} MiB`,
    `  quiet cluster: after ${IDLE_MS / 1000} s idle, ${afterIdle.samples} reviews: ${afterIdle.reused} on the kept connection, ${afterIdle.failed.length} failed${afterIdle.failed.length > 0 ? ` (${afterIdle.failed.join(', ')})` : ''}, p50 ${us(afterIdle.p50_us)}; a new TLS connection per review: p50 ${us(newConnection.p50_us)}, p99 ${us(newConnection.p99_us)}`,
  ].join('\n');
}

if (isMainThread && process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, reviews: { type: 'string' } }, strict: true });
  const reviews = Number(values.reviews ?? (values.quick ? 400 : 8000));
  if (!Number.isInteger(reviews) || reviews <= 0) {
    console.error(`bench-webhook: --reviews must be a positive whole number, not ${values.reviews}`);
    process.exit(2);
  }
  console.log(formatWebhook(await benchWebhook({ reviews, idleSamples: values.quick ? 1 : 3 })));
}
