import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONFIG_OPTIONS,
  ConfigError,
  parseMountOptions,
  resolveConfig,
  type DaemonConfig,
  type ResolveConfigInput,
} from '../../src/daemon/config.js';

const DEFAULTS: DaemonConfig = {
  mountpoint: '/var/lib/lxcfs',
  foreground: true,
  debug: false,
  enableLoadavg: false,
  disableSwap: false,
  disableZswap: false,
  enableCfs: false,
  enablePidfd: false,
  enablePsiPoll: false,
  enableBlkioAccounting: false,
  pidfile: '/run/lxcfs-ts.pid',
  runtimeDir: '/run',
  options: '',
  logLevel: 'info',
  force: false,
  readers: 2,
  procRoot: '/proc',
  cgroupRoot: '/sys/fs/cgroup',
};

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** resolveConfig with nothing given and a default config path that does not exist. */
function resolve(input: Partial<ResolveConfigInput> = {}) {
  return resolveConfig({ cli: {}, env: {}, defaultConfigPath: join(dir, 'absent.conf'), ...input });
}

function writeConfig(text: string, name = 'lxcfs-ts.conf'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The message of the ConfigError `action` throws; fails if it throws nothing or something else. */
function configErrorOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

describe('CONFIG_OPTIONS', () => {
  it('describes every config key exactly once', () => {
    expect(CONFIG_OPTIONS.map((o) => o.key).sort()).toEqual(Object.keys(DEFAULTS).sort());
  });

  it('has the lxcfs short flags', () => {
    const shorts = Object.fromEntries(CONFIG_OPTIONS.filter((o) => o.short).map((o) => [o.short, o.long]));
    expect(shorts).toEqual({
      f: 'foreground',
      d: 'debug',
      l: 'enable-loadavg',
      u: 'disable-swap',
      p: 'pidfile',
      o: 'options',
    });
  });

  it('derives file keys and environment variables from the long flag', () => {
    const runtimeDir = CONFIG_OPTIONS.find((o) => o.key === 'runtimeDir');
    expect(runtimeDir).toMatchObject({ long: 'runtime-dir', fileKey: 'runtime_dir', envVar: 'LXCFS_TS_RUNTIME_DIR' });
  });

  it('marks only the mountpoint as positional', () => {
    expect(CONFIG_OPTIONS.filter((o) => o.positional).map((o) => o.key)).toEqual(['mountpoint']);
  });

  it('gives booleans no value placeholder and every other option one', () => {
    for (const option of CONFIG_OPTIONS) {
      expect(option.valueName === undefined, option.long).toBe(option.kind === 'boolean');
    }
  });
});

describe('resolveConfig defaults', () => {
  it('uses the defaults when nothing is given', () => {
    const { config, sources, configFile } = resolve();
    expect(config).toEqual(DEFAULTS);
    expect(Object.values(sources).every((s) => s === 'default')).toBe(true);
    expect(configFile).toBeUndefined();
  });
});

describe('precedence', () => {
  it('config file overrides defaults', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = 3\npidfile = /run/file.pid\n');
    const { config, sources } = resolve({ configPath: file });
    expect(config.readers).toBe(3);
    expect(config.pidfile).toBe('/run/file.pid');
    expect(sources.readers).toBe('file');
    expect(sources.runtimeDir).toBe('default');
  });

  it('environment overrides the config file', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = 3\npidfile = /run/file.pid\n');
    const { config, sources } = resolve({ configPath: file, env: { LXCFS_TS_READERS: '4' } });
    expect(config.readers).toBe(4);
    expect(sources.readers).toBe('env');
    expect(config.pidfile).toBe('/run/file.pid');
    expect(sources.pidfile).toBe('file');
  });

  it('command line overrides the environment and the config file', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = 3\nmountpoint = /mnt/file\n');
    const { config, sources } = resolve({
      configPath: file,
      env: { LXCFS_TS_READERS: '4', LXCFS_TS_MOUNTPOINT: '/mnt/env' },
      cli: { readers: '5' },
      mountpoint: '/mnt/cli',
    });
    expect(config.readers).toBe(5);
    expect(sources.readers).toBe('cli');
    expect(config.mountpoint).toBe('/mnt/cli');
    expect(sources.mountpoint).toBe('cli');
  });

  it('a false on a higher layer overrides a true below it', () => {
    const file = writeConfig('[lxcfs-ts]\nenable_cfs = true\n');
    const { config, sources } = resolve({ configPath: file, env: { LXCFS_TS_ENABLE_CFS: 'off' } });
    expect(config.enableCfs).toBe(false);
    expect(sources.enableCfs).toBe('env');
  });

  it('ignores command-line keys commander left undefined', () => {
    const { config, sources } = resolve({ cli: { readers: undefined }, env: { LXCFS_TS_READERS: '7' } });
    expect(config.readers).toBe(7);
    expect(sources.readers).toBe('env');
  });
});

