// The systemd guest suite: runs only inside the QEMU guest of scripts/sdvm, whose pid 1 is systemd. Start
// it with `npm run test:systemd` (scripts/sdvm/test-systemd.sh), which packs the project and boots the
// guest; test/systemd/global-setup.ts refuses to run anywhere else.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/systemd/**/*.sd.ts'],
    globalSetup: ['test/systemd/global-setup.ts'],
    // The tests drive one installed service, one step after another.
    fileParallelism: false,
    // Software emulation: an npm install of the package (with its Node.js runtime) takes minutes.
    testTimeout: 900_000,
    hookTimeout: 900_000,
    env: { TEST_TIME_SCALE: '10' },
    reporters: ['verbose'],
  },
});
