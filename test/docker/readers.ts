// Containers that read their lxcfs files in a loop while the daemon is upgraded, crashes or restarts,
// and report every read: what a container saw, read by read, is the measure of a restart.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { Docker } from '../helpers/docker.js';

/** --memory 256m, as /proc/meminfo shows it. */
export const MEMORY_KB = 262_144;

// One letter per read of /proc/meminfo and online, appended to /tmp/reads: o = its own numbers, e = an
// error (the daemon is down), h = anything else (the host's numbers, or another container's), whose line
// goes to /tmp/other. It stops when /tmp/stop appears. head reads the file as programs do, in one
// read(); the shell's own read takes a byte at a time, and a file read in pieces ends early if the serving
// process crashes in the middle of it (lxcfs's rule for a handle the new process does not know).
const READER = `
: > /tmp/reads
while [ ! -e /tmp/stop ]; do
  for file in /proc/meminfo /sys/devices/system/cpu/online; do
    if line=$(head -n 1 $file 2>/dev/null) && [ -n "$line" ]; then
      case "$file:$line" in
        "/proc/meminfo:MemTotal:"*" $MEMORY_KB kB" | "/sys/devices/system/cpu/online:$CPUS") letter=o ;;
        *) letter=h; echo "$file: $line" >> /tmp/other ;;
      esac
    else
      letter=e
    fi
    printf %s $letter >> /tmp/reads
  done
done`;

/** The docker run arguments after OPTIONS that make a container a reader: its image and command, with
 * the memory limit and the online list it must see. */
export function readerCommand(image: string, cpus: string): string[] {
  return ['-e', `MEMORY_KB=${MEMORY_KB}`, '-e', `CPUS=${cpus}`, image, 'sh', '-c', READER];
}

export async function waitForReads(docker: Docker, name: string, count: number): Promise<void> {
  for (const deadline = Date.now() + 60_000; ; await sleep(100)) {
    const reads = docker.run(['exec', name, 'sh', '-c', 'wc -c < /tmp/reads']);
    if (Number(reads.stdout.trim()) >= count) return;
    if (Date.now() > deadline) {
      const logs = docker.run(['logs', '--tail', '20', name]);
      throw new Error(
        `${name} made ${reads.stdout.trim() || 'no'} reads in 60 s (${reads.stderr.trim()}); its log: ${logs.stdout}${logs.stderr}`,
      );
    }
  }
}

/** A file of a stopped container; '' when it has none. */
function readFromContainer(docker: Docker, name: string, file: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-reads-'));
  try {
    const target = path.join(dir, 'file');
    return docker.run(['cp', `${name}:${file}`, target]).status === 0 ? fs.readFileSync(target, 'utf8') : '';
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface Reads {
  /** Run-length encoded letters: "o×1200 e×40 o×800" (the middle elided when long). */
  runs: string;
  /** The same, file by file: the reader's even letters are reads of meminfo, its odd ones of online. */
  perFile: { meminfo: string; online: string };
  count: number;
  /** The reads that were neither its own numbers nor an error ('' when none). */
  other: string;
}

/** Stops a reader and returns what it read. */
export function stopReader(docker: Docker, name: string): Reads {
  // The loop ends as soon as the file exists, and the container with it, which can kill `touch` before
  // touch itself has exited: 137 (SIGKILL) then means the stop worked.
  const touched = docker.run(['exec', name, 'touch', '/tmp/stop']);
  if (touched.status !== 0 && touched.status !== 137)
    throw new Error(`docker exec ${name} touch /tmp/stop exited with ${touched.status}: ${touched.stderr}`);
  docker.ok(['wait', name]);
  const letters = readFromContainer(docker, name, '/tmp/reads');
  const everyOther = (first: number): string => [...letters].filter((_, i) => i % 2 === first).join('');
  const other = readFromContainer(docker, name, '/tmp/other');
  const lines = other.split('\n').filter(Boolean);
  return {
    runs: runLengths(letters),
    perFile: { meminfo: runLengths(everyOther(0)), online: runLengths(everyOther(1)) },
    count: letters.length,
    other: lines.length <= 3 ? other : `${lines.length} reads, such as ${lines.slice(0, 3).join('; ')}`,
  };
}

function runLengths(letters: string): string {
  const groups = (letters.match(/(.)\1*/g) ?? []).map((group) => `${group[0]}×${group.length}`);
  return groups.length <= 12
    ? groups.join(' ')
    : `${groups.slice(0, 6).join(' ')} … (${groups.length - 9} more) … ${groups.slice(-3).join(' ')}`;
}

/** Its own values, then errors while the daemon was down, then its own values again, and never anything
 * else: file by file. A remount re-binds a container's files one after the other, so in the moment
 * between two of them one file can already be healed while the next still fails, and the reads of both
 * interleave; what must never happen is a file going back to failing, or showing other numbers. */
export function expectDownThenHealed(reads: Reads): void {
  expect(reads.other, `read foreign values: ${reads.runs}`).toBe('');
  for (const [file, runs] of Object.entries(reads.perFile))
    expect(runs, `${file} (all: ${reads.runs})`).toMatch(/^o×\d+ e×\d+ o×\d+$/);
}
