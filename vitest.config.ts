import { defineConfig } from 'vitest/config';

// ODT_PEERS=off skips building and starting the shared vSphere simulator, for a quick run of the
// unit tests that do not need it (tests that inject the simulator then fail loudly).
const peers = process.env.ODT_PEERS !== 'off';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: peers ? ['test/peers/vsphere/global-setup.ts'] : [],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