describe('config file location', () => {
  it('reads the default path when it exists', () => {
    const file = writeConfig('[lxcfs-ts]\nforce = yes\n');
    const { config, configFile } = resolve({ defaultConfigPath: file });
    expect(config.force).toBe(true);
    expect(configFile).toBe(file);
  });

  it('skips a default path that does not exist', () => {
    expect(resolve({ defaultConfigPath: join(dir, 'nope', 'x.conf') }).configFile).toBeUndefined();
  });

  it('rejects a default path it cannot read', () => {
    mkdirSync(join(dir, 'conf.d'));
    const message = configErrorOf(() => resolve({ defaultConfigPath: join(dir, 'conf.d') }));
    expect(message).toMatch(/^default config file: cannot read config file .*conf\.d: /);
  });

  it('rejects a --config path that does not exist', () => {
    const missing = join(dir, 'missing.conf');
    expect(configErrorOf(() => resolve({ configPath: missing }))).toBe(
      `option --config: config file ${missing} does not exist`,
    );
  });

  it('rejects a LXCFS_TS_CONFIG path that does not exist', () => {
    const missing = join(dir, 'missing.conf');
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_CONFIG: missing } }))).toBe(
      `environment LXCFS_TS_CONFIG: config file ${missing} does not exist`,
    );
  });

  it('rejects an empty config path', () => {
    expect(configErrorOf(() => resolve({ configPath: '' }))).toBe('option --config: the config file path is empty');
  });

  it('reads LXCFS_TS_CONFIG instead of the default path', () => {
    const fromEnv = writeConfig('[lxcfs-ts]\nreaders = 9\n', 'env.conf');
    const asDefault = writeConfig('[lxcfs-ts]\nreaders = 8\n', 'default.conf');
    const { config, configFile } = resolve({ env: { LXCFS_TS_CONFIG: fromEnv }, defaultConfigPath: asDefault });
    expect(config.readers).toBe(9);
    expect(configFile).toBe(fromEnv);
  });

  it('prefers --config over LXCFS_TS_CONFIG', () => {
    const fromCli = writeConfig('[lxcfs-ts]\nreaders = 6\n', 'cli.conf');
    const { config, configFile } = resolve({ configPath: fromCli, env: { LXCFS_TS_CONFIG: join(dir, 'missing.conf') } });
    expect(config.readers).toBe(6);
    expect(configFile).toBe(fromCli);
  });

  it('resolves a relative --config against cwd', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = 11\n');
    const { config, configFile } = resolve({ configPath: 'lxcfs-ts.conf', cwd: dir });
    expect(config.readers).toBe(11);
    expect(configFile).toBe(file);
  });
});

