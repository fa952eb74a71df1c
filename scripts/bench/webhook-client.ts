// A webhook client thread of the bench (webhook.ts): `count` AdmissionReviews one after the other on one
// kept-alive connection, as the API server sends them; posts back the latency of each, in µs.

import https from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';
import { reviewBody, timedReview } from './webhook.js';

export interface ClientTask {
  port: number;
  ca: string;
  count: number;
  id: string;
}

export type ClientReply = { latencies: Float64Array } | { error: string };

async function client({ port, ca, count, id }: ClientTask): Promise<Float64Array> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies = new Float64Array(count);
  try {
    for (let i = 0; i < count; i++)
      latencies[i] = (await timedReview(port, ca, agent, reviewBody(`bench-${id}-${i}`))).us;
  } finally {
    agent.destroy();
  }
  return latencies;
}

client(workerData as ClientTask).then(
  (latencies) => parentPort!.postMessage({ latencies } satisfies ClientReply, [latencies.buffer as ArrayBuffer]),
  (err: Error) => parentPort!.postMessage({ error: err.message } satisfies ClientReply),
);
