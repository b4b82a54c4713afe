import type { TestProject } from 'vitest/node';
import { startLocalKinesis } from '../scripts/local-kinesis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kinesisEndpoint: string;
    kinesisTlsEndpoint: string;
  }
}

/**
 * Starts one kinesis-local for the integration suite and hands its endpoint to the tests
 * (`inject('kinesisEndpoint')`, and its HTTPS one). The returned teardown runs whether tests pass or fail; a watchdog in
 * the child stops it too if this process dies first.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startLocalKinesis();
  project.provide('kinesisEndpoint', server.endpoint);
  project.provide('kinesisTlsEndpoint', server.tlsEndpoint);
  return async () => {
    await server.stop();
  };
}
