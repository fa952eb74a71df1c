// The daemon's control socket: how `lxcfs-ts upgrade` (and so `systemctl reload`) asks a running daemon to
// replace its serving process, and learns when that is done and whether it worked. lxcfs uses SIGUSR1
// for this; in Node that signal opens the debugger, so lxcfs-ts switches it off and takes requests here.
//
// A unix socket next to the pid file, mode 0600: only root can connect. One request per connection: a
// line with the command, answered by one JSON line.

import fs from 'node:fs';
import net from 'node:net';

export interface UpgradeOutcome {
  /** The serving process before and after. */
  from: number | undefined;
  to: number;
}

/** What a running daemon says about itself (`lxcfs-ts doctor`). */
export interface DaemonStatus {
  version: string;
  /** The supervisor (the pid file's) and the serving process. */
  pid: number;
  serverPid: number | undefined;
  mountpoint: string;
  /** "major:minor" of its FUSE mount, to tell it from another daemon's mount at the same place. */
  device: string | undefined;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** FUSE protocol: what we speak, what the kernel offered, and whether it can replay requests. */
  protocol: string;
  kernelProtocol: string;
  resend: boolean;
  /** ADDR:PORT of the metrics endpoint, if on. */
  metrics?: string;
}

export type ControlCommand = 'upgrade' | 'status';

export type ControlAnswer =
  | { ok: true; upgraded: UpgradeOutcome }
  | { ok: true; status: DaemonStatus }
  | { ok: false; error: string };

export class ControlError extends Error {
  override name = 'ControlError';
}

/** `/run/lxcfs-ts.pid` → `/run/lxcfs-ts.sock`; any other name gets `.sock` appended. */
export function controlSocketPath(pidFile: string): string {
  return pidFile.endsWith('.pid') ? pidFile.slice(0, -'.pid'.length) + '.sock' : pidFile + '.sock';
}

/** Listens on the control socket; `upgrade` runs for each upgrade request, `status` answers a status
 * request. The caller owns the pid file, so a socket left at the path by a daemon that was killed is ours
 * to replace. */
export async function listenForControl(
  socketPath: string,
  upgrade: () => Promise<UpgradeOutcome>,
  status: () => DaemonStatus,
): Promise<{ close(): void }> {
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((connection) => {
    let request = '';
    connection.setEncoding('utf8');
    connection.on('error', () => connection.destroy());
    connection.on('data', (chunk: string) => {
      request += chunk;
      if (!request.includes('\n') && request.length < 64) return;
      connection.removeAllListeners('data');
      const command = request.split('\n')[0]!.trim();
      const answer: Promise<ControlAnswer> =
        command === 'upgrade'
          ? upgrade().then(
              (upgraded) => ({ ok: true, upgraded }),
              (err: Error) => ({ ok: false, error: err.message }),
            )
          : command === 'status'
            ? Promise.resolve({ ok: true, status: status() })
            : Promise.resolve({ ok: false, error: `unknown request ${JSON.stringify(command)}` });
      void answer.then((reply) => connection.end(JSON.stringify(reply) + '\n'));
    });
  });
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } catch (err) {
    throw new ControlError(`cannot listen on the control socket ${socketPath}: ${(err as Error).message}`);
  } finally {
    process.umask(umask);
  }
  server.unref();
  return {
    close: () => {
      server.close();
      fs.rmSync(socketPath, { force: true });
    },
  };
}

/** Sends one request to the daemon whose control socket is `socketPath` and resolves with its answer. */
export function requestControl(socketPath: string, command: ControlCommand, timeoutMs: number): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socketPath);
    let reply = '';
    const timer = setTimeout(() => {
      connection.destroy();
      reject(new ControlError(`the daemon did not answer within ${timeoutMs / 1000} s; see its log`));
    }, timeoutMs);
    connection.setEncoding('utf8');
    connection.on('connect', () => connection.write(command + '\n'));
    connection.on('data', (chunk: string) => (reply += chunk));
    connection.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ControlError(`cannot reach the daemon at ${socketPath}: ${err.code ?? err.message}; is lxcfs-ts running with this pid file?`));
    });
    connection.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(reply) as ControlAnswer);
      } catch {
        reject(new ControlError(`unexpected answer from the daemon: ${JSON.stringify(reply.slice(0, 200))}`));
      }
    });
  });
}
