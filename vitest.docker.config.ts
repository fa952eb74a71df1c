// The Docker suite (`npm run test:docker`): real Docker (Debian's docker.io, a private dockerd started by
// test/docker/global-setup.ts) running the README's recipes and lxcfs-ts's image the way
// deploy/kubernetes/ runs it. Its files are test/docker/**/*.docker.ts (the suffix keeps them out of the
// host suite, whose config takes test/**/*.test.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/docker/**/*.docker.ts'],
    globalSetup: ['test/docker/global-setup.ts'],
    // One file at a time: both share the one dockerd and this 2-core machine.
    fileParallelism: false,
    // Every container start costs seconds on a loaded 2-core machine.
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Stopping dockerd and removing its data root takes longer than vitest's default 10 s here.
    teardownTimeout: 300_000,
    reporters: ['verbose'],
  },
});
