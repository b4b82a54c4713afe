/**
 * Skewed load: what the shares of the room promise, measured. The producer runs in this case's child,
 * writing through the fault front (enforcing the shard limits, and throttling a stream when told to)
 * to the null sink. Two scenarios, each run until every record has settled:
 * - a hot shard: a burst of puts far larger than its shard writes in the TTL, beside a steady trickle
 *   of puts for another shard;
 * - a throttled stream: one stream whose every entry is throttled fills what it may of the producer,
 *   beside a healthy stream fed with `send()`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BufferFullError, type KinesisProducer, MAX_HASH_KEY } from '../src/index.js';
import { startFaultFront } from '../test/support/fault-front.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { quantile } from './latency.js';
import { startNullKinesis } from './null-kinesis.js';
import { benchProducer } from './producer-feed.js';

const SHARDS = 4;
const SHARD_LIMITS = { recordsPerSecond: 1000, bytesPerSecond: 1024 * 1024 } as const;
/** A short TTL, so that a record held past it shows within seconds. */
const TTL_MS = 4_000;
const MiB = 1024 * 1024;
/** The hot burst: 5.7 MiB for one shard that writes 1 MiB/s, 2 MiB in half the TTL. */
const HOT_PUTS = 300;
const HOT_BYTES = 20_000;
/** One put or send for the other shard or stream this often. */
const TRICKLE_MS = 20;
/** The throttled stream: 6 MB offered to a producer of 4 MiB. */
const SLOW_STREAM = 'throttled';
const SLOW_PUTS = 3_000;
const SLOW_BYTES = 2_000;
const SKEW_MAX_BUFFERED_BYTES = 4 * MiB;
/** How long the healthy stream is fed beside the throttled one. */
const HEALTHY_FEED_MS = 7_000;

const section: Section = {
  title: 'Skewed load',
  about: [
    `A stream of ${SHARDS} shards behind the fault front, which enforces 1 MiB/s and 1,000 records/s a shard,`,
    'in front of the null sink; one producer with default options except those named. "Hot shard":',
    `\`recordTtlMs\` ${TTL_MS.toLocaleString('en-US')}; once the shard map is known, ${HOT_PUTS} puts of`,
    `${HOT_BYTES.toLocaleString('en-US')} B at once, all with an explicit hash key on the first shard`,
    `(5.7 MiB: about 6 s of that shard, which writes 2 MiB in half the TTL), and one put of 100 B every ${TRICKLE_MS} ms`,
    'for the last shard until the burst has settled; "other shard" is the time from put to settle of',
    'those. "Throttled stream": `maxBufferedBytes` 4 MiB, `recordTtlMs` 10,000; the front throttles every',
    `entry of a second stream, ${SLOW_PUTS.toLocaleString('en-US')} records of ${SLOW_BYTES.toLocaleString('en-US')} B are put to it at once (not awaited; those still waiting for room when the feed ends are aborted), then`,
    `for ${HEALTHY_FEED_MS / 1000} s the first stream is sent a record of 100 B every ${TRICKLE_MS} ms; "taken" is the sends not`,
    "refused with BufferFullError, all of which must be written. Peak buffered is the producer's",
    '`bufferedBytes`, sampled every 10 ms. Every run checks that every put and send settled, each burst put',
    'written or expired, and that the producer holds nothing at the end.',
  ].join(' '),
  groupHeader: 'scenario',
  columns: [
    { metric: 'hotWrittenPercent', header: 'hot burst written %', digits: 1 },
    { metric: 'hotExpired', header: 'hot burst expired', digits: 0 },
    { metric: 'otherP50Ms', header: 'other shard p50 ms', digits: 0 },
    { metric: 'otherP99Ms', header: 'other shard p99 ms', digits: 0 },
    { metric: 'healthyTakenPercent', header: 'healthy stream sends taken %', digits: 1 },
    { metric: 'peakBufferedMiB', header: 'peak buffered MiB', digits: 2 },
    { metric: 'seconds', header: 'run, s', digits: 1 },
  ],
  ratios: [],
  maxRuns: 3,
};

type Scenario = 'hot-shard' | 'throttled-stream';

/** Samples `producer.bufferedBytes` every 10 ms until stopped; returns the peak. */
function samplePeak(producer: KinesisProducer): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, producer.bufferedBytes);
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, producer.bufferedBytes);
    },
  };
}

const FIRST_SHARD = '0';
const LAST_SHARD = String(MAX_HASH_KEY);

