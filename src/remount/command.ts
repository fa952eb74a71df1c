// `lxcfs-ts remount`: the command line of the remount helper.

import { Command, InvalidArgumentError } from 'commander';
import { remount, succeeded } from './remount.js';
import { formatReport } from './report.js';

interface RemountFlags {
  mountpoint: string;
  dryRun: boolean;
  json: boolean;
  timeout: number;
  pid?: number[];
}

export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return seconds;
}

function collectPid(value: string, previous: number[] | undefined): number[] {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError('expected a process id');
  return [...(previous ?? []), Number(value)];
}

export function remountCommand(): Command {
  return new Command('remount')
    .description("after a daemon restart: bind every container's dead lxcfs mounts again from the live mount")
    .option('--mountpoint <dir>', 'where the daemon is mounted on the host', '/var/lib/lxcfs')
    .option('--dry-run', 'print the exact commands that would run; change nothing', false)
    .option('--json', 'print one JSON report instead of text', false)
    .option('--timeout <s>', 'seconds to wait for the mount to answer, and the limit for each namespace', parseSeconds, 10)
    .option('--pid <pid>', 'only the mount namespace of this process (repeatable)', collectPid)
    .allowExcessArguments(false)
    .action(async (flags: RemountFlags) => {
      const report = await remount({ mountpoint: flags.mountpoint, dryRun: flags.dryRun, timeoutMs: flags.timeout * 1000, pids: flags.pid });
      if (flags.json) process.stdout.write(JSON.stringify(report) + '\n');
      else if (report.error) process.stderr.write(`lxcfs-ts remount: ${report.error}\n`);
      else process.stdout.write(formatReport(report));
      process.exitCode = succeeded(report) ? 0 : 1;
    });
}
