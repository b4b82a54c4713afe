/**
 * Await each record: `put` resolves once the record is stored, with its shard and sequence number,
 * or rejects with a RecordFailedError that carries the record, its error code and every attempt.
 *
 *   STREAM_NAME=my-stream AWS_REGION=eu-west-1 npx tsx examples/await-per-record.ts
 *   npm run example -- await-per-record          # against a local Kinesis started for it
 */
import { KinesisProducer, RecordFailedError } from 'kinesis-producer';

const producer = new KinesisProducer({
  streamName: process.env.STREAM_NAME ?? 'example-stream',
  // Omit endpoint for AWS itself; set it for a local Kinesis such as kinesis-local or LocalStack
  // (which takes any credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must still be set).
  ...(process.env.KINESIS_ENDPOINT ? { endpoint: process.env.KINESIS_ENDPOINT } : {}),
});

const orders = Array.from({ length: 1000 }, (_, i) => ({
  orderId: i,
  customer: `customer-${i % 100}`,
  total: (i * 37) % 500,
}));

try {
  // Many puts in flight at once: they are buffered, aggregated per shard and batched together.
  const results = await Promise.all(
    orders.map((order) => producer.put({ partitionKey: order.customer, data: JSON.stringify(order) })),
  );
  const shards = new Map<string, number>();
  for (const r of results) shards.set(r.shardId, (shards.get(r.shardId) ?? 0) + 1);
  console.log(`stored ${results.length} orders`);
  for (const [shardId, count] of [...shards].sort()) console.log(`  ${shardId}: ${count}`);
  const first = results[0]!;
  console.log(
    `first order: ${first.shardId} seq ${first.sequenceNumber} sub ${first.subSequenceNumber}, ${first.attempts.length} attempt(s)`,
  );
} catch (error) {
  if (error instanceof RecordFailedError) {
    console.error(
      `order ${JSON.stringify(error.record)} failed with ${error.code} after ${error.attempts.length} attempt(s)`,
    );
    process.exitCode = 1;
  } else {
    throw error;
  }
} finally {
  await producer.close();
}
