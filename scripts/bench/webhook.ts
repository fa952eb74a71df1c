// `lxcfs-ts webhook` under load: the time per AdmissionReview (p50/p99, measured by the client from
// sending the request to the end of the answer, on kept-alive HTTPS connections as the API server uses
// them) with 1 client, then with 8 concurrent clients (threads: webhook-client.ts), and reviews per
// second. The webhook runs as users run it (bin/lxcfs-ts, default log level: one log line per review).
// The API server's budget per call is the configuration's timeoutSeconds (5 s).
// With each round, from the kernel's schedstat of the webhook: its time on a CPU per review, and how long
// it was ready to run but waited for a CPU. The client threads share this machine's cores with it, so
// when the second figure dominates, the latencies measure the machine rather than the webhook.
// Last, the quiet cluster: a review after the connection sat idle for 6 s (longer than Node's default
// keep-alive), which is every review when pods are created now and then; whether the connection was
// still open, and the latency, against a review that opens a new TLS connection.
//
//   tsx scripts/bench/webhook.ts [--quick] [--reviews N]     (alone; `npm run bench` runs it too)
//
// Certificates from scripts/webhook-cert.sh (openssl) and the webhook process come from the tests'
// helpers; everything it makes is in a temp dir removed at the end, and the webhook is stopped by its pid.

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, Worker } from 'node:worker_threads';
import { Cleanup } from '../../test/helpers/processes.js';
import { makeWebhookCerts, SERVICE_HOST, startWebhook } from '../../test/helpers/webhook.js';
import { type ClientReply, type ClientTask, reviewBody, timedReview } from './webhook-client.js';

