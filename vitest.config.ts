import { defineConfig } from 'vitest/config';

// Three tiers (docs/architecture.md, "Tests"): unit tests of the pure core, protocol tests against the
// simulator over TCP or a socat PTY pair, integration tests against the real Redis and
// InfluxDB that scripts/services.sh starts. All run from `make test`.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.run/**', 'tmp/**'],
    pool: 'forks',
    // Two cores: more workers only add contention for the servers under test.
    maxWorkers: 2,
    testTimeout: 30_000,
    // In CI a test that fails is run once more: the integration tests kill and restart real
    // servers and processes on a 2-core machine, where a timing edge under load must not
    // decide whether a change lands. Vitest prints every retry, so a flaky test stays
    // visible in the log; locally nothing is retried.
    retry: process.env.CI ? 1 : 0,
    hookTimeout: 60_000,
    globalSetup: ['test/global-setup.ts'],
    // A test that asserts nothing passes whatever the code does: each must call expect.
    expect: { requireAssertions: true },
  },
});
