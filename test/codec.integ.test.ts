import { randomBytes } from 'node:crypto';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterAll, describe, expect, it } from 'vitest';
import { readStream } from '../scripts/local-kinesis.js';
import { deaggregate, partitionKeyHash, RecordAggregator } from '../src/index.js';
import { testClient, testStream } from './support/streams.js';

const client = testClient();
afterAll(() => client.destroy());

describe('codec against kinesis-local', () => {
  it('aggregates written with the SDK read back and deaggregate to the same user records, shard by shard', async () => {
    const { streamName, shards } = await testStream(client, 3, 'codec');
    // Group records by the shard they hash to, so no aggregate mixes shards (as the producer does).
    const shardOf = (key: bigint) =>
      shards.find(
        (s) =>
          BigInt(s.HashKeyRange!.StartingHashKey!) <= key && key <= BigInt(s.HashKeyRange!.EndingHashKey!),
      )!.ShardId!;
    const sent = Array.from({ length: 600 }, (_, i) => ({
      partitionKey: `user-${i % 97}-ключ`,
      data: randomBytes(1 + (i % 300)),
      ...(i % 10 === 0 ? { explicitHashKey: (partitionKeyHash(`e${i}`) >> 1n).toString() } : {}),
    }));
    const byShard = new Map<string, typeof sent>();
    for (const r of sent) {
      const shardId = shardOf(
        r.explicitHashKey === undefined ? partitionKeyHash(r.partitionKey) : BigInt(r.explicitHashKey),
      );
      byShard.set(shardId, [...(byShard.get(shardId) ?? []), r]);
    }
    const kinesisRecords = [];
    for (const records of byShard.values()) {
      const aggregator = new RecordAggregator({ maxBytes: 8 * 1024 });
      for (const r of records) {
        if (!aggregator.add(r)) {
          kinesisRecords.push(aggregator.build());
          aggregator.add(r);
        }
      }
      kinesisRecords.push(aggregator.build());
    }
    expect(kinesisRecords.length).toBeGreaterThan(3);
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
    expect(response.FailedRecordCount).toBe(0);

    const received = [];
    for (const { shard, records } of await readStream(client, streamName)) {
      for (const record of records) {
        // Filter by the shard's range as KCL does: nothing may be dropped.
        received.push(...deaggregate(record, { hashKeyRange: shard.HashKeyRange! }));
      }
    }
    const key = (r: { partitionKey: string; data: Uint8Array }) =>
      `${r.partitionKey}|${Buffer.from(r.data).toString('hex')}`;
    expect(received.map(key).sort()).toEqual(sent.map(key).sort());
    expect(received.filter((r) => r.aggregated).length).toBeGreaterThan(500);
  });
});
