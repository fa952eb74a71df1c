// The import rules of ARCHITECTURE.md, read from the sources: which layer may import which, and that the
// remount helper and the webhook load nothing of the serving path when they start.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

type Layer =
  | 'cli'
  | 'daemon'
  | 'remount'
  | 'diagnose'
  | 'webhook'
  | 'metrics'
  | 'lxcfs'
  | 'paths'
  | 'fuse'
  | 'views'
  | 'host'
  | 'util';

/** What each layer may import (besides itself and node_modules). */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  cli: ['daemon', 'remount', 'diagnose', 'webhook', 'util'],
  daemon: ['metrics', 'lxcfs', 'paths', 'fuse', 'host', 'util'],
  remount: ['daemon', 'paths', 'fuse', 'host', 'util'],
  diagnose: ['daemon', 'remount', 'lxcfs', 'paths', 'fuse', 'host', 'util'],
  webhook: ['daemon', 'paths', 'util'],
  metrics: ['lxcfs', 'paths', 'fuse', 'util'],
  lxcfs: ['paths', 'fuse', 'views', 'host', 'util'],
  paths: [],
  fuse: ['util'],
  views: ['host', 'util'],
  host: ['util'],
  util: [],
};

function layerOf(file: string): Layer {
  const relative = path.relative(SRC, file);
  if (relative === 'lxcfs/paths.ts') return 'paths';
  if (relative === 'version.ts') return 'util';
  if (!relative.includes('/')) return 'cli';
  return relative.split('/')[0] as Layer;
}

interface Import {
  target: string;
  typeOnly: boolean;
  /** import(): loaded when the code asks for it, not when the importer loads. */
  onDemand: boolean;
}

/** The files of src/ that `file` imports: static imports and import() of a literal path. */
function importsOf(file: string): Import[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: Import[] = [];
  for (const match of text.matchAll(/^(import|export)\s+(type\s+)?[^;]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/gm)) {
    const specifier = (match[3] ?? match[4])!;
    found.push({
      target: path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts')),
      typeOnly: match[2] !== undefined,
      onDemand: match[4] !== undefined,
    });
  }
  return found;
}

const files = fs
  .readdirSync(SRC, { recursive: true, encoding: 'utf8' })
  .filter((name) => name.endsWith('.ts'))
  .map((name) => path.join(SRC, name));

describe('layers', () => {
  it('every import goes where ARCHITECTURE.md says it may', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const { target } of importsOf(file)) {
        expect(fs.existsSync(target), `${file} imports ${target}`).toBe(true);
        const to = layerOf(target);
        if (to !== from && !MAY_IMPORT[from].includes(to))
          wrong.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  /** What loading `entries` loads (type-only imports aside); import() too unless `onDemand` is false. */
  function loadedBy(entries: string[], onDemand: boolean): string[] {
    const loaded = new Set<string>();
    const visit = (file: string): void => {
      if (loaded.has(file)) return;
      loaded.add(file);
      for (const { target, typeOnly, onDemand: later } of importsOf(file))
        if (!typeOnly && (onDemand || !later)) visit(target);
    };
    for (const entry of entries) visit(path.join(SRC, entry));
    return [...loaded].map((file) => path.relative(SRC, file));
  }

  /** The renderers, served files and FUSE server among `loaded`, apart from `allowed`. */
  function servingCode(loaded: string[], allowed: string[]): string[] {
    return loaded.filter(
      (file) =>
        (/^(views|lxcfs)\//.test(file) || /^fuse\/(server|reader|session)\.ts$/.test(file)) && !allowed.includes(file),
    );
  }

  it.each(['remount/command.ts', 'webhook/command.ts'])(
    '%s loads no renderer, no served file and no FUSE server',
    (entry) => {
      const loaded = loadedBy([entry], true);
      expect(servingCode(loaded, ['lxcfs/paths.ts'])).toEqual([]);
      expect(loaded.length).toBeGreaterThan(1);
    },
  );

  it("the daemon's supervisor loads no renderer, no served file and no FUSE server: the serving process runs them", () => {
    // commands.ts loads the helper commands, and the daemon's code, only when asked for; blkio accounting
    // is the supervisor's own work (it sets the host's knobs once, before serving).
    const loaded = loadedBy(['commands.ts', 'daemon/daemon.ts'], false);
    expect(servingCode(loaded, ['lxcfs/blkio-accounting.ts'])).toEqual([]);
    expect(loaded).toContain('daemon/supervisor.ts');
  });
});
