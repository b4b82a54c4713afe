import type { Meter } from '@opentelemetry/api';
import { type DataPoint, MeterProvider, type MetricData, MetricReader } from '@opentelemetry/sdk-metrics';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/clock.js';
import {
  deaggregate,
  type KinesisProducer,
  type KinesisProducerOptions,
  type Logger,
  type MeterLike,
  type RecordFailedError,
} from '../src/index.js';
import { ProducerMetrics, ShardMetrics } from '../src/metrics.js';
import {
  evenShards,
  FakeKinesis,
  failEntriesHolding,
  keysOfHalves,
  serviceError,
} from './support/fake-kinesis.js';
import { uncollected } from './support/gc.js';
import { memoryLogger } from './support/memory-logger.js';
import { producersOn } from './support/producers.js';

let fake: FakeKinesis;
const producer = producersOn(() => fake);

beforeEach(() => {
  fake = new FakeKinesis(2);
});

/** What actually went to the fake, counted from the wire. */
function wireCounts() {
  let kinesisRecords = 0;
  let kinesisBytes = 0;
  let userRecords = 0;
  const perShard = new Map<string, number>();
  for (const call of fake.calls) {
    for (const [i, entry] of call.entries.entries()) {
      const result = call.results?.[i];
      if (result?.ShardId === undefined) continue;
      kinesisRecords++;
      kinesisBytes += Buffer.byteLength(entry.PartitionKey!) + entry.Data!.length;
      const users = deaggregate({ data: entry.Data!, partitionKey: entry.PartitionKey! }).length;
      userRecords += users;
      perShard.set(result.ShardId, (perShard.get(result.ShardId) ?? 0) + users);
    }
  }
  return { kinesisRecords, kinesisBytes, userRecords, perShard };
}

