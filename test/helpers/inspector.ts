// Whether a process has opened Node's inspector: the TCP sockets it listens on (from its fds and its
// network namespace's tcp tables), and the line Node prints to stderr when the inspector starts.

import fs from 'node:fs';
import { openFileTargets } from './processes.js';

const LISTEN = '0A';

/** Inodes of the sockets among a process's open files; empty when it has exited. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const target of openFileTargets(pid)) {
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  return inodes;
}

/** TCP ports process `pid` listens on (IPv4 and IPv6). */
export function listeningPorts(pid: number): number[] {
  const inodes = socketInodes(pid);
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== LISTEN || !inodes.has(fields[9]!)) continue;
      ports.push(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** What Node prints when it starts its inspector, or tries to (the port may be taken by another one). */
export const INSPECTOR_BANNER = /Debugger listening on ws:|Starting inspector on .* failed/;
