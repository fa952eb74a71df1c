/** What /proc/uptime needs: times in seconds. */
export interface UptimeFacts {
  /** Now, in seconds since boot (the host's uptime). */
  readonly now: number;
  /** When the init of the reader's pid namespace started, in seconds since boot (pid 1 for the host). */
  readonly initStart: number;
  /** CPU time its cgroup has used, in seconds (v1 cpuacct.usage, v2 cpu.stat usage_usec); 0 when unknown. */
  readonly busy: number;
}

/**
 * /proc/uptime for a container (lxcfs's rules): the age of its init, and as idle that age minus the CPU
 * time its cgroup used, `%.2f %.2f`. lxcfs shows the whole age as idle once the busy time exceeds the age
 * (a container busy on several CPUs); here idle stays at 0 then. A start time of 0 (unknown) gives age 0.
 */
export function renderUptime(facts: UptimeFacts): string {
  const age = facts.initStart > 0 ? Math.max(0, facts.now - facts.initStart) : 0;
  const idle = Math.max(0, age - facts.busy);
  return `${age.toFixed(2)} ${idle.toFixed(2)}\n`;
}
