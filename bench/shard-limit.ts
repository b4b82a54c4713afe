/**
 * Use of a shard's write limit: one or two producer processes (shard-limit-producer.ts) writing as fast
 * as they can to a one-shard stream whose limits the fault front enforces, in front of the null sink.
 * This case's child holds the front, so its counters see every producer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type FaultFront, startFaultFront } from '../test/support/fault-front.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { forkScript } from './forked.js';
import { startNullKinesis } from './null-kinesis.js';
import { BENCH_STREAM } from './sdk-client.js';
import type { ShardLimitProducerParams, ShardLimitProducerResult } from './shard-limit-producer.js';
import { RECORD_SIZES } from './workload.js';

/** The service's limits of one shard; the front's default burst (1 s). */
const SHARD_LIMITS = { recordsPerSecond: 1000, bytesPerSecond: 1024 * 1024 } as const;
/** Warm-up once the first request has arrived, in multiples of `warmupMs`: two producers converge. */
const WARMUP_MULTIPLE = 5;
/** The measured window, in multiples of `measureMs`. */
const WINDOW_MULTIPLE = 4;

const section: Section = {
  title: 'Shard limit',
  about: [
    'Producers with default options (the adaptive rate limiter on, at 100% of the shard limits) write',
    'as fast as they can, fire and forget, to a stream of one shard; the fault front in front of the',
    'null sink enforces 1,000 records/s and 1 MiB/s (1,048,576 B/s, partition keys + data, an aggregate',
    'counting as one record) with token buckets of 1 s, and throttles the entries beyond them.',
    'One producer, or two producer processes started together on the same shard. After a warm-up of',
    `${WARMUP_MULTIPLE} × \`warmupMs\` from the first request, the front's counters are read over`,
    `${WINDOW_MULTIPLE} × \`measureMs\`: "× 1 MiB/s" is the partition-key + data bytes the shard stored`,
    'per second over the limit, "throttled" the entries the front refused over those it received. User',
    'records are counted by the null sink inside the aggregates. "Slower / faster" compares what the two',
    'producers wrote over the whole run: 1 is a fair share. Goals: at least 0.90 × 1 MiB/s with at most',
    '5% throttled for one producer; 0.90 with at most 10% for two.',
  ].join(' '),
  groupHeader: 'record size',
  columns: [
    { metric: 'limitFraction', header: '× 1 MiB/s', digits: 3, spread: true },
    { metric: 'throttledPercent', header: 'throttled %', digits: 2, spread: true },
    { metric: 'kinesisRecordsPerSec', header: 'Kinesis records/s', digits: 0 },
    { metric: 'userRecordsPerSec', header: 'user records/s', digits: 0 },
    { metric: 'fairness', header: 'slower / faster producer', digits: 2 },
  ],
  ratios: [],
  maxRuns: 3,
};

interface ShardLimitParams {
  readonly recordBytes: number;
  readonly producers: 1 | 2;
}

/** Resolves once the front has seen a PutRecords request. */
async function firstPut(front: FaultFront): Promise<void> {
  while ((front.stats().requests.PutRecords ?? 0) === 0) await sleep(10);
}

async function runShardLimit(params: ShardLimitParams, settings: RunSettings): Promise<Metrics> {
  const sink = await startNullKinesis({ shards: 1 });
  const front = await startFaultFront({ upstream: sink.endpoint, shardLimits: SHARD_LIMITS });
  const script = new URL('./shard-limit-producer.ts', import.meta.url);
  const args: ShardLimitProducerParams = { recordBytes: params.recordBytes };
  const producers = Array.from({ length: params.producers }, () =>
    forkScript<ShardLimitProducerResult>(script, [front.endpoint, JSON.stringify(args)]),
  );
  try {
    await Promise.race([firstPut(front), ...producers.map((p) => p.result)]);
    await sleep(WARMUP_MULTIPLE * settings.warmupMs);
    front.resetStats();
    const sinkBefore = await sink.stats();
    const start = performance.now();
    await sleep(WINDOW_MULTIPLE * settings.measureMs);
    const stats = front.stats();
    const seconds = (performance.now() - start) / 1000;
    const sinkAfter = await sink.stats();
    for (const producer of producers) producer.stop();
    const written = (await Promise.all(producers.map((p) => p.result))).map((r) => r.written);

    let bytes = 0;
    let kinesisRecords = 0;
    for (const shard of Object.values(stats.shards[BENCH_STREAM] ?? {})) {
      bytes += shard.bytes;
      kinesisRecords += shard.records;
    }
    return {
      limitFraction: bytes / seconds / SHARD_LIMITS.bytesPerSecond,
      // A producer that sent nothing in the window had nothing throttled.
      throttledPercent:
        stats.entriesReceived === 0 ? 0 : (100 * stats.entriesThrottled) / stats.entriesReceived,
      kinesisRecordsPerSec: kinesisRecords / seconds,
      userRecordsPerSec: (sinkAfter.userRecords - sinkBefore.userRecords) / seconds,
      ...(written.length === 2 ? { fairness: Math.min(...written) / Math.max(...written) } : {}),
    };
  } finally {
    for (const producer of producers) producer.stop();
    await Promise.allSettled(producers.map((p) => p.result));
    await front.close();
    await sink.stop();
  }
}

/** The smallest and largest records: aggregates of about 370 records and of 4. */
const SIZES = RECORD_SIZES.filter(({ bytes }) => bytes === 100 || bytes === 10 * 1024);

export const shardLimitCases: readonly Case<ShardLimitParams>[] = SIZES.flatMap(({ bytes, label }) =>
  ([1, 2] as const).map((producers) => ({
    name: `shard-limit/${producers}-producer${producers === 1 ? '' : 's'}/${bytes}`,
    section,
    group: label,
    label: producers === 1 ? 'one producer' : 'two producer processes',
    params: { recordBytes: bytes, producers },
    run: runShardLimit,
  })),
);
