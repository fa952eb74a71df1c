// The v2 guest suite: runs only inside the QEMU guest of scripts/v2vm (Linux 6.1, a real cgroup2
// hierarchy, FUSE protocol 7.38). Start it with `npm run test:v2`, which boots the guest and runs
// vitest there with this file; test/v2/global-setup.ts refuses to run anywhere else.
//
// Every file named test/v2/**/*.v2.ts is a guest test (the suffix keeps them out of the host suite,
// whose config takes test/**/*.test.ts). The kernel-facing host tests listed below run here too, as
// they are, to prove them on the older kernel.
import { defineConfig } from 'vitest/config';

const KERNEL_FACING_HOST_TESTS = [
  'test/integration/fuse-layer.test.ts',
  'test/integration/daemon.test.ts',
  'test/integration/startup.test.ts',
];

export default defineConfig({
  test: {
    include: [...KERNEL_FACING_HOST_TESTS, 'test/v2/**/*.v2.ts'],
    globalSetup: ['test/v2/global-setup.ts'],
    setupFiles: ['test/v2/leftovers.ts'],
    // One file at a time: the guest has 2 emulated CPUs, and tests share its one cgroup2 root.
    fileParallelism: false,
    // Software emulation runs several times slower than the host: the host's limits, stretched.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // The same stretch for the bounds the helpers set themselves (startDaemon's 15 s to "serving"):
    // test/helpers/processes.ts multiplies them by this factor. (Not LXCFS_TS_*: the daemon
    // reads every such variable as configuration and refuses unknown ones.)
    // 6: the first runs on a machine loaded by other jobs took up to 65 s for a daemon to serve.
    env: { TEST_TIME_SCALE: '6' },
    reporters: ['verbose'],
  },
});
