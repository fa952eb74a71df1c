// `lxcfs-ts webhook` as a process, its certificates (scripts/webhook-cert.sh, openssl), an HTTPS client
// that checks the server against the CA as the API server does, and the JSONPatch it returns applied
// with an RFC 6902 implementation (fast-json-patch), not with our own code.

import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import jsonPatch from 'fast-json-patch';
import { Cleanup, LXCFS_TS, REPO, run, TIME_SCALE } from './processes.js';
import type { Json } from '../fixtures/admission.js';

/** The name the API server checks the certificate against (the Service's DNS name). */
export const SERVICE_HOST = 'lxcfs-ts-webhook.kube-system.svc';

export interface WebhookCerts {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  /** What the script printed: base64 of the CA, for caBundle. */
  caBundle: string;
}

/** Runs scripts/webhook-cert.sh into DIR (a CA the first time, a new serving certificate every time). */
export function makeWebhookCerts(dir: string): WebhookCerts {
  const result = run('bash', [path.join(REPO, 'scripts/webhook-cert.sh'), '--out', dir, '--san', 'IP:127.0.0.1']);
  if (result.status !== 0) throw new Error(`webhook-cert.sh failed (${result.status}): ${result.stderr}`);
  return { dir, ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key'), caBundle: result.stdout.trim() };
}

export interface Webhook {
  child: ChildProcess;
  port: number;
  output(): string;
  /** The JSON log lines so far. */
  logs(): Json[];
}

/** Starts `lxcfs-ts webhook ARGS --listen 127.0.0.1:0` and resolves once it listens. */
export function startWebhook(cleanup: Cleanup, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Webhook> {
  const child = spawn(LXCFS_TS, ['webhook', ...args, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  cleanup.own(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const logs = (): Json[] =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Json);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook did not listen within ${30 * TIME_SCALE} s:\n${output}`)), 30_000 * TIME_SCALE);
    child.stdout.on('data', () => {
      const listening = logs().find((line) => line.msg === 'webhook listening');
      if (listening) {
        clearTimeout(timer);
        resolve({ child, port: listening.port as number, output: () => output, logs });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`webhook exited with ${code} before listening:\n${output}`));
    });
  });
}

export interface Reply {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint: string;
}

export interface RequestOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** A body, or chunks written one by one (chunked transfer encoding, no Content-Length). */
  body?: string | Buffer | Buffer[];
}

/** One HTTPS request on a new connection, the server checked against `ca` under SERVICE_HOST. */
export function request(port: number, ca: Buffer, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, servername: SERVICE_HOST, ca, agent: false, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers, timeout: 10_000 },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, text, headers: res.headers, fingerprint }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (Array.isArray(options.body)) {
      for (const chunk of options.body) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** Posts an AdmissionReview; returns the reply and its parsed body when it is JSON. */
export async function postReview(port: number, ca: Buffer, review: unknown, reviewPath = '/mutate'): Promise<Reply & { review?: Json }> {
  const reply = await request(port, ca, { method: 'POST', path: reviewPath, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(review) });
  return reply.status === 200 ? { ...reply, review: JSON.parse(reply.text) as Json } : reply;
}

/** The response's JSONPatch (RFC 6902) applied to `pod` by fast-json-patch, validating every operation
 * (a path that does not exist, an index out of range, a malformed op all throw). */
export function applyReviewPatch(pod: Json, response: Json): Json {
  if (response.patch === undefined) return pod;
  if (response.patchType !== 'JSONPatch') throw new Error(`patchType is ${String(response.patchType)}`);
  const operations = JSON.parse(Buffer.from(response.patch as string, 'base64').toString('utf8')) as jsonPatch.Operation[];
  return jsonPatch.applyPatch(structuredClone(pod), operations, true, false).newDocument;
}
