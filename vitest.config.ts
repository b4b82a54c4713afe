import { defineConfig } from 'vitest/config';

// Every test process runs with --unhandled-rejections=strict: an unhandled rejection anywhere fails the run.
const execArgv = ['--unhandled-rejections=strict'];

export default defineConfig({
  test: {
    pool: 'forks',
    // The AWS SDK warns once per process on Node 20 that its 2027 releases will need Node 22.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    poolOptions: { forks: { execArgv } },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.integ.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integ',
          include: ['test/**/*.integ.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
