import {
  DescribeStreamSummaryCommand,
  type KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type KinesisProducer,
  type PutResult,
  partitionKeyHash,
  type RecordFailedError,
} from '../src/index.js';
import {
  evenShards,
  FakeKinesis,
  type FakePutCall,
  keysWhere,
  networkError,
  type PutAnswer,
  serviceError,
} from './support/fake-kinesis.js';
import { producersOn } from './support/producers.js';

/**
 * A stream deleted and created again under the same name, with other shards: its shard ids come back
 * owning other hash keys. The fake starts with 2 shards; `recreate()` makes it 4, so ids 0 and 1
 * exist again, each owning a quarter of the keys where it owned half.
 */
let fake: FakeKinesis;
const producer = producersOn(() => fake);

beforeEach(() => {
  vi.useFakeTimers();
  fake = new FakeKinesis(2);
});

/** A quarter of the hash keys: what each shard of the 4-shard stream owns. */
const QUARTER = 2n ** 126n;

/** `n` keys the 2-shard map puts in shard 0, which the 4-shard stream splits between shards 0 and 1. */
function lowerHalfKeys(n: number): string[] {
  return keysWhere(n, (hashKey) => hashKey < 2n * QUARTER);
}

/** An answer that stores the request's one entry on shard 1, whatever its key (a reshard's doing). */
const onShard1 = () => ({
  Records: [{ ShardId: 'shardId-000000000001', SequenceNumber: '1' }],
  $metadata: {},
});

/** Each result on the shard that owns its key in the stream as it is now: where consumers read it. */
function misplaced(keys: readonly string[], results: readonly PutResult[]): string[] {
  return keys.filter((key, i) => results[i]!.shardId !== fake.shardFor(partitionKeyHash(key)).id);
}

/** The stream is created again with 4 shards, and the next PutRecords request is told it is not found. */
function recreate(): void {
  fake.shards = evenShards(4);
  fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
}

/**
 * The stream is created again with four shards, and a put finds the old one gone: it fails with
 * `ResourceNotFoundException`, which makes the producer forget the shard map.
 */
async function findStreamGone(p: KinesisProducer): Promise<void> {
  recreate();
  expect(await settledAfter(p.put({ partitionKey: 'g', data: 'g' }))).toMatchObject({
    code: 'ResourceNotFoundException',
  });
}

/** What `promise` settles with once the fake timers have run `ms` (records wait up to 100 ms to be sent). */
async function settledAfter<T>(promise: Promise<T>, ms = 200): Promise<T | unknown> {
  const settled = promise.catch((error: unknown) => error);
  await vi.advanceTimersByTimeAsync(ms);
  return await settled;
}

/** How a put settled, once it has. */
async function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: RecordFailedError }> {
  return promise.then(
    (value) => ({ value }),
    (error: RecordFailedError) => ({ error }),
  );
}

const MiB = 1024 * 1024;

/**
 * The service of a stream that takes records up to `limit` bytes (2 MiB, as its summary says, until a
 * test lowers it for the stream created again): a request holding an entry over it is refused whole.
 * With `fault`, the request after `faultNext` is set gets that answer instead, once.
 */
function limitedService(fault?: (call: FakePutCall) => PutAnswer): { limit: number; faultNext: boolean } {
  const service = { limit: 2 * MiB, faultNext: false };
  fake.summary = { MaxRecordSizeInKiB: 2048 };
  fake.onPut = (call) => {
    if (call.entries.some((e) => e.Data!.length + e.PartitionKey!.length > service.limit))
      return {
        throw: serviceError('ValidationException', 400, `Member must have length <= ${service.limit}`),
      };
    if (!service.faultNext || fault === undefined) return undefined;
    service.faultNext = false;
    return fault(call);
  };
  return service;
}

/** DescribeStreamSummary calls made so far. */
const summaries = () => fake.commands.filter((c) => c === 'DescribeStreamSummary').length;

/**
 * `base` (the fake by default) as a client that holds the first call `picks` chooses until
 * `letGo()`: asked of `base` at once and answered late, as the stream was when asked (`'asked at
 * once'`), or asked only when let go, as the stream is then (`'asked when let go'`). `held()` says
 * whether that call came.
 */
