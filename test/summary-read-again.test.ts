/**
 * The stream's summary read again: after the stream was found gone (records above the limit it may
 * have now wait for it), and as a recheck when records land where a fresh map does not send them.
 */
import { DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { partitionKeyHash } from '../src/index.js';
import { FakeKinesis, keysWhere, nextPutLandsOn, serviceError } from './support/fake-kinesis.js';
import { producersOn } from './support/producers.js';
import { track } from './support/track.js';

let fake: FakeKinesis;
const producer = producersOn(() => fake);
beforeEach(() => {
  vi.useFakeTimers();
});
const MiB = 1024 * 1024;

/** One key on each shard other than the one of `k`. */
function keysOnOtherShards(): string[] {
  const kShard = fake.shardFor(partitionKeyHash('k'));
  return fake.shards
    .filter((s) => s !== kShard)
    .map((s) => keysWhere(1, (h) => fake.shardFor(h) === s, `o-${s.id}-`)[0]!);
}

/** Puts one record on each of the other shards, 10 ms apart; returns the PutRecords calls carrying them. */
async function spreadPuts(p: ReturnType<typeof producer>, keys: string[]) {
  const before = fake.calls.length;
  const puts = keys.map(async (key, i) => {
    await new Promise((r) => setTimeout(r, i * 10));
    return p.put({ partitionKey: key, data: `x${i}` });
  });
  await vi.advanceTimersByTimeAsync(1_000);
  await Promise.all(puts);
  return fake.calls.slice(before).filter((c) => c.entries.some((e) => e.PartitionKey!.startsWith('o-')))
    .length;
}

/**
 * A stream of 8 shards with records of up to 2 MiB. `k`'s record of 1.1 MiB is sent and times out;
 * meanwhile the stream is found gone, and its summary, read again, is throttled: the producer falls
 * back to a provisional 1 MiB, and with ordering that record holds its lane's head, waiting out its
 * backoff first. `after`, of the same key, waits behind it.
 */
async function heldLane(extra: Record<string, unknown> = {}) {
  fake = new FakeKinesis(8);
  const kShard = fake.shardFor(partitionKeyHash('k'));
  const [g] = keysWhere(1, (h) => fake.shardFor(h) !== kShard, 'g-');
  vi.spyOn(Math, 'random').mockReturnValue(0.99);
  fake.summary = { MaxRecordSizeInKiB: 2048 };
  let bigTries = 0;
  fake.onPut = (call) => {
    if (call.entries.some((e) => e.Data!.length > MiB) && bigTries++ === 0) return 'hang';
    if (call.entries.some((e) => e.PartitionKey === g))
      return { throw: serviceError('ResourceNotFoundException', 400) };
    return undefined;
  };
  const p = producer({
    ordering: 'per-partition-key',
    aggregation: false,
    requestTimeoutMs: 1_000,
    retryBaseDelayMs: 3_000,
    retryMaxDelayMs: 3_000,
    recordTtlMs: 10_000,
    ...extra,
  });
  const warm = track(p.put({ partitionKey: 'w', data: 'warm-up' }));
  await vi.advanceTimersByTimeAsync(200);
  const big = track(p.put({ partitionKey: 'k', data: new Uint8Array(1.1 * MiB).fill(98) }));
  await vi.advanceTimersByTimeAsync(300);
  const after = track(p.put({ partitionKey: 'k', data: 'after' }));
  await vi.advanceTimersByTimeAsync(1_200);
  fake.describeError = serviceError('LimitExceededException', 400);
  const gone = track(p.put({ partitionKey: g!, data: 'g' }));
  await vi.advanceTimersByTimeAsync(3_500);
  expect({ warm: warm.status, big: big.status, after: after.status, gone: gone.status }).toEqual({
    warm: 'fulfilled',
    big: 'pending',
    after: 'pending',
    gone: 'rejected',
  });
  return { p, big, after };
}

describe('with ordering, a lane head held for the summary read again', () => {
  it('a record of the same key put after the one held is not written before it', async () => {
    const { big, after } = await heldLane({ aggregation: true, recordTtlMs: 60_000 });
    fake.describeError = undefined; // it answers again: 2 MiB
    await vi.advanceTimersByTimeAsync(40_000);
    const order = fake
      .storedUserRecords()
      .filter((r) => r.partitionKey === 'k')
      .map((r) => (r.data === 'after' ? 'after' : 'big'));
    expect({ big: big.status, after: after.status, order }).toEqual({
      big: 'fulfilled',
      after: 'fulfilled',
      order: ['big', 'after'],
    });
  }, 20_000);

  it('control: 7 records for 7 shards put 10 ms apart share one request', async () => {
    fake = new FakeKinesis(8);
    const p = producer({ ordering: 'per-partition-key', aggregation: false });
    await vi.advanceTimersByTimeAsync(100);
    expect(await spreadPuts(p, keysOnOtherShards())).toBe(1);
  });

  it('while a lane head is held for the summary, other shards still batch (maxBufferedTimeMs)', async () => {
    const { p, big } = await heldLane({ recordTtlMs: 30_000 });
    // As in the control: 7 records for the 7 other shards, 10 ms apart, share one request.
    const requests = await spreadPuts(p, keysOnOtherShards());
    fake.describeError = undefined;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(big.status).toBe('fulfilled');
    expect(requests).toBe(1);
  }, 20_000);
});

describe('a lane head held for the summary: how it ends', () => {
  it('a summary that never becomes final: the held head expires at its TTL and the lane goes on', async () => {
    const { big, after } = await heldLane();
    await vi.advanceTimersByTimeAsync(6_000);
    expect(big.status).toBe('rejected');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(after.status).toBe('fulfilled'); // the lane went on once its head expired
  }, 20_000);

  it('close({timeoutMs}) while held fails the held head with CloseTimeout', async () => {
    const { p, big, after } = await heldLane({ recordTtlMs: 60_000 });
    const closed = track(p.close({ timeoutMs: 1_000 }));
    await vi.advanceTimersByTimeAsync(1_500);
    expect(closed.status).toBe('fulfilled');
    expect((big.error as { code: string }).code).toBe('CloseTimeout');
    expect((after.error as { code: string }).code).toBe('CloseTimeout');
  }, 20_000);
});

import { memoryLogger } from './support/memory-logger.js';

/**
 * A producer of a 4-shard stream with records of up to 2 MiB, whose summary answered over 10 s ago.
 * Then the aggregates of its first request land on a shard the fresh map does not send them to
 * (ListShards keeps giving the same map: as batching.test.ts' 'a shard map that lags a reshard'),
 * while DescribeStreamSummary is throttled (20 TPS per account, shared): the summary is rechecked,
 * and the recheck fails. Returns after 3 s of that, with the 20 records put meanwhile.
 */
async function laggingMapWhileSummaryThrottled() {
  fake = new FakeKinesis(4);
  fake.summary = { MaxRecordSizeInKiB: 2048 };
  const { logger, lines } = memoryLogger();
  const p = producer({ recordTtlMs: 30_000, logger });
  const warm = p.put({ partitionKey: 'w', data: 'warm-up' });
  await vi.advanceTimersByTimeAsync(11_000);
  await warm;
  fake.onPut = nextPutLandsOn('shardId-000000000003');
  fake.describeError = serviceError('LimitExceededException', 400);
  const lagging = Array.from({ length: 20 }, (_, i) =>
    p.put({ partitionKey: `k${i}`, data: `d${i}` }).catch((e: unknown) => e),
  );
  await vi.advanceTimersByTimeAsync(3_000);
  return { p, lines, lagging };
}

describe('a summary read again because a map lags a reshard', () => {
  it('a throttled re-read does not take back what the summary said (2 MiB records, aggregation)', async () => {
    const { p, lines, lagging } = await laggingMapWhileSummaryThrottled();
    // A 1.5 MiB record, which this stream takes (2 MiB limit), put now.
    const big = track(p.put({ partitionKey: 'big', data: new Uint8Array(1.5 * MiB) }));
    await vi.advanceTimersByTimeAsync(5_000);
    const before = fake.calls.length;
    const small = Array.from({ length: 10 }, (_, i) =>
      p.put({ partitionKey: `s${i}`, data: 'x' }).catch((e: unknown) => e),
    );
    await vi.advanceTimersByTimeAsync(1_000);
    const bigState = big.status;
    const entriesAfter = fake.calls.slice(before).flatMap((c) => c.entries).length;
    fake.describeError = undefined;
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all([...lagging, ...small]);
    const deniedWarnings = lines.filter((l) => l.message.includes('DescribeStreamSummary was denied')).length;
    expect({ big: bigState, entriesFor10SmallRecords: entriesAfter, deniedWarnings }).toEqual({
      big: 'fulfilled',
      // It was throttled, never denied.
      deniedWarnings: 0,
      // 10 keys over 4 shards: at most 4 aggregates, as before the re-read.
      entriesFor10SmallRecords: 4,
    });
  });
});

describe('a recheck of the summary that fails', () => {
  it('does not silence the warning of a real read that fails the same way soon after', async () => {
    const { p, lines, lagging } = await laggingMapWhileSummaryThrottled();
    const recheckWarned = lines.filter(
      (l) => l.level === 'warn' && l.message.includes('keeping what it said before'),
    ).length;
    // Now the stream is found gone (PutRecords: ResourceNotFoundException): the summary is read again
    // for real, from provisional defaults; DescribeStreamSummary is still throttled.
    fake.onPut = undefined;
    fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
    const gone = p.put({ partitionKey: 'g', data: 'g' }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(2_000);
    await gone;
    const realWarned = lines.filter(
      (l) => l.level === 'warn' && l.message.includes('sending unaggregated and holding records over 1 MiB'),
    ).length;
    fake.describeError = undefined;
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(lagging);
    expect({ recheckWarned, realWarned }).toEqual({ recheckWarned: 1, realWarned: 1 });
  }, 20_000);
});

describe('a recheck of the summary that keeps failing', () => {
  it('is not tried again at every landing: at most one recheck per 10 s while DescribeStreamSummary is throttled', async () => {
    fake = new FakeKinesis(4);
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    const p = producer({ recordTtlMs: 30_000, logger: memoryLogger().logger });
    const warm = p.put({ partitionKey: 'w', data: 'warm-up' });
    await vi.advanceTimersByTimeAsync(11_000);
    await warm;
    // Every request's aggregates land on shard 3, which the map (listed again and again) does not predict.
    fake.onPut = (call) => ({
      Records: call.entries.map(() => ({ ShardId: 'shardId-000000000003', SequenceNumber: '1' })),
      $metadata: {},
    });
    fake.describeError = serviceError('LimitExceededException', 400);
    const before = fake.commands.filter((c) => c === 'DescribeStreamSummary').length;
    const lagging = Array.from({ length: 20 }, (_, i) =>
      p.put({ partitionKey: `k${i}`, data: `d${i}` }).catch((e: unknown) => e),
    );
    await vi.advanceTimersByTimeAsync(9_000);
    const calls = fake.commands.filter((c) => c === 'DescribeStreamSummary').length - before;
    fake.describeError = undefined;
    fake.onPut = undefined;
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(lagging);
    // One recheck is one call with up to 2 retries: 3 tries at most within 10 s.
    expect(calls).toBeLessThanOrEqual(3);
  }, 20_000);
});

describe('a lane head held for the summary that expires', () => {
  it('says it waited for the stream summary, as the same record expiring in the gate does', async () => {
    const { big } = await heldLane();
    await vi.advanceTimersByTimeAsync(6_000);
    expect(big.status).toBe('rejected');
    expect((big.error as Error).message).toMatch(/summary/);
  }, 20_000);
});

describe('a summary that answers ends only the holds set for it', () => {
  it('a summary answering while a lane waits out its backoff does not send other shards early', async () => {
    fake = new FakeKinesis(2);
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const kShard = fake.shardFor(partitionKeyHash('k'));
    const [other] = keysWhere(1, (h) => fake.shardFor(h) !== kShard, 'o-');
    // The first summary read finds no stream (provisional: the gate opens); the next one, in the
    // background, answers when the test lets it.
    let describes = 0;
    let answer!: () => void;
    const base = fake.client;
    const client = {
      send: async (command: unknown, options?: unknown) => {
        if (command instanceof DescribeStreamSummaryCommand) {
          if (describes++ === 0) throw serviceError('ResourceNotFoundException', 400);
          await new Promise<void>((resolve) => (answer = resolve));
        }
        return base.send(command as never, options as never);
      },
      destroy: () => {},
    } as unknown as KinesisClient;
    let kTries = 0;
    fake.onPut = (call) =>
      call.entries.some((e) => e.PartitionKey === 'k') && kTries++ === 0
        ? {
            errorCodes: call.entries.map((e) =>
              e.PartitionKey === 'k' ? 'InternalFailure' : undefined,
            ) as never,
          }
        : undefined;
    const p = producer({
      client,
      ordering: 'per-partition-key',
      aggregation: false,
      maxBufferedTimeMs: 100,
      retryBaseDelayMs: 3_000,
      retryMaxDelayMs: 3_000,
    });
    const k = track(p.put({ partitionKey: 'k', data: 'k' }));
    await vi.advanceTimersByTimeAsync(2_500); // k failed once: its lane waits out ~3 s of backoff
    expect(kTries).toBe(1);
    // Behind k, in its lane, 300 KiB wait for its backoff (held: over 256 KiB makes no request due).
    const behind = [0, 1, 2].map((i) =>
      track(p.put({ partitionKey: 'k', data: new Uint8Array(100 * 1024).fill(i) })),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(describes).toBeGreaterThanOrEqual(2); // the background read is under way, unanswered
    const before = fake.calls.length;
    const putAt = Date.now();
    const o = track(p.put({ partitionKey: other!, data: 'o' }));
    await vi.advanceTimersByTimeAsync(10);
    answer(); // the summary answers: open(final)
    await vi.advanceTimersByTimeAsync(200);
    const carrying = fake.calls.slice(before).find((c) => c.entries.some((e) => e.PartitionKey === other));
    expect(o.status).toBe('fulfilled');
    // Without open()'s clearing, `other` goes when its 100 ms of buffering are up, as any record.
    expect(carrying!.at - putAt).toBeGreaterThanOrEqual(100);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(k.status).toBe('fulfilled');
    expect(behind.map((b) => b.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
  }, 20_000);
});