describe('metrics()', () => {
  it('counts what was actually sent, stored and retried, per stream and per shard', async () => {
    fake.script.push({ errorCodes: ['InternalFailure'] });
    const p = producer();
    const records = Array.from({ length: 300 }, (_, i) => ({ partitionKey: `k${i % 40}`, data: `d${i}` }));
    const results = await Promise.all(records.map((r) => p.put(r)));
    const m = p.metrics().streams.test!;
    const wire = wireCounts();
    const userBytes = records.reduce((n, r) => n + r.partitionKey.length + r.data.length, 0);
    const retried = results.filter((r) => r.attempts.length > 1).length;
    expect(retried).toBeGreaterThan(0);

    expect(m.UserRecordsReceived.total.sum).toBe(300);
    expect(m.UserRecordsPut.total.sum).toBe(300);
    expect(m.UserRecordsPut.total.sum).toBe(wire.userRecords);
    expect(m.UserRecordsDataPut.total.sum).toBe(userBytes);
    expect(m.KinesisRecordsPut.total.sum).toBe(wire.kinesisRecords);
    expect(m.KinesisRecordsDataPut.total.sum).toBe(wire.kinesisBytes);
    expect(m.ErrorsByCode.InternalFailure!.total.sum).toBe(retried);
    expect(m.AllErrors.total.sum).toBe(retried);
    expect(m.RetriesPerRecord.total).toMatchObject({ count: 300, sum: retried, max: 1 });
    expect(m.RequestTime.total.count).toBe(fake.calls.length);
    expect(m.KinesisRecordsPerPutRecordsRequest.total.sum).toBe(
      fake.calls.reduce((n, c) => n + c.entries.length, 0),
    );
    expect(m.UserRecordsPerPutRecordsRequest.total.sum).toBe(300 + retried);
    expect(m.UserRecordsPerKinesisRecord.total.sum).toBe(300);
    expect(m.BufferingTime.total.count).toBe(300);
    expect(m.BufferingTime.total.min).toBeGreaterThanOrEqual(0);
    expect(m.UserRecordsPending).toBe(0);
    expect(m.OldestRecordAgeMs).toBe(0);
    // Shard figures add up to the stream's, and match where the records went.
    for (const [shardId, count] of wire.perShard)
      expect(m.shards[shardId]!.UserRecordsPut.total.sum).toBe(count);
    expect(Object.values(m.shards).reduce((n, s) => n + s.UserRecordsPut.total.sum, 0)).toBe(300);
    // Everything happened within the window.
    expect(m.UserRecordsPut.window.sum).toBe(300);
  });

  it('reports pending records and the age of the oldest while they wait, and expired ones', async () => {
    vi.useFakeTimers();
    fake.onPut = () => ({ errorCodes: ['ProvisionedThroughputExceededException'] });
    const p = producer({ recordTtlMs: 2000 });
    const failed = p.put({ partitionKey: 'k', data: 'x' }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1500);
    const during = p.metrics().streams.test!;
    expect(during.UserRecordsPending).toBe(1);
    expect(during.OldestRecordAgeMs).toBe(1500);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await failed).toMatchObject({ code: 'Expired' });
    const after = p.metrics().streams.test!;
    expect(after.UserRecordsPending).toBe(0);
    expect(after.UserRecordExpired.total.sum).toBe(1);
    expect(after.ErrorsByCode.ProvisionedThroughputExceededException!.total.sum).toBe(fake.calls.length);
  });

  it('keeps the window to the last minute while totals keep everything', async () => {
    vi.useFakeTimers();
    const p = producer({ maxBufferedTimeMs: 0 });
    await Promise.all([p.put({ partitionKey: 'a', data: '1' }), vi.advanceTimersByTimeAsync(10)]);
    await vi.advanceTimersByTimeAsync(120_000);
    await Promise.all([p.put({ partitionKey: 'a', data: '2' }), vi.advanceTimersByTimeAsync(10)]);
    const m = p.metrics().streams.test!;
    expect(m.UserRecordsPut.total.sum).toBe(2);
    expect(m.UserRecordsPut.window.sum).toBe(1);
  });

  it('counts the retries and buffering of records whose aggregate was split, from their first attempt', async () => {
    vi.useFakeTimers();
    fake = new FakeKinesis(1);
    // The aggregate holding 'poison' fails until the poison record is alone (and expires).
    fake.onPut = failEntriesHolding('poison', 'InternalFailure');
    const p = producer({ recordTtlMs: 20_000 });
    await vi.advanceTimersByTimeAsync(0);
    const puts = Array.from({ length: 8 }, (_, i) =>
      p.put({ partitionKey: i === 3 ? 'poison' : `k${i}`, data: String(i) }).then(
        (result) => result.attempts.length,
        (error: RecordFailedError) => error.attempts.length,
      ),
    );
    await vi.advanceTimersByTimeAsync(25_000);
    const attempts = await Promise.all(puts);
    expect(Math.max(...attempts)).toBeGreaterThan(2); // the split records carry the earlier attempts
    const m = p.metrics().streams.test!;
    // KPL's RetriesPerRecord: every attempt after the first, including those made in the aggregate
    // before it was split.
    expect(m.RetriesPerRecord.total.sum).toBe(attempts.reduce((sum, n) => sum + n - 1, 0));
    // BufferingTime: from arrival to the first attempt, which was at maxBufferedTimeMs (100 ms).
    expect(m.BufferingTime.total.max).toBeLessThanOrEqual(100);
  });

  it('counts a record in the window by the 5-second slice it arrived in', async () => {
    vi.useFakeTimers();
    // To a multiple of 5 s on the producer's clock, so the slices start at t0, t0 + 5 s...
    vi.advanceTimersByTime(5_000 - (systemClock.now() % 5_000));
    const t0 = systemClock.now();
    // Async: sends in one synchronous run of code share one reading of the clock.
    const at = (ms: number) => vi.advanceTimersByTimeAsync(t0 + ms - systemClock.now());
    const p = producer();
    const received = () => p.metrics().streams.test!.UserRecordsReceived;
    for (const ms of [0, 4_900, 5_100, 10_000]) {
      await at(ms);
      p.send({ partitionKey: 'a', data: String(ms) });
    }
    await at(59_999); // the window still reaches back to the slice at t0
    expect(received().window.sum).toBe(4);
    await at(61_000); // the slice at t0 has left the window; the one at t0 + 5 s has not
    expect(received().window.sum).toBe(2);
    await at(66_000);
    expect(received().window.sum).toBe(1);
    await at(120_000);
    p.send({ partitionKey: 'a', data: 'late' });
    expect(received().window.sum).toBe(1);
    expect(received().total.sum).toBe(5);
  });
});

