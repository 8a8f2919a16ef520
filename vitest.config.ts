import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start real brokers and processes; two cores, so keep parallelism modest.
    maxWorkers: 2,
    // One rerun of a failed test, kept as a guard for CI: the suite passed three runs in a row
    // with --retry 0 under stress-ng, but an idle run still found a log line read too early
    // (fixed); a test that fails twice fails the run.
    retry: 1,
    reporters: ['default'],
  },
});
