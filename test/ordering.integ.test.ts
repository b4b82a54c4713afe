import { afterAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION, readStream } from '../scripts/local-kinesis.js';
import { deaggregate, KinesisProducer, type KinesisProducerOptions } from '../src/index.js';
import { startFaultFront } from './support/fault-front.js';
import { testClient, testStream } from './support/streams.js';

const client = testClient();
afterAll(() => client.destroy());

function producer(endpoint: string, streamName: string, options: Partial<KinesisProducerOptions>) {
  return new KinesisProducer({
    streamName,
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    ...options,
  });
}

describe("ordering: 'per-partition-key' through injected failures", () => {
  it.each([true, false])(
    'a consumer reading each shard sees every key in put order (aggregation %s)',
    async (aggregation) => {
      const { streamName } = await testStream(client, 3, `ordered-${aggregation}`);
      const front = await startFaultFront({
        upstream: inject('kinesisEndpoint'),
        seed: 11,
        entryFailureRate: 0.1,
        requestFaultRates: {
          'internal-failure': 0.03,
          'service-unavailable': 0.03,
          reset: 0.03,
          throttle: 0.03,
          'stored-then-reset': 0.02,
        },
        shardLimits: { recordsPerSecond: 1000, bytesPerSecond: 256 * 1024 },
      });
      try {
        const p = producer(front.endpoint, streamName, {
          ordering: 'per-partition-key',
          aggregation,
          maxBufferedTimeMs: 20,
        });
        const keys = 40;
        // Unaggregated, ordering costs a round trip per record per shard: fewer records keep CI short.
        const perKey = aggregation ? 60 : 10;
        const puts: Promise<unknown>[] = [];
        for (let n = 0; n < perKey; n++) {
          for (let k = 0; k < keys; k++) puts.push(p.put({ partitionKey: `key-${k}`, data: `${k}:${n}` }));
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        await Promise.all(puts);
        await p.close();
        const stats = front.stats();
        expect(stats.entryFaults['internal-failure']).toBeGreaterThan(0);

        const seen = new Map<string, number[]>();
        for (const { shard, records } of await readStream(client, streamName)) {
          for (const r of records) {
            for (const user of deaggregate(r, { hashKeyRange: shard.HashKeyRange! })) {
              const [k, n] = Buffer.from(user.data).toString().split(':').map(Number) as [number, number];
              expect(user.partitionKey).toBe(`key-${k}`);
              const list = seen.get(user.partitionKey) ?? [];
              // A request stored but unanswered is sent again: keep each record's first occurrence.
              if (!list.includes(n)) list.push(n);
              seen.set(user.partitionKey, list);
            }
          }
        }
        const inOrder = Array.from({ length: perKey }, (_, n) => n);
        expect(seen.size).toBe(keys);
        for (const [key, order] of seen) expect(order, key).toEqual(inOrder);
      } finally {
        await front.close();
      }
    },
  );
});

describe('poison isolation', () => {
  it('the one record that can never be written fails alone; its batch-mates are written', async () => {
    const { streamName } = await testStream(client, 1, 'poison');
    const front = await startFaultFront({ upstream: inject('kinesisEndpoint') });
    // Any entry carrying the poison record fails, as if the service could never store it.
    front.script(({ operation, entries }) =>
      operation === 'PutRecords'
        ? {
            entries: entries.map((e) =>
              deaggregate({ data: e.data, partitionKey: e.partitionKey }).some(
                (u) => u.partitionKey === 'poison',
              )
                ? 'internal-failure'
                : undefined,
            ),
          }
        : undefined,
    );
    try {
      // Isolating it takes 2 + log2(n) attempts; a short backoff cap keeps them within the TTL.
      const p = producer(front.endpoint, streamName, { recordTtlMs: 6000, retryMaxDelayMs: 500 });
      const outcomes = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          p.put({ partitionKey: i === 123 ? 'poison' : `k${i % 30}`, data: `r${i}` }).then(
            () => 'ok',
            (e: { code: string }) => e.code,
          ),
        ),
      );
      await p.close();
      expect(outcomes.filter((o) => o !== 'ok')).toEqual(['Expired']);
      expect(outcomes[123]).toBe('Expired');
      const stored = (await readStream(client, streamName)).flatMap(({ records }) =>
        records.flatMap((r) => deaggregate(r)),
      );
      expect(stored.filter((u) => u.partitionKey === 'poison')).toEqual([]);
      expect(new Set(stored.map((u) => Buffer.from(u.data).toString())).size).toBe(199);
    } finally {
      await front.close();
    }
  });
});
