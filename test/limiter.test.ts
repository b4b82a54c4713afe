import { beforeEach, describe, expect, it, vi } from 'vitest';
import { deaggregate, partitionKeyHash } from '../src/index.js';
import {
  BURST_SECONDS,
  DECREASE_FACTOR,
  DECREASE_INTERVAL_MS,
  INCREASE_PER_SECOND,
  SHARD_BYTES_PER_SECOND,
  SHARD_RECORDS_PER_SECOND,
  ShardLimiter,
} from '../src/limiter.js';
import { FakeKinesis } from './support/fake-kinesis.js';
import { producersOn } from './support/producers.js';
import { track } from './support/track.js';

describe('ShardLimiter', () => {
  it('lets a burst through, then paces records at the shard rate', () => {
    const limiter = new ShardLimiter(1, 0);
    let taken = 0;
    while (limiter.tryTake(10, 0)) taken++;
    expect(taken).toBe(SHARD_RECORDS_PER_SECOND * BURST_SECONDS);
    expect(limiter.availableAt(10, 0)).toBe(1);
    expect(limiter.tryTake(10, 1)).toBe(true);
    expect(limiter.tryTake(10, 1)).toBe(false);
  });

  it('rests 50 ms when refused again soon after a refusal, unless it may not, and a flush ends it', () => {
    const limiter = new ShardLimiter(1, 0);
    while (limiter.take(10, 0, true) === undefined);
    // The first refusal (the burst is spent) waits for the next token only.
    expect(limiter.take(10, 0, true)).toBe(1);
    expect(limiter.take(10, 1, true)).toBeUndefined();
    // Refused again within 100 ms: saturated, it rests 50 ms, taking nothing meanwhile.
    expect(limiter.take(10, 1, true)).toBe(51);
    expect(limiter.take(10, 30, true)).toBe(51);
    expect(limiter.take(10, 51, true)).toBeUndefined();
    // Spent again at 51: it rests to 101. A flush ends a rest: the tokens that piled up go at once.
    while (limiter.take(10, 51, true) === undefined);
    expect(limiter.take(10, 80, true)).toBe(101);
    limiter.endRest();
    expect(limiter.take(10, 80, true)).toBeUndefined();
    // Without rests (ordering), only the next token.
    const ordered = new ShardLimiter(1, 0);
    while (ordered.take(10, 0, false) === undefined);
    expect(ordered.take(10, 0, false)).toBe(1);
    expect(ordered.take(10, 1, false)).toBeUndefined();
    expect(ordered.take(10, 1, false)).toBe(2);
  });

  it('paces bytes at 1 MiB/s', () => {
    const limiter = new ShardLimiter(1, 0);
    const record = 50 * 1024;
    let bytes = 0;
    while (limiter.tryTake(record, 0)) bytes += record;
    expect(bytes).toBeLessThanOrEqual(SHARD_BYTES_PER_SECOND * BURST_SECONDS);
    const next = limiter.availableAt(record, 0);
    expect(next).toBeGreaterThan(0);
    expect(limiter.tryTake(record, next - 1)).toBe(false);
    expect(limiter.tryTake(record, next)).toBe(true);
    // Over ten seconds, at most the burst plus ten seconds' worth.
    let sent = 0;
    for (let t = next; t <= next + 10_000; t += 5) while (limiter.tryTake(record, t)) sent += record;
    expect(sent).toBeLessThanOrEqual(10 * SHARD_BYTES_PER_SECOND + record);
    expect(sent).toBeGreaterThan(9.9 * SHARD_BYTES_PER_SECOND - 2 * record);
  });

  it('lets a record larger than the burst through when the bucket is full', () => {
    const limiter = new ShardLimiter(1, 0);
    expect(limiter.tryTake(2 * SHARD_BYTES_PER_SECOND, 0)).toBe(true);
    expect(limiter.tryTake(100, 0)).toBe(false);
  });

  it('decreases multiplicatively on throttling, once per burst of throttles, and probes back up', () => {
    const limiter = new ShardLimiter(1, 0);
    limiter.onThrottled(1000);
    expect(limiter.rate).toBeCloseTo(DECREASE_FACTOR);
    limiter.onThrottled(1000 + DECREASE_INTERVAL_MS - 1);
    expect(limiter.rate).toBeCloseTo(DECREASE_FACTOR);
    limiter.onThrottled(1000 + DECREASE_INTERVAL_MS);
    expect(limiter.rate).toBeCloseTo(DECREASE_FACTOR ** 2);
    const low = limiter.rate;
    limiter.onAccepted(1000 + DECREASE_INTERVAL_MS + 2000);
    expect(limiter.rate).toBeCloseTo(low + 2 * INCREASE_PER_SECOND);
    limiter.onAccepted(1_000_000);
    expect(limiter.rate).toBe(1);
  });

  it('respects its ceiling (rateLimit) and a floor', () => {
    const limiter = new ShardLimiter(0.5, 0);
    let taken = 0;
    while (limiter.tryTake(1, 0)) taken++;
    expect(taken).toBe(0.5 * SHARD_RECORDS_PER_SECOND * BURST_SECONDS);
    for (let t = 0; t < 100_000; t += DECREASE_INTERVAL_MS) limiter.onThrottled(t);
    expect(limiter.rate).toBeGreaterThan(0);
  });

  it('never goes above a ceiling that is below the floor (rateLimit 1)', () => {
    const limiter = new ShardLimiter(0.01, 0);
    limiter.onThrottled(DECREASE_INTERVAL_MS);
    expect(limiter.rate).toBe(0.01);
    limiter.onAccepted(60_000);
    expect(limiter.rate).toBe(0.01);
  });

  it('two limiters sharing a shard converge to about half each (AIMD)', () => {
    // A toy shard: 1.0 of capacity per second; a producer above its share gets throttled.
    const a = new ShardLimiter(1, 0);
    const b = new ShardLimiter(1, 0);
    b.onThrottled(0); // they start unequal
    b.onThrottled(DECREASE_INTERVAL_MS);
    for (let t = 1000; t < 120_000; t += 100) {
      if (a.rate + b.rate > 1) {
        a.onThrottled(t);
        b.onThrottled(t);
      } else {
        a.onAccepted(t);
        b.onAccepted(t);
      }
    }
    expect(Math.abs(a.rate - b.rate)).toBeLessThan(0.05);
    expect(a.rate + b.rate).toBeGreaterThan(0.75);
    expect(a.rate + b.rate).toBeLessThanOrEqual(1.06);
  });
});