function holdingOneCall(
  picks: (command: unknown) => boolean,
  asked: 'asked at once' | 'asked when let go',
  base: KinesisClient = fake.client,
) {
  let held = false;
  let letGo!: () => void;
  const gate = new Promise<void>((resolve) => {
    letGo = resolve;
  });
  const client = {
    async send(command: unknown, options: unknown) {
      if (!held && picks(command)) {
        held = true;
        const answer = asked === 'asked at once' ? base.send(command as never, options as never) : undefined;
        await gate;
        if (answer !== undefined) return await answer;
      }
      return base.send(command as never, options as never);
    },
    destroy: () => {},
  } as unknown as KinesisClient;
  return { client, letGo: () => letGo(), held: () => held };
}

/** A client whose first PutRecords waits until `letGo()`: a request in flight across what follows. */
const holdingFirstPut = () =>
  holdingOneCall((command) => command instanceof PutRecordsCommand, 'asked when let go');

/** Picks the `n`th DescribeStreamSummary call. */
function nthSummary(n: number): (command: unknown) => boolean {
  let calls = 0;
  return (command) => command instanceof DescribeStreamSummaryCommand && ++calls === n;
}

/** `n` partition keys, each different. */
const keys = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

const codes = (result: PutResult) => result.attempts.map((a) => a.errorCode ?? 'ok');

