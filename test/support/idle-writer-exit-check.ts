/**
 * Run as a child process by lifecycle.integ.test.ts: writes 30 records through `writable()`,
 * `putAll()` or `put()` into a producer that holds 10 at a time (so the writers wait for room), then
 * stops using it without closing it. The test checks that Node then exits on its own: the wait for
 * room for a next record that was still queued when the last record settled keeps no timer alive.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KinesisProducer } from '../../src/index.js';
import { FakeKinesis } from './fake-kinesis.js';

const mode = process.argv[2] as 'writable' | 'putAll' | 'put';
const fake = new FakeKinesis(1);
const producer = new KinesisProducer({ streamName: 'test', client: fake.client, maxOutstandingRecords: 10 });
const records = Array.from({ length: 30 }, (_, i) => ({ partitionKey: `k${i}`, data: 'x' }));
if (mode === 'writable') {
  await pipeline(
    Readable.from(records),
    producer.writable<{ partitionKey: string; data: string }>({
      partitionKey: 'partitionKey',
      serialize: (record) => record.data,
    }),
  );
} else if (mode === 'putAll') {
  await producer.putAll(records);
} else {
  await Promise.all(records.map((record) => producer.put(record)));
}
console.log(
  `done ${mode} outstanding=${producer.outstandingRecords} stored=${fake.storedUserRecords().length}`,
);