describe('metrics() when an aggregate lands on another shard than predicted', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    fake = new FakeKinesis(1);
  });

  it('counts every Kinesis record the service stored, also the aggregate it took where consumers drop it', async () => {
    const p = producer();
    await vi.advanceTimersByTimeAsync(0); // the map: one shard
    fake.shards = evenShards(2, 'shardId-new-'); // split since
    const [low, high] = keysOfHalves();
    await Promise.all([
      p.put({ partitionKey: low, data: 'low' }),
      p.put({ partitionKey: high, data: 'high' }),
      vi.advanceTimersByTimeAsync(2_000),
    ]);
    // The aggregate of both, then each record again in its own shard.
    const wire = wireCounts();
    expect(wire.kinesisRecords).toBe(3);
    const m = p.metrics().streams.test!;
    expect(m.UserRecordsPut.total.sum).toBe(2);
    expect(m.KinesisRecordsPut.total.sum).toBe(3);
    expect(m.KinesisRecordsDataPut.total.sum).toBe(wire.kinesisBytes);
    expect(m.ErrorsByCode.WrongShard?.total.sum).toBe(2);
  });

  it('counts the attempt that landed elsewhere only for records that had not failed meanwhile', async () => {
    fake.shards = evenShards(1);
    // A request timeout long enough for the slow ListShards below.
    const p = producer({ recordTtlMs: 10_000, maxBufferedTimeMs: 2_000, requestTimeoutMs: 9_000 });
    await vi.advanceTimersByTimeAsync(0);
    fake.shards = evenShards(2, 'child-');
    // The newer map comes after the first record's TTL.
    fake.listShardsDelayMs = 8_500;
    const [low, high] = keysOfHalves();
    const outcome = (key: string) =>
      p.put({ partitionKey: key, data: 'x' }).then(
        (r) => r.attempts.map((a) => a.errorCode ?? 'ok').join(','),
        (e: RecordFailedError) => e.code,
      );
    const first = outcome(low);
    await vi.advanceTimersByTimeAsync(1_900);
    const second = outcome(high); // in the same aggregate, sent at 2 s
    await vi.advanceTimersByTimeAsync(20_000);
    expect([await first, await second]).toEqual(['Expired', 'WrongShard,ok']);
    const m = p.metrics().streams.test!;
    expect(m.UserRecordExpired.total.sum).toBe(1);
    expect(m.ErrorsByCode.WrongShard?.total.sum).toBe(1);
    expect(m.AllErrors.total.sum).toBe(1);
    expect(m.KinesisRecordsPut.total.sum).toBe(wireCounts().kinesisRecords);
  });
});

