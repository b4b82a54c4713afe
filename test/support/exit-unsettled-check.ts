/**
 * Run as a child process by lifecycle.integ.test.ts: puts records bound for an endpoint that takes
 * connections and never answers, then calls process.exit() with them unsettled (or after close(), with
 * `closed`). The test reads what the producer told on stderr. Modes: `default` (the default logger),
 * `logger` (a logger writing to stderr), `closed`.
 */
import { createServer } from 'node:net';
import { KinesisProducer } from '../../src/index.js';

const mode = process.argv[2] as 'default' | 'logger' | 'closed';
const server = createServer(() => {}); // takes the connection, never answers
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as { port: number };
const producer = new KinesisProducer({
  streamName: 'never-answered',
  endpoint: `http://127.0.0.1:${port}`,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  recordTtlMs: 60_000,
  ...(mode === 'logger'
    ? {
        logger: {
          debug() {},
          info() {},
          warn() {},
          error: (context: object, message: string) =>
            process.stderr.write(`logger.error ${JSON.stringify(context)} ${message}\n`),
        },
      }
    : {}),
});
for (let i = 0; i < 3; i++) producer.put({ partitionKey: `k${i}`, data: `r${i}` }).catch(() => {});
for (let i = 3; i < 5; i++) producer.send({ partitionKey: `k${i}`, data: `r${i}` }, () => {});
await new Promise((resolve) => setTimeout(resolve, 200));
if (mode === 'closed') await producer.close({ timeoutMs: 100 });
console.log(`exiting outstanding=${producer.outstandingRecords}`);
process.exit(0);
