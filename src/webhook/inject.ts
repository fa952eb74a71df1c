// What the webhook adds to one pod: pure, from the pod as the API server sent it to an RFC 6902 patch.
// It never breaks a pod: what is already there (the user's own mounts, a spec mutated before) is kept,
// a second pass adds nothing, and a pod it cannot serve is left as it is, with the reason.

import path from 'node:path';

/** Where the lxcfs files are on the nodes. */
export interface InjectionLayout {
  /** The daemon's mountpoint on every node. */
  mountpoint: string;
  /** Files of the tree to bind, relative to the mountpoint (and to the container's root). */
  files: readonly string[];
  /** A directory that contains the mountpoint or is it, given to every container with HostToContainer
   * propagation: a new mount below it reaches the pod, and `lxcfs-ts remount` can heal the files. */
  healDir: string;
}

/** How a pod is selected: `labelled` for namespaces that opted in (every pod unless it opts out),
 * `opt-in` for the others (only pods that ask for it). */
export type SelectionMode = 'labelled' | 'opt-in';

/** The pod label or annotation that opts a pod out ("false") or in ("true"). */
const INJECT_KEY = 'lxcfs-ts.io/inject';

export interface JsonPatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export interface PodMutation {
  /** Empty when nothing is to be added. */
  patch: JsonPatchOperation[];
  /** For the user (AdmissionResponse.warnings): mounts of theirs that were left alone. */
  warnings: string[];
  /** Why the pod was left as it is, when it was. */
  skipped?: string;
  /** How many volume mounts were added, over how many containers. */
  added: { mounts: number; containers: number };
  /** Something about how the pod is served, for the log. */
  note?: string;
}

/** A JSON object as the API server sent it: nothing about its shape is trusted. */
export type Json = Record<string, unknown>;

interface Target {
  mountPath: string;
  hostPath: string;
  type: 'File' | 'Directory';
  volumeName: string;
  propagation?: 'HostToContainer';
}

const CONTAINER_LISTS = ['initContainers', 'containers'] as const;
const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
/** Volume names are DNS labels. */
const VOLUME_NAME_MAX = 63;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON pointer (RFC 6901) from raw tokens, each escaped. */
export function pointer(...tokens: Array<string | number>): string {
  let result = '';
  for (const token of tokens) {
    const text = String(token);
    result += '/' + (/[~/]/.test(text) ? text.replaceAll('~', '~0').replaceAll('/', '~1') : text);
  }
  return result;
}

/** The healing directory for a mountpoint: its parent when that directory is lxcfs's own
 * (/var/lib/lxcfs-ts for /var/lib/lxcfs-ts/lxcfs), else the mountpoint itself (/var/lib/lxcfs: a pod
 * is never given all of /var/lib). */
export function healDirFor(mountpoint: string): string {
  const parent = path.posix.dirname(mountpoint);
  return parent !== mountpoint && path.posix.basename(parent).includes('lxcfs') ? parent : mountpoint;
}

/** Per layout, computed once: a layout is fixed for the life of the webhook. */
const targetsByLayout = new WeakMap<InjectionLayout, Target[]>();

function targetsOf(layout: InjectionLayout): Target[] {
  let targets = targetsByLayout.get(layout);
  if (targets === undefined) {
    targets = computeTargets(layout);
    targetsByLayout.set(layout, targets);
  }
  return targets;
}

function computeTargets(layout: InjectionLayout): Target[] {
  const files: Target[] = layout.files.map((file) => ({
    mountPath: '/' + file,
    hostPath: path.posix.join(layout.mountpoint, file),
    type: 'File',
    // Room for the "-NN" that makes a colliding name unique.
    volumeName: ('lxcfs-ts-' + file.replaceAll('/', '-')).slice(0, VOLUME_NAME_MAX - 4),
  }));
  return [...files, { mountPath: layout.healDir, hostPath: layout.healDir, type: 'Directory', volumeName: 'lxcfs-ts-dir', propagation: 'HostToContainer' }];
}

function normalized(p: unknown): string | undefined {
  return typeof p === 'string' && p !== '' ? path.posix.normalize(p).replace(/(.)\/$/, '$1') : undefined;
}

/** The pod's opt-in/opt-out choice: the annotation, else the label; undefined when neither says. */
function podChoice(metadata: Json): boolean | undefined {
  for (const field of ['annotations', 'labels']) {
    const values = metadata[field];
    const value = isObject(values) ? values[INJECT_KEY] : undefined;
    if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  }
  return undefined;
}

