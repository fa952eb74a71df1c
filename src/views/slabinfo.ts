// /proc/slabinfo for a container. The host's file is root-only (0400); ours is 0444, so it must never
// carry the host's slab lines (lxcfs serves the host file whenever the cgroup has none, leaking it).

/** The kernel's header (slabinfo version 2.1), for when the host's cannot be read. */
export const SLABINFO_HEADER =
  'slabinfo - version: 2.1\n' +
  '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n';

/** The first two lines (version and column names) of a slabinfo text, or the standard header. */
export function slabinfoHeader(hostSlabinfo: string | undefined): string {
  if (hostSlabinfo === undefined || !hostSlabinfo.startsWith('slabinfo - version:')) return SLABINFO_HEADER;
  return hostSlabinfo.split('\n').slice(0, 2).join('\n') + '\n';
}

/** The cgroup's own slabinfo when it has any content (it carries its own header), else the header only. */
export function renderSlabinfo(hostSlabinfo: string | undefined, cgroupSlabinfo: string | undefined): string {
  if (cgroupSlabinfo !== undefined && cgroupSlabinfo.trim() !== '') return cgroupSlabinfo.endsWith('\n') ? cgroupSlabinfo : cgroupSlabinfo + '\n';
  return slabinfoHeader(hostSlabinfo);
}
