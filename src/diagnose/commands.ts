// The command lines of `lxcfs-ts doctor` and `lxcfs-ts status`. Both read the daemon's configuration
// (config file and environment, as the daemon does) for the mountpoint, the pid file and the view flags.

import { Command } from 'commander';
import { createLogger } from '../util/log.js';
import { CONFIG_ENV_VAR, resolveConfig, type DaemonConfig } from '../daemon/config.js';
import { parseSeconds } from '../remount/command.js';
import { HUNG_AFTER_MS } from '../fuse/mount.js';

interface CommonFlags {
  mountpoint?: string;
  pidfile?: string;
  config?: string;
  json: boolean;
  timeout: number;
}

function configFrom(flags: CommonFlags): DaemonConfig {
  const cli = flags.pidfile === undefined ? {} : { pidfile: flags.pidfile };
  return resolveConfig({ cli, mountpoint: flags.mountpoint, configPath: flags.config, env: process.env }).config;
}

function withCommonOptions(command: Command): Command {
  return command
    .option('--mountpoint <dir>', 'where the daemon mounts (default: from the config, else /var/lib/lxcfs)')
    .option('-p, --pidfile <file>', 'pid file of the daemon (default: from the config, else /run/lxcfs-ts.pid)')
    .option('--config <file>', `config file as for the daemon (or $${CONFIG_ENV_VAR})`)
    .option('--json', 'print one JSON object instead of text', false)
    .option(
      '--timeout <s>',
      'seconds a mount may take to answer before it counts as hung',
      parseSeconds,
      HUNG_AFTER_MS / 1000,
    )
    .allowExcessArguments(false);
}

export function doctorCommand(): Command {
  return withCommonOptions(new Command('doctor'))
    .description(
      'check the host for lxcfs-ts (FUSE, cgroups, swap and I/O accounting, mount, propagation, runc, daemon); exit 0 OK, 1 WARN, 2 FAIL',
    )
    .action(async (flags: CommonFlags) => {
      // Loaded when run, not whenever the command line is parsed (the daemon's start parses it too).
      const { exitStatus, formatDoctor, runDoctor } = await import('./doctor.js');
      const report = await runDoctor(configFrom(flags), flags.timeout * 1000);
      process.stdout.write(flags.json ? JSON.stringify(report) + '\n' : formatDoctor(report));
      process.exitCode = exitStatus(report);
    });
}

export function statusCommand(): Command {
  return withCommonOptions(new Command('status'))
    .description(
      'list the containers that bind our files: which container, the state of each bind, and what it reads now (read-only)',
    )
    .action(async (flags: CommonFlags) => {
      const config = configFrom(flags);
      const { formatStatus, runStatus } = await import('./status.js');
      const report = await runStatus(
        config,
        createLogger({ level: 'warn', format: config.logFormat }, {}, 2),
        flags.timeout * 1000,
      );
      if (flags.json) process.stdout.write(JSON.stringify(report) + '\n');
      else if (report.error) process.stderr.write(`lxcfs-ts status: ${report.error}\n`);
      else process.stdout.write(formatStatus(report));
      process.exitCode = report.error ? 1 : 0;
    });
}
