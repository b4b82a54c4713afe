import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import fc from 'fast-check';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  deaggregate,
  type KinesisProducerOptions,
  MAX_HASH_KEY,
  partitionKeyHash,
  type RecordFailedError,
} from '../src/index.js';
import { decodeAggregatedRecord } from '../src/record-format.js';
import {
  evenShards,
  FakeKinesis,
  keysOfHalves,
  nextPutLandsOn,
  serviceError,
} from './support/fake-kinesis.js';
import { liveBytes } from './support/gc.js';
import { producersOn } from './support/producers.js';

let fake: FakeKinesis;
const producer = producersOn(() => fake);

beforeEach(() => {
  vi.useFakeTimers();
  fake = new FakeKinesis(4);
});

const sizeOf = (e: { PartitionKey?: string | undefined; Data?: Uint8Array | undefined }) =>
  Buffer.byteLength(e.PartitionKey!) + e.Data!.length;

describe('buffering', () => {
  it('holds records for maxBufferedTimeMs from the oldest one, then sends them together', async () => {
    const p = producer({ maxBufferedTimeMs: 100 });
    await vi.advanceTimersByTimeAsync(0); // stream summary known
    p.send({ partitionKey: 'k', data: '1' });
    await vi.advanceTimersByTimeAsync(60);
    p.send({ partitionKey: 'k', data: '2' });
    await vi.advanceTimersByTimeAsync(39);
    expect(fake.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.calls).toHaveLength(1);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1', '2']);
  });

  it('sends aggregates of shards opened a few milliseconds apart in one request', async () => {
    fake = new FakeKinesis(8);
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 8; i++) {
      p.send({ partitionKey: `k${i}`, data: 'x' });
      await vi.advanceTimersByTimeAsync(3);
    }
    await vi.advanceTimersByTimeAsync(500);
    const shards = new Set(
      fake.calls.flatMap((c) => c.entries.map((e) => fake.shardFor(BigInt(e.ExplicitHashKey!)).id)),
    );
    expect(shards.size).toBeGreaterThan(4);
    // Each shard's aggregate was due 3 ms after the last one's: they wait for each other.
    expect(fake.calls).toHaveLength(1);
    expect(fake.storedUserRecords()).toHaveLength(8);
  });

  it('with maxBufferedTimeMs 0 sends at once, batching what was put in the same turn', async () => {
    const p = producer({ maxBufferedTimeMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 20; i++) p.send({ partitionKey: 'same', data: String(i) });
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.entries).toHaveLength(1);
    expect(fake.storedUserRecords()).toHaveLength(20);
    p.send({ partitionKey: 'same', data: 'later' });
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(2);
  });

  it('sends a full request at once, without waiting for the deadline', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000, aggregation: false, collectionMaxCount: 10 });
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 25; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls.map((c) => c.entries.length)).toEqual([10, 10]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.calls.map((c) => c.entries.length)).toEqual([10, 10, 5]);
  });

  it('sends early once one shard has 256 KiB waiting, as KPL does', async () => {
    fake.shards = evenShards(1);
    const p = producer({ maxBufferedTimeMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0);
    // Six full 50 KB aggregates for one shard: past 256 KiB.
    for (let i = 0; i < 6 * 25 + 1; i++) p.send({ partitionKey: `k${i}`, data: Buffer.alloc(2000) });
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.entries.reduce((n, e) => n + sizeOf(e), 0)).toBeGreaterThanOrEqual(256 * 1024);
  });

  it('sends one Kinesis record per user record with aggregation off', async () => {
    const p = producer({ aggregation: false });
    for (let i = 0; i < 5; i++) p.send({ partitionKey: 'k', data: String(i) });
    await vi.advanceTimersByTimeAsync(150);
    expect(fake.calls[0]!.entries.map((e) => [e.PartitionKey, Buffer.from(e.Data!).toString()])).toEqual([
      ['k', '0'],
      ['k', '1'],
      ['k', '2'],
      ['k', '3'],
      ['k', '4'],
    ]);
    // KPL always sets the explicit hash key: the record's own hash key, in decimal.
    expect(fake.calls[0]!.entries[0]!.ExplicitHashKey).toBe(partitionKeyHash('k').toString());
  });
});

