// `lxcfs-ts upgrade [--pidfile FILE]`: asks a running daemon to replace its serving process with the
// code now on disk (what `systemctl reload lxcfs-ts` does), and returns once the new one serves, or fails
// with why it could not.

import fs from 'node:fs';
import { Command } from 'commander';
import { controlSocketPath, requestControl, type UpgradeOutcome } from './control.js';
import { isLxcfsTsProcess } from './pidfile.js';

export class UpgradeError extends Error {
  override name = 'UpgradeError';
}

export async function requestUpgrade(pidFile: string, timeoutMs: number): Promise<UpgradeOutcome & { daemon: number }> {
  let daemon: number;
  try {
    daemon = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch (err) {
    throw new UpgradeError(`cannot read pid file ${pidFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; is lxcfs-ts running?`);
  }
  if (!Number.isInteger(daemon) || daemon <= 0 || !isLxcfsTsProcess(daemon)) {
    throw new UpgradeError(`pid file ${pidFile} does not name a running lxcfs-ts daemon`);
  }
  const answer = await requestControl(controlSocketPath(pidFile), 'upgrade', timeoutMs);
  if (!answer.ok) throw new UpgradeError(`daemon ${daemon} could not upgrade: ${answer.error}`);
  if (!('upgraded' in answer)) throw new UpgradeError(`daemon ${daemon} gave an unexpected answer to upgrade`);
  return { daemon, ...answer.upgraded };
}

export function upgradeCommand(): Command {
  return new Command('upgrade')
    .description('replace the running daemon\'s serving process with the code on disk, without unmounting (like systemctl reload); returns once it serves')
    .option('-p, --pidfile <file>', 'pid file of the daemon', '/run/lxcfs-ts.pid')
    .option('--timeout <seconds>', 'how long to wait', '60')
    .action(async (options: { pidfile: string; timeout: string }) => {
      const seconds = Number(options.timeout);
      if (!(seconds > 0)) throw new UpgradeError(`--timeout must be a positive number of seconds, not "${options.timeout}"`);
      const result = await requestUpgrade(options.pidfile, seconds * 1000);
      process.stdout.write(`upgraded: daemon ${result.daemon} now serves from process ${result.to} (was ${result.from ?? 'none'})\n`);
    });
}