describe('the producer paces each shard', () => {
  let fake: FakeKinesis;
  const producer = producersOn(() => fake);
  beforeEach(() => {
    vi.useFakeTimers();
    fake = new FakeKinesis(1);
  });

  const sentBytesBy = (t: number, start: number) =>
    fake.calls
      .filter((c) => c.at - start <= t)
      .reduce((n, c) => n + c.entries.reduce((m, e) => m + 1 + e.Data!.length, 0), 0);

  it('sends no more than the shard takes: the burst, then 1 MiB/s', async () => {
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    const start = Date.now();
    const data = Buffer.alloc(1000, 7);
    for (let i = 0; i < 4000; i++) p.send({ partitionKey: `k${i}`, data });
    await vi.advanceTimersByTimeAsync(4000);
    expect(p.outstandingRecords).toBe(0);
    for (const t of [500, 1000, 2000]) {
      expect(sentBytesBy(t, start)).toBeLessThanOrEqual(
        BURST_SECONDS * SHARD_BYTES_PER_SECOND + (t / 1000) * SHARD_BYTES_PER_SECOND + 52_000,
      );
    }
    // And it does use the shard: well over 90% of it once the burst is spent.
    expect(sentBytesBy(3000, start)).toBeGreaterThan(0.9 * 3 * SHARD_BYTES_PER_SECOND);
  });

  it('with rateLimit: 50, half that', async () => {
    const p = producer({ rateLimit: 50 });
    await vi.advanceTimersByTimeAsync(0);
    const start = Date.now();
    for (let i = 0; i < 3000; i++) p.send({ partitionKey: `k${i}`, data: Buffer.alloc(1000) });
    await vi.advanceTimersByTimeAsync(2000);
    expect(sentBytesBy(2000, start)).toBeLessThanOrEqual(
      0.5 * (BURST_SECONDS + 2) * SHARD_BYTES_PER_SECOND + 52_000,
    );
  });

  it('paces unaggregated records at 1,000 records/s, many to a request', async () => {
    const p = producer({ aggregation: false });
    await vi.advanceTimersByTimeAsync(0);
    const start = Date.now();
    for (let i = 0; i < 3000; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    await vi.advanceTimersByTimeAsync(1000);
    const entries = fake.calls.filter((c) => c.at - start <= 1000).reduce((n, c) => n + c.entries.length, 0);
    expect(entries).toBeLessThanOrEqual((BURST_SECONDS + 1) * SHARD_RECORDS_PER_SECOND);
    expect(entries).toBeGreaterThan(0.9 * (BURST_SECONDS + 1) * SHARD_RECORDS_PER_SECOND);
    await vi.advanceTimersByTimeAsync(3000);
    expect(fake.storedUserRecords()).toHaveLength(3000);
    // After the half second of burst, the shard takes 1,000 records a second: about 2,500 records
    // here, in requests of about 50 (one per rest of 50 ms), not one per token (~2,500 requests).
    const afterBurst = fake.calls.filter((c) => c.at - start > 100);
    const records = afterBurst.reduce((n, c) => n + c.entries.length, 0);
    expect(records).toBeGreaterThan(2_000);
    expect(afterBurst.length).toBeLessThan(records / 20);
  });

  it('does not make a flush wait out a rest: what the buckets allow goes at once', async () => {
    const p = producer({ aggregation: false, collectionMaxCount: 500 });
    await vi.advanceTimersByTimeAsync(0);
    const start = Date.now();
    for (let i = 0; i < 501; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    const flushed = track(p.flush());
    await vi.advanceTimersByTimeAsync(20);
    expect(flushed.status).toBe('fulfilled');
    // The burst holds 500 records; the 501st waits for its token (1 ms), not for a rest of 50 ms.
    expect(fake.calls.map((c) => [c.at - start <= 5, c.entries.length])).toEqual([
      [true, 500],
      [true, 1],
    ]);
  });

  it('lets half a second of records go at once after an idle spell, as the README says', async () => {
    const p = producer({ aggregation: false, maxBufferedTimeMs: 0 });
    await vi.advanceTimersByTimeAsync(2_000);
    for (let i = 0; i < 2_000; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    await vi.advanceTimersByTimeAsync(5);
    // The written figure (0.5 s of 1,000 records/s), not the constant: its burst plus 5 ms of refill.
    const sent = fake.calls.reduce((n, c) => n + c.entries.length, 0);
    expect(sent).toBeGreaterThanOrEqual(500);
    expect(sent).toBeLessThanOrEqual(510);
  });

  it('after a throttle, sends at 80% of the shard, then adds 5% of it each second back to all of it', async () => {
    fake.onPut = (call) =>
      call.index === 0
        ? { errorCodes: call.entries.map(() => 'ProvisionedThroughputExceededException') }
        : undefined;
    const p = producer({ aggregation: false, recordTtlMs: 60_000 });
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 13_000; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    const perSecond: number[] = [];
    for (let second = 0, before = 0; second < 12; second++) {
      await vi.advanceTimersByTimeAsync(1_000);
      const stored = fake.storedUserRecords().length;
      perSecond.push(stored - before);
      before = stored;
    }
    // The first second: the half-second burst (500, throttled and sent again) and 80% of 1,000.
    expect(perSecond[0]).toBeLessThan(900);
    // Climbing 50 records/s each second...
    expect(perSecond[2]! - perSecond[1]!).toBeGreaterThanOrEqual(40);
    expect(perSecond[2]! - perSecond[1]!).toBeLessThanOrEqual(60);
    // ...back to the whole shard.
    expect(perSecond.slice(6)).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
  });

  it('slows down a shard that throttles', async () => {
    fake.onPut = (call) =>
      call.index < 3
        ? { errorCodes: call.entries.map(() => 'ProvisionedThroughputExceededException') }
        : undefined;
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 3000; i++) p.send({ partitionKey: `k${i}`, data: Buffer.alloc(1000) });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.storedUserRecords()).toHaveLength(3000);
    const stored = fake.calls
      .slice(3)
      .flatMap((c) =>
        c.entries.flatMap((e) => deaggregate({ data: e.Data!, partitionKey: e.PartitionKey! })),
      );
    expect(stored).toHaveLength(3000);
  });

  it("batches the other shards' records while one shard's limiter holds a backlog back", async () => {
    fake = new FakeKinesis(2);
    const p = producer({ aggregation: false, recordTtlMs: 60_000 });
    await vi.advanceTimersByTimeAsync(0);
    const shardOf = (key: string) => fake.shards.indexOf(fake.shardFor(partitionKeyHash(key)));
    const hot: string[] = [];
    const cold: string[] = [];
    for (let i = 0; hot.length < 50 || cold.length < 50; i++)
      (shardOf(`k${i}`) === 0 ? hot : cold).push(`k${i}`);
    // 3,000 records for shard 0: the burst of 500 goes, the rest wait for tokens (1,000/s); a queue
    // of 500 records is a full request, which must not make every other shard's records go at once.
    for (let i = 0; i < 3000; i++) p.send({ partitionKey: hot[i % 50]!, data: 'x' });
    const before = fake.calls.length;
    // Shard 1 gets a record every 5 ms for 2 s.
    for (let i = 0; i < 400; i++) {
      p.send({ partitionKey: cold[i % 50]!, data: 'y' });
      await vi.advanceTimersByTimeAsync(5);
    }
    await vi.advanceTimersByTimeAsync(200);
    const calls = fake.calls.slice(before);
    const coldEntries = calls.map((c) => c.entries.filter((e) => shardOf(e.PartitionKey!) === 1).length);
    expect(coldEntries.reduce((a, b) => a + b, 0)).toBe(400);
    // They go with the requests the hot shard's tokens allow (about one per 50 ms rest), many at a
    // time: held back by nothing, they would go one per request, 400 requests.
    const carrying = coldEntries.filter((n) => n > 0);
    expect(carrying.length).toBeLessThanOrEqual(50);
    expect(calls.length).toBeLessThanOrEqual(60);
  });

  it('sends at a flush what the tokens allow, also while the shard rests', async () => {
    const p = producer({ aggregation: false, maxBufferedTimeMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    const start = Date.now();
    // The burst of 500 goes; then a token a millisecond, and refused twice in a row, the shard rests
    // 50 ms so that its tokens go together.
    for (let i = 0; i < 600; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.calls.map((c) => [c.at - start, c.entries.length])).toEqual([
      [0, 500],
      [expect.any(Number), 1],
    ]);
    const flushed = p.flush();
    await vi.advanceTimersByTimeAsync(0);
    // The tokens earned while resting go at once, not when the rest ends.
    expect(fake.calls.length).toBe(3);
    expect(fake.calls[2]!.at - start).toBe(20);
    expect(fake.calls[2]!.entries.length).toBeGreaterThanOrEqual(15);
    await vi.advanceTimersByTimeAsync(200);
    await flushed;
  });
});
