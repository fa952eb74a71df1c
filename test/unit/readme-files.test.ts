// The README's table of served files is rendered from the registry (src/lxcfs/registry.ts), the one list
// of what the daemon serves. UPDATE_README=1 rewrites the section.

import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { nodeIdOf, SERVED_FILES } from '../../src/lxcfs/paths.js';
import { SERVED } from '../../src/lxcfs/registry.js';

const README = path.resolve(import.meta.dirname, '../../README.md');
const START = '<!-- files:start (rendered from src/lxcfs/registry.ts) -->';
const END = '<!-- files:end -->';

function renderFileTable(): string {
  const rows = SERVED_FILES.map((file) => {
    const served = SERVED[file];
    const fallback = served.fallback?.shows ?? "the host's file";
    return `| \`/${file}\` | ${nodeIdOf(file)} | ${served.shows} | ${fallback} |`;
  });
  return [
    '| file | node id | a container reads | otherwise (virtualization off, no container) |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}

it('README lists exactly the files the registry serves', () => {
  const text = fs.readFileSync(README, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  expect(from, 'README has the file table markers').toBeGreaterThan(0);
  const rendered = `${START}\n${renderFileTable()}\n${END}`;
  if (process.env.UPDATE_README === '1') {
    fs.writeFileSync(README, text.slice(0, from) + rendered + text.slice(to + END.length));
    return;
  }
  expect(text.slice(from, to + END.length)).toBe(rendered);
});