describe('config file contents', () => {
  it('reads every key by its snake_case name', () => {
    const file = writeConfig(
      [
        '; comment',
        '# another comment',
        '[lxcfs-ts]',
        'mountpoint = /mnt/lxcfs',
        'foreground = false',
        'debug = false',
        'enable_loadavg = true',
        'disable_swap = 1',
        'disable_zswap = yes',
        'enable_cfs = on',
        'enable_pidfd = TRUE',
        'enable_psi_poll = true',
        'enable_blkio_accounting = true',
        'pidfile = /run/x.pid',
        'runtime_dir = /run/lxcfs-ts',
        'options = ro,allow_other',
        'log_level = warn',
        'force = true',
        'readers = 16',
        'proc_root = /host/proc',
        'cgroup_root = /host/cgroup',
        '',
      ].join('\n'),
    );
    const { config, sources } = resolve({ configPath: file });
    expect(config).toEqual({
      mountpoint: '/mnt/lxcfs',
      foreground: false,
      debug: false,
      enableLoadavg: true,
      disableSwap: true,
      disableZswap: true,
      enableCfs: true,
      enablePidfd: true,
      enablePsiPoll: true,
      enableBlkioAccounting: true,
      pidfile: '/run/x.pid',
      runtimeDir: '/run/lxcfs-ts',
      options: 'ro,allow_other',
      logLevel: 'warn',
      force: true,
      readers: 16,
      procRoot: '/host/proc',
      cgroupRoot: '/host/cgroup',
    });
    expect(Object.values(sources).every((s) => s === 'file')).toBe(true);
  });

  it('accepts an empty file', () => {
    const file = writeConfig('');
    expect(resolve({ configPath: file }).config).toEqual(DEFAULTS);
  });

  it('rejects an unknown key', () => {
    const file = writeConfig('[lxcfs-ts]\nenable_cfss = true\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toMatch(
      new RegExp(`^config file ${file}: unknown key "enable_cfss" in \\[lxcfs-ts\\] \\(known keys: foreground, `),
    );
  });

  it('rejects a key set twice, naming both lines', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = 3\n; a comment\nreaders = 4\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(`config file ${file}: key "readers" is set twice (lines 2 and 4); keep one`);
  });

  it('rejects the camelCase spelling of a key', () => {
    const file = writeConfig('[lxcfs-ts]\nenableCfs = true\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toContain('unknown key "enableCfs"');
  });

  it('rejects a key outside the section', () => {
    const file = writeConfig('readers = 3\n[lxcfs-ts]\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(
      `config file ${file}: key "readers" is outside the [lxcfs-ts] section`,
    );
  });

  it('rejects a top-level key named like the section', () => {
    const file = writeConfig('lxcfs-ts = 1\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(
      `config file ${file}: key "lxcfs-ts" is outside the [lxcfs-ts] section`,
    );
  });

  it('rejects an unknown section', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = 3\n[lxcfs]\nreaders = 4\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(
      `config file ${file}: unknown section [lxcfs]; only [lxcfs-ts] is allowed`,
    );
  });

  it('rejects a dotted section, naming it as written', () => {
    const file = writeConfig('[lxcfs-ts.extra]\nreaders = 4\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toContain('unknown section [lxcfs-ts.extra]');
  });

  it('rejects an array key', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders[] = 1\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(
      `config file ${file}: key "readers": arrays (readers[]) are not supported`,
    );
  });

  it('names the file and key of a bad value', () => {
    const file = writeConfig('[lxcfs-ts]\nreaders = many\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(
      `config file ${file}: key "readers": "many" is not a whole number between 1 and 16`,
    );
  });

  it('treats the ini literal null as text, not as a missing value', () => {
    const file = writeConfig('[lxcfs-ts]\nforce = null\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toContain('key "force": "null" is not a boolean');
  });
});

describe('environment', () => {
  it('reads LXCFS_TS_<KEY> variables', () => {
    const { config, sources } = resolve({
      env: { LXCFS_TS_ENABLE_CFS: '1', LXCFS_TS_PIDFILE: '/x', LXCFS_TS_LOG_LEVEL: 'trace', LXCFS_TS_OPTIONS: 'ro' },
    });
    expect(config).toMatchObject({ enableCfs: true, pidfile: '/x', logLevel: 'trace', options: 'ro' });
    expect(sources).toMatchObject({ enableCfs: 'env', pidfile: 'env', logLevel: 'env', options: 'env' });
  });

  it('rejects an unknown LXCFS_TS_ variable', () => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_ENABLE_CFSS: '1' } }))).toMatch(
      /^environment LXCFS_TS_ENABLE_CFSS: unknown variable \(known: LXCFS_TS_FOREGROUND, .*LXCFS_TS_CONFIG\)$/,
    );
  });

  it('ignores variables without the prefix', () => {
    expect(resolve({ env: { PATH: '/bin', LXCFS_TSX: '1', READERS: 'x' } }).config).toEqual(DEFAULTS);
  });

  it('names the variable of a bad value', () => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_READERS: 'x' } }))).toBe(
      'environment LXCFS_TS_READERS: "x" is not a whole number between 1 and 16',
    );
  });

  it('keeps error messages on one line even for values with newlines', () => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_DEBUG: 'yes\nplease' } }))).toBe(
      'environment LXCFS_TS_DEBUG: "yes\\nplease" is not a boolean (use true/false, 1/0, yes/no or on/off)',
    );
  });
});

