// The README's compatibility table is rendered from test/compat/differences.ts, the one list of
// intentional differences from lxcfs 5.0.3. UPDATE_README=1 rewrites the section.

import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { renderDifferences } from '../compat/differences.js';

const README = path.resolve(import.meta.dirname, '../../README.md');
const START = '<!-- differences:start (rendered from test/compat/differences.ts) -->';
const END = '<!-- differences:end -->';

it('README lists exactly the differences the tests exempt', () => {
  const text = fs.readFileSync(README, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  expect(from, 'README has the differences markers').toBeGreaterThan(0);
  const rendered = `${START}\n${renderDifferences()}\n${END}`;
  if (process.env.UPDATE_README === '1') {
    fs.writeFileSync(README, text.slice(0, from) + rendered + text.slice(to + END.length));
    return;
  }
  expect(text.slice(from, to + END.length)).toBe(rendered);
});
