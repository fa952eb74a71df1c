// `lxcfs-ts remount`: the command line of the remount helper. Without --mountpoint it finds the
// daemon's mount the way the daemon does: $LXCFS_TS_MOUNTPOINT, the config file's mountpoint, the default.

import { Command, InvalidArgumentError } from 'commander';
import { resolveConfig } from '../daemon/config.js';
import { remount, succeeded } from './remount.js';
import { formatReport } from './report.js';

interface RemountFlags {
  mountpoint?: string;
  config?: string;
  dryRun: boolean;
  json: boolean;
  timeout: number;
  pid?: number[];
}

export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new InvalidArgumentError('expected a positive number of seconds');
  return seconds;
}

function collectPid(value: string, previous: number[] | undefined): number[] {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError('expected a process id');
  return [...(previous ?? []), Number(value)];
}

export function remountCommand(): Command {
  return new Command('remount')
    .description("after a daemon restart: replace every container's dead lxcfs mounts with the live mount's files")
    .option(
      '--mountpoint <dir>',
      "where the daemon is mounted on the host (default: the daemon's own setting, from $LXCFS_TS_MOUNTPOINT or the config file, else /var/lib/lxcfs)",
    )
    .option('--config <file>', "the daemon's config file (default /etc/lxcfs-ts.conf if present, or $LXCFS_TS_CONFIG)")
    .option('--dry-run', 'check what would be re-bound; change nothing', false)
    .option('--json', 'print one JSON report instead of text', false)
    .option(
      '--timeout <s>',
      'seconds to wait for the mount to answer, and the time budget of each namespace',
      parseSeconds,
      10,
    )
    .option('--pid <pid>', 'only the mount namespace of this process (repeatable)', collectPid)
    .allowExcessArguments(false)
    .action(async (flags: RemountFlags) => {
      // Throws a ConfigError, reported in one line by the program, as the daemon's would be.
      const { config } = resolveConfig({
        cli: {},
        mountpoint: flags.mountpoint,
        configPath: flags.config,
        env: process.env,
      });
      const report = await remount({
        mountpoint: config.mountpoint,
        dryRun: flags.dryRun,
        timeoutMs: flags.timeout * 1000,
        pids: flags.pid,
      });
      if (flags.json) process.stdout.write(JSON.stringify(report) + '\n');
      else if (report.error) process.stderr.write(`lxcfs-ts remount: ${report.error}\n`);
      else process.stdout.write(formatReport(report));
      process.exitCode = succeeded(report) ? 0 : 1;
    });
}
