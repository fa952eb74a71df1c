// What a kubelet makes of deploy/kubernetes/'s pod specs, as `docker run` arguments: the Docker suite
// has no cluster, so it runs each container the way a kubelet with the Docker runtime would (hostPID,
// privileged, hostPath volumes with their type checks and mount propagation, memory and CPU limits,
// command), and runs postStart and liveness probes with `docker exec`.

import fs from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { REPO } from '../helpers/processes.js';

export interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  lifecycle?: { postStart?: { exec?: { command: string[] } } };
  livenessProbe?: { exec?: { command: string[] }; timeoutSeconds?: number };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { privileged?: boolean };
  volumeMounts?: {
    name: string;
    mountPath: string;
    readOnly?: boolean;
    mountPropagation?: 'None' | 'HostToContainer' | 'Bidirectional';
  }[];
}

export interface PodSpec {
  hostPID?: boolean;
  initContainers?: K8sContainer[];
  containers: K8sContainer[];
  volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
}

export interface Pod {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: PodSpec;
}

function manifest(file: string): { kind: string; spec: Record<string, unknown> } {
  return parse(fs.readFileSync(path.join(REPO, 'deploy/kubernetes', file), 'utf8')) as {
    kind: string;
    spec: Record<string, unknown>;
  };
}

/** The pod template of deploy/kubernetes/daemonset.yaml. */
export function daemonSetPod(): PodSpec {
  const daemonSet = manifest('daemonset.yaml');
  if (daemonSet.kind !== 'DaemonSet') throw new Error(`daemonset.yaml is a ${daemonSet.kind}`);
  return (daemonSet.spec as { template: { spec: PodSpec } }).template.spec;
}

/** The spec of deploy/kubernetes/examples/example-pod.yaml (apart, so that kubectl apply -f deploy/kubernetes/ does not start it). */
export function examplePod(): PodSpec {
  const pod = manifest('examples/example-pod.yaml');
  if (pod.kind !== 'Pod') throw new Error(`example-pod.yaml is a ${pod.kind}`);
  return pod.spec as unknown as PodSpec;
}

/** The webhook's container in deploy/kubernetes/webhook-deployment.yaml (a file of several objects),
 * and the namespace the Deployment runs in. */
export function webhookDeployment(): { container: K8sContainer; namespace: string } {
  const objects = parseAllDocuments(
    fs.readFileSync(path.join(REPO, 'deploy/kubernetes/webhook-deployment.yaml'), 'utf8'),
  ).map((doc) => doc.toJS() as { kind: string; metadata: { namespace: string }; spec: unknown } | null);
  const deployment = objects.find((object) => object?.kind === 'Deployment');
  if (!deployment) throw new Error('webhook-deployment.yaml has no Deployment');
  const spec = deployment.spec as { template: { spec: PodSpec } };
  return { container: spec.template.spec.containers[0]!, namespace: deployment.metadata.namespace };
}

/** Kubernetes quantities as docker takes them: "256Mi" → "256m", "500m" CPU → "0.5". */
function memory(quantity: string): string {
  const match = /^(\d+)(Ki|Mi|Gi)$/.exec(quantity);
  if (!match) throw new Error(`unsupported memory quantity ${quantity}`);
  return `${match[1]}${match[2]![0]!.toLowerCase()}`;
}

function cpus(quantity: string): string {
  return quantity.endsWith('m') ? String(Number(quantity.slice(0, -1)) / 1000) : quantity;
}

/** Capabilities this process may not hand on (a sandbox's bounding set can lack some). */
function missingCapabilities(): number[] {
  const bounding = BigInt('0x' + /^CapBnd:\s+([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
  const last = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  const missing: number[] = [];
  for (let cap = 0; cap <= last; cap++) if (((bounding >> BigInt(cap)) & 1n) === 0n) missing.push(cap);
  return missing;
}

/** Capability names by number (linux/capability.h), as docker's --cap-drop takes them. */
const CAPABILITY_NAMES = (
  'CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE ' +
  'NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN ' +
  'SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE ' +
  'MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE'
).split(' ');

/** `privileged: true` as docker flags. Docker 20.10 asks runc for every capability it knows, which fails
 * where this process's bounding set lacks one; there, every capability it has, and the rest of what
 * --privileged means (no seccomp filter, no masked /proc paths, every device). */
export function privilegedFlags(): { flags: string[]; note?: string } {
  const missing = missingCapabilities();
  if (missing.length === 0) return { flags: ['--privileged'] };
  const names = missing.map((cap) => {
    const name = CAPABILITY_NAMES[cap];
    if (!name)
      throw new Error(`this host's bounding set lacks capability ${cap}, which this test does not know by name`);
    return name;
  });
  return {
    flags: [
      '--cap-add',
      'ALL',
      ...names.flatMap((name) => ['--cap-drop', name]),
      '--security-opt',
      'seccomp=unconfined',
      '--security-opt',
      'systempaths=unconfined',
      '--device-cgroup-rule',
      'a *:* rwm',
      '--device',
      '/dev/fuse',
    ],
    note: `this host's capability bounding set lacks ${names.join(', ')}: privileged is run as every other capability, unconfined`,
  };
}

export interface RunOptions {
  /** Container name. */
  name: string;
  /** The image to run instead of the spec's (no registry here). */
  image: string;
  /** Where a hostPath of the spec is on this test host. */
  hostPath: (specPath: string) => string;
}

/** `docker run -d` arguments for one container of a pod spec, after the kubelet's hostPath checks. */
export function dockerRunArgs(pod: PodSpec, container: K8sContainer, options: RunOptions): string[] {
  const args = ['run', '-d', '--name', options.name, '--network', 'none'];
  if (pod.hostPID) args.push('--pid', 'host');
  if (container.securityContext?.privileged) args.push(...privilegedFlags().flags);
  const limits = container.resources?.limits ?? {};
  if (limits.memory) args.push('--memory', memory(limits.memory));
  if (limits.cpu) args.push('--cpus', cpus(limits.cpu));
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes?.find((entry) => entry.name === mount.name);
    if (!volume?.hostPath) throw new Error(`volume ${mount.name}: only hostPath volumes are translated`);
    const source = options.hostPath(volume.hostPath.path);
    checkHostPath(source, volume.hostPath.type ?? '');
    const propagation = { Bidirectional: 'rshared', HostToContainer: 'rslave', None: 'rprivate' }[
      mount.mountPropagation ?? 'None'
    ];
    args.push('-v', `${source}:${mount.mountPath}:${mount.readOnly ? 'ro,' : ''}${propagation}`);
  }
  const [entrypoint, ...commandArgs] = container.command ?? [];
  if (entrypoint) args.push('--entrypoint', entrypoint);
  args.push(options.image, ...commandArgs, ...(container.args ?? []));
  return args;
}

/** The kubelet's checks of a hostPath's type before it starts the pod. */
function checkHostPath(source: string, type: string): void {
  if (type === 'DirectoryOrCreate') {
    fs.mkdirSync(source, { recursive: true });
    return;
  }
  if (type === '') return;
  const stat = fs.statSync(source);
  if (type === 'Directory' && !stat.isDirectory()) throw new Error(`hostPath ${source} is not a directory`);
  if (type === 'File' && !stat.isFile()) throw new Error(`hostPath ${source} is not a file`);
}
