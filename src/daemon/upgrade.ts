// `lxcfs-ts upgrade [--pidfile FILE]`: asks a running daemon to replace its serving process with the
// code now on disk (what `systemctl reload lxcfs-ts` does) and waits until it has.

import fs from 'node:fs';
import { Command } from 'commander';
import { isLxcfsTsProcess } from './pidfile.js';

export class UpgradeError extends Error {
  override name = 'UpgradeError';
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function requestUpgrade(pidFile: string, timeoutMs: number): Promise<{ daemon: number; from: number[]; to: number }> {
  let daemon: number;
  try {
    daemon = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch (err) {
    throw new UpgradeError(`cannot read pid file ${pidFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; is lxcfs-ts running?`);
  }
  if (!Number.isInteger(daemon) || daemon <= 0 || !isLxcfsTsProcess(daemon)) {
    throw new UpgradeError(`pid file ${pidFile} does not name a running lxcfs-ts daemon`);
  }
  const from = childrenOf(daemon);
  process.kill(daemon, 'SIGUSR1');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = childrenOf(daemon);
    // Done when the old serving process is gone and exactly one new one serves.
    if (now.length === 1 && !from.includes(now[0]!)) return { daemon, from, to: now[0]! };
    if (Date.now() > deadline) throw new UpgradeError(`daemon ${daemon} did not finish the upgrade within ${timeoutMs / 1000} s; see its log`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function upgradeCommand(): Command {
  return new Command('upgrade')
    .description('replace the running daemon\'s serving process with the code on disk, without unmounting (like systemctl reload)')
    .option('-p, --pidfile <file>', 'pid file of the daemon', '/run/lxcfs-ts.pid')
    .option('--timeout <seconds>', 'how long to wait', '30')
    .action(async (options: { pidfile: string; timeout: string }) => {
      const seconds = Number(options.timeout);
      if (!(seconds > 0)) throw new UpgradeError(`--timeout must be a positive number of seconds, not "${options.timeout}"`);
      const result = await requestUpgrade(options.pidfile, seconds * 1000);
      process.stdout.write(`upgraded: daemon ${result.daemon} now serves from process ${result.to} (was ${result.from.join(', ') || 'none'})\n`);
    });
}
