// `lxcfs-ts webhook`: the mutating admission webhook that gives pods the lxcfs files.

import fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { CONFIG_ENV_VAR, LOG_LEVELS, resolveConfig } from '../daemon/config.js';
import { healDirFor } from './inject.js';
import { INJECTED_FILES } from './injected-files.js';
import { startWebhookServer } from './server.js';

/** Where a pod finds its own namespace (every pod has it unless automountServiceAccountToken is off). */
const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

interface WebhookFlags {
  cert: string;
  key: string;
  listen: { host: string; port: number };
  mountpoint?: string;
  config?: string;
  excludeNamespace?: string[];
  logLevel?: string;
}

/** HOST:PORT, [IPV6]:PORT. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 0.0.0.0:8443 or [::]:8443');
  return { host: match[1] ?? match[2]!, port };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The webhook's own namespace: never injected into, or the DaemonSet and the webhook could not start
 * when someone labels it. */
function ownNamespace(): string | undefined {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return fs.readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function webhookCommand(): Command {
  return new Command('webhook')
    .description('Kubernetes mutating admission webhook: adds the lxcfs files (and their parent directory) to every container of new pods')
    .requiredOption('--cert <file>', 'PEM serving certificate (chain); reloaded when the file changes')
    .requiredOption('--key <file>', 'PEM private key of --cert; reloaded when the file changes')
    .option('--listen <host:port>', 'address to serve HTTPS on', parseListen, { host: '0.0.0.0', port: 8443 })
    .option('--mountpoint <dir>', 'where lxcfs-ts is mounted on the nodes (default: from the config file, else /var/lib/lxcfs)')
    .option('--config <file>', `config file as for the daemon, for its mountpoint (or $${CONFIG_ENV_VAR})`)
    .option('--exclude-namespace <name>', 'never inject into this namespace (repeatable; its own namespace always is)', collect)
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`)
    .allowExcessArguments(false)
    .action(async (flags: WebhookFlags) => {
      try {
        await serve(flags);
      } catch (err) {
        // Bad flags, config or certificates: one line, nothing left listening.
        process.stderr.write(`lxcfs-ts webhook: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}

async function serve(flags: WebhookFlags): Promise<void> {
  const cli = flags.logLevel === undefined ? {} : { logLevel: flags.logLevel };
  const { config } = resolveConfig({ cli, mountpoint: flags.mountpoint, configPath: flags.config, env: process.env });
  const log = pino({ level: config.logLevel, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
  const excluded = new Set(flags.excludeNamespace ?? []);
  const own = ownNamespace();
  if (own !== undefined) excluded.add(own);
  const layout = { mountpoint: config.mountpoint, files: INJECTED_FILES, healDir: healDirFor(config.mountpoint) };
  process.title = 'lxcfs-ts webhook';
  const server = await startWebhookServer({
    certFile: flags.cert,
    keyFile: flags.key,
    host: flags.listen.host,
    port: flags.listen.port,
    review: { layout, excludedNamespaces: excluded },
    log,
  });
  log.info({ ...layout, excludedNamespaces: [...excluded] }, 'injecting');
  const stop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stopping');
    void server.close().then(() => process.exit(0));
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, stop);
}
