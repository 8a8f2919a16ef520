import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start real brokers and processes; two cores, so keep parallelism modest.
    maxWorkers: 2,
    // One rerun of a failed test. Known timing-dependent failures under load (named in the issues'
    // closing notes: gateway-restart-embedded, health-port flood, freePort races) are bugs still
    // open; this keeps one slow moment from failing CI. A test that fails twice fails the run.
    retry: 1,
    reporters: ['default'],
  },
});
