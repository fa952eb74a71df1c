// lxcfs-ts's command line: the daemon with lxcfs-compatible flags (always in the foreground) and the
// helper commands.

import { Command, Option } from 'commander';
import { checkHostRoots, CONFIG_ENV_VAR, CONFIG_OPTIONS, resolveConfig } from './daemon/config.js';
import { createLogger } from './util/log.js';
import { VERSION } from './version.js';

// The helper commands, loaded only when asked for (or for help): the daemon's supervisor lives as long as
// the daemon, and every module it loads stays in its memory.
const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  show: async () => (await import('./daemon/show.js')).showCommand(),
  upgrade: async () => (await import('./daemon/upgrade.js')).upgradeCommand(),
  remount: async () => (await import('./remount/command.js')).remountCommand(),
  doctor: async () => (await import('./diagnose/commands.js')).doctorCommand(),
  status: async () => (await import('./diagnose/commands.js')).statusCommand(),
  webhook: async () => (await import('./webhook/command.js')).webhookCommand(),
};

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
    const { runDaemon } = await import('./daemon/daemon.js');
    status = await runDaemon(config, log);
  } catch (err) {
    fail((err as Error).message);
  }
  process.exit(status);
});

// Any word of the command line that names a helper command loads it (commander then decides what the
// words mean); help without one loads them all, to list them.
const args = process.argv.slice(2);
const named = Object.keys(SUBCOMMANDS).filter((name) => args.includes(name));
const wantsHelp = args.includes('help') || args.includes('-h') || args.includes('--help');
for (const name of named.length === 0 && wantsHelp ? Object.keys(SUBCOMMANDS) : named) {
  program.addCommand(await SUBCOMMANDS[name]!());
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  fail((err as Error).message);
}