function percentile(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export interface Round {
  clients: number;
  reviews: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  reviews_per_s: number;
  seconds: number;
}

/** `clients` threads, each `perClient` reviews on its own kept-alive connection. The clock starts once
 * every thread has loaded (through tsx, thread start-up would otherwise weigh on reviews per second). */
async function round(port: number, ca: string, clients: number, perClient: number, prefix = ''): Promise<Round> {
  const workers = Array.from({ length: clients }, (_, id) => {
    const task: ClientTask = { port, ca, servername: SERVICE_HOST, count: perClient, id: `${prefix}${id}` };
    return new Worker(new URL('./webhook-client.ts', import.meta.url), { workerData: task });
  });
  const reply = (worker: Worker): Promise<ClientReply> =>
    new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  // each thread says it has loaded
  await Promise.all(workers.map(reply));
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    workers.map(async (worker) => {
      const done = reply(worker);
      worker.postMessage('go');
      const message = await done;
      if ('error' in message) throw new Error(message.error);
      if (!('latencies' in message)) throw new Error('a client thread answered out of turn');
      return message.latencies;
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const all = Float64Array.from(results.flatMap((latencies) => [...latencies])).sort();
  return {
    clients,
    reviews: all.length,
    p50_us: percentile(all, 0.5),
    p99_us: percentile(all, 0.99),
    max_us: all[all.length - 1]!,
    reviews_per_s: all.length / seconds,
    seconds,
  };
}

/** The webhook's own time per review (its log's "ms": from the request to the answer written, without
 * the client's side of TLS), over the measured rounds. */
function serverSide(log: string): { reviews: number; p50_us: number; p99_us: number } {
  const all = log
    .split('\n')
    .filter((line) => line.includes('"msg":"pod injected"') && !line.includes('"uid":"bench-w'))
    .map((line) => (JSON.parse(line) as { ms: number }).ms * 1000)
    .sort((a, b) => a - b);
  return { reviews: all.length, p50_us: percentile(all, 0.5), p99_us: percentile(all, 0.99) };
}

/** The process's time on a CPU and time ready to run but waiting for one, in ns (/proc/PID/schedstat). */
function schedstat(pid: number): { onCpu: number; waiting: number } {
  const [onCpu, waiting] = fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number) as [
    number,
    number,
  ];
  return { onCpu, waiting };
}

export type MeasuredRound = Round & { server_cpu_us: number; server_wait_ms: number; wall_ms: number };

/** A round, with the webhook's CPU time per review and its wait for a CPU over the round. */
async function measuredRound(
  pid: number,
  port: number,
  ca: string,
  clients: number,
  perClient: number,
): Promise<MeasuredRound> {
  const before = schedstat(pid);
  const result = await round(port, ca, clients, perClient);
  const after = schedstat(pid);
  return {
    ...result,
    server_cpu_us: (after.onCpu - before.onCpu) / 1e3 / result.reviews,
    server_wait_ms: (after.waiting - before.waiting) / 1e6,
    wall_ms: result.seconds * 1e3,
  };
}

const IDLE_MS = 6000;

interface Quiet {
  afterIdle: { samples: number; reused: number; failed: string[]; p50_us: number };
  newConnection: { p50_us: number; p99_us: number };
}

/** Reviews after the connection sat idle, and reviews on a new connection each, one client. */
async function quietCluster(port: number, ca: string, samples: number): Promise<Quiet> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const afterIdle: Array<{ us: number; reused: boolean; error?: undefined } | { error: string }> = [];
  try {
    await timedReview(port, SERVICE_HOST, ca, agent, reviewBody('idle-first'));
    for (let i = 0; i < samples; i++) {
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      // A connection the webhook closes as the review is sent fails it (the API server then applies
      // failurePolicy): counted, not fatal.
      afterIdle.push(
        await timedReview(port, SERVICE_HOST, ca, agent, reviewBody(`idle-${i}`)).catch(
          (err: NodeJS.ErrnoException) => ({
            error: err.code ?? err.message,
          }),
        ),
      );
    }
  } finally {
    agent.destroy();
  }
  const fresh = [];
  for (let i = 0; i < 200; i++)
    fresh.push((await timedReview(port, SERVICE_HOST, ca, false, reviewBody(`fresh-${i}`))).us);
  fresh.sort((a, b) => a - b);
  const answered = afterIdle.filter((r) => r.error === undefined).sort((a, b) => a.us - b.us);
  const failed = afterIdle.flatMap((r) => (r.error === undefined ? [] : [r.error]));
  return {
    afterIdle: {
      samples,
      reused: answered.filter((r) => r.reused).length,
      failed,
      p50_us: answered.length > 0 ? answered[answered.length >> 1]!.us : NaN,
    },
    newConnection: { p50_us: percentile(fresh, 0.5), p99_us: percentile(fresh, 0.99) },
  };
}

function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

export interface WebhookResult {
  single: MeasuredRound;
  concurrent: MeasuredRound;
  server: ReturnType<typeof serverSide>;
  quiet: Quiet;
  rss_kb: number;
}

/** Starts the webhook, measures, stops it. Returns the figures. */
export async function benchWebhook({
  reviews,
  idleSamples = 3,
}: {
  reviews: number;
  idleSamples?: number;
}): Promise<WebhookResult> {
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.tempDir('lxcfs-ts-bench-webhook-');
    const certs = makeWebhookCerts(path.join(dir, 'certs'));
    const ca = fs.readFileSync(certs.ca, 'utf8');
    const webhook = await startWebhook(cleanup, ['--cert', certs.cert, '--key', certs.key]);
    const { child, port } = webhook;
    cleanup.add(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    });
    // V8 compiles the request path over the first few thousand reviews.
    await round(port, ca, 2, Math.ceil(reviews / 4), 'w');
    const single = await measuredRound(child.pid!, port, ca, 1, reviews);
    const concurrent = await measuredRound(child.pid!, port, ca, 8, Math.ceil(reviews / 8) * 2);
    const server = serverSide(webhook.output());
    const quiet = await quietCluster(port, ca, idleSamples);
    return { single, concurrent, server, quiet, rss_kb: rssKb(child.pid!) };
  } finally {
    await cleanup.run();
  }
}

export function formatWebhook(result: WebhookResult): string {
  const us = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`);
  const row = (r: MeasuredRound): string =>
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
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, reviews: { type: 'string' } },
    strict: true,
  });
  const reviews = Number(values.reviews ?? (values.quick ? 400 : 8000));
  if (!Number.isInteger(reviews) || reviews <= 0) {
    console.error(`bench-webhook: --reviews must be a positive whole number, not ${values.reviews}`);
    process.exit(2);
  }
  console.log(formatWebhook(await benchWebhook({ reviews, idleSamples: values.quick ? 1 : 3 })));
}
