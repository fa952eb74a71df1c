// The daemons' cost from /proc: RSS and CPU of each one's process tree (lxcfs-ts runs a supervisor and a
// serving process), sampled throughout the run into a series, and finer figures taken once.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { type BenchDaemon, daemons, readText, sinceStart } from './shared.js';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** pid -> ppid of every process. */
export function procTable(): Map<number, number> {
  const rows = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readText(`/proc/${e}/stat`);
    if (!st) continue;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    rows.set(Number(e), Number(f[1]));
  }
  return rows;
}

function treeOf(pid: number, table: Map<number, number>): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of table) if (pp === out[i]) out.push(p);
  return out;
}

export interface Sample {
  /** bytes */
  rss: number;
  /** bytes of the tree's own memory: RssAnon + RssShmem of every process (the node binary's file pages,
   * shared and counted once by the kernel, are not in it) */
  private: number;
  /** bytes its memory cgroup is charged (memory.usage_in_bytes, v2 memory.current), if it has its own */
  charged?: number;
  /** seconds */
  cpu: number;
  procs: number;
}

/** RSS and private memory in bytes (summed over the process tree) and CPU seconds (utime+stime+cutime+cstime). */
export function sampleDaemon(d: BenchDaemon, table: Map<number, number>): Sample | null {
  if (d.exitInfo) return null;
  let rss = 0;
  let own = 0;
  let ticks = 0;
  let n = 0;
  for (const p of treeOf(d.pid, table)) {
    const status = readText(`/proc/${p}/status`);
    const st = readText(`/proc/${p}/stat`);
    if (!status || !st) continue;
    const kb = (key: string): number =>
      Number(status.match(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm'))?.[1] ?? 0) * 1024;
    rss += kb('VmRSS');
    own += kb('RssAnon') + kb('RssShmem');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    n++;
  }
  if (!n) return null;
  const charged =
    d.memoryCgroup &&
    (readText(`${d.memoryCgroup}/memory.usage_in_bytes`) ?? readText(`${d.memoryCgroup}/memory.current`));
  return { rss, private: own, charged: charged ? Number(charged) : undefined, cpu: ticks / CLK_TCK, procs: n };
}

/** PSS (smaps_rollup) summed over the process tree, taken once at the end, not in the 250 ms series:
 * smaps_rollup walks every mapping under the daemon's mmap lock. RSS counts the pages of the node binary
 * once per process that maps them; PSS shares them out. */
export function pssOfTree(d: BenchDaemon): number | null {
  if (d.exitInfo) return null;
  let pss = 0;
  for (const p of treeOf(d.pid, procTable())) {
    const text = readText(`/proc/${p}/smaps_rollup`) || '';
    pss += Number(text.match(/^Pss:\s+(\d+) kB/m)?.[1] || 0) * 1024;
  }
  return pss;
}

/** Run time (ns) of every thread of the process tree of `pid` (schedstat: precise, unlike ticks). */
export function cpuNsOfTree(pid: number): number {
  let ns = 0;
  for (const p of treeOf(pid, procTable())) {
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      // exited meanwhile
    }
    for (const t of tids) ns += Number((readText(`/proc/${p}/task/${t}/schedstat`) || '0').split(' ')[0]) || 0;
  }
  return ns;
}

export interface SeriesPoint {
  /** seconds since the bench started */
  t: number;
  rss: number;
  private: number;
  cpu: number;
}

/** Every sample of every daemon so far, by daemon id. */
export const series: Record<string, SeriesPoint[]> = {};

/** Samples every running daemon now, and adds the samples to the series. */
export function sampleAll(): Record<string, Sample> {
  const table = procTable();
  const out: Record<string, Sample> = {};
  for (const d of daemons) {
    const s = sampleDaemon(d, table);
    if (!s) continue;
    out[d.id] = s;
    (series[d.id] ??= []).push({ t: +sinceStart().toFixed(2), rss: s.rss, private: s.private, cpu: s.cpu });
  }
  return out;
}
