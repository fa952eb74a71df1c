// Evaluates the armed PSI triggers (psi-table.ts) in the serving process's main thread, off the FUSE
// request path: each trigger's pressure file is sampled every tenth of its window, as the kernel updates
// its own triggers, and an event wakes the poller with FUSE_NOTIFY_POLL. Triggers on one file share each
// read of it. A file that can no longer be read (its cgroup was removed) wakes its pollers too, and their
// next poll answers POLLERR.

import type { Logger } from 'pino';
import { KeptFiles } from '../host/files.js';
import { PsiTable, type PsiTableMemory } from './psi-table.js';
import { parsePressureTotals, samplePeriodUs, totalOf, TriggerWindow, type StallKind } from './psi-trigger.js';

export interface PsiSamplerOptions {
  memory: PsiTableMemory;
  /** Sends FUSE_NOTIFY_POLL for a polled file. */
  wake: (kh: number) => void;
  log: Logger;
  /** µs of a monotonic clock. */
  now?: () => number;
}

interface Watched {
  slot: number;
  serial: number;
  kind: StallKind;
  periodUs: number;
  nextDueUs: number;
  /** Made at the first sample. */
  window: TriggerWindow | undefined;
  thresholdUs: number;
  windowUs: number;
}

/** Ticks closer than this to each other are merged (a timer is not more precise anyway). */
const TICK_SLACK_US = 2_000;

export class PsiSampler {
  private readonly table: PsiTable;
  private readonly files = new KeptFiles(PSI_FILES, 'evict-least-recently-used');
  /** Watched triggers by pressure file. */
  private readonly byPath = new Map<string, Map<number, Watched>>();
  private seenChanges = -1;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;
  /** Passes, reads done, events raised, files gone: for tests and the bench. */
  readonly counts = { ticks: 0, reads: 0, events: 0, gone: 0 };

  constructor(private readonly options: PsiSamplerOptions) {
    this.table = new PsiTable(options.memory);
    this.now = options.now ?? (() => performance.now() * 1000);
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.files.closeAll();
  }

  /** Whether the table changed: triggers a reader armed since are watched from now, freed ones dropped. */
  private refresh(now: number): void {
    const changes = this.table.changes;
    if (changes === this.seenChanges) return;
    this.seenChanges = changes;
    const armed = new Set<number>();
    for (const trigger of this.table.armedTriggers()) {
      armed.add(trigger.slot);
      let group = this.byPath.get(trigger.path);
      if (group?.get(trigger.slot)?.serial === trigger.serial) continue;
      for (const other of this.byPath.values()) other.delete(trigger.slot); // the slot was reused
      if (!group) this.byPath.set(trigger.path, (group = new Map<number, Watched>()));
      const periodUs = samplePeriodUs(trigger);
      group.set(trigger.slot, { ...trigger, periodUs, nextDueUs: now, window: undefined });
    }
    for (const [path, group] of this.byPath) {
      for (const [slot, watched] of group)
        if (!armed.has(slot) || !this.table.holds(slot, watched.serial)) group.delete(slot);
      if (group.size === 0) {
        this.byPath.delete(path);
        this.files.close(path);
      }
    }
  }

  /** One pass: samples every file that has a trigger due. Returns when the next is due (µs). */
  tick(): number {
    this.counts.ticks++;
    const now = this.now();
    this.refresh(now);
    let next = Infinity;
    for (const [path, group] of this.byPath) {
      let due = false;
      for (const watched of group.values()) if (watched.nextDueUs <= now + TICK_SLACK_US) due = true;
      if (due) this.sample(path, group, now);
      for (const watched of group.values()) next = Math.min(next, watched.nextDueUs);
    }
    return next;
  }

  private sample(path: string, group: Map<number, Watched>, now: number): void {
    this.counts.reads++;
    const length = this.files.read(path);
    const totals =
      typeof length === 'number' ? parsePressureTotals(this.files.content(length).toString('latin1')) : undefined;
    if (totals === undefined) {
      // The cgroup was removed (or PSI turned off in it): like the kernel, its pollers get POLLERR.
      this.options.log.debug({ path, error: length }, "a PSI trigger's pressure file is gone");
      for (const watched of group.values()) {
        if (!this.table.holds(watched.slot, watched.serial)) continue;
        this.counts.gone++;
        this.table.raiseGone(watched.slot, watched.serial);
        this.wake(watched.slot);
      }
      this.byPath.delete(path);
      this.files.close(path);
      return;
    }
    for (const watched of group.values()) {
      if (watched.nextDueUs > now + TICK_SLACK_US) continue;
      // Due times stay on their grid: a late tick does not push the next ones back.
      watched.nextDueUs = Math.max(watched.nextDueUs + watched.periodUs, now + watched.periodUs / 2);
      const total = totalOf(totals, watched.kind);
      if (total === undefined) continue;
      if (watched.window === undefined) {
        watched.window = new TriggerWindow(watched, now, total);
        continue;
      }
      if (!watched.window.update(now, total) || !this.table.holds(watched.slot, watched.serial)) continue;
      this.counts.events++;
      this.table.raiseEvent(watched.slot, watched.serial);
      this.wake(watched.slot);
    }
  }

  private wake(slot: number): void {
    const kh = this.table.pollHandle(slot);
    if (kh === 0) return; // never polled: the first poll finds the flag
    try {
      this.options.wake(kh);
    } catch (err) {
      this.options.log.debug({ err, kh }, 'FUSE_NOTIFY_POLL failed');
    }
  }

  private schedule(delayUs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        let next = Infinity;
        try {
          next = this.tick();
        } catch (err) {
          this.options.log.error({ err }, 'PSI trigger sampling failed');
        }
        // Nothing watched: sleep until a reader arms a trigger, without waking meanwhile.
        if (this.byPath.size === 0) {
          void this.table.changedSince(this.seenChanges).then(() => this.schedule(0));
          return;
        }
        // Triggers armed meanwhile are found at the next tick: at most IDLE_CHECK_US apart.
        const delay = Math.min(IDLE_CHECK_US, Math.max(0, next - this.now()));
        this.schedule(delay);
      },
      Math.ceil(delayUs / 1000),
    ).unref();
  }
}

/** While triggers are watched, how often the sampler looks for new ones at least. A new trigger's first
 * sample sets its window's start, so this is how late its window may start. */
const IDLE_CHECK_US = 100_000;
/** Pressure files kept open: one per cgroup with triggers. */
const PSI_FILES = 1024;

export function startPsiSampler(options: PsiSamplerOptions): PsiSampler {
  const sampler = new PsiSampler(options);
  sampler.start();
  return sampler;
}
