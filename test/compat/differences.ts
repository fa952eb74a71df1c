// Every intentional difference between lxcfs-ts and Debian's lxcfs 5.0.3, in one place, with the
// reason. The differential tests exempt exactly these; the README's compatibility section is rendered
// from this table (test/unit/compat-readme.test.ts keeps the two in sync).

export interface KnownDifference {
  /** The file (or files, comma-separated) where it shows. */
  file: string;
  /** The field (meminfo key, column, ...) that differs. */
  field: string;
  /** Hosts where the difference shows. */
  hosts: 'v1' | 'v2' | 'v1 and v2';
  ours: string;
  lxcfs: string;
  reason: string;
}

export const DIFFERENCES: readonly KnownDifference[] = [
  {
    file: 'every rendered file (not the mirrored sys/devices/system/cpu entries)',
    field: 'st_size',
    hosts: 'v1 and v2',
    ours: '0, as procfs: read() returns the whole file; mmap() maps nothing (a read of the mapping faults with SIGBUS)',
    lxcfs: 'the size of the host\'s file',
    reason: 'with a size, a private mmap() reads through the page cache, which every reader of the file shares: one container could read what was rendered for another',
  },
  {
    file: 'meminfo, swaps',
    field: 'SwapTotal, SwapFree, swap line',
    hosts: 'v2',
    ours: 'memory.swap.max (minimum over ancestors) and memory.swap.current, clamped to the host\'s swap, wherever the container\'s cgroup has swap accounting',
    lxcfs: '0 / header only',
    reason: 'lxcfs probes swap accounting once at startup from its own cgroup; in the root cgroup it finds none unless a first-level cgroup existed then (lxcfs #534)',
  },
  {
    file: 'meminfo',
    field: 'MemAvailable',
    hosts: 'v1 and v2',
    ours: 'MemFree + active_file + inactive_file (+ slab_reclaimable on v2)',
    lxcfs: 'MemFree + cache',
    reason: 'lxcfs 6.0/7.0 formula: the cache includes tmpfs/shmem, which cannot be reclaimed, so 5.0 overstates what is available',
  },
  {
    file: 'meminfo',
    field: 'AnonHugePages',
    hosts: 'v1 and v2',
    ours: 'total_rss_huge (v1), anon_thp (v2)',
    lxcfs: '0',
    reason: 'lxcfs bug: its prefix match of total_rss swallows total_rss_huge, and anon_thp is never read',
  },
  {
    file: 'meminfo',
    field: 'Zswap, Zswapped',
    hosts: 'v1 and v2',
    ours: 'the cgroup\'s zswap and zswapped (v2), 0 without zswap accounting (v1)',
    lxcfs: 'the host\'s lines',
    reason: 'lxcfs 7.0 virtualizes them: the host\'s zswap usage is not the container\'s',
  },
  {
    file: 'meminfo',
    field: 'Mapped, Dirty, Writeback',
    hosts: 'v2',
    ours: 'file_mapped, file_dirty, file_writeback',
    lxcfs: '0',
    reason: 'lxcfs bug: its prefix match of file swallows these keys, and Dirty/Writeback are only read on v1',
  },
  {
    file: 'meminfo',
    field: 'Slab, SReclaimable, SUnreclaim',
    hosts: 'v2',
    ours: 'slab, slab_reclaimable, slab_unreclaimable',
    lxcfs: '0',
    reason: 'lxcfs 6.0/7.0 read them from memory.stat; 5.0 prints 0',
  },
  {
    file: 'cpuinfo, online, stat',
    field: 'CPU count (--enable-cfs)',
    hosts: 'v1 and v2',
    ours: 'the ceiling of the smallest quota/period over the cpu cgroup and its ancestors',
    lxcfs: 'the ceiling of the quota of the cgroup at the cpuset cgroup\'s path, that cgroup alone',
    reason: 'lxcfs 6.0 reads the cpu cgroup (Kubernetes puts cpuset and cpu in different cgroups); 7.0 takes the minimum over ancestors, since a parent\'s quota binds the container too',
  },
  {
    file: 'sys/devices/system/cpu',
    field: 'present, possible, offline, cpuN entries, cpuN/online, topology masks and lists',
    hosts: 'v1 and v2',
    ours: 'as `online`: the container\'s CPUs only (offline empty), each cpuN online, masks and lists in the container\'s numbers',
    lxcfs: 'the host\'s',
    reason: 'getconf _NPROCESSORS_CONF, nproc --all, lscpu and runtimes read these, and saw the host\'s CPUs (lxcfs #731, #627)',
  },
  {
    file: 'stat',
    field: 'user, system, idle',
    hosts: 'v1',
    ours: 'from the container\'s cpuacct cgroup',
    lxcfs: 'from the cpuacct cgroup at the cpuset cgroup\'s path; the host\'s lines when there is none',
    reason: 'lxcfs quirk (all versions): a container\'s cgroup paths differ between controllers under Kubernetes and systemd',
  },
  {
    file: 'stat',
    field: 'cpu lines (--enable-cfs)',
    hosts: 'v1',
    ours: 'at most the CPU count of cpuinfo and online, also when the host\'s lines are shown (no cpuacct cgroup)',
    lxcfs: 'the host\'s line of every cpuset CPU in that case',
    reason: 'lxcfs 7.0 caps them: the three files must agree on the CPU count',
  },
  {
    file: 'stat',
    field: 'idle (--enable-cfs)',
    hosts: 'v1',
    ours: 'the time of the CPUs shown that the container did not use: all of a 0.5-CPU quota used on 1 CPU shown is 50 % busy',
    lxcfs: 'also cut by (1 − quota/CPUs) of each interval: the same container shows about 100 % busy, and idle can go backwards between reads',
    reason: 'utilisation relative to the CPUs shown, as in the cgroup2 model; a counter that goes backwards breaks the deltas that top, mpstat and vmstat take',
  },
  {
    file: 'stat',
    field: 'cpu lines',
    hosts: 'v2',
    ours: 'from cpu.stat: the container\'s user, nice, system spread over its CPUs, idle = CPUs × elapsed time − busy (see Design)',
    lxcfs: 'the host\'s lines of the cpuset\'s CPUs',
    reason: 'lxcfs asks for the cpuacct controller, which cgroup2 does not have (lxcfs issues #593, #628)',
  },
  {
    file: 'uptime',
    field: 'idle',
    hosts: 'v2',
    ours: 'age − cpu.stat usage_usec',
    lxcfs: 'the age',
    reason: 'the same: no cpuacct on cgroup2',
  },
  {
    file: 'uptime',
    field: 'idle',
    hosts: 'v1 and v2',
    ours: '0 once the container\'s CPU time exceeds its age',
    lxcfs: 'the whole age then',
    reason: 'a container that kept several CPUs busy was not idle',
  },
  {
    file: 'loadavg',
    field: 'running/total (-l)',
    hosts: 'v1 and v2',
    ours: 'threads listed in tasks (v1) or cgroup.threads (v2) of the container\'s cgroup and all its descendants',
    lxcfs: 'threads of the processes in cgroup.procs of the cgroup and of descendants up to 3 levels down',
    reason: 'one read per cgroup instead of one directory listing per process; the whole subtree is the container. Differs only with deeper nesting, or with a process whose threads sit in different v1 cgroups',
  },
  {
    file: 'loadavg',
    field: 'loads (-l)',
    hosts: 'v1 and v2',
    ours: 'a cgroup nobody has read for an hour is no longer sampled; its next read starts again from 0.00',
    lxcfs: 'sampled until the cgroup is empty',
    reason: 'lxcfs\'s sampler is its known CPU hog (issues #407, #446): only cgroups someone reads are worth sampling',
  },
  {
    file: 'diskstats',
    field: 'device lines',
    hosts: 'v1 and v2',
    ours: 'the container\'s own I/O (v1: blkio.throttle.*_recursive, BFQ\'s counters where those have none; v2: io.stat): reads, writes, discards and their sectors; merges, times and in-flight 0; only devices it did I/O on, in the kernel\'s layout; the host\'s lines at the top of the hierarchy',
    lxcfs: 'the host\'s lines',
    reason: 'lxcfs reads only the CFQ-era blkio.io_*_recursive files, gone since Linux 5.0, and nothing on cgroup2 (lxcfs #653). On v1 since Linux 6.10 the kernel counts a device only once a throttle rule exists on it: see --enable-blkio-accounting',
  },
  {
    file: 'slabinfo',
    field: 'slab lines',
    hosts: 'v1 and v2',
    ours: 'the cgroup\'s memory.kmem.slabinfo when it has content, else the two header lines only',
    lxcfs: 'the host\'s /proc/slabinfo',
    reason: 'lxcfs bug: the host file is readable by root only (0400), the virtual file by everyone (0444)',
  },
  {
    file: 'pressure/cpu, pressure/io, pressure/memory',
    field: 'the file',
    hosts: 'v1 and v2',
    ours: 'the cpu.pressure, io.pressure or memory.pressure of the caller\'s cgroup2 cgroup (on hybrid hosts too); the host\'s file at the root of the hierarchy or without cgroup2',
    lxcfs: 'no such files (7.0: the cgroup\'s file for cpu and memory on cgroup2 only, the host\'s io file always)',
    reason: 'pressure is tracked per cgroup2 cgroup whichever controllers are enabled; 7.0 looks for the io file under the v1 controller name blkio',
  },
];

/** The differences of one file, as a set of field names. */
export function exemptFields(file: string, host: 'v1' | 'v2'): Set<string> {
  const fields = new Set<string>();
  for (const difference of DIFFERENCES) {
    if (!difference.file.split(', ').includes(file) || !difference.hosts.includes(host)) continue;
    for (const field of difference.field.split(', ')) fields.add(field);
  }
  return fields;
}

/** The table as Markdown, for the README. */
export function renderDifferences(): string {
  const rows = DIFFERENCES.map((d) => `| ${d.file} | ${d.field} | ${d.hosts} | ${d.ours} | ${d.lxcfs} | ${d.reason} |`);
  return ['| file | field | hosts | lxcfs-ts | lxcfs 5.0.3 | why |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
