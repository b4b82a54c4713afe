import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION, readStream } from '../scripts/local-kinesis.js';
import { deaggregate, KinesisProducer } from '../src/index.js';
import { startFaultFront } from './support/fault-front.js';
import { testClient, testStream } from './support/streams.js';

const client = testClient();
afterAll(() => client.destroy());

async function consume(streamName: string) {
  const out: { shardId: string; partitionKey: string; data: string; sequenceNumber: string }[] = [];
  let kinesisRecords = 0;
  for (const { shard, records } of await readStream(client, streamName)) {
    kinesisRecords += records.length;
    for (const r of records) {
      for (const u of deaggregate(r, { hashKeyRange: shard.HashKeyRange! })) {
        out.push({
          shardId: shard.ShardId!,
          partitionKey: u.partitionKey,
          data: Buffer.from(u.data).toString(),
          sequenceNumber: u.sequenceNumber,
        });
      }
    }
  }
  return { users: out, kinesisRecords };
}

describe('Node streams against kinesis-local', () => {
  it('pipeline(source, producer.writable()) over 100,000 objects writes every one, read back', async () => {
    const { streamName } = await testStream(client, 4, 'pipeline');
    const producer = new KinesisProducer({
      streamName,
      endpoint: inject('kinesisEndpoint'),
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      maxOutstandingRecords: 20_000,
    });
    let peakOutstanding = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 100_000; i++) {
          peakOutstanding = Math.max(peakOutstanding, producer.outstandingRecords);
          yield { id: i, user: `user-${i % 2000}`, event: i % 3 === 0 ? 'click' : 'view' };
        }
      })(),
    );
    await pipeline(
      source,
      producer.writable<{ id: number; user: string; event: string }>({ partitionKey: 'user' }),
    );
    expect(producer.outstandingRecords).toBe(0);
    expect(peakOutstanding).toBeLessThanOrEqual(20_000);
    await producer.close();

    const { users } = await consume(streamName);
    expect(users).toHaveLength(100_000);
    const ids = users.map((u) => (JSON.parse(u.data) as { id: number }).id).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 100_000 }, (_, i) => i));
    expect(
      users.every((u) => u.partitionKey === `user-${(JSON.parse(u.data) as { id: number }).id % 2000}`),
    ).toBe(true);
  });
});

describe('metrics against what was sent and read back', () => {
  it('counts records put, Kinesis records, errors and requests as the stream and the front saw them', async () => {
    const { streamName } = await testStream(client, 2, 'metrics');
    const front = await startFaultFront({
      upstream: inject('kinesisEndpoint'),
      entryFailureRate: 0.1,
      seed: 7,
    });
    try {
      const producer = new KinesisProducer({
        streamName,
        endpoint: front.endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        aggregationMaxBytes: 4096,
      });
      const sent = Array.from({ length: 3000 }, (_, i) => ({
        partitionKey: `k${i % 300}`,
        data: `record-${i}`,
      }));
      await Promise.all(sent.map((r) => producer.put(r)));
      const m = producer.metrics().streams[streamName]!;
      await producer.close();
      const stats = front.stats();
      const { users, kinesisRecords } = await consume(streamName);

      expect(users).toHaveLength(3000);
      expect(m.UserRecordsReceived.total.sum).toBe(3000);
      expect(m.UserRecordsPut.total.sum).toBe(users.length);
      expect(m.UserRecordsDataPut.total.sum).toBe(
        sent.reduce((n, r) => n + r.partitionKey.length + r.data.length, 0),
      );
      expect(m.KinesisRecordsPut.total.sum).toBe(kinesisRecords);
      expect(m.KinesisRecordsPut.total.sum).toBe(stats.entriesStored);
      expect(m.RequestTime.total.count).toBe(stats.requests.PutRecords);
      expect(m.KinesisRecordsPerPutRecordsRequest.total.sum).toBe(stats.entriesReceived);
      // Each Kinesis record that failed with InternalFailure counts once per user record inside it.
      expect(stats.entryFaults['internal-failure']).toBeGreaterThan(0);
      expect(m.ErrorsByCode.InternalFailure!.total.count).toBe(stats.entryFaults['internal-failure']);
      expect(m.RetriesPerRecord.total.sum).toBe(m.ErrorsByCode.InternalFailure!.total.sum);
      const perShard = new Map<string, number>();
      for (const u of users) perShard.set(u.shardId, (perShard.get(u.shardId) ?? 0) + 1);
      for (const [shardId, count] of perShard)
        expect(m.shards[shardId]!.UserRecordsPut.total.sum).toBe(count);
    } finally {
      await front.close();
    }
  });
});