describe('metrics() of a stream resharded again and again', () => {
  it("drops a closed shard's entry once a window has passed without figures for it; the stream keeps them", async () => {
    vi.useFakeTimers();
    fake = new FakeKinesis(1);
    const p = producer({ maxBufferedTimeMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    const written = new Set<string>();
    for (let generation = 0; generation < 20; generation++) {
      fake.shards = evenShards(4, `gen${generation}-`);
      // The first lands on a shard the map does not know: the map is read again.
      await Promise.all([
        p.put({ partitionKey: `x${generation}`, data: 'x' }),
        vi.advanceTimersByTimeAsync(1_000),
      ]);
      const puts = Array.from({ length: 16 }, (_, i) =>
        p.put({ partitionKey: `k${generation}-${i}`, data: 'x' }),
      );
      await vi.advanceTimersByTimeAsync(1_000);
      for (const result of await Promise.all(puts)) written.add(result.shardId);
    }
    const m = () => p.metrics().streams.test!;
    const open = fake.shards.map((s) => s.id);
    const openWritten = open.filter((id) => written.has(id));
    expect(openWritten.length).toBeGreaterThan(0);
    // Within the window, the shards closed last still show what was written to them.
    expect(Object.keys(m().shards).length).toBeGreaterThan(openWritten.length);
    await vi.advanceTimersByTimeAsync(61_000);
    expect(Object.keys(m().shards).sort()).toEqual(openWritten.sort());
    expect(m().UserRecordsPut.total.sum).toBe(20 * 17);
  });

  /** Reshards the fake `generations` times, `everyMs` apart, writing 16 records to each generation. */
  async function reshardAgainAndAgain(p: KinesisProducer, generations: number, everyMs: number) {
    for (let generation = 0; generation < generations; generation++) {
      fake.shards = evenShards(4, `gen${generation}-`);
      const puts = Array.from({ length: 16 }, (_, i) =>
        p.put({ partitionKey: `k${generation}-${i}`, data: 'x' }),
      );
      await vi.advanceTimersByTimeAsync(everyMs);
      await Promise.all(puts);
    }
  }

  it.each([
    ['ListShards is denied', () => (fake.listShardsError = serviceError('AccessDeniedException', 400))],
    [
      'the stream routes records itself (AUTO), its summary answering before the listing',
      () => {
        fake.summary = { RecordDistributionStrategy: 'AUTO' };
        fake.listShardsDelayMs = 50;
      },
    ],
  ])(
    "without a shard map (%s), drops any shard's entry once a window has passed without figures for it",
    async (_, setUp) => {
      vi.useFakeTimers();
      fake = new FakeKinesis(4);
      setUp();
      const p = producer({ maxBufferedTimeMs: 0, logger: memoryLogger().logger });
      await vi.advanceTimersByTimeAsync(100);
      await reshardAgainAndAgain(p, 20, 1_000);
      const m = () => p.metrics().streams.test!;
      // Within the window, every shard written to shows what was written to it.
      expect(Object.keys(m().shards).length).toBeGreaterThan(4 * 19);
      await vi.advanceTimersByTimeAsync(61_000);
      // Nothing tells the closed shards from the open ones: every quiet one goes.
      expect(Object.keys(m().shards)).toEqual([]);
      expect(m().UserRecordsPut.total.sum).toBe(20 * 16);
    },
  );

  it('drops the quiet shards of a stream without a shard map also when only a Meter reads the metrics', async () => {
    vi.useFakeTimers();
    fake = new FakeKinesis(4);
    fake.listShardsError = serviceError('AccessDeniedException', 400);
    // The attributes of the first shards' figures, held weakly: the producer caches one object per
    // shard (recording allocates none), and lets it go with the shard's entry.
    const firstShards: WeakRef<object>[] = [];
    const seen = new WeakSet<object>();
    const instrument = {
      add: (_value: number, attributes?: Record<string, string>) => {
        if (attributes?.ShardId?.startsWith('gen0-') !== true || seen.has(attributes)) return;
        seen.add(attributes);
        firstShards.push(new WeakRef(attributes));
      },
      record() {},
    };
    const meter: MeterLike = {
      createCounter: () => instrument,
      createHistogram: () => instrument,
      createObservableGauge: () => ({}),
      addBatchObservableCallback() {},
      removeBatchObservableCallback() {},
    };
    const p = producer({ meter, maxBufferedTimeMs: 0, logger: memoryLogger().logger });
    await vi.advanceTimersByTimeAsync(100);
    // 80 s of reshards, and never a metrics() call: the first shards are quiet for more than a window.
    await reshardAgainAndAgain(p, 20, 4_000);
    expect(firstShards.length).toBeGreaterThan(0);
    expect(await uncollected(firstShards)).toBe(0);
  });
});

class TestReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A real OpenTelemetry Meter, and what it holds now, by metric name, at each `collect()`. */
function readMeter(): {
  meter: Meter;
  collect(): Promise<Map<string, MetricData>>;
  shutdown(): Promise<void>;
} {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  return {
    meter: provider.getMeter('kinesis-producer-test'),
    async collect() {
      const { resourceMetrics } = await reader.collect();
      return new Map(
        resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => [m.descriptor.name, m])),
      );
    },
    shutdown: () => provider.shutdown(),
  };
}

