// The serving process's metrics: its readers' request counters and READ latencies per file, its open
// handles and snapshot memory, the loadavg sampler's work, the garbage collections of each of its
// threads, and the process metrics (memory, CPU, event-loop lag: process-metrics.ts). Collected only
// when the supervisor asks (a scrape), never on the request path.

import { Gauge, Registry } from 'prom-client';
import type { LoadavgSampler } from '../lxcfs/loadavg-sampler.js';
import { TREE_PATHS } from '../lxcfs/paths.js';
import {
  LATENCY_BOUNDS,
  OTHER_NODE,
  STAT_NODES,
  STAT_OPS,
  STAT_OUTCOMES,
  totalRequests,
} from '../fuse/request-stats.js';
import { SNAPSHOT_PAGE_BYTES, SnapshotStore, type SnapshotMemory } from '../fuse/snapshots.js';
import { gcTotals, type GcStatsMemory } from '../util/gc-stats.js';
import { PROCESS_LABEL, type MetricFamily, type MetricSample } from './families.js';
import { registerProcessMetrics } from './process-metrics.js';

export interface GcSources {
  memory: GcStatsMemory;
  /** The slots of each thread role. */
  slots: { readers: number[]; main: number };
  /** Has the threads publish what they counted (FuseServer.foldGcStats). */
  fold: () => Promise<void>;
}

export interface ServerMetricSources {
  requestStats: SharedArrayBuffer;
  gc?: GcSources;
  snapshots: SnapshotMemory;
  loadavg: () => LoadavgSampler | undefined;
}

/** Node id n is TREE_PATHS[n - 1] (paths.ts); ids the tree does not name are the mirrored host files of
 * sys/devices/system/cpu; node id 0 is no node (INIT, INTERRUPT). */
function fileOf(node: number): string {
  if (node === OTHER_NODE) return 'sys/devices/system/cpu/*';
  if (node === 0) return '-';
  const treePath = TREE_PATHS[node - 1];
  return treePath === undefined ? `node ${node}` : treePath || '/';
}

function requestFamilies(buffer: SharedArrayBuffer): MetricFamily[] {
  const totals = totalRequests(buffer);
  const requests: MetricSample[] = [];
  const durations: MetricSample[] = [];
  for (let node = 0; node < STAT_NODES; node++) {
    const file = fileOf(node);
    for (let op = 0; op < STAT_OPS.length; op++) {
      for (let outcome = 0; outcome < STAT_OUTCOMES.length; outcome++) {
        const value = totals.count(node, op, outcome);
        if (value > 0) requests.push({ value, labels: { file, op: STAT_OPS[op]!, outcome: STAT_OUTCOMES[outcome]! } });
      }
    }
    const buckets = totals.readBuckets(node);
    const count = buckets.reduce((sum, n) => sum + n, 0);
    if (count === 0) continue;
    let cumulative = 0;
    buckets.forEach((n, i) => {
      cumulative += n;
      durations.push({
        metricName: 'lxcfs_ts_read_duration_seconds_bucket',
        value: cumulative,
        labels: { file, le: i < LATENCY_BOUNDS.length ? LATENCY_BOUNDS[i]! : '+Inf' },
      });
    });
    durations.push({
      metricName: 'lxcfs_ts_read_duration_seconds_sum',
      value: totals.readSeconds(node),
      labels: { file },
    });
    durations.push({ metricName: 'lxcfs_ts_read_duration_seconds_count', value: count, labels: { file } });
  }
  return [
    {
      name: 'lxcfs_ts_requests_total',
      help: 'FUSE requests answered, by file, operation and outcome (ok or the errno)',
      type: 'counter',
      aggregator: 'sum',
      values: requests,
    },
    {
      name: 'lxcfs_ts_read_duration_seconds',
      help: 'Time to answer a READ, by file (the first READ of a handle renders the file; later ones copy from its snapshot)',
      type: 'histogram',
      aggregator: 'sum',
      values: durations,
    },
  ];
}

/** Collections and their pauses by thread role (the readers summed) and kind. Every series is there from
 * the start, zeros included, so that a rate over a scrape that saw the first collection is right. */
