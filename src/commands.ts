// lxcfs-ts's command line: the daemon with lxcfs-compatible flags (always in the foreground) and the
// helper commands.

import { Command, Option } from 'commander';
import { checkHostRoots, CONFIG_ENV_VAR, CONFIG_OPTIONS, resolveConfig } from './daemon/config.js';
import { runDaemon } from './daemon/daemon.js';
import { showCommand } from './daemon/show.js';
import { upgradeCommand } from './daemon/upgrade.js';
import { remountCommand } from './remount/command.js';
import { createLogger } from './util/log.js';
import { doctorCommand, statusCommand } from './diagnose/commands.js';
import { VERSION } from './version.js';
import { webhookCommand } from './webhook/command.js';

function fail(message: string): never {
  process.stderr.write(`lxcfs-ts: ${message}\n`);
  process.exit(1);
}

const program = new Command('lxcfs-ts')
  .description('FUSE filesystem that shows containers their own /proc and /sys values (an lxcfs reimplementation)')
  .version(VERSION, '-v, --version', 'print the version and exit')
  .argument('[mountpoint]', 'where to mount (default /var/lib/lxcfs)')
  .option('--config <file>', `config file (ini, section [lxcfs-ts]; default /etc/lxcfs-ts.conf if present, or $${CONFIG_ENV_VAR})`)
  .addOption(new Option('-s', 'ignored (lxcfs compatibility)').hideHelp())
  .addOption(new Option('--enable-cgroup', 'ignored with a warning (lxcfs 6.0 compatibility): no /cgroup tree is served').hideHelp())
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .allowExcessArguments(false);

for (const option of CONFIG_OPTIONS) {
  if (option.positional) continue;
  const flags = `${option.short ? `-${option.short}, ` : ''}--${option.long}${option.valueName ? ` <${option.valueName}>` : ''}`;
  // No commander defaults: resolveConfig layers defaults under the file and the environment.
  program.addOption(new Option(flags, option.description));
}

program.action(async (mountpoint: string | undefined, cliOptions: Record<string, unknown>) => {
  const { config: configPath, s: _ignored, enableCgroup, ...given } = cliOptions;
  let resolved;
  try {
    resolved = resolveConfig({ cli: given, mountpoint, configPath: configPath as string | undefined, env: process.env });
    checkHostRoots(resolved);
  } catch (err) {
    fail((err as Error).message);
  }
  const { config } = resolved;
  process.title = 'lxcfs-ts';
  const log = createLogger({ level: config.logLevel, format: config.logFormat }, { pid: process.pid });
  log.info({ config, sources: resolved.sources, configFile: resolved.configFile, version: VERSION }, 'effective configuration');
  // lxcfs 6.0 unit files pass it; lxcfs 7.0 removed the tree as well.
  if (enableCgroup) log.warn('--enable-cgroup is ignored: lxcfs-ts serves no /cgroup tree (lxcfs 7.0 removed it too)');
  let status: number;
  try {
    status = await runDaemon(config, log);
  } catch (err) {
    fail((err as Error).message);
  }
  process.exit(status);
});

program.addCommand(showCommand());
program.addCommand(upgradeCommand());
program.addCommand(remountCommand());
program.addCommand(doctorCommand());
program.addCommand(statusCommand());
program.addCommand(webhookCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  fail((err as Error).message);
}
