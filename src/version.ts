// lxcfs-ts's version, from the package it was installed from.

import fs from 'node:fs';

export const VERSION = (
  JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