describe('metrics of many shards without a shard map', () => {
  it('look for quiet shards at most once a bucket, not at every record to a shard new to them', () => {
    const metrics = new ProducerMetrics(undefined, () => []);
    const quiet = vi.spyOn(ShardMetrics.prototype, 'quiet');
    // 2,000 shards, each written to once, one after the other within a second: each is new.
    for (let i = 0; i < 2_000; i++) metrics.kinesisRecordStored('s', `shard-${i}`, 100, 1_000 + i / 2);
    // Looking over every shard at each new one: 2 million calls.
    expect(quiet.mock.calls.length).toBeLessThan(2_000);
    quiet.mockRestore();
    expect(Object.keys(metrics.snapshot(1_000, new Map()).streams.s!.shards)).toHaveLength(2_000);
    // A window later, all quiet: gone.
    expect(Object.keys(metrics.snapshot(70_000, new Map()).streams.s!.shards)).toHaveLength(0);
  });
});

describe('OpenTelemetry', () => {
  it('feeds a real Meter: counters, histograms and gauges with KPL names and dimensions', async () => {
    const otel = readMeter();
    fake.script.push({ throw: serviceError('ServiceUnavailable', 503) });
    const p = producer({ meter: otel.meter });
    await Promise.all(Array.from({ length: 50 }, (_, i) => p.put({ partitionKey: `k${i}`, data: 'x' })));

    const metrics = await otel.collect();
    const points = (name: string) =>
      (metrics.get(name)?.dataPoints ?? []) as DataPoint<number | { sum?: number; count: number }>[];
    const total = (name: string) => points(name).reduce((n, d) => n + (d.value as number), 0);

    expect(total('UserRecordsReceived')).toBe(50);
    expect(total('UserRecordsPut')).toBe(50);
    expect(total('ErrorsByCode')).toBe(50);
    expect(points('ErrorsByCode')[0]!.attributes).toMatchObject({
      StreamName: 'test',
      ErrorCode: 'ServiceUnavailable',
    });
    const shardIds = new Set(points('UserRecordsPut').map((d) => d.attributes.ShardId));
    expect(shardIds).toEqual(new Set(fake.shards.map((s) => s.id)));
    const retries = points('RetriesPerRecord').reduce(
      (acc, d) => {
        const h = d.value as { sum?: number; count: number };
        return { count: acc.count + h.count, sum: acc.sum + (h.sum ?? 0) };
      },
      { count: 0, sum: 0 },
    );
    expect(retries).toEqual({ count: 50, sum: 50 });
    expect(points('RequestTime').reduce((n, d) => n + (d.value as { count: number }).count, 0)).toBe(
      fake.calls.length,
    );
    expect(points('UserRecordsPending')).toEqual([
      expect.objectContaining({ value: 0, attributes: { StreamName: 'test' } }),
    ]);
    expect(metrics.get('UserRecordsDataPut')!.descriptor.unit).toBe('By');
    await otel.shutdown();
  });
});

describe('OpenTelemetry: expired records', () => {
  it('counts a record that expired in UserRecordExpired', async () => {
    vi.useFakeTimers();
    const otel = readMeter();
    fake.onPut = () => 'hang';
    const p = producer({ meter: otel.meter, recordTtlMs: 1_000 });
    const put = p.put({ partitionKey: 'k', data: 'x' }).catch((error: RecordFailedError) => error.code);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await put).toBe('Expired');
    const expired = (await otel.collect()).get('UserRecordExpired');
    expect(expired?.dataPoints.map((d) => d.value)).toEqual([1]);
    await otel.shutdown();
  });
});

