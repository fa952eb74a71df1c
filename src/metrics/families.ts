// Metrics as they travel from the serving process to the supervisor: prom-client's JSON form
// (Registry.getMetricsAsJSON), which AggregatorRegistry.aggregate merges and prom-client then formats.

export interface MetricSample {
  value: number;
  labels: Record<string, string | number>;
  /** For histograms: NAME_bucket, NAME_sum, NAME_count. */
  metricName?: string;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary';
  /** How prom-client merges equal series from several processes ("sum" unless said otherwise). */
  aggregator: string;
  values: MetricSample[];
}

/** The label on every metric of prom-client's default collectors, saying which process it describes. */
export const PROCESS_LABEL = 'process';
