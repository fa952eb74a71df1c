#!/usr/bin/env node
// lxcfs-ts's entry point. It must run with Node's debugger signal switched off (bin/lxcfs-ts does that):
// otherwise SIGUSR1 opens an inspector through which anyone on the host runs code as root. Checked before
// anything else is loaded.

if (!process.execArgv.includes('--disable-sigusr1')) {
  process.stderr.write('lxcfs-ts: start it with bin/lxcfs-ts (the installed lxcfs-ts command), which runs Node with --disable-sigusr1\n');
  process.exit(1);
}
await import('./commands.js');
