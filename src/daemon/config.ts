// The daemon's effective configuration: defaults < config file < environment < command line.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ini from 'ini';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonConfig {
  mountpoint: string;
  foreground: boolean;
  debug: boolean;
  enableLoadavg: boolean;
  disableSwap: boolean;
  disableZswap: boolean;
  enableCfs: boolean;
  enablePidfd: boolean;
  enablePsiPoll: boolean;
  enableBlkioAccounting: boolean;
  pidfile: string;
  runtimeDir: string;
  options: string;
  logLevel: LogLevel;
  force: boolean;
  readers: number;
  procRoot: string;
  cgroupRoot: string;
}

export type ConfigKey = keyof DaemonConfig;
export type ConfigSource = 'default' | 'file' | 'env' | 'cli';
export type ConfigValueKind = 'boolean' | 'integer' | 'path' | 'string' | 'logLevel';

export interface ConfigOption {
  readonly key: ConfigKey;
  /** Long flag without the dashes, e.g. "enable-cfs". */
  readonly long: string;
  /** Single-letter flag without the dash, e.g. "l". */
  readonly short?: string;
  /** Given as a positional argument on the command line instead of a flag (the mountpoint). */
  readonly positional?: boolean;
  /** Placeholder for the value in --help, e.g. "path" for `--pidfile <path>`; absent for booleans. */
  readonly valueName?: string;
  readonly kind: ConfigValueKind;
  readonly default: boolean | number | string;
  /** Inclusive bounds of an integer option. */
  readonly min?: number;
  readonly max?: number;
  readonly description: string;
  /** Key in the [lxcfs-ts] section of the config file, e.g. "enable_cfs". */
  readonly fileKey: string;
  /** Environment variable, e.g. "LXCFS_TS_ENABLE_CFS". */
  readonly envVar: string;
}

export const CONFIG_SECTION = 'lxcfs-ts';
export const DEFAULT_CONFIG_PATH = '/etc/lxcfs-ts.conf';
export const ENV_PREFIX = 'LXCFS_TS_';
/** Names the config file; not an option itself, so it is exempt from the unknown-variable check. */
export const CONFIG_ENV_VAR = `${ENV_PREFIX}CONFIG`;

function defineOption(spec: Omit<ConfigOption, 'fileKey' | 'envVar'>): ConfigOption {
  const snake = spec.long.replaceAll('-', '_');
  return { ...spec, fileKey: snake, envVar: ENV_PREFIX + snake.toUpperCase() };
}

/**
 * Every daemon option, for the command line, the config file and the environment.
 * Register commander options WITHOUT defaults: resolveConfig applies them, and a commander
 * default would look like a value the user gave and override the file and the environment.
 */
export const CONFIG_OPTIONS: readonly ConfigOption[] = [
  defineOption({ key: 'foreground', long: 'foreground', short: 'f', kind: 'boolean', default: true,
    description: 'run in the foreground (always the case; accepted for compatibility with lxcfs)' }),
  defineOption({ key: 'debug', long: 'debug', short: 'd', kind: 'boolean', default: false,
    description: 'debug mode; implies --log-level debug' }),
  defineOption({ key: 'enableLoadavg', long: 'enable-loadavg', short: 'l', kind: 'boolean', default: false,
    description: 'compute a per-container /proc/loadavg' }),
  defineOption({ key: 'disableSwap', long: 'disable-swap', short: 'u', kind: 'boolean', default: false,
    description: 'do not show swap in /proc/meminfo and /proc/swaps' }),
  defineOption({ key: 'disableZswap', long: 'disable-zswap', kind: 'boolean', default: false,
    description: 'do not show zswap in /proc/meminfo' }),
  defineOption({ key: 'enableCfs', long: 'enable-cfs', kind: 'boolean', default: false,
    description: 'derive the visible CPUs from the CFS quota' }),
  defineOption({ key: 'enablePidfd', long: 'enable-pidfd', kind: 'boolean', default: false,
    description: 'accepted for compatibility; no effect (init processes are validated by start time)' }),
  defineOption({ key: 'enablePsiPoll', long: 'enable-psi-poll', kind: 'boolean', default: false,
    description: 'poll PSI pressure files' }),
  defineOption({ key: 'enableBlkioAccounting', long: 'enable-blkio-accounting', kind: 'boolean', default: false,
    description: 'cgroup v1 on Linux >= 6.10: set a no-op throttle rule on each disk so that the kernel counts containers\' I/O for /proc/diskstats' }),
  defineOption({ key: 'pidfile', long: 'pidfile', short: 'p', valueName: 'path', kind: 'path',
    default: '/run/lxcfs-ts.pid', description: 'pid file of the daemon' }),
  defineOption({ key: 'runtimeDir', long: 'runtime-dir', valueName: 'path', kind: 'path', default: '/run',
    description: 'directory for runtime state' }),
  defineOption({ key: 'options', long: 'options', short: 'o', valueName: 'opts', kind: 'string', default: '',
    description: 'comma-separated FUSE mount options' }),
  defineOption({ key: 'logLevel', long: 'log-level', valueName: 'level', kind: 'logLevel', default: 'info',
    description: `log level: ${LOG_LEVELS.join(', ')}` }),
  defineOption({ key: 'force', long: 'force', kind: 'boolean', default: false,
    description: 'abort and replace a hung lxcfs mount at the mountpoint (dead ones are always cleared)' }),
  defineOption({ key: 'readers', long: 'readers', valueName: 'count', kind: 'integer', default: 2, min: 1, max: 16,
    description: 'number of FUSE reader threads (1-16)' }),
  defineOption({ key: 'procRoot', long: 'proc-root', valueName: 'path', kind: 'path', default: '/proc',
    description: 'host procfs to read from' }),
  defineOption({ key: 'cgroupRoot', long: 'cgroup-root', valueName: 'path', kind: 'path', default: '/sys/fs/cgroup',
    description: 'host cgroup filesystem to read from' }),
  defineOption({ key: 'mountpoint', long: 'mountpoint', positional: true, valueName: 'mountpoint', kind: 'path',
    default: '/var/lib/lxcfs', description: 'where to mount the FUSE filesystem' }),
];