/** Why a pod is not to be touched, or undefined. */
function reasonToSkip(pod: Json, spec: Json, mode: SelectionMode): string | undefined {
  const choice = podChoice(isObject(pod.metadata) ? pod.metadata : {});
  if (choice === false) return `opted out (${INJECT_KEY}: "false")`;
  if (mode === 'opt-in' && choice !== true) return `its namespace is not labelled and the pod does not opt in (${INJECT_KEY}: "true")`;
  if (isObject(spec.os) && spec.os.name === 'windows') return 'a Windows pod';
  // The kubelet runs a static pod from its manifest file; a mirror that differs from it is deleted and
  // created again, over and over.
  const annotations = isObject(pod.metadata) && isObject(pod.metadata.annotations) ? pod.metadata.annotations : {};
  if (MIRROR_POD_ANNOTATION in annotations) return 'the mirror of a static pod (the kubelet runs it from its manifest file)';
  // The runtime mounts a user-namespaced pod's volumes with an ID mapping, which FUSE allows only to a
  // server that asks for it (Linux >= 6.12, FUSE_ALLOW_IDMAP); ours does not, so the pod would not start.
  if (spec.hostUsers === false) return 'hostUsers: false (its volumes would be ID-mapped mounts, which the lxcfs FUSE mount does not allow)';
  for (const list of ['volumes', ...CONTAINER_LISTS]) {
    if (spec[list] !== undefined && spec[list] !== null && !Array.isArray(spec[list])) return `spec.${list} is not a list`;
  }
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) return 'no containers';
  for (const list of CONTAINER_LISTS) {
    for (const container of (spec[list] as unknown[] | null | undefined) ?? []) {
      if (!isObject(container)) return `an entry of spec.${list} is not an object`;
      if (container.volumeMounts !== undefined && container.volumeMounts !== null && !Array.isArray(container.volumeMounts)) {
        return `the volumeMounts of container "${String(container.name)}" are not a list`;
      }
    }
  }
  return undefined;
}

/** The pod as it is, and why. */
export function leftAlone(reason: string): PodMutation {
  return { patch: [], warnings: [], added: { mounts: 0, containers: 0 }, skipped: reason };
}

export function mutatePod(pod: unknown, layout: InjectionLayout, mode: SelectionMode): PodMutation {
  if (!isObject(pod) || !isObject(pod.spec)) return leftAlone('the object has no pod spec');
  const spec = pod.spec;
  const skipped = reasonToSkip(pod, spec, mode);
  if (skipped !== undefined) return leftAlone(skipped);

  const volumes = ((spec.volumes as unknown[] | null | undefined) ?? []).filter(isObject);
  const takenNames = new Set(volumes.map((volume) => volume.name));
  const hostPathOf = new Map<unknown, string | undefined>(
    volumes.map((volume) => [volume.name, isObject(volume.hostPath) ? normalized(volume.hostPath.path) : undefined]),
  );
  // A volume already in the pod for one of our host paths (ours from an earlier pass, or the old
  // webhook's) is reused rather than added again.
  const volumeByHostPath = new Map<string, string>();
  for (const volume of volumes) {
    const source = hostPathOf.get(volume.name);
    if (source !== undefined && typeof volume.name === 'string' && !volumeByHostPath.has(source)) volumeByHostPath.set(source, volume.name);
  }
  const newVolumes: Json[] = [];
  const volumeFor = (target: Target): string => {
    const existing = volumeByHostPath.get(target.hostPath);
    if (existing !== undefined) return existing;
    let name = target.volumeName;
    for (let n = 2; takenNames.has(name); n++) name = `${target.volumeName}-${n}`;
    takenNames.add(name);
    volumeByHostPath.set(target.hostPath, name);
    newVolumes.push({ name, hostPath: { path: target.hostPath, type: target.type } });
    return name;
  };

  const targets = targetsOf(layout);
  const patch: JsonPatchOperation[] = [];
  const warnings: string[] = [];
  let mountsAdded = 0;
  let containersChanged = 0;
  for (const list of CONTAINER_LISTS) {
    // Checked by reasonToSkip: a list of objects, each with a list of volume mounts or none.
    const containers = (spec[list] as Json[] | null | undefined) ?? [];
    containers.forEach((container, index) => {
      const mounts = Array.isArray(container.volumeMounts) ? container.volumeMounts.filter(isObject) : [];
      const mountAt = new Map(mounts.map((mount) => [normalized(mount.mountPath), mount]));
      const added: Json[] = [];
      for (const target of targets) {
        const existing = mountAt.get(target.mountPath);
        if (existing === undefined) {
          added.push({ name: volumeFor(target), mountPath: target.mountPath, readOnly: true, ...(target.propagation ? { mountPropagation: target.propagation } : {}) });
        } else if (hostPathOf.get(existing.name) !== target.hostPath || existing.subPath) {
          warnings.push(`container "${String(container.name)}" already mounts ${target.mountPath} (volume "${String(existing.name)}"): left as it is`);
        }
      }
      if (added.length === 0) return;
      containersChanged++;
      mountsAdded += added.length;
      if (Array.isArray(container.volumeMounts)) {
        for (const mount of added) patch.push({ op: 'add', path: pointer('spec', list, index, 'volumeMounts', '-'), value: mount });
      } else {
        patch.push({ op: 'add', path: pointer('spec', list, index, 'volumeMounts'), value: added });
      }
    });
  }
  if (newVolumes.length > 0) {
    // Volumes first: a patch is applied in order, and every mount must name a volume that exists.
    const volumeOps: JsonPatchOperation[] = Array.isArray(spec.volumes)
      ? newVolumes.map((volume) => ({ op: 'add', path: pointer('spec', 'volumes', '-'), value: volume }))
      : [{ op: 'add', path: pointer('spec', 'volumes'), value: newVolumes }];
    patch.unshift(...volumeOps);
  }
  const mutation: PodMutation = { patch, warnings, added: { mounts: mountsAdded, containers: containersChanged } };
  // The daemon sees such a pod's processes in its own pid namespace and serves each its own cgroups.
  if (spec.hostPID === true) mutation.note = 'hostPID: every process reads with its own cgroups';
  return mutation;
}
