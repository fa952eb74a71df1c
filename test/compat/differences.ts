// Every intentional difference between lxcfs-ts and Debian's lxcfs 5.0.3, in one place, with the
// reason. The differential tests exempt exactly these; the README's compatibility section is rendered
// from this table (test/unit/compat-readme.test.ts keeps the two in sync).

export interface KnownDifference {
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
];

/** The differences of one file, as a set of field names. */
export function exemptFields(file: string, host: 'v1' | 'v2'): Set<string> {
  const fields = new Set<string>();
  for (const difference of DIFFERENCES) {
    if (difference.file !== file || !difference.hosts.includes(host)) continue;
    for (const field of difference.field.split(', ')) fields.add(field);
  }
  return fields;
}

/** The table as Markdown, for the README. */
export function renderDifferences(): string {
  const rows = DIFFERENCES.map((d) => `| ${d.file} | ${d.field} | ${d.hosts} | ${d.ours} | ${d.lxcfs} | ${d.reason} |`);
  return ['| file | field | hosts | lxcfs-ts | lxcfs 5.0.3 | why |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
