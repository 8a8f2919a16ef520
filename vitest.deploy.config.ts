import { defineConfig } from 'vitest/config';

// The deployment suites (root, network namespaces, minutes): run by .ci/deploy, not by `npm test`.
export default defineConfig({
  test: {
    include: ['test/deploy/**/*.deploy.ts'],
    testTimeout: 900_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
