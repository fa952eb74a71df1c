// prom-client's process metrics (CPU, memory, heap, descriptors, handles, GC, version) without its
// event-loop delay monitor: that one samples the loop every 10 ms, which woke both processes of an idle
// daemon 100 times a second each. The loop's lag is measured at the scrape instead, as prom-client does
// where that monitor is missing: how long a callback queued with setImmediate waits to run.

import { createRequire } from 'node:module';
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';

type Collector = (registry: Registry, config: { labels: Record<string, string> }) => void;

const require = createRequire(import.meta.url);
const SAMPLED = 'eventLoopLag';

/** Registers the process metrics of this process in `registry`, each series labelled with `labels`. */
export function registerProcessMetrics(registry: Registry, labels: Record<string, string>): void {
  // The collectors are prom-client's own modules, one per name of its public list.
  for (const name of collectDefaultMetrics.metricsList) {
    if (name !== SAMPLED) (require(`prom-client/lib/metrics/${name}.js`) as Collector)(registry, { labels });
  }
  new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds, at the scrape.',
    labelNames: Object.keys(labels),
    registers: [registry],
    aggregator: 'average',
    async collect() {
      const start = performance.now();
      await new Promise((resolve) => setImmediate(resolve));
      this.set(labels, (performance.now() - start) / 1000);
    },
  });
}