async function hotShard(producer: KinesisProducer): Promise<Metrics> {
  const peak = samplePeak(producer);
  const start = performance.now();
  const hot = Array.from({ length: HOT_PUTS }, (_, i) =>
    producer
      .put({ partitionKey: `hot-${i}`, explicitHashKey: FIRST_SHARD, data: Buffer.alloc(HOT_BYTES, i) })
      .then(
        () => 'ok',
        (error: { code?: string }) => error.code ?? 'error',
      ),
  );
  let settled = false;
  const outcomes = Promise.all(hot).finally(() => {
    settled = true;
  });
  const otherLatencies: Promise<number>[] = [];
  for (let i = 0; !settled; i++) {
    const putAt = performance.now();
    otherLatencies.push(
      producer
        .put({ partitionKey: `other-${i}`, explicitHashKey: LAST_SHARD, data: Buffer.alloc(100, i) })
        .then(() => performance.now() - putAt),
    );
    await sleep(TRICKLE_MS);
  }
  const results = await outcomes;
  const latencies = Float64Array.from(await Promise.all(otherLatencies)).sort();
  const seconds = (performance.now() - start) / 1000;
  const written = results.filter((r) => r === 'ok').length;
  const expired = results.filter((r) => r === 'Expired').length;
  if (written + expired !== HOT_PUTS) throw new Error(`hot burst: ${JSON.stringify(results)}`);
  return {
    hotWrittenPercent: (100 * written) / HOT_PUTS,
    hotExpired: expired,
    otherP50Ms: quantile(latencies, 0.5),
    otherP99Ms: quantile(latencies, 0.99),
    peakBufferedMiB: peak.stop() / MiB,
    seconds,
  };
}

async function throttledStream(producer: KinesisProducer): Promise<Metrics> {
  const peak = samplePeak(producer);
  const start = performance.now();
  // Puts still waiting for room when the healthy feed ends are aborted: they would wait out the TTL
  // of those taken, then their own.
  const stopSlow = new AbortController();
  const slow = Array.from({ length: SLOW_PUTS }, (_, i) =>
    producer
      .put(
        { streamName: SLOW_STREAM, partitionKey: `slow-${i}`, data: Buffer.alloc(SLOW_BYTES, i) },
        { signal: stopSlow.signal },
      )
      .then(
        () => 'ok',
        (error: { code?: string }) => error.code ?? 'error',
      ),
  );
  let attempts = 0;
  let taken = 0;
  const written: Promise<void>[] = [];
  const until = performance.now() + HEALTHY_FEED_MS;
  for (let i = 0; performance.now() < until; i++) {
    attempts++;
    try {
      let done!: (error: unknown) => void;
      written.push(new Promise<void>((resolve, reject) => (done = (e) => (e ? reject(e) : resolve()))));
      producer.send({ partitionKey: `healthy-${i}`, data: Buffer.alloc(100, i) }, (error) => done(error));
      taken++;
    } catch (error) {
      if (!(error instanceof BufferFullError)) throw error;
      written.pop();
    }
    await sleep(TRICKLE_MS);
  }
  stopSlow.abort();
  await Promise.all(written);
  const outcomes = await Promise.all(slow);
  if (outcomes.some((o) => o !== 'Expired' && o !== 'Aborted')) {
    throw new Error(`throttled stream: ${JSON.stringify([...new Set(outcomes)])}`);
  }
  return {
    healthyTakenPercent: (100 * taken) / attempts,
    peakBufferedMiB: peak.stop() / MiB,
    seconds: (performance.now() - start) / 1000,
  };
}

async function runSkew(params: { scenario: Scenario }, _settings: RunSettings): Promise<Metrics> {
  const sink = await startNullKinesis({ shards: SHARDS });
  const front = await startFaultFront({ upstream: sink.endpoint, shardLimits: SHARD_LIMITS });
  const throttled = params.scenario === 'throttled-stream';
  const producer = benchProducer(
    front.endpoint,
    throttled ? { maxBufferedBytes: SKEW_MAX_BUFFERED_BYTES, recordTtlMs: 10_000 } : { recordTtlMs: TTL_MS },
  );
  try {
    // Both streams in use, their summaries and shard maps known.
    await producer.put({ partitionKey: 'warm-up', data: 'x' });
    if (throttled) {
      await producer.put({ streamName: SLOW_STREAM, partitionKey: 'warm-up', data: 'x' });
      front.script(({ operation, stream, entries }) =>
        operation === 'PutRecords' && stream === SLOW_STREAM
          ? { entries: entries.map(() => 'throttle' as const) }
          : undefined,
      );
    }
    const metrics = throttled ? await throttledStream(producer) : await hotShard(producer);
    if (producer.outstandingRecords !== 0 || producer.waitingPuts !== 0) {
      throw new Error(`left: ${producer.outstandingRecords} records, ${producer.waitingPuts} puts`);
    }
    return metrics;
  } finally {
    await producer.close({ timeoutMs: 0 });
    await front.close();
    await sink.stop();
  }
}

export const skewCases: readonly Case<{ scenario: Scenario }>[] = (
  [
    ['hot-shard', 'hot shard', 'a burst for one shard of four, puts for another beside it'],
    ['throttled-stream', 'throttled stream', 'one stream throttled, sends to another beside it'],
  ] as const
).map(([scenario, group, label]) => ({
  name: `skew/${scenario}`,
  section,
  group,
  label,
  params: { scenario },
  run: runSkew,
}));
