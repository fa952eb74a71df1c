// The webhook's pure parts: JSON pointers, the healing directory, and pods it must leave alone rather
// than patch (malformed specs reach mutating webhooks before the API server validates them).

import { describe, expect, it } from 'vitest';
import { healDirFor, mutatePod, pointer } from '../../../src/webhook/inject.js';
import { INJECTED_FILES } from '../../../src/webhook/injected-files.js';

const layout = { mountpoint: '/var/lib/lxcfs', files: INJECTED_FILES, healDir: '/var/lib/lxcfs' };

describe('pointer', () => {
  it('escapes ~ and / in every token (RFC 6901)', () => {
    expect(pointer('spec', 'containers', 0, 'volumeMounts', '-')).toBe('/spec/containers/0/volumeMounts/-');
    expect(pointer('metadata', 'annotations', 'lxcfs-ts.io/inject')).toBe('/metadata/annotations/lxcfs-ts.io~1inject');
    expect(pointer('a~1/b', '~')).toBe('/a~01~1b/~0');
  });
});

describe('healDirFor', () => {
  it.each([
    ['/var/lib/lxcfs', '/var/lib/lxcfs'],
    ['/var/lib/lxcfs-ts/lxcfs', '/var/lib/lxcfs-ts'],
    ['/srv/lxcfs', '/srv/lxcfs'],
    ['/', '/'],
  ])('%s: %s', (mountpoint, dir) => expect(healDirFor(mountpoint)).toBe(dir));
});

describe('pods left alone', () => {
  it.each([
    ['no spec', { metadata: {} }, 'the object has no pod spec'],
    ['containers not a list', { spec: { containers: 'web' } }, 'spec.containers is not a list'],
    ['volumes not a list', { spec: { volumes: {}, containers: [{ name: 'web' }] } }, 'spec.volumes is not a list'],
    ['no containers', { spec: { containers: [] } }, 'no containers'],
    ['a container that is not an object', { spec: { containers: ['web'] } }, 'an entry of spec.containers is not an object'],
    ['volumeMounts not a list', { spec: { containers: [{ name: 'web', volumeMounts: {} }] } }, 'the volumeMounts of container "web" are not a list'],
    ['a static pod\'s mirror', { metadata: { annotations: { 'kubernetes.io/config.mirror': '4b1c0e6f' } }, spec: { containers: [{ name: 'etcd' }] } }, 'the mirror of a static pod (the kubelet runs it from its manifest file)'],
    ['an opt-out label', { metadata: { labels: { 'lxcfs-ts.io/inject': 'False' } }, spec: { containers: [{ name: 'web' }] } }, 'opted out (lxcfs-ts.io/inject: "false")'],
  ])('%s', (_name, pod, reason) => {
    expect(mutatePod(pod, layout, 'labelled')).toEqual({ patch: [], warnings: [], added: { mounts: 0, containers: 0 }, skipped: reason });
  });

  it('a pod with null lists is injected like one without them', () => {
    const { patch, skipped } = mutatePod({ spec: { volumes: null, initContainers: null, containers: [{ name: 'web', volumeMounts: null }] } }, layout, 'labelled');
    expect(skipped).toBeUndefined();
    expect(patch.map((op) => op.path)).toEqual(['/spec/volumes', '/spec/containers/0/volumeMounts']);
  });
});
