/**
 * Run as a child process by lifecycle.integ.test.ts: a producer whose endpoint refuses connections
 * (requestTimeoutMs under 2 s), closed while its record waits out a backoff. The test checks that
 * Node then exits at once: no timer of a failed connection attempt keeps it alive.
 */
import { createServer } from 'node:net';
import { KinesisProducer } from '../../src/index.js';

// A port nobody listens on: bound, then closed.
const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };
await new Promise((resolve) => server.close(resolve));

const producer = new KinesisProducer({
  streamName: 'refused',
  endpoint: `http://127.0.0.1:${port}`,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  requestTimeoutMs: 1_900,
  logger: { debug() {}, info() {}, warn() {}, error() {} },
});
const put = producer.put({ partitionKey: 'k', data: 'x' }).catch((error: { code: string }) => error.code);
// The summary and list calls and the first PutRecords tries are refused at once.
await new Promise((resolve) => setTimeout(resolve, 300));
await producer.close({ timeoutMs: 0 });
console.log(`done refused ${await put}`);