describe('OpenTelemetry with producers sharing a Meter', () => {
  it("adds up their gauges per stream instead of reporting only one producer's", async () => {
    const otel = readMeter();
    fake.hold();
    const a = producer({ meter: otel.meter });
    const b = producer({ meter: otel.meter });
    const puts = [
      ...Array.from({ length: 5 }, (_, i) => a.put({ partitionKey: `a${i}`, data: 'x' })),
      ...Array.from({ length: 3 }, (_, i) => b.put({ partitionKey: `b${i}`, data: 'x' })),
    ];
    const pending = async () => {
      const metric = (await otel.collect()).get('UserRecordsPending');
      return metric?.dataPoints.map((d) => [d.attributes, d.value]);
    };
    expect(await pending()).toEqual([[{ StreamName: 'test' }, 8]]);
    fake.release();
    await Promise.all(puts);
    await a.close();
    // The closed producer is no longer observed; the other still is.
    b.send({ partitionKey: 'late', data: 'x' });
    fake.hold();
    expect(await pending()).toEqual([[{ StreamName: 'test' }, 1]]);
    fake.release();
    await b.close();
    await otel.shutdown();
  });
});

/** A Meter that keeps its batch callbacks the way the OpenTelemetry SDK does, to call them at collection. */
function batchCallbackMeter() {
  const callbacks = new Set<
    (result: { observe(o: object, value: number, attributes?: object): void }) => void
  >();
  const instrument = { add() {}, record() {} };
  const meter: MeterLike = {
    createCounter: () => instrument,
    createHistogram: () => instrument,
    createObservableGauge: () => ({}),
    addBatchObservableCallback: (callback) => callbacks.add(callback),
    removeBatchObservableCallback: (callback) => callbacks.delete(callback),
  };
  return { meter, callbacks };
}

describe('OpenTelemetry after close', () => {
  it('stops observing the gauges once the producer is closed', async () => {
    const { meter, callbacks } = batchCallbackMeter();
    const observed: number[] = [];
    const collect = () => {
      for (const callback of callbacks) callback({ observe: (_o, value) => observed.push(value) });
    };
    const p = producer({ meter });
    await p.put({ partitionKey: 'k', data: 'x' });
    collect();
    expect(observed).toHaveLength(2);
    await p.close();
    // Nothing of the closed producer is left for the Meter to call (or to keep alive).
    expect(callbacks.size).toBe(0);
  });

  it("keeps nothing of a closed producer's streams in a Meter another producer still uses", async () => {
    const { meter, callbacks } = batchCallbackMeter();
    // The attributes of the gauges' observations, held weakly, by stream.
    let observed = new Map<string, WeakRef<object>>();
    const collect = () => {
      observed = new Map();
      for (const callback of callbacks) {
        callback({
          observe: (_o, _value, attributes) =>
            observed.set((attributes as { StreamName: string }).StreamName, new WeakRef(attributes!)),
        });
      }
    };
    producer({ meter });
    const gone: WeakRef<object>[] = [];
    // A service that makes a producer for each new stream it meets and closes it when done with it.
    for (let i = 0; i < 3; i++) {
      const p = producer({ meter, streamName: `tenant-${i}` });
      collect();
      gone.push(observed.get(`tenant-${i}`)!);
      await p.close();
    }
    collect();
    expect([...observed.keys()]).toEqual(['test']);
    expect(await uncollected(gone)).toBe(0);
    // The stream still written to keeps its attributes.
    expect(await uncollected(observed.values())).toBe(1);
  });
});

