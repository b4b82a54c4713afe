/**
 * Run as a child process by lifecycle.integ.test.ts: sends records without callbacks to a stream that
 * does not exist, with no 'recordFailed' listener, waits for them to settle (all fail), and ends its
 * code there without closing the producer. The test counts the failures the warnings tell.
 */
import { KinesisProducer } from '../../src/index.js';

const [endpoint, streamName] = process.argv.slice(2) as [string, string];
const producer = new KinesisProducer({
  streamName,
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
for (let i = 0; i < 10; i++) producer.send({ partitionKey: `k${i}`, data: `r${i}` });
await producer.flush();
console.log(`done outstanding=${producer.outstandingRecords}`);