const OPTION_BY_KEY = new Map(CONFIG_OPTIONS.map((option) => [option.key as string, option]));
const OPTION_BY_FILE_KEY = new Map(CONFIG_OPTIONS.map((option) => [option.fileKey, option]));
const OPTION_BY_ENV_VAR = new Map(CONFIG_OPTIONS.map((option) => [option.envVar, option]));

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ResolveConfigInput {
  /** Only the options given on the command line, keyed as commander names them (camelCase). */
  cli: Record<string, unknown>;
  /** The positional mountpoint argument, if given; may be relative to cwd. */
  mountpoint?: string;
  /** From --config; a missing file is an error. */
  configPath?: string;
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Read only if it exists; overridable so tests do not depend on the host's /etc. */
  defaultConfigPath?: string;
}

export interface ResolvedConfig {
  config: DaemonConfig;
  sources: Record<ConfigKey, ConfigSource>;
  /** The config file that was read, if any. */
  configFile?: string;
}

/** Values one source gave, each with a label naming where it came from, for error messages. */
type Layer = Map<ConfigKey, { value: unknown; origin: string }>;

const SOURCE_RANK: Record<ConfigSource, number> = { default: 0, file: 1, env: 2, cli: 3 };

export function resolveConfig(input: ResolveConfigInput): ResolvedConfig {
  const cwd = input.cwd ?? process.cwd();
  const values = {} as Record<ConfigKey, unknown>;
  const sources = {} as Record<ConfigKey, ConfigSource>;
  const origins = {} as Record<ConfigKey, string>;
  for (const option of CONFIG_OPTIONS) {
    values[option.key] = option.default;
    sources[option.key] = 'default';
    origins[option.key] = 'default';
  }

  const configFile = loadConfigFile(input, cwd);
  const layers: [ConfigSource, Layer][] = [
    ['file', configFile === undefined ? new Map() : parseConfigFile(configFile.path, configFile.text)],
    ['env', readEnvironment(input.env)],
    ['cli', readCommandLine(input.cli, input.mountpoint, cwd)],
  ];
  for (const [source, layer] of layers) {
    for (const [key, { value, origin }] of layer) {
      values[key] = value;
      sources[key] = source;
      origins[key] = origin;
    }
  }

  // An explicit log level at the same or a higher precedence is more specific than --debug.
  if (values.debug === true && SOURCE_RANK[sources.logLevel] < SOURCE_RANK[sources.debug]) {
    values.logLevel = 'debug';
    sources.logLevel = sources.debug;
  }

  const config = values as unknown as DaemonConfig;
  // Reject unusable mount options now, while we can still name where they came from.
  parseMountOptions(config.options, origins.options);

  return configFile === undefined ? { config, sources } : { config, sources, configFile: configFile.path };
}

/** Where a value came from, worded like the errors of each source. */
function originOf(option: ConfigOption, source: ConfigSource, configFile: string | undefined): string {
  switch (source) {
    case 'cli':
      return `option --${option.long}`;
    case 'env':
      return `environment ${option.envVar}`;
    case 'file':
      return `config file ${configFile}: key "${option.fileKey}"`;
    case 'default':
      return `default --${option.long}`;
  }
}