describe('limits of aggregates and requests', () => {
  const record = fc.record({
    partitionKey: fc.string({ minLength: 1, maxLength: 40 }),
    size: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1000, max: 70_000 })),
  });

  it('never builds an aggregate over aggregationMaxBytes nor a request over 500 records or collectionMaxBytes, and never mixes shards', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(record, { minLength: 1, maxLength: 1500 }),
        fc.integer({ min: 200, max: 100_000 }),
        fc.integer({ min: 100_000, max: 1_000_000 }),
        async (records, aggregationMaxBytes, collectionMaxBytes) => {
          fake = new FakeKinesis(4);
          const p = producer({ aggregationMaxBytes, collectionMaxBytes });
          const sent = records.map((r, i) => ({
            partitionKey: r.partitionKey,
            data: Buffer.alloc(r.size, i % 251),
          }));
          const puts = sent.map((r) => p.put(r));
          await vi.advanceTimersByTimeAsync(200);
          await p.flush();
          await Promise.all(puts);
          let stored = 0;
          for (const call of fake.calls) {
            expect(call.entries.length).toBeLessThanOrEqual(500);
            const bytes = call.entries.reduce((n, e) => n + sizeOf(e), 0);
            // A record larger than collectionMaxBytes may only travel alone.
            if (call.entries.length > 1) expect(bytes).toBeLessThanOrEqual(collectionMaxBytes);
            for (const entry of call.entries) {
              const users = deaggregate({ data: entry.Data!, partitionKey: entry.PartitionKey! });
              stored += users.length;
              if (users.length > 1) {
                expect(sizeOf(entry)).toBeLessThanOrEqual(aggregationMaxBytes);
                const shard = fake.shardFor(BigInt(entry.ExplicitHashKey!));
                for (const u of users) expect(fake.shardFor(partitionKeyHash(u.partitionKey))).toBe(shard);
              }
            }
          }
          expect(stored).toBe(records.length);
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('partition keys', () => {
  const inShard = (i: number) => (((MAX_HASH_KEY + 1n) / 4n) * BigInt(i)).toString();
  const stored = () =>
    fake
      .storedUserRecords()
      .map((r) => `${r.partitionKey}=${r.data}`)
      .sort();

  /** The partition-key table of every aggregate sent, in the order sent. */
  const keyTables = () =>
    fake.calls
      .flatMap((c) => c.entries)
      .filter((e) => e.Data![0] === 0xf3)
      .map((e) => decodeAggregatedRecord(e.Data!.subarray(4, e.Data!.length - 16)).partitionKeys);

  it('writes each record under its own key when one key is in the aggregates of several shards', async () => {
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    // 'shared' is first in shard 0's key table, second in shard 1's (after 'other').
    p.send({ partitionKey: 'shared', data: 's0', explicitHashKey: inShard(0) });
    p.send({ partitionKey: 'other', data: 'o1', explicitHashKey: inShard(1) });
    p.send({ partitionKey: 'shared', data: 's1', explicitHashKey: inShard(1) });
    p.send({ partitionKey: 'other', data: 'o0', explicitHashKey: inShard(0) });
    p.send({ partitionKey: 'shared', data: 's0-again', explicitHashKey: inShard(0) });
    await p.flush();
    expect(fake.calls.flatMap((c) => c.entries)).toHaveLength(2);
    expect(stored()).toEqual(['other=o0', 'other=o1', 'shared=s0', 'shared=s0-again', 'shared=s1']);
    // Each key once in each table, though both aggregates were filled with 'shared' at the same time.
    expect(keyTables()).toEqual([
      ['shared', 'other'],
      ['other', 'shared'],
    ]);
  });

  it('holds a key once in each aggregate when two streams are filled with it at the same time', async () => {
    const p = producer();
    // Both streams' shard maps known first, so their aggregates fill side by side.
    const warm = p.put({ partitionKey: 'warm', data: 'up', streamName: 'other' });
    await vi.advanceTimersByTimeAsync(200);
    await warm;
    fake.calls.length = 0;
    for (let i = 0; i < 20; i++) {
      p.send({ partitionKey: 'user-42', data: `v${i}`, ...(i % 2 === 0 ? {} : { streamName: 'other' }) });
    }
    await p.flush();
    expect(keyTables()).toEqual([['user-42'], ['user-42']]);
    expect(fake.calls.map((c) => c.streamName).sort()).toEqual(['other', 'test']);
  });

  it('keeps every record with its own key, whatever mix of keys, shards and aggregates', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            key: fc.constantFrom('a', 'b', 'c', 'ключ', 'd'.repeat(200)),
            shard: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 400 },
        ),
        fc.integer({ min: 200, max: 2_000 }),
        async (records, aggregationMaxBytes) => {
          fake = new FakeKinesis(4);
          const p = producer({ aggregationMaxBytes });
          const sent = records.map((r, i) => ({
            partitionKey: r.key,
            data: `#${i}`,
            ...(r.shard === undefined ? {} : { explicitHashKey: inShard(r.shard) }),
          }));
          for (const r of sent) p.send(r);
          await p.flush();
          expect(stored()).toEqual(sent.map((r) => `${r.partitionKey}=${r.data}`).sort());
          for (const table of keyTables()) expect(table).toEqual([...new Set(table)]);
        },
      ),
      { numRuns: 20 },
    );
  });
});

describe('connections', () => {
  it('keeps at most maxConnections requests in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const release: (() => void)[] = [];
    fake.onPut = () => {
      inFlight++;
      most = Math.max(most, inFlight);
      return undefined;
    };
    const client = fake.client;
    const slow = {
      send: async (command: unknown, options: unknown) => {
        const answer = await (client.send as (c: unknown, o: unknown) => Promise<unknown>)(command, options);
        if ((command as object).constructor.name === 'PutRecordsCommand') {
          await new Promise<void>((resolve) => release.push(resolve));
          inFlight--;
        }
        return answer;
      },
      destroy: () => {},
    };
    const p = producer({
      client: slow as never,
      maxConnections: 3,
      aggregation: false,
      collectionMaxCount: 1,
    });
    for (let i = 0; i < 10; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    await vi.advanceTimersByTimeAsync(150);
    expect(most).toBe(3);
    while (release.length > 0 || p.outstandingRecords > 0) {
      release.shift()?.();
      await vi.advanceTimersByTimeAsync(1);
    }
    expect(most).toBe(3);
    expect(fake.calls).toHaveLength(10);
  });
});

describe('collecting requests', () => {
  it('sends a record larger than collectionMaxBytes alone, on a stream that allows it', async () => {
    fake.summary = { MaxRecordSizeInKiB: 10 * 1024 };
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    const data = Buffer.alloc(6 * 1024 * 1024, 7);
    const put = p.put({ partitionKey: 'big', data });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(put).resolves.toMatchObject({ aggregated: false });
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.entries).toHaveLength(1);
    expect(Buffer.from(fake.calls[0]!.entries[0]!.Data!).equals(data)).toBe(true);
  });

  it('takes shards in turn when one shard alone could fill every request', async () => {
    fake.shards = evenShards(2);
    const half = (MAX_HASH_KEY + 1n) / 2n;
    const keysOf = (low: boolean) => {
      const keys: string[] = [];
      for (let i = 0; keys.length < 30; i++) if (partitionKeyHash(`k${i}`) < half === low) keys.push(`k${i}`);
      return keys;
    };
    fake.hold();
    const p = producer({
      aggregation: false,
      maxBufferedTimeMs: 0,
      collectionMaxCount: 10,
      maxConnections: 1,
      rateLimit: 100_000,
    });
    await vi.advanceTimersByTimeAsync(0);
    for (const key of [...keysOf(true), ...keysOf(false)]) p.send({ partitionKey: key, data: 'x' });
    while (p.outstandingRecords > 0) {
      await vi.advanceTimersByTimeAsync(1);
      fake.release(1);
    }
    const shardOf = (call: (typeof fake.calls)[number]) => [
      ...new Set(call.entries.map((e) => fake.shardFor(BigInt(e.ExplicitHashKey!)).id)),
    ];
    expect(fake.calls.map(shardOf)).toEqual([
      ['shardId-000000000000'],
      ['shardId-000000000001'],
      ['shardId-000000000000'],
      ['shardId-000000000001'],
      ['shardId-000000000000'],
      ['shardId-000000000001'],
    ]);
  });
});

