// The webhook phase's client side (webhook.ts): the AdmissionReview it sends and one timed review; and,
// run as a worker thread, a client that sends `count` reviews one after the other on one kept-alive
// connection, as the API server does, and posts back the latency of each, in µs. Only node built-ins
// here: every client thread loads this module.

import https from 'node:https';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

/** A Deployment's pod as the API server sends it: two containers and an init container, each with the
 * service account token mount. */
export function reviewBody(uid: string): string {
  const tokenMount = {
    name: 'kube-api-access-7xq2m',
    mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
    readOnly: true,
  };
  const container = (name: string) => ({
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
      volumes: [
        {
          name: tokenMount.name,
          projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
        },
      ],
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

/** One review on `agent` (false: a new connection), the server checked against `ca` under `servername`;
 * resolves with the latency in µs and whether a kept-alive connection carried it, once a patch came back.
 * Unlike the tests' request(), it takes no fingerprint of the certificate: that would be timed too. */
export function timedReview(
  port: number,
  servername: string,
  ca: string,
  agent: https.Agent | false,
  body: string,
): Promise<{ us: number; reused: boolean }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        servername,
        ca,
        agent,
        method: 'POST',
        path: '/mutate',
        headers: { 'Content-Type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          res.statusCode === 200 && text.includes('"patch"')
            ? resolve({ us: Number(process.hrtime.bigint() - started) / 1000, reused: req.reusedSocket })
            : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 200)}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface ClientTask {
  port: number;
  ca: string;
  /** The name the certificate is checked against. */
  servername: string;
  count: number;
  id: string;
}

export type ClientReply = { loaded: true } | { latencies: Float64Array } | { error: string };

async function client({ port, ca, servername, count, id }: ClientTask): Promise<Float64Array> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies = new Float64Array(count);
  try {
    for (let i = 0; i < count; i++)
      latencies[i] = (await timedReview(port, servername, ca, agent, reviewBody(`bench-${id}-${i}`))).us;
  } finally {
    agent.destroy();
  }
  return latencies;
}

if (!isMainThread) {
  // Loaded: the round's clock starts once every thread is, and "go" starts the reviews.
  parentPort!.once('message', () => {
    client(workerData as ClientTask).then(
      (latencies) => parentPort!.postMessage({ latencies } satisfies ClientReply, [latencies.buffer as ArrayBuffer]),
      (err: Error) => parentPort!.postMessage({ error: err.message } satisfies ClientReply),
    );
  });
  parentPort!.postMessage({ loaded: true } satisfies ClientReply);
}