/** The host trees the daemon reads must be directories: a mistyped root would otherwise start a daemon
 * whose every file falls back to what it can read, without a word. */
export function checkHostRoots({ config, sources, configFile }: ResolvedConfig): void {
  for (const key of ['procRoot', 'cgroupRoot'] as const) {
    let problem: string | undefined;
    try {
      if (!statSync(config[key]).isDirectory()) problem = 'is not a directory';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problem = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read: ${(err as Error).message}`;
    }
    if (problem !== undefined) throw new ConfigError(`${originOf(OPTION_BY_KEY.get(key)!, sources[key], configFile)}: ${config[key]} ${problem}`);
  }
}

function loadConfigFile(input: ResolveConfigInput, cwd: string): { path: string; text: string } | undefined {
  let explicitPath: string | undefined;
  let origin: string;
  if (input.configPath !== undefined) {
    explicitPath = input.configPath;
    origin = 'option --config';
  } else {
    explicitPath = input.env[CONFIG_ENV_VAR];
    origin = `environment ${CONFIG_ENV_VAR}`;
  }

  if (explicitPath === undefined) {
    const defaultPath = input.defaultConfigPath ?? DEFAULT_CONFIG_PATH;
    const text = readUnlessMissing(defaultPath, 'default config file');
    return text === undefined ? undefined : { path: defaultPath, text };
  }
  if (explicitPath === '') throw new ConfigError(`${origin}: the config file path is empty`);
  const resolved = path.resolve(cwd, explicitPath);
  const text = readUnlessMissing(resolved, origin);
  if (text === undefined) throw new ConfigError(`${origin}: config file ${resolved} does not exist`);
  return { path: resolved, text };
}

/** The file's text, or undefined if it does not exist; any other failure is an error. */
function readUnlessMissing(file: string, origin: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError(`${origin}: cannot read config file ${file}: ${(error as Error).message}`);
  }
}

// ini only matches a section header at the start of a line and trims the name.
const SECTION_HEADER = /^\[([^\]]*)\]\s*$/;

function parseConfigFile(file: string, text: string): Layer {
  const where = `config file ${file}`;

  // ini nests dotted section names and silently drops some, so check the headers as written.
  for (const line of text.split(/[\r\n]+/)) {
    const header = SECTION_HEADER.exec(line);
    if (header && header[1]!.trim() !== CONFIG_SECTION) {
      throw new ConfigError(`${where}: unknown section [${header[1]}]; only [${CONFIG_SECTION}] is allowed`);
    }
  }

  // ini keeps the last of two assignments of a key without a word: the operator meant one of them.
  const firstLine = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#') || SECTION_HEADER.test(line)) return;
    const key = trimmed.split('=', 1)[0]!.trim();
    const first = firstLine.get(key);
    if (first !== undefined) throw new ConfigError(`${where}: key "${key}" is set twice (lines ${first} and ${index + 1}); keep one`);
    firstLine.set(key, index + 1);
  });

  const parsed = ini.parse(text) as Record<string, unknown>;
  const layer: Layer = new Map();
  for (const [name, value] of Object.entries(parsed)) {
    // A top-level key named like the section is a key too, not the section.
    if (name !== CONFIG_SECTION || typeof value !== 'object') {
      throw new ConfigError(`${where}: key "${name}" is outside the [${CONFIG_SECTION}] section`);
    }
    for (const [fileKey, raw] of Object.entries(value as Record<string, unknown>)) {
      const option = OPTION_BY_FILE_KEY.get(fileKey);
      if (!option) {
        const known = CONFIG_OPTIONS.map((o) => o.fileKey).join(', ');
        throw new ConfigError(`${where}: unknown key "${fileKey}" in [${CONFIG_SECTION}] (known keys: ${known})`);
      }
      const origin = `${where}: key "${fileKey}"`;
      if (Array.isArray(raw)) throw new ConfigError(`${origin}: arrays (${fileKey}[]) are not supported`);
      // ini turns the bare words true, false and null into JSON values; treat them as text like the rest.
      layer.set(option.key, { value: parseValue(option, String(raw), origin), origin });
    }
  }
  return layer;
}

function readEnvironment(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = new Map();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_ENV_VAR || raw === undefined) continue;
    const option = OPTION_BY_ENV_VAR.get(name);
    if (!option) {
      const known = [...CONFIG_OPTIONS.map((o) => o.envVar), CONFIG_ENV_VAR].join(', ');
      throw new ConfigError(`environment ${name}: unknown variable (known: ${known})`);
    }
    const origin = `environment ${name}`;
    layer.set(option.key, { value: parseValue(option, raw, origin), origin });
  }
  return layer;
}

function readCommandLine(cli: Record<string, unknown>, mountpoint: string | undefined, cwd: string): Layer {
  const layer: Layer = new Map();
  for (const [key, raw] of Object.entries(cli)) {
    // commander reports options that were declared but not given as undefined.
    if (raw === undefined) continue;
    const option = OPTION_BY_KEY.get(key);
    if (!option || option.positional) {
      throw new ConfigError(`command line: "${key}" is not a daemon option`);
    }
    const origin = `option --${option.long}`;
    layer.set(option.key, { value: parseValue(option, raw, origin), origin });
  }
  if (mountpoint !== undefined) {
    const origin = 'mountpoint argument';
    layer.set('mountpoint', { value: parseValue(OPTION_BY_KEY.get('mountpoint')!, mountpoint, origin, cwd), origin });
  }
  return layer;
}

const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true, false: false, '1': true, '0': false, yes: true, no: false, on: true, off: false,
};

/**
 * Converts a raw value to the option's type. `relativeTo` allows a relative path and resolves it
 * against that directory (only the mountpoint argument does this).
 */
function parseValue(option: ConfigOption, raw: unknown, origin: string, relativeTo?: string): unknown {
  const fail = (problem: string): never => {
    // JSON quoting keeps control characters from breaking the one-line message.
    throw new ConfigError(`${origin}: ${JSON.stringify(raw)} ${problem}`);
  };
  if (typeof raw === 'boolean' && option.kind === 'boolean') return raw;
  if (typeof raw === 'number' && option.kind === 'integer') return checkRange(option, raw, fail);
  if (typeof raw !== 'string') return fail(`has the wrong type (${typeof raw}) for this option`);

  const text = raw.trim();
  switch (option.kind) {
    case 'boolean': {
      const value = BOOLEAN_WORDS[text.toLowerCase()];
      return value ?? fail('is not a boolean (use true/false, 1/0, yes/no or on/off)');
    }
    case 'integer':
      return /^\d+$/.test(text) ? checkRange(option, Number(text), fail) : fail(rangeProblem(option));
    case 'path':
      if (text === '') return fail('is not a path');
      if (relativeTo !== undefined) return path.resolve(relativeTo, text);
      return path.isAbsolute(text) ? path.resolve(text) : fail('is not an absolute path');
    case 'logLevel': {
      const level = text.toLowerCase();
      return (LOG_LEVELS as readonly string[]).includes(level) ? level : fail(`is not a log level (use ${LOG_LEVELS.join(', ')})`);
    }
    case 'string':
      return raw;
  }
}

function checkRange(option: ConfigOption, value: number, fail: (problem: string) => never): number {
  const inRange = Number.isInteger(value) && value >= (option.min ?? 0) && value <= (option.max ?? Number.MAX_SAFE_INTEGER);
  return inRange ? value : fail(rangeProblem(option));
}

function rangeProblem(option: ConfigOption): string {
  return `is not a whole number between ${option.min ?? 0} and ${option.max ?? Number.MAX_SAFE_INTEGER}`;
}

// Options lxcfs-ts always sets itself or that do not apply to it: dropped, as lxcfs does.
const DROPPED_MOUNT_OPTIONS = new Set(['allow_other', 'direct_io', 'nonempty', 'entry_timeout', 'attr_timeout']);
// Options that would contradict how lxcfs-ts mounts, with the reason.
const REJECTED_MOUNT_OPTIONS: Record<string, string> = {
  fd: 'lxcfs-ts opens /dev/fuse itself',
  rootmode: 'lxcfs-ts sets the root directory mode itself',
  user_id: 'lxcfs-ts mounts as the user it runs as',
  group_id: 'lxcfs-ts mounts as the group it runs as',
};

/** Splits `-o` mount options, dropping the ones we set or ignore and rejecting the ones that break us. */
export function parseMountOptions(options: string, origin = 'option -o'): { keep: string[]; dropped: string[] } {
  const keep: string[] = [];
  const dropped: string[] = [];
  for (const token of options.split(',').map((t) => t.trim())) {
    if (token === '') continue;
    const name = token.split('=', 1)[0]!;
    const rejection = Object.hasOwn(REJECTED_MOUNT_OPTIONS, name) ? REJECTED_MOUNT_OPTIONS[name] : undefined;
    if (rejection !== undefined) throw new ConfigError(`${origin}: mount option "${token}" is not allowed: ${rejection}`);
    (DROPPED_MOUNT_OPTIONS.has(name) ? dropped : keep).push(token);
  }
  return { keep, dropped };
}