describe('logging', () => {
  it('never puts credentials in logs or errors', async () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY';
    const keyId = 'AKIAIOSFODNN7SECRETID';
    const lines: string[] = [];
    const log = (context: object, message: string) => lines.push(`${message} ${JSON.stringify(context)}`);
    const logger: Logger = { debug: log, info: log, warn: log, error: log };
    // Nothing listens on this port: every call fails, and everything is logged at debug level.
    const p = producer({
      client: undefined,
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      credentials: { accessKeyId: keyId, secretAccessKey: secret, sessionToken: `${secret}-token` },
      recordTtlMs: 1500,
      requestTimeoutMs: 500,
      logger,
    });
    const error = await p.put({ partitionKey: 'k', data: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Expired' });
    const everything = [
      ...lines,
      JSON.stringify(error, Object.getOwnPropertyNames(error)),
      String((error as Error).stack),
      JSON.stringify((error as { attempts: unknown }).attempts),
    ].join('\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(keyId);
  });
});

function storedOnWire(): number {
  let n = 0;
  for (const call of fake.calls)
    for (const [i] of call.entries.entries()) if (call.results?.[i]?.ShardId !== undefined) n++;
  return n;
}

/**
 * A one-shard stream split since its map was loaded, and ListShards slow to answer: an aggregate of
 * a key of each half is stored on the parent shard, not the one predicted, and waits for a listing
 * that does not come. Returns how each of its two records settles.
 */
async function aggregateLandedElsewhere(options: Partial<KinesisProducerOptions>) {
  vi.useFakeTimers();
  fake = new FakeKinesis(1);
  const p = producer(options);
  await vi.advanceTimersByTimeAsync(0); // the map: one shard
  fake.shards = evenShards(2, 'child-'); // split since
  fake.listShardsDelayMs = 60_000;
  const codes = Promise.all(
    keysOfHalves().map((key) =>
      p.put({ partitionKey: key, data: 'x' }).then(
        () => 'ok',
        (e: RecordFailedError) => e.code,
      ),
    ),
  );
  return { p, codes };
}

describe('KinesisRecordsPut counts an aggregate stored on another shard, waiting for a listing', () => {
  it('when its records all expire first (README: "Every Kinesis record the service took")', async () => {
    const { p, codes } = await aggregateLandedElsewhere({ recordTtlMs: 3_000, requestTimeoutMs: 1_000 });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await codes).toEqual(['Expired', 'Expired']);
    expect(storedOnWire()).toBe(1); // the service took the aggregate
    expect(p.metrics().streams.test!.KinesisRecordsPut.total.sum).toBe(1);
  });

  it('when close({ timeoutMs }) gives up on it first', async () => {
    const { p, codes } = await aggregateLandedElsewhere({ recordTtlMs: 30_000 });
    await vi.advanceTimersByTimeAsync(500); // sent, stored on the parent shard, waiting for a listing
    expect(storedOnWire()).toBe(1);
    const closed = p.close({ timeoutMs: 100 });
    await vi.advanceTimersByTimeAsync(200);
    await closed;
    expect(await codes).toEqual(['CloseTimeout', 'CloseTimeout']);
    expect(p.metrics().streams.test!.KinesisRecordsPut.total.sum).toBe(1);
  });
});

describe('metrics().streams keyed by stream names the Kinesis API accepts', () => {
  it('lists a stream named __proto__ (a valid stream name)', async () => {
    vi.useRealTimers();
    fake = new FakeKinesis(1);
    const p = producer({ streamName: '__proto__' });
    await p.put({ partitionKey: 'k', data: 'x' });
    const { streams } = p.metrics();
    expect(Object.keys(streams)).toEqual(['__proto__']);
    const parsed = JSON.parse(JSON.stringify(streams)) as object;
    expect(Object.getOwnPropertyDescriptor(parsed, '__proto__')?.value.UserRecordsPut.total.sum).toBe(1);
  });

  it('has no entry for a stream named constructor that got no record yet (README: `if (orders === undefined) return`)', () => {
    const p = producer({ streamName: 'orders' });
    expect(p.metrics().streams.constructor).toBeUndefined();
  });

  it('has no entry for a stream that got no record yet once its shard map is read; the first record brings it, shards known', async () => {
    vi.useFakeTimers();
    fake = new FakeKinesis(2);
    const p = producer({ streamName: 'orders' });
    await vi.advanceTimersByTimeAsync(50);
    expect(fake.commands).toContain('ListShards');
    expect(p.metrics().streams.orders).toBeUndefined();
    const put = p.put({ partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(200);
    const { shardId } = await put;
    const orders = p.metrics().streams.orders!;
    expect(orders.UserRecordsPut.total.sum).toBe(1);
    expect(Object.keys(orders.shards)).toEqual([shardId]);
  });
});