function gcFamilies(gc: GcSources): MetricFamily[] {
  const counts: MetricSample[] = [];
  const pauses: MetricSample[] = [];
  const roles: Array<[string, number[]]> = [
    ['main', [gc.slots.main]],
    ['reader', gc.slots.readers],
  ];
  for (const [thread, slots] of roles) {
    const perSlot = slots.map((slot) => gcTotals(gc.memory, slot));
    perSlot[0]?.forEach(({ kind }, i) => {
      const labels = { thread, kind };
      counts.push({ value: perSlot.reduce((sum, totals) => sum + totals[i]!.count, 0), labels });
      pauses.push({ value: perSlot.reduce((sum, totals) => sum + totals[i]!.seconds, 0), labels });
    });
  }
  return [
    {
      name: 'lxcfs_ts_gc_total',
      help: "Garbage collections in the serving process, by thread (main; reader: all readers) and kind (minor: young generation; major: full mark-sweep-compact; incremental: marking steps; weak_callbacks; fold: the full collections this counting runs to release what it recorded). A reader's count is published at a scrape",
      type: 'counter',
      aggregator: 'sum',
      values: counts,
    },
    {
      name: 'lxcfs_ts_gc_pause_seconds_total',
      help: "Time the serving process's threads stood still collecting garbage, by thread and kind as lxcfs_ts_gc_total (a pause delays the requests of that thread only)",
      type: 'counter',
      aggregator: 'sum',
      values: pauses,
    },
  ];
}

export class ServerMetrics {
  private readonly registry = new Registry();

  constructor(private readonly sources: ServerMetricSources) {
    registerProcessMetrics(this.registry, { [PROCESS_LABEL]: 'server' });
    const store = new SnapshotStore(sources.snapshots);
    const registers = [this.registry];
    new Gauge({
      name: 'lxcfs_ts_open_handles',
      help: 'File handles open on our files (each holds its snapshot until closed)',
      registers,
      collect() {
        this.set(store.usage().handles);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_snapshot_memory_bytes',
      help: "Shared snapshot page pool: bytes holding open handles' renderings (in_use) and bytes allocated",
      labelNames: ['state'],
      registers,
      collect() {
        const usage = store.usage();
        this.set({ state: 'in_use' }, usage.pagesInUse * SNAPSHOT_PAGE_BYTES);
        this.set({ state: 'allocated' }, usage.pagesMade * SNAPSHOT_PAGE_BYTES);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_containers',
      help: 'Containers (pid namespaces) that opened our files since the serving process began (up to 4096: an idle one may give its entry to another), and those holding handles now',
      labelNames: ['state'],
      registers,
      collect() {
        const usage = store.tenantUsage();
        this.set({ state: 'seen' }, usage.seen);
        this.set({ state: 'holding' }, usage.holding);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_container_share_largest',
      help: 'The largest share one container holds now: open handles, or snapshot bytes',
      labelNames: ['resource'],
      registers,
      collect() {
        const usage = store.tenantUsage();
        this.set({ resource: 'handles' }, usage.largestHandles);
        this.set({ resource: 'snapshot_bytes' }, usage.largestBytes);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_container_share_limit',
      help: 'What one container may hold (--max-handles-per-container, --max-snapshot-mib-per-container): beyond, its opens get EMFILE and its reads in pieces ENOMEM',
      labelNames: ['resource'],
      registers,
      collect() {
        const usage = store.tenantUsage();
        this.set({ resource: 'handles' }, usage.handleLimit);
        this.set({ resource: 'snapshot_bytes' }, usage.byteLimit);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_loadavg_cgroups',
      help: 'cgroups the loadavg sampler tracks (-l), at its last pass',
      registers,
      collect() {
        this.set(sources.loadavg()?.lastReport?.cgroups ?? 0);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_loadavg_pass_cpu_seconds',
      help: "CPU time the loadavg sampler's last pass took (-l)",
      registers,
      collect() {
        this.set((sources.loadavg()?.lastReport?.cpuMs ?? 0) / 1000);
      },
    });
  }

  async collect(): Promise<MetricFamily[]> {
    await this.sources.gc?.fold();
    const own = (await this.registry.getMetricsAsJSON()) as unknown as MetricFamily[];
    return [
      ...own,
      ...requestFamilies(this.sources.requestStats),
      ...(this.sources.gc ? gcFamilies(this.sources.gc) : []),
    ];
  }
}
