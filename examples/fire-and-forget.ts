/**
 * Fire and forget: `send` returns at once; each record's callback (optional) runs once it is stored
 * or has failed for good. Failures of records sent without a callback arrive as 'recordFailed'.
 *
 *   STREAM_NAME=my-stream AWS_REGION=eu-west-1 npx tsx examples/fire-and-forget.ts
 *   npm run example -- fire-and-forget           # against a local Kinesis started for it
 */
import { KinesisProducer } from 'kinesis-producer';

const producer = new KinesisProducer({
  streamName: process.env.STREAM_NAME ?? 'example-stream',
  ...(process.env.KINESIS_ENDPOINT ? { endpoint: process.env.KINESIS_ENDPOINT } : {}),
});

// Nothing is silently dropped: every failure of a record sent without a callback lands here.
producer.on('recordFailed', (error) => {
  console.error(`record for ${error.record.partitionKey} failed: ${error.code}`);
  process.exitCode = 1;
});

let stored = 0;
for (let i = 0; i < 5000; i++) {
  const event = { type: 'page-view', user: `user-${i % 250}`, at: Date.now() };
  if (i % 10 === 0) {
    // With a callback: hear about this one.
    producer.send({ partitionKey: event.user, data: JSON.stringify(event) }, (error) => {
      if (!error) stored++;
    });
  } else {
    producer.send({ partitionKey: event.user, data: JSON.stringify(event) });
  }
}

// flush() resolves once every record sent so far has settled; close() also releases the producer.
await producer.flush();
console.log(
  `sent 5000 events; ${stored} of the 500 with a callback confirmed; outstanding: ${producer.outstandingRecords}`,
);
await producer.close();