describe('command line', () => {
  it('takes booleans as commander gives them', () => {
    const { config, sources } = resolve({ cli: { enableLoadavg: true, disableSwap: true, foreground: false } });
    expect(config).toMatchObject({ enableLoadavg: true, disableSwap: true, foreground: false });
    expect(sources).toMatchObject({ enableLoadavg: 'cli', disableSwap: 'cli', foreground: 'cli' });
  });

  it('takes strings for value options', () => {
    const { config } = resolve({ cli: { pidfile: '/run/a.pid', readers: '1', logLevel: 'error', options: 'ro' } });
    expect(config).toMatchObject({ pidfile: '/run/a.pid', readers: 1, logLevel: 'error', options: 'ro' });
  });

  it('accepts an integer given as a number', () => {
    expect(resolve({ cli: { readers: 12 } }).config.readers).toBe(12);
  });

  it('rejects a fractional number', () => {
    expect(configErrorOf(() => resolve({ cli: { readers: 2.5 } }))).toBe(
      'option --readers: 2.5 is not a whole number between 1 and 16',
    );
  });

  it('rejects a value of the wrong type', () => {
    expect(configErrorOf(() => resolve({ cli: { readers: true } }))).toBe(
      'option --readers: true has the wrong type (boolean) for this option',
    );
  });

  it('rejects a key that is not a daemon option', () => {
    expect(configErrorOf(() => resolve({ cli: { config: '/etc/x.conf' } }))).toBe(
      'command line: "config" is not a daemon option',
    );
  });

  it('rejects the mountpoint as an option key, since it is the positional argument', () => {
    expect(configErrorOf(() => resolve({ cli: { mountpoint: '/mnt' } }))).toBe(
      'command line: "mountpoint" is not a daemon option',
    );
  });

  it('resolves a relative mountpoint argument against cwd', () => {
    expect(resolve({ mountpoint: 'sub/mnt', cwd: dir }).config.mountpoint).toBe(join(dir, 'sub/mnt'));
  });

  it('rejects an empty mountpoint argument', () => {
    expect(configErrorOf(() => resolve({ mountpoint: '' }))).toBe('mountpoint argument: "" is not a path');
  });
});

describe('booleans', () => {
  it.each([
    ['true', true], ['TRUE', true], ['1', true], ['yes', true], ['Yes', true], ['on', true], ['ON', true],
    ['false', false], ['False', false], ['0', false], ['no', false], ['NO', false], ['off', false], ['Off', false],
    [' yes ', true],
  ])('reads %j as %s', (text, expected) => {
    // Start from the opposite of the expected value so a no-op parse cannot pass.
    const file = writeConfig(`[lxcfs-ts]\nforce = ${expected ? 'false' : 'true'}\n`);
    expect(resolve({ configPath: file, env: { LXCFS_TS_FORCE: text } }).config.force).toBe(expected);
  });

  it.each(['maybe', '', '2', 'y', 'enabled'])('rejects %j', (text) => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_FORCE: text } }))).toBe(
      `environment LXCFS_TS_FORCE: ${JSON.stringify(text)} is not a boolean (use true/false, 1/0, yes/no or on/off)`,
    );
  });
});

describe('integers', () => {
  it.each([['1', 1], ['16', 16], ['08', 8]])('accepts %j', (text, expected) => {
    expect(resolve({ env: { LXCFS_TS_READERS: text } }).config.readers).toBe(expected);
  });

  it.each(['0', '17', '-1', '2.5', '1e1', '', 'x', '0x3'])('rejects %j', (text) => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_READERS: text } }))).toBe(
      `environment LXCFS_TS_READERS: ${JSON.stringify(text)} is not a whole number between 1 and 16`,
    );
  });
});

describe('paths', () => {
  it.each(['pidfile', 'runtimeDir', 'procRoot', 'cgroupRoot'] as const)('rejects a relative %s', (key) => {
    const option = CONFIG_OPTIONS.find((o) => o.key === key)!;
    expect(configErrorOf(() => resolve({ cli: { [key]: 'relative/path' } }))).toBe(
      `option --${option.long}: "relative/path" is not an absolute path`,
    );
  });

  it('rejects a relative mountpoint in the environment', () => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_MOUNTPOINT: 'mnt' } }))).toBe(
      'environment LXCFS_TS_MOUNTPOINT: "mnt" is not an absolute path',
    );
  });

  it('rejects a relative mountpoint in the config file', () => {
    const file = writeConfig('[lxcfs-ts]\nmountpoint = mnt\n');
    expect(configErrorOf(() => resolve({ configPath: file }))).toBe(
      `config file ${file}: key "mountpoint": "mnt" is not an absolute path`,
    );
  });

  it('normalizes absolute paths', () => {
    expect(resolve({ env: { LXCFS_TS_RUNTIME_DIR: '/run//lxcfs-ts/./state/' } }).config.runtimeDir).toBe(
      '/run/lxcfs-ts/state',
    );
  });
});

