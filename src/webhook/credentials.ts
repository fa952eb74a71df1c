// The webhook's serving certificate: loaded and checked at start, and again whenever its files change
// (cert-manager and `kubectl create secret` rotate them in place), without a restart.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';

export class WebhookError extends Error {
  override name = 'WebhookError';
}

export interface Credentials {
  cert: Buffer;
  key: Buffer;
  subject: string;
  validTo: string;
}

function readPem(file: string, flag: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new WebhookError(`cannot read ${flag} ${file}: ${why}`);
  }
}

/** Reads a PEM certificate (chain) and its private key; throws a one-line WebhookError when either is
 * missing or unusable, or when they do not belong together. */
export function loadCredentials(certFile: string, keyFile: string): Credentials {
  const cert = readPem(certFile, '--cert');
  const key = readPem(keyFile, '--key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new WebhookError(`--cert ${certFile} holds no PEM certificate`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new WebhookError(`--key ${keyFile} holds no PEM private key (or it is encrypted)`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new WebhookError(`--cert ${certFile} and --key ${keyFile} do not match: the key is not the certificate's`);
  }
  return { cert, key, subject: x509.subject.replaceAll('\n', ', '), validTo: x509.validTo };
}

/** Identifies a file's current content without reading it; follows symlinks, as Kubernetes secret
 * volumes swap a `..data` symlink. */
function fileStamp(file: string): string {
  try {
    const stat = fs.statSync(file);
    return `${stat.dev}:${stat.ino}:${stat.mtimeMs}:${stat.size}`;
  } catch {
    return 'missing';
  }
}

/**
 * Calls `apply` with the new credentials whenever the two files change and the new pair is usable.
 * A half-written or mismatched pair is logged and the previous certificate kept; the next change is
 * tried again. Returns a function that stops watching.
 */
export function watchCredentials(
  certFile: string,
  keyFile: string,
  intervalMs: number,
  apply: (credentials: Credentials) => void,
  log: Logger,
): () => void {
  const stampOf = (): string => `${fileStamp(certFile)}|${fileStamp(keyFile)}`;
  let stamp = stampOf();
  const timer = setInterval(() => {
    // Taken before reading: a write that ends after this read changes the stamp again.
    const current = stampOf();
    if (current === stamp) return;
    stamp = current;
    try {
      const credentials = loadCredentials(certFile, keyFile);
      apply(credentials);
      log.info({ subject: credentials.subject, validTo: credentials.validTo }, 'certificate reloaded');
    } catch (err) {
      log.warn({ reason: (err as Error).message }, 'certificate files changed but cannot be used; still serving the previous certificate');
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
