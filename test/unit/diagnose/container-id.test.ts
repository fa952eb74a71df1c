// Container ids from the cgroup paths that Docker, containerd, CRI-O, Podman, LXC and systemd write.

import { describe, expect, it } from 'vitest';
import { containerIdFromProcCgroup, containerIdOf } from '../../../src/diagnose/container-id.js';

const ID = '4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970';
const POD = '0d3f1c2a-5b6e-4f70-8a9b-1c2d3e4f5a6b';

describe('containerIdOf', () => {
  it.each([
    ['Docker, cgroupfs driver', `/docker/${ID}`, { runtime: 'docker', id: ID }],
    ['Docker, systemd driver', `/system.slice/docker-${ID}.scope`, { runtime: 'docker', id: ID }],
    [
      'Docker, systemd inside the container (init.scope)',
      `/system.slice/docker-${ID}.scope/init.scope`,
      { runtime: 'docker', id: ID },
    ],
    [
      'containerd under Kubernetes, systemd driver',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replaceAll('-', '_')}.slice/cri-containerd-${ID}.scope`,
      { runtime: 'containerd', id: ID, pod: POD },
    ],
    [
      'CRI-O under Kubernetes, systemd driver',
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD.replaceAll('-', '_')}.slice/crio-${ID}.scope`,
      { runtime: 'cri-o', id: ID, pod: POD },
    ],
    [
      'Kubernetes, cgroupfs driver (guaranteed pod)',
      `/kubepods/pod${POD}/${ID}`,
      { runtime: 'kubernetes', id: ID, pod: POD },
    ],
    [
      'Kubernetes, cgroupfs driver (burstable pod)',
      `/kubepods/burstable/pod${POD}/${ID}`,
      { runtime: 'kubernetes', id: ID, pod: POD },
    ],
    ['Podman', `/machine.slice/libpod-${ID}.scope/container`, { runtime: 'podman', id: ID }],
    ['LXC 4+', '/lxc.payload.web1', { runtime: 'lxc', id: 'web1' }],
    ['older LXC', '/lxc/web1', { runtime: 'lxc', id: 'web1' }],
    ['systemd-nspawn', '/machine.slice/machine-debian.scope', { runtime: 'systemd-nspawn', id: 'debian' }],
  ])('%s', (_, cgroupPath, expected) => {
    expect(containerIdOf(cgroupPath)).toEqual(expected);
  });

  it.each([
    '/',
    '/user.slice/user-1000.slice/session-2.scope',
    '/system.slice/docker.service',
    `/docker/${ID.slice(1)}`,
    '/kubepods/burstable',
  ])('no container in %s', (cgroupPath) => {
    expect(containerIdOf(cgroupPath)).toBeUndefined();
  });
});

describe('containerIdFromProcCgroup', () => {
  it('finds the id on any line of a v1 /proc/PID/cgroup', () => {
    const text = `12:pids:/docker/${ID}\n4:memory:/docker/${ID}\n1:name=systemd:/docker/${ID}\n0::/system.slice/containerd.service\n`;
    expect(containerIdFromProcCgroup(text)).toEqual({ runtime: 'docker', id: ID });
  });

  it('reads the v2 line', () => {
    expect(containerIdFromProcCgroup(`0::/system.slice/docker-${ID}.scope\n`)).toEqual({ runtime: 'docker', id: ID });
  });

  it('a host process has none', () => {
    expect(containerIdFromProcCgroup('0::/init.scope\n')).toBeUndefined();
  });
});
