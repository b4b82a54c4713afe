/**
 * `npm run demo`: aggregates a few hundred records in the KPL format, writes them to Kinesis with the
 * AWS SDK, reads them back with GetRecords and deaggregates them as a KCL consumer would.
 *
 * Without KINESIS_ENDPOINT it starts a local Kinesis (kinesis-local) on a free port and stops it after.
 */
import { randomUUID } from 'node:crypto';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { deaggregate, partitionKeyHash, RecordAggregator } from '../src/index.js';
import { createStream, localClient, readStream, startLocalKinesis } from './local-kinesis.js';

const RECORDS = 400;
const SHARDS = 2;

const given = process.env.KINESIS_ENDPOINT;
const server = given === undefined ? await startLocalKinesis() : undefined;
const endpoint = given ?? server!.endpoint;
const client = localClient(endpoint);
try {
  console.log(`Kinesis endpoint: ${endpoint}${server ? ' (kinesis-local, started for this demo)' : ''}`);
  const streamName = `demo-${randomUUID().slice(0, 8)}`;
  const shards = await createStream(client, streamName, SHARDS);
  console.log(`Created stream ${streamName} with ${shards.length} shards`);

  const sent = Array.from({ length: RECORDS }, (_, i) => ({
    partitionKey: `customer-${i % 50}`,
    data: JSON.stringify({ order: i, amount: (i * 7) % 100, at: new Date(0).toISOString() }),
  }));

  // One aggregator per shard: KCL drops an aggregate whose records belong to different shards.
  const aggregators = new Map(shards.map((s) => [s.ShardId!, new RecordAggregator({ maxBytes: 4096 })]));
  const kinesisRecords = [];
  for (const record of sent) {
    const hash = partitionKeyHash(record.partitionKey);
    const shard = shards.find(
      (s) =>
        BigInt(s.HashKeyRange!.StartingHashKey!) <= hash && hash <= BigInt(s.HashKeyRange!.EndingHashKey!),
    )!;
    const aggregator = aggregators.get(shard.ShardId!)!;
    if (!aggregator.add(record)) {
      kinesisRecords.push(aggregator.build());
      aggregator.add(record);
    }
  }
  for (const aggregator of aggregators.values())
    if (aggregator.count > 0) kinesisRecords.push(aggregator.build());

  const response = await client.send(
    new PutRecordsCommand({
      StreamName: streamName,
      Records: kinesisRecords.map((k) => ({
        PartitionKey: k.partitionKey,
        ExplicitHashKey: k.explicitHashKey,
        Data: k.data,
      })),
    }),
  );
  const bytes = kinesisRecords.reduce((n, k) => n + k.data.length, 0);
  console.log(
    `Sent ${sent.length} user records as ${kinesisRecords.length} Kinesis records (${bytes} bytes) in one PutRecords; ${response.FailedRecordCount ?? 0} failed`,
  );

  let received = 0;
  let aggregated = 0;
  const seen = new Set<string>();
  for (const { shard, records } of await readStream(client, streamName)) {
    const users = records.flatMap((r) => deaggregate(r, { hashKeyRange: shard.HashKeyRange! }));
    console.log(`  ${shard.ShardId}: ${records.length} Kinesis records -> ${users.length} user records`);
    for (const user of users) {
      received++;
      if (user.aggregated) aggregated++;
      seen.add(`${user.partitionKey}|${Buffer.from(user.data).toString()}`);
    }
  }
  const missing = sent.filter((r) => !seen.has(`${r.partitionKey}|${r.data}`)).length;
  console.log(`Read back ${received} user records (${aggregated} from aggregates); missing: ${missing}`);
  if (missing > 0 || received !== sent.length) {
    process.exitCode = 1;
    console.error('Demo FAILED: what came back differs from what was sent');
  } else {
    console.log('Demo OK: every record came back exactly once');
  }
} finally {
  client.destroy();
  await server?.stop();
}
