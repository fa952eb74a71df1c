// The Prometheus endpoint (--metrics ADDR:PORT), served by the supervisor: it lives as long as the
// daemon, across upgrades and crashes of the serving process. A scrape asks the serving process for its
// numbers (server-metrics.ts) and merges them with the supervisor's own; prom-client formats the text.

import http from 'node:http';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from 'pino';
import { VERSION } from '../version.js';
import { PROCESS_LABEL, type MetricFamily } from './families.js';
import { registerProcessMetrics } from './process-metrics.js';

export interface SupervisorCounts {
  upgrades: number;
  failedUpgrades: number;
  restarts: number;
}

export interface MetricsSources {
  counts: () => SupervisorCounts;
  /** The serving process's families; undefined while none serves (restarting). */
  serverMetrics(timeoutMs: number): Promise<MetricFamily[] | undefined>;
}

export class MetricsError extends Error {
  override name = 'MetricsError';
}

const SERVER_TIMEOUT_MS = 2000;

function supervisorRegistry(counts: () => SupervisorCounts): Registry {
  const registry = new Registry();
  const registers = [registry];
  registerProcessMetrics(registry, { [PROCESS_LABEL]: 'supervisor' });
  new Gauge({ name: 'lxcfs_ts_info', help: 'Always 1; the version running', labelNames: ['version'], registers }).set(
    { version: VERSION },
    1,
  );
  new Counter({
    name: 'lxcfs_ts_upgrades_total',
    help: 'Upgrades of the serving process (lxcfs-ts upgrade, systemctl reload), by outcome',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.reset();
      this.inc({ outcome: 'done' }, counts().upgrades);
      this.inc({ outcome: 'failed' }, counts().failedUpgrades);
    },
  });
  new Counter({
    name: 'lxcfs_ts_server_restarts_total',
    help: 'Serving processes started again after one died (crash, kill)',
    registers,
    collect() {
      this.reset();
      this.inc(counts().restarts);
    },
  });
  new Gauge({
    name: 'lxcfs_ts_serving',
    help: '1 when a serving process answered this scrape, 0 while it is being restarted',
    registers,
  });
  return registry;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host: host || '::', port: Number(address.slice(at + 1)) };
}

/** Listens on ADDR:PORT; rejects with a one-line error when it cannot (port in use, no such address). */
export async function startMetricsEndpoint(
  address: string,
  sources: MetricsSources,
  log: Logger,
): Promise<{ close(): void }> {
  const registry = supervisorRegistry(sources.counts);
  const serving = registry.getSingleMetric('lxcfs_ts_serving') as Gauge;
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' || url.pathname !== '/metrics') {
      response
        .writeHead(404, { 'content-type': 'text/plain', connection: 'close' })
        .end('lxcfs-ts serves only GET /metrics\n');
      return;
    }
    void (async () => {
      const fromServer = await sources.serverMetrics(SERVER_TIMEOUT_MS);
      serving.set(fromServer ? 1 : 0);
      const own = (await registry.getMetricsAsJSON()) as unknown as MetricFamily[];
      const text = await AggregatorRegistry.aggregate([own, fromServer ?? []]).metrics();
      // One connection per scrape: a kept-alive one that the server closes when idle races with the
      // scraper's next request on it ("other side closed"); a scrape every few seconds needs no reuse.
      response.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE, connection: 'close' }).end(text);
    })().catch((err: Error) => {
      log.error({ err }, 'metrics scrape failed');
      response.writeHead(500, { 'content-type': 'text/plain', connection: 'close' }).end(`${err.message}\n`);
    });
  });
  const { host, port } = splitAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsError(
          `--metrics ${address}: cannot listen: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (the port is taken; choose another)' : ''}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  log.info({ address, path: '/metrics' }, 'serving Prometheus metrics');
  return { close: () => server.close() };
}