describe('a stream that routes records itself (AUTO) while DescribeStreamSummary is denied', () => {
  /** Sends 50 records for 6 s and returns the warnings about the stream's routing. */
  async function routingWarnings(): Promise<string[]> {
    const warnings: string[] = [];
    const log = () => {};
    const warn = (_: object, message: string) => warnings.push(message);
    const p = producer({ recordTtlMs: 5_000, logger: { debug: log, info: log, error: log, warn } });
    for (let i = 0; i < 50; i++) p.send({ partitionKey: `k${i}`, data: `d${i}` });
    await vi.advanceTimersByTimeAsync(6_000);
    return warnings.filter((w) => w.includes('RecordDistributionStrategy AUTO'));
  }

  it('warns once, naming the two ways out, when aggregates keep landing where a fresh map does not say', async () => {
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as never;
    fake.describeError = serviceError('AccessDeniedException', 400);
    let n = 0;
    // The service picks the shard, whatever the hash key.
    fake.onPut = (call) => ({
      Records: call.entries.map(() => ({ ShardId: fake.shards[n++ % 4]!.id, SequenceNumber: String(n) })),
      $metadata: {},
    });
    const warnings = await routingWarnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/allow kinesis:DescribeStreamSummary, or set aggregation: false/);
  });

  it('does not warn when the summary was read: a shard map that lags a reshard catches up', async () => {
    // The first request's aggregates all land on one shard, as if the map were out of date.
    fake.onPut = nextPutLandsOn('shardId-000000000003');
    expect(await routingWarnings()).toEqual([]);
  });
});

describe('shard map', () => {
  it('aggregates only records of the same hash key while ListShards is denied', async () => {
    fake.listShardsError = serviceError('AccessDeniedException', 400);
    const p = producer();
    for (const key of ['a', 'b', 'a', 'c', 'b', 'a']) p.send({ partitionKey: key, data: key });
    await vi.advanceTimersByTimeAsync(150);
    const entries = fake.calls.flatMap((c) => c.entries);
    const groups = entries.map((e) =>
      deaggregate({ data: e.Data!, partitionKey: e.PartitionKey! }).map((u) => u.partitionKey),
    );
    expect(groups.map((g) => [...new Set(g)].length)).toEqual([1, 1, 1]);
    expect(groups.flat().sort()).toEqual(['a', 'a', 'a', 'b', 'b', 'c']);
  });

  it('holds no more than the README says of the key cache for many distinct keys while ListShards is denied', async () => {
    fake.listShardsError = serviceError('AccessDeniedException', 400);
    const p = producer();
    await vi.advanceTimersByTimeAsync(100);
    const base = liveBytes();
    // Keys of 36 characters, as the README's figure: each has a hash key, and so a buffer and an
    // aggregate encoder, of its own while there is no shard map; the buffer goes once it is sent.
    for (let n = 0; n < 16_000; ) {
      const puts = [];
      for (const end = n + 2_000; n < end; n++) {
        puts.push(
          p.put({ partitionKey: `${String(n).padStart(8, '0')}-aaaa-bbbb-cccc-ddddeeeeffff`, data: 'd' }),
        );
      }
      await vi.advanceTimersByTimeAsync(200);
      await Promise.all(puts);
      // What the fake keeps of each call is no memory of the producer's.
      fake.calls.length = 0;
      fake.commands.length = 0;
    }
    const grownMiB = (liveBytes() - base) / 2 ** 20;
    // About 6 MiB by the README, at most about 14 with the longest keys. When the cache's entries
    // kept the encoder of every buffer they had been in, it grew 41 MiB.
    expect(grownMiB).toBeLessThan(14);
  });

  it('asks ListShards again once a minute while it is denied, not at the pace of passing failures', async () => {
    fake.listShardsError = serviceError('AccessDeniedException', 400);
    const p = producer();
    p.send({ partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(125_000);
    // At the start, then after 60 s and 120 s.
    expect(fake.commands.filter((c) => c === 'ListShards')).toHaveLength(3);
    expect(fake.storedUserRecords()).toHaveLength(1);
  });

  it('keeps loading the shard map after ListShards failed at start, then aggregates across keys', async () => {
    fake.shards = evenShards(1);
    fake.listShardsError = serviceError('LimitExceededException', 400);
    const p = producer();
    await vi.advanceTimersByTimeAsync(5_000);
    fake.listShardsError = undefined; // the service recovers; nothing is being sent meanwhile
    await vi.advanceTimersByTimeAsync(30_000);
    const before = fake.calls.length;
    for (let i = 0; i < 50; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    await p.flush();
    // One shard, known again: 50 keys in one aggregate, not 50 records.
    const entries = fake.calls.slice(before).flatMap((c) => c.entries);
    expect(entries).toHaveLength(1);
    expect(deaggregate({ data: entries[0]!.Data!, partitionKey: entries[0]!.PartitionKey! })).toHaveLength(
      50,
    );
  });

  it('resends an aggregate that landed on another shard than predicted and holds records of other shards', async () => {
    fake.shards = evenShards(1);
    const p = producer();
    await vi.advanceTimersByTimeAsync(0); // map: one shard
    // The stream was split in two meanwhile: the aggregate's records now belong to two shards.
    fake.shards = evenShards(2, 'shardId-new-');
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const halves = new Set(keys.map((k) => fake.shardFor(partitionKeyHash(k)).id));
    expect(halves.size).toBe(2);
    const puts = keys.map((k) => p.put({ partitionKey: k, data: k }));
    await vi.advanceTimersByTimeAsync(2_000);
    const results = await Promise.all(puts);
    // First request: one aggregate predicted for the old shard. Then, with a fresh map, two aggregates.
    expect(fake.calls.map((c) => c.entries.length)).toEqual([1, 2]);
    expect(fake.commands.filter((c) => c === 'ListShards').length).toBeGreaterThanOrEqual(2);
    for (const [i, r] of results.entries()) {
      expect(r.shardId).toBe(fake.shardFor(partitionKeyHash(keys[i]!)).id);
      expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['WrongShard', 'ok']);
    }
    // The failed attempt counts in the metrics like any other: once per user record, on the shard
    // that took the aggregate.
    const metrics = p.metrics().streams.test!;
    // The aggregate's explicit hash key is its first record's: that is where it landed.
    const tookIt = fake.shardFor(partitionKeyHash(keys[0]!)).id;
    expect(metrics.ErrorsByCode.WrongShard?.total.sum).toBe(keys.length);
    expect(metrics.shards[tookIt]?.ErrorsByCode.WrongShard?.total.sum).toBe(keys.length);
  });

  it('rebuilds an aggregate waiting out its backoff when its shard closed meanwhile, before sending it again', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    fake.shards = evenShards(1);
    fake.script.push({ errorCodes: ['InternalFailure'] });
    const p = producer({ aggregationMaxBytes: 300, retryBaseDelayMs: 1_000 });
    await vi.advanceTimersByTimeAsync(0);
    const puts = Array.from({ length: 30 }, (_, i) =>
      p.put({ partitionKey: `k${i}`, data: `${i}`.padEnd(40) }),
    );
    await vi.advanceTimersByTimeAsync(150); // sent; one aggregate failed and waits out its backoff
    fake.shards = evenShards(2, 'child-');
    // A record predicted for the closed shard lands on a child: the producer loads the new map.
    const late = p.put({ partitionKey: 'late', data: 'x' });
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(late).resolves.toMatchObject({ shardId: expect.stringMatching(/^child-/) });
    const results = await Promise.all(puts);
    const retried = [...results.entries()].filter(([, r]) => r.attempts[0]?.errorCode === 'InternalFailure');
    expect(retried.length).toBeGreaterThan(1);
    for (const [i, r] of retried) {
      // Rebuilt per child shard before its retry: never sent mixed to a child and refused there.
      expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['InternalFailure', 'ok']);
      expect(r.shardId).toBe(fake.shardFor(partitionKeyHash(`k${i}`)).id);
    }
  });

  it('keeps an aggregate that landed on another shard when all its records belong there', async () => {
    fake.shards = evenShards(1);
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    fake.shards = evenShards(2, 'shardId-new-');
    const put = p.put({ partitionKey: 'a', data: '1' });
    const put2 = p.put({ partitionKey: 'a', data: '2' });
    await vi.advanceTimersByTimeAsync(2_000);
    const [r1, r2] = await Promise.all([put, put2]);
    expect(fake.calls).toHaveLength(1);
    expect(r1.shardId).toBe(fake.shardFor(partitionKeyHash('a')).id);
    expect([r1.subSequenceNumber, r2.subSequenceNumber]).toEqual([0, 1]);
  });
});