describe('log level', () => {
  it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])('accepts %s', (level) => {
    expect(resolve({ cli: { logLevel: level }, env: { LXCFS_TS_LOG_LEVEL: 'fatal' } }).config.logLevel).toBe(level);
  });

  it('ignores case', () => {
    expect(resolve({ cli: { logLevel: 'WARN' } }).config.logLevel).toBe('warn');
  });

  it('rejects an unknown level', () => {
    expect(configErrorOf(() => resolve({ cli: { logLevel: 'verbose' } }))).toBe(
      'option --log-level: "verbose" is not a log level (use fatal, error, warn, info, debug, trace)',
    );
  });
});

describe('--debug', () => {
  it('implies log level debug', () => {
    const { config, sources } = resolve({ cli: { debug: true } });
    expect(config.logLevel).toBe('debug');
    expect(sources.logLevel).toBe('cli');
  });

  it('overrides a log level from a lower precedence', () => {
    const file = writeConfig('[lxcfs-ts]\nlog_level = warn\n');
    const { config, sources } = resolve({ configPath: file, cli: { debug: true } });
    expect(config.logLevel).toBe('debug');
    expect(sources.logLevel).toBe('cli');
  });

  it('yields to a log level from a higher precedence', () => {
    const file = writeConfig('[lxcfs-ts]\ndebug = true\n');
    const { config, sources } = resolve({ configPath: file, env: { LXCFS_TS_LOG_LEVEL: 'trace' } });
    expect(config.logLevel).toBe('trace');
    expect(sources.logLevel).toBe('env');
  });

  it('yields to a log level given alongside it', () => {
    expect(resolve({ cli: { debug: true, logLevel: 'warn' } }).config.logLevel).toBe('warn');
  });

  it('implies nothing when false', () => {
    expect(resolve({ env: { LXCFS_TS_DEBUG: 'no' } }).config.logLevel).toBe('info');
  });
});

describe('parseMountOptions', () => {
  it('drops options lxcfs-ts sets itself or ignores, keeping the rest in order', () => {
    expect(
      parseMountOptions('ro,allow_other,default_permissions,direct_io,nonempty,entry_timeout=1,attr_timeout=2.5,noatime'),
    ).toEqual({
      keep: ['ro', 'default_permissions', 'noatime'],
      dropped: ['allow_other', 'direct_io', 'nonempty', 'entry_timeout=1', 'attr_timeout=2.5'],
    });
  });

  it('returns nothing for an empty string', () => {
    expect(parseMountOptions('')).toEqual({ keep: [], dropped: [] });
  });

  it('skips empty tokens and surrounding spaces', () => {
    expect(parseMountOptions(' ro, ,allow_other,')).toEqual({ keep: ['ro'], dropped: ['allow_other'] });
  });

  it('keeps options that only start like a dropped one', () => {
    expect(parseMountOptions('allow_others,fdx=1')).toEqual({ keep: ['allow_others', 'fdx=1'], dropped: [] });
  });

  it.each([
    ['fd=3', 'lxcfs-ts opens /dev/fuse itself'],
    ['rootmode=40000', 'lxcfs-ts sets the root directory mode itself'],
    ['user_id=0', 'lxcfs-ts mounts as the user it runs as'],
    ['group_id=0', 'lxcfs-ts mounts as the group it runs as'],
  ])('rejects %s', (token, reason) => {
    expect(configErrorOf(() => parseMountOptions(`ro,${token}`))).toBe(
      `option -o: mount option "${token}" is not allowed: ${reason}`,
    );
  });

  it('is applied by resolveConfig, naming the source of the options', () => {
    expect(configErrorOf(() => resolve({ env: { LXCFS_TS_OPTIONS: 'ro,fd=3' } }))).toBe(
      'environment LXCFS_TS_OPTIONS: mount option "fd=3" is not allowed: lxcfs-ts opens /dev/fuse itself',
    );
  });

  it('leaves the options string as given in the config', () => {
    expect(resolve({ cli: { options: 'ro,allow_other' } }).config.options).toBe('ro,allow_other');
  });
});
