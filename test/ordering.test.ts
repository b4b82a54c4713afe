import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deaggregate, type KinesisProducerOptions, type PutResult } from '../src/index.js';
import type { Logger } from '../src/logger.js';
import {
  evenShards,
  FakeKinesis,
  type FakePutCall,
  type FakeShard,
  failEntriesHolding,
  keysOfHalves,
  keysWhere,
  networkError,
  serviceError,
} from './support/fake-kinesis.js';
import { seededRandom } from './support/fault-front/prng.js';
import { producersOn } from './support/producers.js';

let fake: FakeKinesis;
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const producer = producersOn(() => fake);

beforeEach(() => {
  vi.useFakeTimers();
  // The retry backoff's jitter is seeded too: every run sees the same schedule. (Always the longest
  // backoff would leave 600 one-at-a-time records per 3 shards past their TTL.)
  vi.spyOn(Math, 'random').mockImplementation(seededRandom(7));
  fake = new FakeKinesis(3);
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** Per partition key, the sequence numbers in the order a consumer reading each shard would see them. */
function consumerOrder(): Map<string, number[]> {
  const order = new Map<string, number[]>();
  for (const call of fake.calls) {
    for (const [i, entry] of call.entries.entries()) {
      if (call.results?.[i]?.ShardId === undefined) continue;
      for (const user of deaggregate({ data: entry.Data!, partitionKey: entry.PartitionKey! })) {
        const n = Number(Buffer.from(user.data).toString());
        const list = order.get(user.partitionKey) ?? [];
        if (!list.includes(n)) list.push(n); // first occurrence: a timed-out request may repeat records
        order.set(user.partitionKey, list);
      }
    }
  }
  return order;
}

describe("ordering: 'per-partition-key'", () => {
  it.each([true, false])(
    'keeps put order per partition key under failures and retries (aggregation %s)',
    async (aggregation) => {
      const random = seededRandom(42);
      fake.onPut = (call: FakePutCall) => {
        const roll = random();
        if (roll < 0.1) return { throw: networkError('ECONNRESET') };
        return {
          errorCodes: call.entries.map(() =>
            random() < 0.25
              ? random() < 0.5
                ? 'InternalFailure'
                : 'ProvisionedThroughputExceededException'
              : undefined,
          ),
        };
      };
      const p = producer({ ordering: 'per-partition-key', aggregation, maxBufferedTimeMs: 5 });
      const puts: Promise<PutResult>[] = [];
      const expected = new Map<string, number[]>();
      for (let i = 0; i < 600; i++) {
        const partitionKey = `key-${i % 17}`;
        puts.push(p.put({ partitionKey, data: String(i) }));
        expected.set(partitionKey, [...(expected.get(partitionKey) ?? []), i]);
        if (i % 50 === 49) await vi.advanceTimersByTimeAsync(3);
      }
      await vi.advanceTimersByTimeAsync(60_000);
      const results = await Promise.all(puts);
      expect(results.some((r) => r.attempts.length > 1)).toBe(true);
      expect(consumerOrder()).toEqual(expected);
    },
  );

  it.each([
    ['aggregated', { aggregation: true, auto: false }],
    ['unaggregated', { aggregation: false, auto: false }],
    ['on an AUTO stream', { aggregation: false, auto: true }],
  ])(
    'keeps put order, and settles every record, with records held by low rates and long backoffs (%s)',
    async (_, { aggregation, auto }) => {
      for (let seed = 1; seed <= 6; seed++) {
        const random = seededRandom(seed);
        vi.spyOn(Math, 'random').mockImplementation(seededRandom(seed * 31 + 1));
        fake = new FakeKinesis(1 + Math.floor(random() * 3));
        if (auto) fake.summary = { RecordDistributionStrategy: 'AUTO' } as never;
        fake.onPut = (call) => ({
          errorCodes: call.entries.map(() =>
            random() < 0.3
              ? random() < 0.5
                ? 'InternalFailure'
                : 'ProvisionedThroughputExceededException'
              : undefined,
          ),
        });
        const p = producer({
          ordering: 'per-partition-key',
          aggregation,
          // A few records a second per shard, and backoffs up to the records' whole TTL.
          rateLimit: 1 + Math.floor(random() * 20),
          recordTtlMs: 3_000,
          maxBufferedTimeMs: 50,
          retryBaseDelayMs: 100 + Math.floor(random() * 1_000),
          retryMaxDelayMs: 3_000,
          logger: quiet,
        });
        await vi.advanceTimersByTimeAsync(0);
        const outcomes: Promise<string>[] = [];
        for (let i = 0; i < 200; i++) {
          const put = p.put({ partitionKey: `key-${i % 5}`, data: String(i) });
          outcomes.push(
            put.then(
              () => 'ok',
              (e: { code: string }) => e.code,
            ),
          );
          if (random() < 0.2) await vi.advanceTimersByTimeAsync(Math.floor(random() * 100));
        }
        await vi.advanceTimersByTimeAsync(20_000);
        const settled = await Promise.all(outcomes);
        expect(new Set(settled)).toEqual(new Set(settled.filter((o) => o === 'ok' || o === 'Expired')));
        expect(p.outstandingRecords).toBe(0);
        for (const [key, stored] of consumerOrder()) {
          expect(stored, `seed ${seed}, ${key}`).toEqual([...stored].sort((a, b) => a - b));
        }
        vi.restoreAllMocks();
      }
    },
    60_000,
  );

  it('never has two requests in flight for one shard, nor two Kinesis records of one shard in a request', async () => {
    fake = new FakeKinesis(1);
    fake.hold();
    const p = producer({ ordering: 'per-partition-key', aggregationMaxBytes: 1000 });
    for (let i = 0; i < 200; i++) p.send({ partitionKey: `k${i % 5}`, data: Buffer.alloc(100) });
    await vi.advanceTimersByTimeAsync(200);
    expect(fake.heldCalls).toBe(1);
    expect(fake.calls[0]!.entries).toHaveLength(1);
    while (p.outstandingRecords > 0) {
      fake.release(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(fake.heldCalls).toBeLessThanOrEqual(1);
    }
    expect(fake.calls.every((c) => c.entries.length === 1)).toBe(true);
  });

  it('keeps put order when the shard is split while records of a key wait in its queue', async () => {
    fake = new FakeKinesis(1);
    fake.hold();
    const p = producer({ ordering: 'per-partition-key', aggregationMaxBytes: 300, maxBufferedTimeMs: 5 });
    await vi.advanceTimersByTimeAsync(0);
    const puts = Array.from({ length: 30 }, (_, i) => p.put({ partitionKey: 'k', data: `${i}`.padEnd(40) }));
    await vi.advanceTimersByTimeAsync(20);
    // One aggregate out (the shard's one request in flight), several sealed behind it, one open.
    expect(fake.heldCalls).toBe(1);
    fake.shards = evenShards(2, 'child-');
    // It lands on a child: the map is reloaded, and the parent's queue moves to the child's.
    fake.release();
    await vi.advanceTimersByTimeAsync(2_000);
    const results = await Promise.all(puts);
    expect(new Set(results.map((r) => r.shardId)).size).toBe(1);
    expect(fake.commands.filter((c) => c === 'ListShards').length).toBeGreaterThanOrEqual(2);
    expect(consumerOrder().get('k')).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it("without ordering, retries may overtake later records (that is what 'none' allows)", async () => {
    fake = new FakeKinesis(1);
    fake.onPut = (call) => (call.index === 0 ? { errorCodes: ['InternalFailure'] } : undefined);
    const p = producer({ aggregation: false, maxBufferedTimeMs: 0 });
    // Both requests are out before either answers, so the retry (after a random backoff that may be
    // 0 ms) always comes after the second record was stored.
    fake.hold();
    const first = p.put({ partitionKey: 'k', data: '0' });
    await vi.advanceTimersByTimeAsync(1);
    const second = p.put({ partitionKey: 'k', data: '1' });
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.heldCalls).toBe(2);
    fake.release();
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all([first, second]);
    expect(consumerOrder().get('k')).toEqual([1, 0]);
  });

  it('on a stream that routes records itself (AUTO), sends the keys side by side, each in put order', async () => {
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as never;
    const p = producer({ ordering: 'per-partition-key' });
    await vi.advanceTimersByTimeAsync(0);
    fake.hold();
    for (const round of ['first', 'second']) {
      for (let i = 0; i < 50; i++) p.send({ partitionKey: `k${i}`, data: `${round}` });
    }
    await vi.advanceTimersByTimeAsync(200);
    const sent = () =>
      fake.calls.map((c) => c.entries.map((e) => `${e.PartitionKey}=${Buffer.from(e.Data!)}`));
    // One request with each key's first record (not one record per round trip for the whole stream).
    expect(sent()).toEqual([Array.from({ length: 50 }, (_, i) => `k${i}=first`)]);
    fake.release();
    await vi.advanceTimersByTimeAsync(200);
    expect(sent()).toEqual([
      Array.from({ length: 50 }, (_, i) => `k${i}=first`),
      Array.from({ length: 50 }, (_, i) => `k${i}=second`),
    ]);
    expect(p.outstandingRecords).toBe(0);
  });
});

describe('a lane whose record in backoff expired', () => {
  /**
   * A record that failed once and waits out a backoff of 3.6 s at its lane's head (longer than the
   * 2 s it lives), seen there by a request for the other shard at 600 ms.
   */
  async function laneInBackoff() {
    fake = new FakeKinesis(2);
    const [key, other] = keysOfHalves();
    vi.spyOn(Math, 'random').mockReturnValue(0.9);
    fake.script.push({ errorCodes: ['InternalFailure'] });
    const p = producer({
      ordering: 'per-partition-key',
      recordTtlMs: 2_000,
      retryBaseDelayMs: 4_000,
      retryMaxDelayMs: 8_000,
    });
    await vi.advanceTimersByTimeAsync(0);
    const start = Date.now();
    const first = p.put({ partitionKey: key, data: 'first' }).catch((e: { code: string }) => e.code);
    await vi.advanceTimersByTimeAsync(500);
    await Promise.all([p.put({ partitionKey: other, data: 'other' }), vi.advanceTimersByTimeAsync(200)]);
    return { p, key, start, first };
  }

  it.each([
    // Put after the first expired (at 2 s): it goes when due, 100 ms later.
    ['the next record of its shard when it is due', 1_800, 2_600],
    // Put behind the first, in its lane: it goes as soon as the first expired (and lives until 2.7 s).
    ['the record waiting behind it once it expired', 0, 2_000],
  ])('sends %s, not when that backoff would have ended', async (_, putAfterMs, sentAt) => {
    const { p, key, start, first } = await laneInBackoff();
    await vi.advanceTimersByTimeAsync(putAfterMs);
    const second = p.put({ partitionKey: key, data: 'second' });
    await vi.advanceTimersByTimeAsync(2_000 - putAfterMs);
    expect(await first).toBe('Expired');
    await vi.advanceTimersByTimeAsync(600);
    expect(await second).toMatchObject({ attempts: [{ success: true }] });
    expect(fake.calls.map((c) => [c.at - start, c.entries.length])).toEqual([
      [100, 1],
      [600, 1],
      [sentAt, 1],
    ]);
  });
});

describe('poison isolation', () => {
  it('a record that can never be written fails alone; its batch-mates succeed', async () => {
    fake = new FakeKinesis(1);
    // Every entry carrying the poison record fails, whatever else it carries.
    fake.onPut = failEntriesHolding('poison', 'InternalFailure');
    // Isolating it takes 2 + log2(64) attempts, with the backoff growing all along (up to 5 s).
    const p = producer({ recordTtlMs: 20_000 });
    await vi.advanceTimersByTimeAsync(0);
    const puts = Array.from({ length: 64 }, (_, i) =>
      p.put({ partitionKey: i === 37 ? 'poison' : `k${i}`, data: String(i) }).then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    );
    await vi.advanceTimersByTimeAsync(25_000);
    const outcomes = await Promise.all(puts);
    expect(outcomes.filter((o) => !o.ok).map((_, i) => i)).toHaveLength(1);
    expect(outcomes[37]).toMatchObject({ ok: false, error: { code: 'Expired' } });
    expect(outcomes.filter((o) => o.ok)).toHaveLength(63);
    // Split in halves: the poison is alone after log2(64) = 6 splits.
    const lastPoison = fake.calls
      .at(-1)!
      .entries.map((e) => deaggregate({ data: e.Data!, partitionKey: e.PartitionKey! }).length);
    expect(lastPoison).toEqual([1]);
  });

  it('a per-entry error that can never succeed splits the aggregate at once instead of failing it whole', async () => {
    fake = new FakeKinesis(1);
    fake.onPut = failEntriesHolding('bad', 'ValidationException');
    // A backoff long enough to see (the longest jitter of a 1 s base): the split halves go again at
    // once, without waiting one out.
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const p = producer({ retryBaseDelayMs: 1_000 });
    const outcomes: string[] = [];
    const puts = ['a', 'b', 'bad', 'c'].map((k, i) =>
      p.put({ partitionKey: k, data: k }).then(
        () => {
          outcomes[i] = 'ok';
        },
        (e: { code: string }) => {
          outcomes[i] = e.code;
        },
      ),
    );
    // Buffering (100 ms), the first attempt, then one split per halving, each sent at once.
    await vi.advanceTimersByTimeAsync(300);
    expect(outcomes).toEqual(['ok', 'ok', 'ValidationException', 'ok']);
    await Promise.all(puts);
  });
});

describe('ordering across a change of lanes', () => {
  it('keeps put order for a key whose records were routed before and after the shard map came', async () => {
    fake = new FakeKinesis(1);
    const inner = fake.client;
    let puts = 0;
    const slow = {
      async send(command: unknown, options?: unknown) {
        const name = (command as object).constructor.name;
        if (name === 'ListShardsCommand') await new Promise((r) => setTimeout(r, 300));
        if (name === 'PutRecordsCommand' && puts++ === 0) await new Promise((r) => setTimeout(r, 600));
        return await (inner.send as (c: unknown, o: unknown) => Promise<unknown>)(command, options);
      },
      destroy() {},
    };
    const p = producer({ client: slow as never, ordering: 'per-partition-key', maxBufferedTimeMs: 10 });
    const first = p.put({ partitionKey: 'K', data: '1' });
    await vi.advanceTimersByTimeAsync(400); // the map came at 300 ms; the first record is still in flight
    const second = p.put({ partitionKey: 'K', data: '2' });
    await vi.advanceTimersByTimeAsync(2000);
    const [a, b] = await Promise.all([first, second]);
    expect(a.sequenceNumber < b.sequenceNumber).toBe(true);
    expect(consumerOrder().get('K')).toEqual([1, 2]);
  });
  it('keeps put order for a key when a provisional summary gives way to a final one that says AUTO', async () => {
    fake = new FakeKinesis(1);
    // DescribeStreamSummary fails for a passing reason: the producer assumes partition-key routing
    // and queues records in shard lanes. The stream turns out to route records itself.
    fake.describeError = serviceError('InternalFailure', 500);
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as never;
    const p = producer({ ordering: 'per-partition-key', requestTimeoutMs: 30_000, logger: quiet });
    await vi.advanceTimersByTimeAsync(3000); // the first read gave up: provisional summary
    fake.hold();
    p.send({ partitionKey: 'x', data: 'X' }); // goes out and hangs: its shard lane is busy
    await vi.advanceTimersByTimeAsync(200);
    p.send({ partitionKey: 'k', data: 'first' }); // waits behind X in the shard lane
    await vi.advanceTimersByTimeAsync(200);
    fake.describeError = undefined; // the read in the background now answers: AUTO
    await vi.advanceTimersByTimeAsync(5000);
    expect(fake.commands.filter((c) => c === 'DescribeStreamSummary').length).toBeGreaterThan(1);
    p.send({ partitionKey: 'k', data: 'second' });
    await vi.advanceTimersByTimeAsync(200);
    fake.release();
    await vi.advanceTimersByTimeAsync(2000);
    const order = fake.calls.flatMap((c) => c.entries.map((e) => Buffer.from(e.Data!).toString()));
    expect(order).toEqual(['X', 'first', 'second']);
    expect(p.outstandingRecords).toBe(0);
  });
});

/** The fake as a client whose PutRecords answer `ms` later: a round trip under fake timers. */
describe('a lane rerouted while its head waits out a backoff', () => {
  it("keeps put order for the head record's key, with older records of another key behind it", async () => {
    vi.spyOn(Math, 'random').mockImplementation(() => 0.9);
    fake = new FakeKinesis(3);
    const [s0, s1, s2] = fake.shards as [FakeShard, FakeShard, FakeShard];
    const [a] = keysWhere(1, (h) => h >= s0.start && h <= s0.end, 'a');
    const [b] = keysWhere(1, (h) => h >= s1.start && h <= s1.end, 'b');
    const [d] = keysWhere(1, (h) => h >= s2.start && h <= s2.end, 'd');
    const p = producer({
      client: slowPuts(250),
      ordering: 'per-partition-key',
      aggregationMaxCount: 5,
      recordTtlMs: 30_000,
      retryBaseDelayMs: 4_000,
      logger: quiet,
    });
    await vi.advanceTimersByTimeAsync(0);
    const merged = { id: 'shardId-merged', start: s0.start, end: s1.end };
    const mid = (merged.start + merged.end) / 2n;
    const dmid = (s2.start + s2.end) / 2n;
    const results: string[] = [];
    const puts: Promise<unknown>[] = [];
    const put = (key: string, i: number) =>
      puts.push(
        p.put({ partitionKey: key, data: `${i}` }).then(
          () => results.push('ok'),
          (e: { code: string }) => results.push(`${key}:${i} ${e.code}`),
        ),
      );
    // The aggregate holding a's record 100 is throttled once (its lane's head then waits out a
    // backoff), and both shards are split at that moment; a's newer records wait behind it.
    let tripped = false;
    fake.onPut = (call) => {
      if (tripped) return undefined;
      const codes = call.entries.map((e) =>
        deaggregate({ data: e.Data!, partitionKey: e.PartitionKey! }).some(
          (u) => u.partitionKey === a && Buffer.from(u.data).toString() === '100',
        )
          ? 'ProvisionedThroughputExceededException'
          : undefined,
      );
      if (codes.every((code) => code === undefined)) return undefined;
      tripped = true;
      fake.closedShards = [...fake.closedShards, merged, s2];
      fake.shards = [
        { id: 'shardId-c1', start: merged.start, end: mid },
        { id: 'shardId-c2', start: mid + 1n, end: merged.end },
        { id: 'shardId-d1', start: s2.start, end: dmid },
        { id: 'shardId-d2', start: dmid + 1n, end: s2.end },
      ];
      setTimeout(() => {
        for (let i = 200; i < 205; i++) put(a!, i);
      }, 0);
      return { errorCodes: codes };
    };
    for (let i = 0; i < 100; i++) put(a!, i);
    await vi.advanceTimersByTimeAsync(1_000);
    for (let i = 0; i < 60; i++) put(b!, i);
    await vi.advanceTimersByTimeAsync(200);
    for (let i = 100; i < 130; i++) put(a!, i);
    await vi.advanceTimersByTimeAsync(300);
    // Shards 0 and 1 are merged: their lanes move into the merged shard's.
    fake.closedShards = [s0, s1];
    fake.shards = [merged, s2];
    for (let t = 0; t < 100; t++) {
      put(d!, t);
      await vi.advanceTimersByTimeAsync(200);
    }
    await vi.advanceTimersByTimeAsync(30_000);
    await Promise.all(puts);
    expect(tripped).toBe(true);
    expect(results.filter((r) => r !== 'ok')).toEqual([]);
    const order = consumerOrder().get(a!)!;
    expect(order).toEqual([...order].sort((x, y) => x - y));
  });
});

function slowPuts(ms: number): KinesisClient {
  const inner = fake.client;
  return {
    async send(command: unknown, options?: unknown) {
      if (command instanceof PutRecordsCommand) await new Promise((resolve) => setTimeout(resolve, ms));
      return await inner.send(command as never, options as never);
    },
    destroy() {},
  } as unknown as KinesisClient;
}

/**
 * 12 shards, each fed more than one Kinesis record per round trip (100 ms), through one connection
 * whose requests carry 4 Kinesis records: the stream is over capacity, and the shards should share
 * what the requests carry.
 */
async function shareOfShards(options: Partial<KinesisProducerOptions>, recordsPer50ms: number, size: number) {
  fake = new FakeKinesis(12);
  const p = producer({
    client: slowPuts(100),
    maxConnections: 1,
    recordTtlMs: 3_000,
    maxBufferedTimeMs: 10,
    logger: quiet,
    ...options,
  });
  await vi.advanceTimersByTimeAsync(0);
  const keyOf = fake.shards.map((s) => keysWhere(1, (h) => h >= s.start && h <= s.end, `${s.id}-`)[0]!);
  const written = new Map<string, number>(fake.shards.map((s) => [s.id, 0]));
  const puts: Promise<unknown>[] = [];
  for (let t = 0; t < 8_000; t += 50) {
    for (const [i, key] of keyOf.entries()) {
      const id = fake.shards[i]!.id;
      for (let r = 0; r < recordsPer50ms; r++)
        puts.push(
          p.put({ partitionKey: key, data: Buffer.alloc(size, 1) }).then(
            () => written.set(id, written.get(id)! + 1),
            () => {},
          ),
        );
    }
    await vi.advanceTimersByTimeAsync(50);
  }
  await vi.advanceTimersByTimeAsync(5_000);
  while (p.outstandingRecords > 0 || p.waitingPuts > 0) await vi.advanceTimersByTimeAsync(1_000);
  await Promise.all(puts);
  return [...written.values()];
}

describe('shards take turns when a request cannot carry them all', () => {
  it.each([
    [
      'ordering, requests full by count (collectionMaxCount 4, unaggregated)',
      { ordering: 'per-partition-key', aggregation: false, collectionMaxCount: 4 },
      1,
      10,
    ],
    [
      'ordering, requests full by bytes (collectionMaxBytes 4 aggregates)',
      { ordering: 'per-partition-key', collectionMaxBytes: 4 * 51_200 + 100 },
      3,
      10_000,
    ],
    [
      'no ordering, requests full by count (control)',
      { ordering: 'none', aggregation: false, collectionMaxCount: 4 },
      1,
      10,
    ],
  ] as const)(
    '%s',
    async (_name, options, recordsPer50ms, size) => {
      const written = await shareOfShards(options as Partial<KinesisProducerOptions>, recordsPer50ms, size);
      console.log(_name, written.join(' '));
      const total = written.reduce((a, b) => a + b, 0);
      // Fair turns give each shard about a twelfth of what was written; none should get nothing.
      for (const n of written) expect(n).toBeGreaterThan(total / 12 / 3);
    },
    60_000,
  );
});

describe('TTL of records moved to a merged shard', () => {
  it.each([
    ['records sent alone', { aggregation: false }, 30, 0],
    // Newer records of the first lane put after the second lane's: aggregated again together, they
    // must not hold the second lane's older records behind them.
    ['aggregates of 5, newer records of one lane put after the other', { aggregationMaxCount: 5 }, 100, 30],
  ] as const)(
    'fails each record at its own TTL, not once newer records moved ahead of it have gone (%s)',
    async (_, options, first, later) => {
      fake = new FakeKinesis(2);
      const [a, b] = keysOfHalves(); // a on shard 0, b on shard 1
      const p = producer({
        client: slowPuts(250),
        ordering: 'per-partition-key',
        recordTtlMs: 3_000,
        logger: quiet,
        ...options,
      });
      await vi.advanceTimersByTimeAsync(0);
      const start = Date.now();
      const late: string[] = [];
      const track = (key: string, i: number) => {
        const arrived = Date.now();
        return p.put({ partitionKey: key, data: `${key}${i}` }).then(
          () => 'ok',
          (e: { code: string }) => {
            const after = Date.now() - arrived;
            if (after > 3_000 + 100)
              late.push(
                `${key}${i} (put at ${arrived - start} ms) failed ${e.code} ${after} ms after its put`,
              );
            return e.code;
          },
        );
      };
      const puts: Promise<string>[] = [];
      // Shard 0's lane gets a backlog at 0 ms (one Kinesis record per 250 ms round trip: 4 a second).
      for (let i = 0; i < first; i++) puts.push(track(a, i));
      await vi.advanceTimersByTimeAsync(1_000);
      // Shard 1's lane gets one at 1 s; shard 0's more at 1.2 s.
      for (let i = 0; i < 30; i++) puts.push(track(b, i));
      await vi.advanceTimersByTimeAsync(200);
      for (let i = first; i < first + later; i++) puts.push(track(a, i));
      await vi.advanceTimersByTimeAsync(300);
      // The two shards are merged: the next records land on the new shard, the map is reloaded, and
      // both lanes' queues move into the merged shard's lane.
      fake.closedShards = fake.shards;
      fake.shards = [{ id: 'shardId-merged', start: fake.shards[0]!.start, end: fake.shards[1]!.end }];
      await vi.advanceTimersByTimeAsync(10_000);
      await Promise.all(puts);
      expect(fake.commands.filter((c) => c === 'ListShards').length).toBeGreaterThanOrEqual(2);
      expect(late).toEqual([]);
    },
  );

  it('fails records at their TTL behind a retry put back at the head, which expires later', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99); // the longest backoff
    fake = new FakeKinesis(2);
    const [a, b] = keysOfHalves(); // a on shard 0, b on shard 1
    let failedA = false;
    fake.onPut = (call) => ({
      errorCodes: call.entries.map((e) => {
        if (e.PartitionKey !== a || failedA) return undefined;
        failedA = true;
        return 'InternalFailure';
      }),
    });
    const p = producer({
      ordering: 'per-partition-key',
      aggregation: false,
      recordTtlMs: 5_000,
      retryBaseDelayMs: 8_000,
      retryMaxDelayMs: 8_000,
      logger: quiet,
    });
    await vi.advanceTimersByTimeAsync(0);
    fake.hold();
    const start = Date.now();
    const settled = new Map<string, string>();
    const track = (name: string, key: string) =>
      p.put({ partitionKey: key, data: name }).then(
        () => settled.set(name, `ok at ${Date.now() - start}`),
        (e: { code: string }) => settled.set(name, `${e.code} at ${Date.now() - start}`),
      );
    const puts = [track('b0', b)];
    await vi.advanceTimersByTimeAsync(10);
    puts.push(track('b1', b), track('b2', b));
    await vi.advanceTimersByTimeAsync(990);
    puts.push(track('a1', a));
    await vi.advanceTimersByTimeAsync(300);
    // The shards are merged. b0 lands on the merged shard and the new map is loaded: b1 and b2 move
    // to the merged shard's lane, b1 goes.
    fake.closedShards = fake.shards;
    fake.shards = [{ id: 'merged', start: fake.shards[0]!.start, end: fake.shards[1]!.end }];
    fake.release(1);
    await vi.advanceTimersByTimeAsync(300);
    // a1 fails; its shard closed, it goes back to the head of the merged lane, in backoff for 8 s
    // (past its TTL at 6,000 ms), ahead of b2, put at 10 ms.
    fake.release();
    await vi.advanceTimersByTimeAsync(20_000);
    await Promise.all(puts);
    expect(Object.fromEntries(settled)).toEqual({
      b0: 'ok at 1300',
      b1: 'ok at 1600',
      b2: 'Expired at 5010',
      a1: 'Expired at 6000',
    });
  });
});