describe('a stream created again under the same name, with shard ids that own other keys', () => {
  it('aggregates again, under the new map, an aggregate that waited out a backoff meanwhile', async () => {
    const p = producer({ retryBaseDelayMs: 2_000, retryMaxDelayMs: 2_000 });
    // Backoff is random in [0, 2 s): made 1.98 s, so that the stream goes meanwhile.
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    const keys = lowerHalfKeys(40);
    // One aggregate for shard 0, throttled: it waits out its backoff.
    fake.script.push({ errorCodes: ['ProvisionedThroughputExceededException'] });
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }));
    await vi.advanceTimersByTimeAsync(150);
    expect(fake.calls.map((c) => c.entries.length)).toEqual([1]);
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(5_000);
    const results = await Promise.all(puts);
    expect(misplaced(keys, results)).toEqual([]);
    // Built again before it went: its retry was not sent to a shard that owns only some of its keys.
    expect(new Set(results.map((r) => codes(r).join()))).toEqual(
      new Set(['ProvisionedThroughputExceededException,ok']),
    );
    expect(new Set(results.map((r) => r.shardId))).toEqual(
      new Set(['shardId-000000000000', 'shardId-000000000001']),
    );
  });

  it('checks against the new map an aggregate in flight meanwhile, though it landed on the id it predicted', async () => {
    // The first request of the test is answered only when let go, by the stream as it is then.
    const { client, letGo } = holdingFirstPut();
    const p = producer({ client });
    const keys = lowerHalfKeys(40);
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }));
    await vi.advanceTimersByTimeAsync(150);
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(1_000);
    letGo();
    await vi.advanceTimersByTimeAsync(1_000);
    const results = await Promise.all(puts);
    expect(misplaced(keys, results)).toEqual([]);
    // The aggregate was stored on shard 0 as predicted, but shard 0 owns only some of its keys now.
    const checked = results.find((r) => codes(r).includes('WrongShard'))!;
    expect(codes(checked)).toEqual(['WrongShard', 'ok']);
    expect(checked.attempts[0]!.errorMessage).toMatch(
      /^Aggregate landed on shardId-000000000000 as predicted, but by a shard map from before the stream was found gone/,
    );
  });

  it('does not take a listing that began before the stream was found gone', async () => {
    // Listed now, answered later: the 2 shards of the stream that is about to go.
    let slow = false;
    const {
      client,
      letGo: answerListing,
      held,
    } = holdingOneCall((command) => command instanceof ListShardsCommand && slow, 'asked at once');
    const p = producer({ client });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    // A lone record stored on shard 1, predicted 0: the map is listed again (slowly).
    slow = true;
    fake.onPut = (call) =>
      call.index === 1
        ? { Records: [{ ShardId: 'shardId-000000000001', SequenceNumber: '1' }], $metadata: {} }
        : undefined;
    const [lone] = lowerHalfKeys(1);
    await settledAfter(p.put({ partitionKey: lone!, data: 'lone' }));
    fake.onPut = undefined;
    // The map may be listed again 500 ms after the last listing.
    await vi.advanceTimersByTimeAsync(600);
    expect(held()).toBe(true);
    await findStreamGone(p);
    // The old listing answers after the stream was found gone.
    answerListing();
    await vi.advanceTimersByTimeAsync(10);
    const keys = lowerHalfKeys(40);
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `b${i}` }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(misplaced(keys, await Promise.all(puts))).toEqual([]);
  });

  it('sends again the aggregates that waited to learn where a reshard put them', async () => {
    const p = producer();
    const keys = lowerHalfKeys(40);
    // Stored on shard 1 though predicted 0; the map listed again is the same, so it waits for a newer.
    fake.onPut = (call) =>
      call.index === 0
        ? { Records: [{ ShardId: 'shardId-000000000001', SequenceNumber: '1' }], $metadata: {} }
        : undefined;
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }));
    await vi.advanceTimersByTimeAsync(2_000);
    fake.onPut = undefined;
    expect(fake.calls).toHaveLength(1);
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(2_000);
    const results = await Promise.all(puts);
    expect(misplaced(keys, results)).toEqual([]);
    expect(codes(results[0]!)).toEqual(['StreamGone', 'ok']);
    expect(results[0]!.attempts[0]!.errorMessage).toMatch(
      /^Aggregate stored on shardId-000000000001 of a stream that was not found afterwards/,
    );
  });

  it('routes open aggregates again when a listing, not an error, shows the ids own other keys', async () => {
    const p = producer({ maxBufferedTimeMs: 5_000 });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }), 5_100);
    // Created again while the producer sent nothing to it: no request was told it was not found.
    fake.shards = evenShards(4);
    // A record of old shard 1 goes first; it lands on shard 2 or 3, and the map is listed again.
    let upper = 'u';
    for (let k = 0; partitionKeyHash(upper) < 2n ** 127n; k++) upper = `upper-${k}`;
    const lone = p.put({ partitionKey: upper, data: 'lone' });
    await vi.advanceTimersByTimeAsync(4_000);
    // An open aggregate for old shard 0, due 4 s after the lone record.
    const keys = lowerHalfKeys(40);
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await lone).shardId).not.toBe('shardId-000000000001');
    await vi.advanceTimersByTimeAsync(4_000);
    const results = await Promise.all(puts);
    expect(misplaced(keys, results)).toEqual([]);
    // Routed again before it went: no attempt on a shard that owns only some of its keys.
    expect(results.flatMap(codes).filter((code) => code !== 'ok')).toEqual([]);
  });

  it('drops the map when ListShards finds the stream gone, though no request was told so', async () => {
    const p = producer({ recordTtlMs: 120_000 });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    // A record lands where it was not predicted; the listing that follows finds the stream gone.
    fake.onPut = onShard1;
    fake.listShardsError = serviceError('ResourceNotFoundException', 400);
    await settledAfter(p.put({ partitionKey: lowerHalfKeys(1)[0]!, data: 'x' }), 1_000);
    fake.onPut = undefined;
    fake.listShardsError = undefined;
    fake.shards = evenShards(4);
    await vi.advanceTimersByTimeAsync(5_000);
    // The first key in new shard 0, so that an aggregate built on the old map lands on its predicted id.
    const keys = [...keysWhere(1, (h) => h < QUARTER, 'first-'), ...lowerHalfKeys(39)];
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `d${i}` }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(misplaced(keys, await Promise.all(puts))).toEqual([]);
  });

  it('looks for the stream from the moment it is found gone, not after a wait set for the old one', async () => {
    const p = producer({ aggregation: false });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    // A listing fails for a minute's wait (the stream is going); then a request finds it gone.
    fake.listShardsError = serviceError('AccessDeniedException', 400);
    fake.onPut = onShard1;
    await settledAfter(p.put({ partitionKey: lowerHalfKeys(1)[0]!, data: 'x' }), 1_000);
    fake.onPut = undefined;
    fake.listShardsError = undefined;
    const lists = () => fake.commands.filter((c) => c === 'ListShards').length;
    const before = lists();
    recreate();
    await settledAfter(p.put({ partitionKey: 'g', data: 'g' }));
    expect(lists()).toBe(before + 1);
  });

  it('checks against the new map, not sends again, what landed elsewhere when a listing shows reused ids', async () => {
    const p = producer();
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    // Created again while the producer sent nothing: two keys of old shard 1 land on new shard 2.
    fake.shards = evenShards(4);
    const keys = keysWhere(2, (h) => h >= 2n * QUARTER && h < 3n * QUARTER, 'up-');
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `u${i}` }));
    await vi.advanceTimersByTimeAsync(3_000);
    const results = await Promise.all(puts);
    expect(results.map(codes)).toEqual([['ok'], ['ok']]);
    expect(new Set(results.map((r) => r.shardId))).toEqual(new Set(['shardId-000000000002']));
    // Stored once: the aggregate was not sent again.
    expect(fake.storedUserRecords().filter((u) => keys.includes(u.partitionKey))).toHaveLength(2);
  });

  it('with ordering, a record waiting out its backoff at its lane head keeps waiting once routed again', async () => {
    const p = producer({ ordering: 'per-partition-key', retryBaseDelayMs: 4_000, retryMaxDelayMs: 4_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0.99); // a backoff of 3.96 s
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    const [lower] = lowerHalfKeys(1);
    const start = fake.calls.length;
    fake.script.push({ errorCodes: ['ProvisionedThroughputExceededException'] });
    const throttled = p.put({ partitionKey: lower!, data: 'a' });
    await vi.advanceTimersByTimeAsync(150);
    const throttledAt = fake.calls[start]!.at;
    recreate();
    const [upper] = keysWhere(1, (h) => h >= 2n * QUARTER, 'up-');
    await settledAfter(p.put({ partitionKey: upper!, data: 'u' }));
    await vi.advanceTimersByTimeAsync(5_000);
    await throttled;
    const sends = fake.calls.slice(start).filter((c) => c.entries.some((e) => e.PartitionKey === lower));
    expect(sends.map((c) => c.at - throttledAt >= 3_900)).toEqual([false, true]);
  });

  it('does not drop the new map for a late answer to a request sent while the stream was gone', async () => {
    const base = fake.client;
    let late = false;
    const client = {
      async send(command: unknown, options: unknown) {
        if (command instanceof PutRecordsCommand && late) {
          late = false;
          await new Promise((resolve) => setTimeout(resolve, 8_000));
          throw serviceError('ResourceNotFoundException', 400);
        }
        return base.send(command as never, options as never);
      },
      destroy: () => {},
    } as unknown as KinesisClient;
    const p = producer({ client, requestTimeoutMs: 30_000 });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    fake.listShardsError = serviceError('ResourceNotFoundException', 400);
    fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
    await settledAfter(p.put({ partitionKey: 'g', data: 'g' }));
    // Sent while the stream is gone, answered 8 s later, once the new stream's map is known.
    late = true;
    const lateAnswer = p.put({ partitionKey: 'h', data: 'h' }).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(200);
    fake.listShardsError = undefined;
    fake.shards = evenShards(4);
    const lists = () => fake.commands.filter((c) => c === 'ListShards').length;
    const before = lists();
    await vi.advanceTimersByTimeAsync(9_000);
    expect(await lateAnswer).toMatchObject({ code: 'ResourceNotFoundException' });
    await vi.advanceTimersByTimeAsync(6_000);
    // Listed once, when the stream came back; not again after the late answer.
    expect(lists()).toBe(before + 1);
  });

  it('reads the summary again: a stream created again as AUTO gets no aggregates, which its consumers drop', async () => {
    const p = producer();
    const warmUp = keys(40, 'w');
    const before = await settledAfter(
      Promise.all(warmUp.map((key) => p.put({ partitionKey: key, data: key }))),
    );
    expect((before as PutResult[]).every((r) => r.aggregated)).toBe(true);
    // Created again on demand, with the service routing records itself.
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
    const read = summaries();
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(6_000);
    expect(summaries()).toBe(read + 1);
    const calls = fake.calls.length;
    const after = keys(40, 'x');
    const results = await settledAfter(
      Promise.all(after.map((key) => p.put({ partitionKey: key, data: key }))),
    );
    expect((results as PutResult[]).map((r) => r.aggregated)).toEqual(after.map(() => false));
    // Each record under its own partition key, as the service routes them.
    expect(fake.calls.slice(calls).flatMap((c) => c.entries.map((e) => e.PartitionKey))).toEqual(after);
  });

  it('with ordering, keeps put order for a key across a stream created again as AUTO, each record alone', async () => {
    const p = producer({ ordering: 'per-partition-key', retryBaseDelayMs: 1_000, retryMaxDelayMs: 1_000 });
    // Backoff is random in [0, 1 s): made 0.99 s, so that the stream goes meanwhile.
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
    // The first aggregate of key m (shard 0) is throttled: it waits out its backoff while the stream
    // goes ('g', of shard 1, finds it gone).
    fake.script.push({ errorCodes: ['ProvisionedThroughputExceededException'] });
    const data = keys(20, 'm');
    const first = data.slice(0, 10).map((d) => p.put({ partitionKey: 'm', data: d }));
    await vi.advanceTimersByTimeAsync(150);
    await findStreamGone(p);
    const later = data.slice(10).map((d) => p.put({ partitionKey: 'm', data: d }));
    const results = (await settledAfter(Promise.all([...first, ...later]), 10_000)) as PutResult[];
    expect(results.map((r) => r.aggregated)).toEqual(data.map(() => false));
    const stored = fake.storedUserRecords().filter((r) => r.partitionKey === 'm');
    expect(stored.map((r) => r.data)).toEqual(data);
  });

  it("reads the summary again when a listing shows the ids own other keys, and takes the new stream's larger records", async () => {
    const p = producer({ maxBufferedTimeMs: 5_000 });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }), 5_100);
    const big = () => p.put({ partitionKey: 'b', data: new Uint8Array(1.5 * 1024 * 1024) });
    await expect(big()).rejects.toMatchObject({ name: 'InvalidRecordError' });
    // Created again, with records of up to 2 MiB, while the producer sent nothing to it.
    fake.shards = evenShards(4);
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    let upper = 'u';
    for (let k = 0; partitionKeyHash(upper) < 2n ** 127n; k++) upper = `upper-${k}`;
    // A record of old shard 1 lands on shard 2 or 3, and the map is listed again.
    expect(
      (await settledAfter(p.put({ partitionKey: upper, data: 'lone' }), 6_000)) as PutResult,
    ).toMatchObject({
      aggregated: false,
    });
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(settledAfter(big(), 6_000)).resolves.toMatchObject({ aggregated: false });
  });

  it('looks for the stream again within seconds, not a minute, and aggregates across keys once it is back', async () => {
    const p = producer();
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    fake.listShardsError = serviceError('ResourceNotFoundException', 400);
    await findStreamGone(p);
    // Back 300 ms later; ListShards is tried again 5 s after it failed.
    await vi.advanceTimersByTimeAsync(300);
    fake.listShardsError = undefined;
    await vi.advanceTimersByTimeAsync(5_000);
    const before = fake.calls.length;
    const keys = lowerHalfKeys(40).filter((key) => partitionKeyHash(key) < 2n ** 126n);
    await settledAfter(Promise.all(keys.map((key, i) => p.put({ partitionKey: key, data: `c${i}` }))));
    // One aggregate for the whole of new shard 0: the map is known again.
    expect(fake.calls.slice(before).map((c) => c.entries.length)).toEqual([1]);
  });
});