describe('an aggregate that landed on another shard', () => {
  it('waits for a newer map on the timers that keep the producer running, then is sent again', async () => {
    fake.shards = evenShards(1);
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    fake.shards = evenShards(2, 'child-');
    const [low, high] = keysOfHalves();
    const puts = [p.put({ partitionKey: low, data: 'x' }), p.put({ partitionKey: high, data: 'y' })];
    await vi.advanceTimersByTimeAsync(3000);
    const results = await Promise.all(puts);
    expect(results.map((r) => r.shardId)).toEqual(['child-000000000000', 'child-000000000001']);
    expect(results[0]!.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['WrongShard', 'ok']);
  });

  it('is decided at once when the map changed while it was in flight', async () => {
    fake.shards = evenShards(1);
    const p = producer({ recordTtlMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0); // map: one shard
    fake.hold();
    const [low, high] = keysOfHalves();
    // First request: a single record. Second: an aggregate of two records, built under the old map.
    const single = p.put({ partitionKey: low, data: 'single' });
    await vi.advanceTimersByTimeAsync(150);
    const puts = [p.put({ partitionKey: low, data: 'x' }), p.put({ partitionKey: high, data: 'y' })];
    await vi.advanceTimersByTimeAsync(150);
    expect(fake.heldCalls).toBe(2);
    fake.shards = evenShards(2, 'child-');
    // The single record lands on a child: the map is reloaded and is newer while the aggregate is out.
    fake.release(1);
    await vi.advanceTimersByTimeAsync(600);
    expect((await single).shardId).toBe('child-000000000000');
    const listings = fake.commands.filter((c) => c === 'ListShards').length;
    expect(listings).toBe(2);
    // The aggregate lands on a child too, under a map that already knows it: no newer map is needed.
    fake.release();
    await vi.advanceTimersByTimeAsync(200);
    const results = await Promise.all(puts);
    expect(results.map((r) => r.shardId)).toEqual(['child-000000000000', 'child-000000000001']);
    expect(results[1]!.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['WrongShard', 'ok']);
  });

  /**
   * Splits the stream's one shard in two, ListShards listing it as it was for `lagMs` after (for
   * good without `lagMs`); returns two keys of the lower child, whose aggregate lands there.
   */
  function splitListedLate(lagMs?: number): string[] {
    const parent = fake.shards[0]!;
    fake.closedShards = [parent];
    fake.shards = evenShards(2, 'child-');
    fake.laggingListing = [parent];
    if (lagMs !== undefined) {
      setTimeout(() => {
        fake.laggingListing = undefined;
      }, lagMs);
    }
    return ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
      .filter((key) => partitionKeyHash(key) <= fake.shards[0]!.end)
      .slice(0, 2);
  }

  /** The results, 40 s later, of two records put as {@link splitListedLate} splits a one-shard stream. */
  async function putAsSplitListedLate(lagMs: number) {
    fake.shards = evenShards(1);
    const p = producer({ recordTtlMs: 30_000 });
    await vi.advanceTimersByTimeAsync(0); // map: one shard
    const keys = splitListedLate(lagMs);
    const puts = keys.map((key) => p.put({ partitionKey: key, data: key }));
    await vi.advanceTimersByTimeAsync(40_000);
    return { keys, results: await Promise.all(puts) };
  }

  it('is written once when listings do not show the shard that took it for a moment, and all its records belong there', async () => {
    // Listings lag the split for 1.5 s (eventual consistency).
    const { keys, results } = await putAsSplitListedLate(1_500);
    for (const result of results) {
      expect(result).toMatchObject({ shardId: 'child-000000000000', aggregated: true });
      expect(result.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['ok']);
    }
    // Sent again, each would be read twice.
    expect(fake.storedUserRecords().map((u) => u.data)).toEqual(keys);
  });

  it('waits, while ListShards is denied from then on, and fails Expired saying where it was stored (README)', async () => {
    fake.shards = evenShards(1);
    const p = producer({ recordTtlMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0); // map: one shard
    // The role loses kinesis:ListShards, then the stream is split.
    fake.listShardsError = serviceError('AccessDeniedException', 400);
    fake.closedShards = [fake.shards[0]!];
    fake.shards = evenShards(2, 'child-');
    const puts = ['1', '2', '3'].map((data) =>
      p.put({ partitionKey: 'same', data }).catch((e: unknown) => e),
    );
    await vi.advanceTimersByTimeAsync(12_000);
    // Nothing tells whether consumers read it where it landed (a stream created again as AUTO would
    // drop it): its records are not said to be written, nor to be unwritten.
    const child = fake.shardFor(partitionKeyHash('same')).id;
    for (const error of (await Promise.all(puts)) as RecordFailedError[]) {
      expect(error.code).toBe('Expired');
      expect(error.message).toContain(`it was stored in ${child}`);
    }
    expect(fake.calls).toHaveLength(1);
  });

  describe('on a shard that listings do not show for longer than a few seconds', () => {
    it.each([
      ['12 s', 12_000],
      ['for good', 1e9],
    ])('sends its records again once, each alone, when listings lag %s', async (_, lagMs) => {
      const { keys, results } = await putAsSplitListedLate(lagMs);
      for (const result of results) {
        expect(result).toMatchObject({ shardId: 'child-000000000000', aggregated: false });
        expect(result.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['UnlistedShard', 'ok']);
        // It does not claim what no listing told.
        expect(result.attempts[0]!.errorMessage).toBe(
          "Aggregate landed on child-000000000000, which no listing of the stream's shards showed within 5 s (the listings lag, or the stream was deleted and created again): its records are sent again, each alone",
        );
      }
      // The aggregate's copy, and one each alone: not one every 5 s while listings lag.
      expect(fake.storedUserRecords().map((u) => u.data)).toEqual([...keys, ...keys]);
    });
  });

  describe('on a shard that listings do not show within the wait, its records then sent again alone', () => {
    it.each(['expires', 'close() gives up on it'])(
      'says, when it %s, that an earlier request stored it where consumers may read it',
      async (end) => {
        fake.shards = evenShards(1);
        const p = producer({ recordTtlMs: end === 'expires' ? 9_000 : 30_000 });
        await vi.advanceTimersByTimeAsync(0); // map: one shard
        const keys = splitListedLate();
        // The aggregate is stored on child 0, which owns both keys; every later request is throttled.
        fake.onPut = (call) =>
          call.index === 0
            ? undefined
            : { errorCodes: call.entries.map(() => 'ProvisionedThroughputExceededException') };
        const puts = keys.map((key) => p.put({ partitionKey: key, data: key }).catch((e: unknown) => e));
        if (end === 'expires') {
          await vi.advanceTimersByTimeAsync(12_000);
        } else {
          await vi.advanceTimersByTimeAsync(7_000); // sent again alone at about 5 s; in backoff
          const closing = p.close({ timeoutMs: 100 });
          await vi.advanceTimersByTimeAsync(1_000);
          await closing;
        }
        for (const error of (await Promise.all(puts)) as RecordFailedError[]) {
          expect(error.code).toBe(end === 'expires' ? 'Expired' : 'CloseTimeout');
          expect(error.attempts[0]).toMatchObject({ errorCode: 'UnlistedShard' });
          expect(error.message).toContain(
            'an earlier request stored it in an aggregate on a shard no listing showed (UnlistedShard), where consumers may read it',
          );
        }
      },
    );

    it('with ordering, aggregates its records again once listings catch up: a hot key is written within its TTL', async () => {
      fake.shards = evenShards(1);
      const client = fake.client;
      const send = client.send.bind(client);
      // A round trip of 20 ms: with ordering, a lane sends one Kinesis record per round trip.
      client.send = (async (command: unknown, options?: unknown) => {
        if (command instanceof PutRecordsCommand) await new Promise((resolve) => setTimeout(resolve, 20));
        return send(command as never, options as never);
      }) as never;
      const p = producer({ client, ordering: 'per-partition-key' });
      await vi.advanceTimersByTimeAsync(0); // map: one shard
      // 3,000 records of a key of the lower child: one aggregate, sent again alone after 5 s.
      const [key] = splitListedLate(12_000) as [string];
      const puts = Array.from({ length: 3_000 }, (_, i) =>
        p.put({ partitionKey: key, data: `d${String(i).padStart(8, '0')}` }).catch((e: unknown) => e),
      );
      await vi.advanceTimersByTimeAsync(40_000);
      const results = await Promise.all(puts);
      expect(results.filter((r) => (r as RecordFailedError).code !== undefined)).toEqual([]);
    });
  });

  describe('on a shard of a stream then deleted and created again with fewer shards', () => {
    /**
     * A stream of 4 shards whose shard 3 is split into 4 and 5; an aggregate built for 3, of keys of
     * both children, lands on 4. Right after, the stream is deleted and created again with 2 shards,
     * whose ids 0 and 1 now own other keys: no listing will show shard 4.
     */
    async function landedThenCreatedAgain(options: Partial<KinesisProducerOptions> = {}) {
      fake.shards = evenShards(4);
      const p = producer({ recordTtlMs: 10_000, ...options });
      await vi.advanceTimersByTimeAsync(0); // map: 4 shards
      const split = fake.shards[3]!;
      const mid = split.start + (split.end - split.start) / 2n;
      fake.closedShards = [split];
      fake.shards = [
        ...fake.shards.slice(0, 3),
        { id: 'shardId-000000000004', start: split.start, end: mid },
        { id: 'shardId-000000000005', start: mid + 1n, end: split.end },
      ];
      fake.onPut = (call) => {
        if (call.index > 0) return undefined;
        fake.closedShards = [];
        fake.shards = evenShards(2);
        return {
          Records: call.entries.map(() => ({ ShardId: 'shardId-000000000004', SequenceNumber: '7' })),
          $metadata: {},
        };
      };
      return { p, hashKeys: [split.start + 5n, mid + 5n].map(String) };
    }

    it('is sent again to the stream there is now, not left to expire', async () => {
      const { p, hashKeys } = await landedThenCreatedAgain();
      const puts = hashKeys.map((explicitHashKey, i) =>
        p.put({ partitionKey: `k${i}`, data: `${i}`, explicitHashKey }),
      );
      await vi.advanceTimersByTimeAsync(12_000);
      for (const result of await Promise.all(puts)) {
        expect(result.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['UnlistedShard', 'ok']);
      }
    });

    it('with ordering, holds a later record of its key for no longer than it takes to tell', async () => {
      const { p, hashKeys } = await landedThenCreatedAgain({ ordering: 'per-partition-key' });
      const first = hashKeys.map((explicitHashKey, i) =>
        p.put({ partitionKey: `k${i}`, data: `${i}`, explicitHashKey }),
      );
      await vi.advanceTimersByTimeAsync(500);
      const start = Date.now();
      let tookMs = Number.POSITIVE_INFINITY;
      const later = p
        .put({ partitionKey: 'k0', data: 'later', explicitHashKey: hashKeys[0]! })
        .finally(() => {
          tookMs = Date.now() - start;
        });
      await vi.advanceTimersByTimeAsync(12_000);
      await Promise.all([...first, later]);
      expect(tookMs).toBeLessThan(3_000);
    });
  });

  describe('on a shard no listing of open shards showed (it opened and closed between two loads)', () => {
    /**
     * A producer on a stream of one shard whose first PutRecords lands on a shard that is closed by
     * the time the producer lists the stream: its range is only in a listing of closed shards. Then,
     * as the aggregate lands: the stream is split and merged again (`merged`, a new map), or
     * ListShards fails for 8 s (`outage`). Returns the records' results and when the last settled.
     */
    async function landingOnAClosedShard(
      closedRange: { start: bigint; end: bigint },
      then: 'merged' | 'outage' | undefined = undefined,
    ) {
      const recordTtlMs = then === 'outage' ? 30_000 : 10_000;
      fake.shards = evenShards(1);
      fake.closedShards = [{ id: 'shardId-closed', ...closedRange }];
      fake.onPut = (call) => {
        if (call.index > 0) return undefined;
        if (then === 'merged') {
          fake.closedShards.push(fake.shards[0]!);
          fake.shards = [{ id: 'shardId-merged', start: 0n, end: MAX_HASH_KEY }];
        } else if (then === 'outage') {
          fake.listShardsError = serviceError('InternalFailure', 500);
          setTimeout(() => {
            fake.listShardsError = undefined;
          }, 8_000);
        }
        return {
          Records: call.entries.map(() => ({ ShardId: 'shardId-closed', SequenceNumber: '7' })),
          $metadata: {},
        };
      };
      const p = producer({ recordTtlMs });
      await vi.advanceTimersByTimeAsync(0);
      const start = Date.now();
      let elapsed = 0;
      const puts = ['5', '10', MAX_HASH_KEY.toString()].map((explicitHashKey, i) =>
        p.put({ partitionKey: `k${i}`, data: `${i}`, explicitHashKey }).finally(() => {
          elapsed = Math.max(elapsed, Date.now() - start);
        }),
      );
      await vi.advanceTimersByTimeAsync(recordTtlMs + 2_000);
      const results = await Promise.all(puts);
      return { results, elapsed };
    }

    it('has succeeded when all its records belong there, as a listing of closed shards tells', async () => {
      const { results, elapsed } = await landingOnAClosedShard({ start: 0n, end: MAX_HASH_KEY });
      for (const r of results) {
        expect(r).toMatchObject({ shardId: 'shardId-closed', sequenceNumber: '7' });
        expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['ok']);
      }
      // Consumers read it there: sending it again would write its records twice.
      expect(fake.calls).toHaveLength(1);
      expect(fake.listShardsFilters).toEqual(['AT_LATEST', undefined]);
      // Decided by the next listing (ListShards rests 500 ms between loads), not at the TTL (10 s).
      expect(elapsed).toBeLessThan(1_000);
    });

    it('has succeeded when all its records belong there, also when the next map is a new one', async () => {
      const { results } = await landingOnAClosedShard({ start: 0n, end: MAX_HASH_KEY }, 'merged');
      for (const r of results) {
        expect(r).toMatchObject({ shardId: 'shardId-closed', sequenceNumber: '7' });
        expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['ok']);
      }
      expect(fake.calls).toHaveLength(1);
    });

    it('is decided once ListShards answers again, when the listing it waits for fails', async () => {
      const { results, elapsed } = await landingOnAClosedShard({ start: 0n, end: MAX_HASH_KEY }, 'outage');
      for (const r of results) expect(r.shardId).toBe('shardId-closed');
      // Tried again every 5 s while it failed: decided then, not at the TTL (30 s).
      expect(elapsed).toBeGreaterThan(8_000);
      expect(elapsed).toBeLessThan(15_000);
    });

    it('is sent again at once when it holds records of other shards, though no newer map comes', async () => {
      const { results, elapsed } = await landingOnAClosedShard({ start: 0n, end: 99n });
      expect(elapsed).toBeLessThan(1_000);
      for (const r of results) {
        expect(r.shardId).toBe(fake.shards[0]!.id);
        expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['WrongShard', 'ok']);
      }
      expect(fake.calls).toHaveLength(2);
      expect(fake.listShardsFilters).toEqual(['AT_LATEST', undefined]);
    });
  });

  describe('on a shard a listing since it was sent showed, while ListShards fails after it landed', () => {
    /**
     * Two requests go out on a stream of `shards` shards, which is then split in two each: a single
     * record first (it lands on a child and the map is loaded again), then an aggregate of hash keys
     * 5 and 10, which lands on child 0, all of whose records belong there; ListShards fails from then.
     */
    async function landingAfterAMapLoad(
      options: object = {},
      shards = 1,
      listShards: 'fails' | 'hangs' = 'fails',
    ) {
      fake = new FakeKinesis(shards);
      const p = producer({ recordTtlMs: 10_000, ...options });
      await vi.advanceTimersByTimeAsync(0);
      fake.hold();
      const last = fake.shards[shards - 1]!;
      const single = p.put({
        partitionKey: 'x',
        data: 'single',
        explicitHashKey: (last.start + 1n).toString(),
      });
      await vi.advanceTimersByTimeAsync(150);
      const puts = ['5', '10'].map((explicitHashKey, i) =>
        p.put({ partitionKey: `k${i}`, data: `${i}`, explicitHashKey }),
      );
      await vi.advanceTimersByTimeAsync(150);
      fake.closedShards = fake.shards;
      fake.shards = evenShards(shards * 2, 'child-');
      fake.release(1);
      await vi.advanceTimersByTimeAsync(600);
      await single;
      if (listShards === 'fails') fake.listShardsError = serviceError('LimitExceededException', 400);
      else fake.listShardsDelayMs = 60_000; // every try times out, after requestTimeoutMs (5 s here)
      fake.release();
      return { p, puts };
    }

    it.each(['fails', 'hangs'] as const)(
      'is decided by that listing once a try of the one after it %s: stored, not failed at its TTL',
      async (listShards) => {
        const { puts } = await landingAfterAMapLoad({}, 1, listShards);
        const start = Date.now();
        let settledAfter = 0;
        for (const put of puts) void put.finally(() => (settledAfter = Date.now() - start));
        await vi.advanceTimersByTimeAsync(8_000);
        // Its first try failed at once, or timed out after requestTimeoutMs.
        expect(settledAfter).toBeLessThan(listShards === 'fails' ? 1_000 : 6_000);
        for (const r of await Promise.all(puts)) {
          expect(r.shardId).toBe('child-000000000000');
          expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['ok']);
        }
      },
    );

    it('counts a failed try of any listing: one under way when it landed, or for another aggregate', async () => {
      // Defaults: recordTtlMs 30 s, requestTimeoutMs 6 s. Three requests held on a stream of one shard.
      const p = producer();
      await vi.advanceTimersByTimeAsync(0);
      fake.shards = evenShards(1);
      fake.hold();
      const single = p.put({ partitionKey: 'x', data: 's', explicitHashKey: '1' });
      await vi.advanceTimersByTimeAsync(150);
      const first = ['5', '10'].map((key, i) =>
        p.put({ partitionKey: `a${i}`, data: 'a', explicitHashKey: key }),
      );
      await vi.advanceTimersByTimeAsync(150);
      const second = ['15', '20'].map((key, i) =>
        p.put({ partitionKey: `b${i}`, data: 'b', explicitHashKey: key }),
      );
      await vi.advanceTimersByTimeAsync(150);
      fake.closedShards = fake.shards;
      fake.shards = evenShards(2, 'child-');
      fake.release(1); // the single lands on child 0: a listing shows it
      await vi.advanceTimersByTimeAsync(600);
      await single;
      fake.listShardsDelayMs = 60_000; // from now every try hangs until requestTimeoutMs
      fake.release(1); // the first aggregate lands: a listing of every shard starts, and hangs
      await vi.advanceTimersByTimeAsync(1_000);
      const start = Date.now();
      let settledAfter = 0;
      for (const put of second) void put.finally(() => (settledAfter = Date.now() - start));
      fake.release(); // the second lands while that listing hangs: its tries count for it too
      await vi.advanceTimersByTimeAsync(60_000);
      for (const r of await Promise.all([...first, ...second])) expect(r.shardId).toBe('child-000000000000');
      expect(settledAfter).toBeLessThan(12_000);
    });

    it('is not decided so when ListShards finds the stream gone: it is sent again', async () => {
      const { puts } = await landingAfterAMapLoad();
      fake.listShardsError = serviceError('ResourceNotFoundException', 400);
      await vi.advanceTimersByTimeAsync(8_000);
      for (const r of await Promise.all(puts)) {
        expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['StreamGone', 'ok']);
      }
    });

    it('once it is decided so, ListShards is not tried again for it', async () => {
      const { puts } = await landingAfterAMapLoad();
      await vi.advanceTimersByTimeAsync(4_000);
      await Promise.all(puts);
      const listings = () => fake.commands.filter((c) => c === 'ListShards').length;
      const before = listings();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(listings()).toBe(before);
    });

    it('with ordering, holds other shards back only until then, not until its TTL', async () => {
      const { p, puts } = await landingAfterAMapLoad({ ordering: 'per-partition-key' }, 2);
      const start = Date.now();
      let otherAfter = 0;
      const other = p
        .put({ partitionKey: 'y', data: 'later', explicitHashKey: MAX_HASH_KEY.toString() })
        .finally(() => (otherAfter = Date.now() - start));
      await vi.advanceTimersByTimeAsync(5_000);
      await Promise.all(puts);
      expect((await other).shardId).toBe('child-000000000003');
      expect(otherAfter).toBeLessThan(5_000);
    });
  });

  it('close({ timeoutMs }) says an aggregate waiting to be decided may have been written', async () => {
    const p = producer({ recordTtlMs: 30_000 });
    await vi.advanceTimersByTimeAsync(0);
    fake.closedShards = [fake.shards[0]!];
    fake.shards = evenShards(2, 'child-');
    const puts = ['5', '10'].map((explicitHashKey, i) =>
      p.put({ partitionKey: `k${i}`, data: `${i}`, explicitHashKey }).then(
        () => 'stored',
        (error: Error) => error.message,
      ),
    );
    await vi.advanceTimersByTimeAsync(110); // landed on child 0; the next listing may go after 500 ms
    void p.close({ timeoutMs: 300 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await Promise.all(puts)).toEqual(
      Array(2).fill(
        'close() gave up after 300 ms (timeoutMs) while the record, stored on child-000000000000 after a reshard, waited to learn whether consumers read it there: it may have been written',
      ),
    );
  });

  describe('on a stream deleted and created again, whose shard ids now own other hash keys', () => {
    const id = (n: number) => `shardId-${String(n).padStart(12, '0')}`;

    it('is not kept by the range its shard id had before: consumers of the new shard drop part of it', async () => {
      const half = (MAX_HASH_KEY + 1n) / 2n;
      fake.shards = [{ id: id(0), start: 0n, end: MAX_HASH_KEY }];
      const p = producer({ recordTtlMs: 30_000 });
      await vi.advanceTimersByTimeAsync(0);
      // Split: shard 0 closes, 1 and 2 open; a record lands on 1 and the producer learns both.
      fake.closedShards = [fake.shards[0]!];
      fake.shards = [
        { id: id(1), start: 0n, end: half - 1n },
        { id: id(2), start: half, end: MAX_HASH_KEY },
      ];
      const first = p.put({ partitionKey: 'a', data: 'a', explicitHashKey: '5' });
      await vi.advanceTimersByTimeAsync(5_000);
      expect((await first).shardId).toBe(id(1));
      // Deleted and created again with 3 shards: id 0 now owns only the first third.
      fake.closedShards = [];
      fake.shards = evenShards(3);
      const third = fake.shards[0]!.end;
      const puts = ['5', (third + 10n).toString()].map((explicitHashKey, i) =>
        p.put({ partitionKey: `b${i}`, data: `b${i}`, explicitHashKey }),
      );
      await vi.advanceTimersByTimeAsync(10_000);
      const results = await Promise.all(puts);
      expect(results.map((r) => r.shardId)).toEqual([id(0), id(1)]);
      for (const r of results)
        expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['WrongShard', 'ok']);
    });

    /**
     * Two requests are held on a stream of one shard: a single record (hash key 2^128-1), then an
     * aggregate of `keys`. The stream is split into `split` (ids 1 and 2), and the single lands on id
     * 2, so the map is listed again after the aggregate was sent. Then the stream is deleted and
     * created again as `recreated`, and the aggregate is stored in it, on id 1.
     */
    async function recreatedInFlight(keys: bigint[], split: bigint, recreated: number) {
      fake.shards = evenShards(1);
      const p = producer({ recordTtlMs: 30_000 });
      await vi.advanceTimersByTimeAsync(0);
      fake.hold();
      const single = p.put({ partitionKey: 's', data: 's', explicitHashKey: MAX_HASH_KEY.toString() });
      await vi.advanceTimersByTimeAsync(150);
      const puts = keys.map((key, i) =>
        p.put({ partitionKey: `k${i}`, data: `${i}`, explicitHashKey: key.toString() }),
      );
      await vi.advanceTimersByTimeAsync(150);
      fake.closedShards = [fake.shards[0]!];
      fake.shards = [
        { id: id(1), start: 0n, end: split - 1n },
        { id: id(2), start: split, end: MAX_HASH_KEY },
      ];
      fake.release(1);
      await vi.advanceTimersByTimeAsync(600);
      expect((await single).shardId).toBe(id(2));
      fake.closedShards = [];
      fake.shards = evenShards(recreated);
      fake.release();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(fake.calls[1]!.results![0]!.ShardId).toBe(id(1));
      return (await Promise.all(puts)).map((r) => r.attempts.map((a) => a.errorCode ?? 'ok'));
    }

    it('created again while it was in flight: is judged by the new stream, not a listing of the old one', async () => {
      const quarter = (MAX_HASH_KEY + 1n) / 4n;
      // The new id 1 owns [1/4, 1/2): hash key 10 is not in it, though the old id 1 held both.
      expect(await recreatedInFlight([quarter + 5n, 10n], 2n * quarter, 4)).toEqual([
        ['WrongShard', 'ok'],
        ['WrongShard', 'ok'],
      ]);
    });

    it('created again while it was in flight: is kept when the new shard holds it all', async () => {
      const quarter = (MAX_HASH_KEY + 1n) / 4n;
      // The new id 1 owns [1/2, max], both records; the old one ended at 3/4.
      expect(await recreatedInFlight([2n * quarter + 5n, 3n * quarter + 5n], 3n * quarter, 2)).toEqual([
        ['ok'],
        ['ok'],
      ]);
      expect(fake.calls).toHaveLength(2);
    });

    it('is kept when the new shard of that id holds all its records, and not sent again and again', async () => {
      const [s0, s1] = evenShards(2);
      fake.shards = [s0!, s1!];
      const p = producer({ recordTtlMs: 5_000 });
      await vi.advanceTimersByTimeAsync(0);
      // Shard 0 is split into 2 and 3; a record lands on 2, and shard 0 is known closed.
      const quarter = s0!.end / 2n;
      fake.closedShards = [s0!];
      fake.shards = [
        { id: id(2), start: 0n, end: quarter },
        { id: id(3), start: quarter + 1n, end: s0!.end },
        s1!,
      ];
      const first = p.put({ partitionKey: 'a', data: 'a', explicitHashKey: '5' });
      await vi.advanceTimersByTimeAsync(3_000);
      expect((await first).shardId).toBe(id(2));
      // Deleted and created again with one shard: id 0 owns every hash key.
      fake.closedShards = [];
      fake.shards = evenShards(1);
      const callsBefore = fake.calls.length;
      const puts = [(s0!.end + 5n).toString(), (s0!.end + 10n).toString()].map((explicitHashKey, i) =>
        p.put({ partitionKey: `b${i}`, data: `b${i}`, explicitHashKey }),
      );
      await vi.advanceTimersByTimeAsync(6_000);
      for (const r of await Promise.all(puts)) {
        expect(r.shardId).toBe(id(0));
        expect(r.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['ok']);
      }
      expect(fake.calls.length - callsBefore).toBe(1);
    });
  });

  /**
   * A producer (recordTtlMs 3 s) that knows a map of one shard, on a stream since split in two whose
   * newer map it cannot read: its aggregates land on a child and wait for a map that never comes.
   */
  async function producerOnAResplitStream() {
    fake.shards = evenShards(1);
    const p = producer({ recordTtlMs: 3000 });
    await vi.advanceTimersByTimeAsync(0);
    fake.shards = evenShards(2, 'child-');
    fake.listShardsError = serviceError('LimitExceededException', 400);
    return p;
  }

  it('fails each of its records at the TTL of that record, not at the earliest in the aggregate', async () => {
    const p = await producerOnAResplitStream();
    const [low, high] = keysOfHalves();
    const settledAt: number[] = [];
    const start = Date.now();
    const put = (key: string) =>
      p.put({ partitionKey: key, data: 'x' }).catch((e: { code: string }) => {
        settledAt.push(Date.now() - start);
        return e.code;
      });
    const first = put(low);
    await vi.advanceTimersByTimeAsync(50);
    const second = put(high); // same aggregate: still within maxBufferedTimeMs of the first
    await vi.advanceTimersByTimeAsync(3500);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.entries).toHaveLength(1);
    expect([await first, await second]).toEqual(['Expired', 'Expired']);
    expect(settledAt).toEqual([3000, 3050]);
  });

  it('fails with Expired at its TTL when no newer map comes, instead of waiting forever', async () => {
    const p = await producerOnAResplitStream();
    const [low, high] = keysOfHalves();
    const outcomes = [low, high].map((k) =>
      p.put({ partitionKey: k, data: 'x' }).then(
        () => 'ok',
        (e: { code: string; message: string }) => `${e.code}: ${e.message}`,
      ),
    );
    await vi.advanceTimersByTimeAsync(3500);
    const landedWithoutMap =
      /^Expired: Record expired after 3000 ms \(recordTtlMs\): it was stored in child-000000000000, not the predicted shard/;
    const results = await Promise.all(outcomes);
    expect(results).toHaveLength(2);
    for (const r of results) expect(r).toMatch(landedWithoutMap);
    // Nobody waits for a newer map any more: once the load under way ends, ListShards rests.
    const listings = () => fake.commands.filter((c) => c === 'ListShards').length;
    await vi.advanceTimersByTimeAsync(60_000);
    const settled = listings();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(listings()).toBe(settled);
  });
});
