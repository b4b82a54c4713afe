/**
 * Run as a child process by lifecycle.integ.test.ts: writes records, then either closes the producer
 * or just stops using it ("idle"), and ends its code there. The test checks that Node then exits on
 * its own — no timer or socket of the producer keeps it alive.
 */
import { KinesisProducer } from '../../src/index.js';

const [endpoint, streamName, mode] = process.argv.slice(2) as [string, string, 'close' | 'idle'];
const producer = new KinesisProducer({
  streamName,
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
const puts = Array.from({ length: 200 }, (_, i) =>
  producer.put({ partitionKey: `k${i % 10}`, data: `r${i}` }),
);
for (let i = 0; i < 200; i++) producer.send({ partitionKey: `f${i % 10}`, data: `f${i}` });
await Promise.all(puts);
if (mode === 'close') await producer.close();
else await producer.flush();
console.log(`done ${mode} outstanding=${producer.outstandingRecords}`);
