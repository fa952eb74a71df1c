// Runs once before the Docker suite: starts a private dockerd and gives it three images, all built
// offline (no registry is reachable):
//   debian          Debian bookworm (minbase + procps) from scripts/debian-rootfs.sh, under the name
//                   the README's recipes use;
//   lxcfs-ts:test   scripts/build-image.sh from this checkout's package: the image deploy/kubernetes/ runs;
//   distroless:test cat and sleep with their libraries and nothing else: no shell, no mount, no nsenter.
// Teardown removes every container, stops dockerd by its pid and removes everything it made.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { importImage, startDockerd, writeMinimalRootfs, type Dockerd } from '../helpers/docker.js';
import { REPO } from '../helpers/processes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dockerHost: string;
  }
}

export const LXCFS_IMAGE = 'lxcfs-ts:test';
export const DISTROLESS_IMAGE = 'distroless:test';

function script(command: string, args: string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, {
    cwd: REPO,
    encoding: 'utf8',
    env,
    timeout: 900_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed with ${result.status ?? result.error}`);
  return result.stdout.trim();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) throw new Error('the Docker suite runs dockerd and mounts filesystems: run it as root');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-docker-'));
  let dockerd: Dockerd | undefined;
  const teardown = async (): Promise<void> => {
    try {
      await dockerd?.stop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const phases: string[] = [];
    let mark = Date.now();
    const phase = (name: string): void => {
      phases.push(`${name} ${((Date.now() - mark) / 1000).toFixed(1)} s`);
      mark = Date.now();
    };
    dockerd = await startDockerd(dir, 'lxcfs-ts-docker');
    phase('dockerd');
    const env = dockerd.docker.env();
    const rootfs = script(path.join(REPO, 'scripts/debian-rootfs.sh'), [], env);
    phase('rootfs');
    importImage(dockerd.docker, rootfs, 'debian');
    phase('debian');
    // dist/ is built (npm run test:docker builds first): pack it as it is.
    const packed = script('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {
      ...env,
      npm_config_loglevel: 'error',
    })
      .split('\n')
      .at(-1)!;
    script(
      path.join(REPO, 'scripts/build-image.sh'),
      ['--package', path.join(dir, packed), '--rootfs', rootfs, '--tag', LXCFS_IMAGE],
      env,
    );
    phase(LXCFS_IMAGE);
    const distroless = path.join(dir, 'distroless.tar');
    writeMinimalRootfs(distroless, ['/usr/bin/cat', '/usr/bin/sleep']);
    importImage(dockerd.docker, distroless, DISTROLESS_IMAGE, ['ENTRYPOINT ["/usr/bin/sleep"]', 'CMD ["infinity"]']);
    phase(DISTROLESS_IMAGE);
    const version = dockerd.docker.ok(['version', '--format', '{{.Server.Version}}']).trim();
    const runc = spawnSync('runc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
    console.log(`docker suite: dockerd ${version} (${runc}), private root ${dir}; ready: ${phases.join(', ')}`);
    project.provide('dockerHost', dockerd.docker.host);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