describe('a stream created again as AUTO, which routes records itself', () => {
  it('sends again, record by record, an aggregate of the old stream stored once the summary said AUTO', async () => {
    const { client, letGo } = holdingFirstPut();
    const p = producer({ client });
    const keys = lowerHalfKeys(40);
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }));
    await vi.advanceTimersByTimeAsync(150); // one aggregate for old shard 0, in flight (held)
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
    const read = summaries();
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(summaries()).toBe(read + 1); // the producer now knows the stream is AUTO
    letGo(); // the aggregate is stored in the new (AUTO) stream
    await vi.advanceTimersByTimeAsync(2_000);
    const results = await Promise.all(puts);
    // Consumers (KCL) drop aggregates on an AUTO stream: these records must be sent again, alone.
    expect(results.filter((r) => r.aggregated)).toHaveLength(0);
  });
});

describe('a stream created again with smaller records', () => {
  it('fails alone, as RecordTooLarge, a record in backoff above the new limit, instead of the request it would go in', async () => {
    const service = limitedService((call) => ({
      errorCodes: call.entries.map(() => 'ProvisionedThroughputExceededException'),
    }));
    // 'g' (which finds the stream gone) in the upper half; the big record and the small one in the lower.
    expect(partitionKeyHash('g') >= 2n * QUARTER).toBe(true);
    const [bigKey, smallKey] = keysWhere(2, (h) => h < 2n * QUARTER, 'lo-');
    const p = producer({ retryBaseDelayMs: 2_000, retryMaxDelayMs: 2_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0.99); // backoff 1.98 s
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    service.faultNext = true;
    const big = p.put({ partitionKey: bigKey!, data: new Uint8Array(1.5 * MiB) }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(150); // throttled: in backoff for 1.98 s
    const retryAt = fake.calls.at(-1)!.at + 1_980;
    // Created again with the default 1 MiB limit; a put finds the old stream gone.
    service.limit = MiB;
    fake.summary = {};
    const read = summaries();
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(100);
    expect(summaries()).toBe(read + 1); // the producer has read that the stream takes 1 MiB
    // A small record due when the big one's backoff ends: they go in one request.
    await vi.advanceTimersByTimeAsync(retryAt - 100 - Date.now());
    const small = p.put({ partitionKey: smallKey!, data: 'small' }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5_000);
    // Expected: the big record fails alone as too large for the stream (as a put taken before the
    // summary answered does), and the small one is written.
    expect({ big: await big, small: await small }).toMatchObject({
      big: { code: 'RecordTooLarge' },
      small: { aggregated: false },
    });
  });
});

describe('a stream created again with smaller records, after a request that may have stored a record', () => {
  it('fails it as RecordTooLarge, saying that request may have stored it', async () => {
    const service = limitedService(() => ({ throw: networkError('ECONNRESET') }));
    const [bigKey] = keysWhere(1, (h) => h < 2n * QUARTER, 'lo-');
    const p = producer({ retryBaseDelayMs: 2_000, retryMaxDelayMs: 2_000 });
    vi.spyOn(Math, 'random').mockReturnValue(0.99); // backoff 1.98 s
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    service.faultNext = true;
    const big = p.put({ partitionKey: bigKey!, data: new Uint8Array(1.5 * MiB) }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(150); // reset, so maybe stored: in backoff for 1.98 s
    // Created again with the default 1 MiB limit; a put finds the old stream gone.
    service.limit = MiB;
    fake.summary = {};
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(5_000);
    const error = (await big) as RecordFailedError;
    expect(error.code).toBe('RecordTooLarge');
    expect(error.attempts[0]?.errorCode).toBe('ECONNRESET');
    expect(error.message).toContain(
      'an earlier request carrying it ended without an answer (ECONNRESET), and may have stored it',
    );
  });
});

describe('a stream that routes records itself (AUTO), created again', () => {
  it('reads the summary again when the stream is found gone, though it has no shard map to drop', async () => {
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
    const p = producer();
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    // Deleted, and created again as a provisioned stream (partition keys route records).
    fake.summary = {};
    const read = summaries();
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(6_000);
    expect(summaries()).toBe(read + 1);
  });

  it("takes the new stream's smaller record limit, so a record above it is refused at the call", async () => {
    const service = limitedService();
    fake.summary = { RecordDistributionStrategy: 'AUTO', MaxRecordSizeInKiB: 2048 } as typeof fake.summary;
    const p = producer();
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    service.limit = MiB;
    fake.summary = {};
    await findStreamGone(p);
    await vi.advanceTimersByTimeAsync(6_000);
    const big = p.put({ partitionKey: 'big', data: new Uint8Array(1.5 * MiB) }).catch((e: unknown) => e);
    const small = p.put({ partitionKey: 'small', data: 'small' }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(2_000);
    // Expected: the big put refused as above the stream's 1 MiB (at the call, or alone), the small one written.
    expect({ big: await big, small: await small }).toMatchObject({
      big: { name: 'InvalidRecordError' },
      small: { aggregated: false },
    });
  });
});

describe('an aggregate that landed elsewhere when the summary read again says AUTO', () => {
  /** Holds the first PutRecords, and the second DescribeStreamSummary (the one read again), until let go. */
  /** The first PutRecords and the second DescribeStreamSummary each wait, to be asked when let go. */
  function holdingClient() {
    const put = holdingFirstPut();
    const summary = holdingOneCall(nthSummary(2), 'asked when let go', put.client);
    return { client: summary.client, letPutGo: put.letGo, letSummaryGo: summary.letGo };
  }

  for (const ordering of ['none', 'per-partition-key'] as const) {
    it(`is sent again record by record, not left to expire at its TTL (ordering ${ordering})`, async () => {
      const { client, letPutGo, letSummaryGo } = holdingClient();
      const p = producer({ client, ordering });
      const keys = lowerHalfKeys(40);
      const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }).catch((e: unknown) => e));
      await vi.advanceTimersByTimeAsync(150); // one aggregate for old shard 0, in flight
      // Created again, AUTO, with 4 shards; a put finds the old stream gone: the map is dropped and
      // listed again at once, and the summary is read again (its answer held a moment).
      fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
      fake.shards = evenShards(4);
      fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
      const gone = p.put({ partitionKey: 'g', data: 'g' }).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(150);
      expect(await gone).toMatchObject({ code: 'ResourceNotFoundException' });
      letPutGo(); // stored in the new stream, by a map from before: it waits for a listing of all shards
      await vi.advanceTimersByTimeAsync(10);
      letSummaryGo(); // 10 ms later the summary answers: AUTO, where consumers drop every aggregate
      await vi.advanceTimersByTimeAsync(1_000);
      const later = p.put({ partitionKey: 'later', data: 'later' }).catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(2_000);
      const settledAt = Date.now();
      await vi.advanceTimersByTimeAsync(40_000);
      const results = await Promise.all(puts);
      expect({
        codes: [...new Set(results.map((r) => (r as { code?: string }).code ?? 'written'))],
        aggregated: results.filter((r) => (r as PutResult).aggregated === true).length,
        laterWrittenWithin3s:
          (((await later) as PutResult).attempts?.at(-1)?.startedAt ?? Infinity) < settledAt,
      }).toEqual({ codes: ['written'], aggregated: 0, laterWrittenWithin3s: true });
    });
  }
});

/**
 * The stream, deleted, is created again on demand, AUTO, with the 4 shards CreateStream gives (same
 * ids, same ranges): the service routes each record itself, here to the shard after the one its key
 * maps to.
 */
function createdAgainAsAutoWithTheSameShards(): void {
  fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
  let sequence = 0;
  fake.onPut = (call) => ({
    Records: call.entries.map((e) => {
      const owner = fake.shards.indexOf(fake.shardFor(BigInt(e.ExplicitHashKey!)));
      return { ShardId: fake.shards[(owner + 1) % 4]!.id, SequenceNumber: String(++sequence) };
    }),
    $metadata: {},
  });
}

describe('a stream created again as AUTO with the same shards, while the producer sent nothing', () => {
  it('reads the summary again when records land where a map just listed does not send them', async () => {
    fake = new FakeKinesis(4);
    const p = producer();
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    createdAgainAsAutoWithTheSameShards();
    const read = summaries();
    const keys = keysWhere(40, (h) => h < QUARTER);
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `a${i}` }).catch((e: unknown) => e));
    await vi.advanceTimersByTimeAsync(40_000);
    const results = await Promise.all(puts);
    // README: "a stream deleted and created again while the producer sends nothing to it is noticed
    // only once a record lands where it was not predicted". Here it never is.
    expect({
      summaryReadAgain: summaries() > read,
      codes: [...new Set(results.map((r) => (r as { code?: string }).code ?? 'written'))],
    }).toEqual({ summaryReadAgain: true, codes: ['written'] });
  });

  it.each([
    ['', 0],
    [', also when the next try of ListShards is throttled', 1],
  ])(
    'sends alone the records of a hot key, whose aggregate has one hash key%s',
    async (_, throttledTries) => {
      fake = new FakeKinesis(4);
      let throttle = 0;
      const client = {
        send: (command: unknown, options?: unknown) => {
          if (command instanceof ListShardsCommand && throttle > 0) {
            throttle--;
            return Promise.reject(serviceError('LimitExceededException', 400, 'Rate exceeded for stream s'));
          }
          return fake.client.send(command as never, options as never);
        },
        destroy: () => {},
      } as unknown as KinesisClient;
      const p = producer({ client });
      await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
      createdAgainAsAutoWithTheSameShards();
      const read = summaries();
      throttle = throttledTries;
      // Every record of one key in one aggregate: KCL drops it on an AUTO stream all the same.
      const puts = Array.from({ length: 20 }, (_, i) => p.put({ partitionKey: 'hot', data: `a${i}` }));
      await vi.advanceTimersByTimeAsync(40_000);
      const results = await Promise.all(puts);
      expect(summaries()).toBeGreaterThan(read);
      expect(results.filter((r) => r.aggregated)).toEqual([]);
    },
  );
});

