/**
 * Where the host's /proc and cgroup mounts are. Tests point these at fixture
 * trees; the daemon uses the real ones.
 */
export interface HostRoots {
  readonly procRoot: string;
  readonly cgroupRoot: string;
}

export const REAL_HOST_ROOTS: HostRoots = { procRoot: '/proc', cgroupRoot: '/sys/fs/cgroup' };
