// The webhook's HTTPS server: Node's https, no framework. Every bad request gets a 400 with a one-line
// reason; nothing a client sends stops it from serving the next one.

import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { loadCredentials, watchCredentials, WebhookError } from './credentials.js';
import type { SelectionMode } from './inject.js';
import { answerReview, BadReview, type ReviewContext } from './review.js';

/** Larger AdmissionReviews are refused: a pod spec is a few KiB. */
export const MAX_BODY_BYTES = 1024 * 1024;
const CERT_CHECK_INTERVAL_MS = 1000;
/** How long an idle connection is kept. The API server keeps its connections to a webhook idle for up
 * to 90 s (Go's default): closing them sooner (Node's default is 5 s) costs nearly every review of a
 * quiet cluster a new TLS handshake, about five times the work of the review, and races the API
 * server sending a review on the connection being closed. Longer, so that the client closes first. */
const KEEP_ALIVE_MS = 120_000;

/** POST paths and how each selects pods. /mutating-pods is lxcfs-admission-webhook's path, so its
 * configuration can point at us unchanged. */
const REVIEW_PATHS: Record<string, SelectionMode> = {
  '/mutate': 'labelled',
  '/mutating-pods': 'labelled',
  '/mutate/opt-in': 'opt-in',
};
const HEALTH_PATH = '/healthz';

export interface WebhookServerOptions {
  certFile: string;
  keyFile: string;
  host: string;
  port: number;
  review: Omit<ReviewContext, 'mode'>;
  log: Logger;
}

export interface WebhookServer {
  /** Where it listens (the port chosen by the kernel when 0 was asked for). */
  address: AddressInfo;
  close(): Promise<void>;
}

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text + '\n');
}

/** The body, at most `limit` bytes; rejects with BadReview beyond, leaving the rest of the body to be
 * read and dropped so that the client gets the answer. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): BadReview => new BadReview(`the body is over ${limit} bytes`);
    if (Number(req.headers['content-length']) > limit) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.resume();
      reject(tooLarge());
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

/** The AdmissionReview in the request: checked to be JSON, within the size limit, and parsed. */
async function readReview(req: IncomingMessage): Promise<unknown> {
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new BadReview(`Content-Type must be application/json, not ${JSON.stringify(req.headers['content-type'] ?? '')}`);
  }
  const body = await readBody(req, MAX_BODY_BYTES);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new BadReview(`malformed JSON: ${(err as Error).message}`);
  }
}

async function handleReview(req: IncomingMessage, res: ServerResponse, mode: SelectionMode, options: WebhookServerOptions): Promise<void> {
  const { log } = options;
  const started = process.hrtime.bigint();
  let result;
  try {
    result = answerReview(await readReview(req), { ...options.review, mode });
  } catch (err) {
    if (!(err instanceof BadReview)) throw err;
    log.warn({ path: req.url, remote: req.socket?.remoteAddress, reason: err.message }, 'bad request');
    reply(res, 400, err.message);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(result.response));
  if (result.pod) {
    const { namespace, name, mutation } = result.pod;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    log.info(
      {
        uid: (result.response.response as { uid: string }).uid,
        namespace,
        pod: name,
        mode,
        mounts: mutation.added.mounts,
        containers: mutation.added.containers,
        ...(mutation.skipped ? { skipped: mutation.skipped } : {}),
        ...(mutation.note ? { note: mutation.note } : {}),
        ...(mutation.warnings.length ? { warnings: mutation.warnings } : {}),
        ms,
      },
      mutation.skipped ? 'pod left alone' : mutation.added.mounts > 0 ? 'pod injected' : 'pod already injected',
    );
  }
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { log } = options;
  const credentials = loadCredentials(options.certFile, options.keyFile);
  const server = https.createServer({ cert: credentials.cert, key: credentials.key, minVersion: 'TLSv1.2' }, (req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const mode = REVIEW_PATHS[path];
    const method = mode === undefined ? (path === HEALTH_PATH ? 'GET' : undefined) : 'POST';
    if (method === undefined) {
      reply(res, 404, `no such path ${path}; served: POST ${Object.keys(REVIEW_PATHS).join(', ')}; GET ${HEALTH_PATH}`);
    } else if (req.method !== method) {
      res.setHeader('Allow', method);
      reply(res, 405, `${path} takes ${method}`);
    } else if (mode === undefined) {
      reply(res, 200, 'ok');
    } else {
      handleReview(req, res, mode, options).catch((err: unknown) => {
        if (req.errored) {
          log.debug({ path, reason: (err as Error).message }, 'the client went away during the request');
          return;
        }
        // A bug of ours: this request fails (the API server then applies failurePolicy), the server goes on.
        log.error({ err, path }, 'review failed');
        if (!res.headersSent) reply(res, 500, 'internal error');
        else res.destroy();
      });
    }
  });
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.on('tlsClientError', (err) => log.debug({ reason: err.message }, 'TLS handshake failed'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message;
      reject(new WebhookError(`cannot listen on ${options.host}:${options.port}: ${why}`));
    });
    server.listen(options.port, options.host, resolve);
  });
  const stopWatching = watchCredentials(
    options.certFile,
    options.keyFile,
    CERT_CHECK_INTERVAL_MS,
    (next) => server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' }),
    log,
  );
  const address = server.address() as AddressInfo;
  log.info({ address: address.address, port: address.port, subject: credentials.subject, validTo: credentials.validTo }, 'webhook listening');
  return {
    address,
    close: async () => {
      stopWatching();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
    },
  };
}