describe('a stream found gone again while its summary is read again', () => {
  it('does not take a summary read before the stream went again for the stream that replaced it', async () => {
    // The second read (after the first gone) is answered by the stream as it is then, but late.
    const { client, letGo: letSummaryGo } = holdingOneCall(nthSummary(2), 'asked at once');
    const p = producer({ client });
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    await findStreamGone(p); // gone once: the summary is read again (answer held)
    await vi.advanceTimersByTimeAsync(1_000); // the 4-shard map is listed
    // Gone again, and created again as AUTO, while that read is under way.
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
    fake.shards = evenShards(2);
    fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
    expect(await settledAfter(p.put({ partitionKey: 'g2', data: 'g2' }))).toMatchObject({
      code: 'ResourceNotFoundException',
    });
    letSummaryGo(); // answers with the summary of the stream that went since (partition keys route)
    await vi.advanceTimersByTimeAsync(6_000);
    const keys = lowerHalfKeys(20);
    const results = (await settledAfter(
      Promise.all(keys.map((key, i) => p.put({ partitionKey: key, data: `x${i}` }))),
      1_000,
    )) as PutResult[];
    // Expected: read once more after the second gone, so that nothing is aggregated to the AUTO stream.
    expect({ reads: summaries(), aggregated: results.filter((r) => r.aggregated).length }).toEqual({
      reads: 3,
      aggregated: 0,
    });
  });
});

