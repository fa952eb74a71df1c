// Which container a cgroup path belongs to, from the names runtimes give their cgroups. Pure: the paths
// come from /proc/PID/cgroup.

export interface ContainerId {
  /** Who named the cgroup: docker, containerd, cri-o, podman, lxc, systemd-nspawn, kubernetes. */
  runtime: string;
  /** The runtime's id for it: a 64-hex container id, or a name (lxc, machines). */
  id: string;
  /** The Kubernetes pod uid, when the path has one. */
  pod?: string;
}

const HEX64 = '[0-9a-f]{64}';

/** Most specific first: a containerd scope inside a kubepods slice is containerd's, with the pod uid. */
const PATTERNS: Array<[RegExp, string]> = [
  [new RegExp(`(?:^|/)docker-(${HEX64})\\.scope$`), 'docker'],
  [new RegExp(`(?:^|/)cri-containerd-(${HEX64})\\.scope$`), 'containerd'],
  [new RegExp(`(?:^|/)crio-(${HEX64})\\.scope$`), 'cri-o'],
  [new RegExp(`(?:^|/)libpod-(${HEX64})\\.scope(?:/container)?$`), 'podman'],
  [new RegExp(`^/docker/(${HEX64})$`), 'docker'],
  [/^\/lxc\.payload\.([^/]+)/, 'lxc'],
  [/^\/lxc\/([^/]+)/, 'lxc'],
  [/(?:^|\/)machine-([^/]+)\.scope$/, 'systemd-nspawn'],
  // cgroupfs-driver Kubernetes: /kubepods/<qos>/pod<uid>/<id>; the runtime is not in the path.
  [new RegExp(`^/kubepods(?:/[a-z]+)?/pod[0-9a-f-]+/(${HEX64})$`), 'kubernetes'],
];

/** The pod uid in kubepods paths: "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid_with_underscores>.slice". */
function podOf(cgroupPath: string): string | undefined {
  const match =
    /(?:^|\/|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/.exec(
      cgroupPath,
    );
  return match?.[1]!.replaceAll('_', '-');
}

export function containerIdOf(cgroupPath: string): ContainerId | undefined {
  // A trailing init.scope is where systemd inside the container puts its own pid 1.
  const trimmed = cgroupPath.replace(/\/init\.scope$/, '');
  for (const [pattern, runtime] of PATTERNS) {
    const match = pattern.exec(trimmed);
    if (!match) continue;
    const pod = podOf(trimmed);
    return pod ? { runtime, id: match[1]!, pod } : { runtime, id: match[1]! };
  }
  return undefined;
}

/** The first container id any line of a /proc/PID/cgroup text shows (v1 controllers or the v2 line). */
export function containerIdFromProcCgroup(text: string): ContainerId | undefined {
  for (const line of text.split('\n')) {
    const cgroupPath = line.split(':').slice(2).join(':');
    const found = cgroupPath && containerIdOf(cgroupPath);
    if (found) return found;
  }
  return undefined;
}
