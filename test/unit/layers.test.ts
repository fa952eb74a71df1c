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

  it.each(['remount/command.ts', 'webhook/command.ts'])(
    '%s loads no renderer, no served file and no FUSE server',
    (entry) => {
      const loaded = new Set<string>();
      const visit = (file: string): void => {
        if (loaded.has(file)) return;
        loaded.add(file);
        for (const { target, typeOnly } of importsOf(file)) if (!typeOnly) visit(target);
      };
      visit(path.join(SRC, entry));
      const serving = [...loaded]
        .map((file) => path.relative(SRC, file))
        .filter((file) => /^(views|lxcfs)\//.test(file) && file !== 'lxcfs/paths.ts');
      const server = [...loaded]
        .map((file) => path.relative(SRC, file))
        .filter((file) => /^fuse\/(server|reader|session)\.ts$/.test(file));
      expect([...serving, ...server]).toEqual([]);
      expect(loaded.size).toBeGreaterThan(1);
    },
  );
});