describe('an aggregate that landed elsewhere while the summary is read again', () => {
  it('is not decided by its range until the summary answers, and then sent again when it says AUTO', async () => {
    const p = producer();
    await settledAfter(p.put({ partitionKey: 'w', data: 'warm-up' }));
    // Created again, AUTO, with 4 shards, while the producer sent nothing to it.
    fake.shards = evenShards(4);
    fake.summary = { RecordDistributionStrategy: 'AUTO' } as typeof fake.summary;
    const read = summaries();
    // Keys of old shard 0 that new shard 1 owns: their aggregate lands on shard 1, not 0 as predicted.
    const keys = keysWhere(2, (h) => h >= QUARTER && h < 2n * QUARTER, 'up-');
    const puts = keys.map((key, i) => p.put({ partitionKey: key, data: `u${i}` }));
    await vi.advanceTimersByTimeAsync(3_000);
    const results = await Promise.all(puts);
    expect(summaries()).toBe(read + 1); // the listing showed reused ids: the summary was read again
    // Consumers drop aggregates on an AUTO stream: these records must not be reported written in one.
    expect(results.map((r) => r.aggregated)).toEqual([false, false]);
  });
});

describe('a record above the limit of the stream created again, queued before it was found gone', () => {
  it('keeps its attempts when it expires waiting for the summary, and is not made out to be unwritten', async () => {
    fake = new FakeKinesis(1);
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    let bigTries = 0;
    fake.onPut = (call) => {
      if (call.entries.some((e) => e.PartitionKey === 'big') && bigTries++ === 0) return 'hang';
      if (call.entries.some((e) => e.PartitionKey === 'g'))
        return { throw: serviceError('ResourceNotFoundException', 400) };
      return undefined;
    };
    const p = producer({
      requestTimeoutMs: 1_000,
      retryBaseDelayMs: 3_000,
      retryMaxDelayMs: 3_000,
      recordTtlMs: 10_000,
    });
    const warm = outcome(p.put({ partitionKey: 'w', data: 'warm-up' }));
    await vi.advanceTimersByTimeAsync(200);
    expect((await warm).value).toBeDefined();
    const big = outcome(p.put({ partitionKey: 'big', data: new Uint8Array(1.5 * MiB) }));
    await vi.advanceTimersByTimeAsync(1_500); // sent, timed out (RequestTimeout): in backoff ~2.97 s
    // The stream is found gone; its summary cannot be read for now (throttled): provisional, 1 MiB.
    fake.describeError = serviceError('LimitExceededException', 400);
    const gone = outcome(p.put({ partitionKey: 'g', data: 'g' }));
    await vi.advanceTimersByTimeAsync(200);
    expect((await gone).error?.code).toBe('ResourceNotFoundException');
    await vi.advanceTimersByTimeAsync(20_000);
    const { error } = await big;
    expect(error?.code).toBe('Expired');
    // Its first request may have stored it: the attempts say so, and so does the message.
    expect(error?.attempts.map((a) => a.errorCode)).toContain('RequestTimeout');
    expect(error?.message).toMatch(/may have stored it|may have been written/);
  });
});
