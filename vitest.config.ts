import { defineConfig } from 'vitest/config';

// GPU tests run in Node on SwiftShader (Dawn through the `webgpu` package). The Vulkan driver
// comes from Debian's chromium package; see src/node/gpu.ts for how the environment is set.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
