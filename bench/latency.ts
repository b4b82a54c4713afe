/**
 * Latency: how long `await producer.put(record)` takes to settle at a steady load, against the null
 * sink at half of what the producer takes through `put()` and against kinesis-local at a low rate.
 */
import { createStream, localClient, startLocalKinesis } from '../scripts/local-kinesis.js';
import type { KinesisProducer } from '../src/index.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { startNullKinesis } from './null-kinesis.js';
import {
  benchProducer,
  putUntil,
  RecordCycle,
  sendUntil,
  UNPACED_RATE_LIMIT,
  writtenDuring,
} from './producer-feed.js';
import { BENCH_STREAM } from './sdk-client.js';
import { SENDING_DATA_BYTES, SHARDS } from './sending.js';
import { PARTITION_KEYS, userRecords } from './workload.js';

const RECORD_BYTES = 100;
/** kinesis-local stores about 1 MB/s; 500 records/s of 100 B stays far below what it takes. */
const KINESIS_LOCAL_RATE = 500;
/** The producer's default `maxBufferedTimeMs`, which both cases keep: the figure p99 is held to. */
const MAX_BUFFERED_TIME_MS = 100;
/** Timed window, in multiples of `measureMs`: long enough for a p99 of 1,800 puts at kinesis-local's rate. */
const WINDOW_MEASURES = 3;

const section: Section = {
  title: 'Latency of await put()',
  about: [
    `Time from \`put()\` to its promise settling, for ${RECORD_BYTES} B records with ${PARTITION_KEYS} partition`,
    `keys on ${SHARDS} shards and the producer's default \`maxBufferedTimeMs\` (${MAX_BUFFERED_TIME_MS} ms). A pacer`,
    'puts records at a steady rate without awaiting them: every millisecond, those due by then. After a',
    `warm-up of \`warmupMs\` at that rate, every put of the next ${WINDOW_MEASURES} × \`measureMs\` is timed; all`,
    'must succeed. Null sink, with `rateLimit` raised as in the sending section and otherwise default',
    'options: the same child first warms up, then measures how many records a second the producer',
    'writes when fed as fast as it takes them, with `send()` and with `put()` (a promise per record,',
    'which costs it more CPU), for `measureMs` each, and paces puts at half the `put()` figure (half the',
    '`send()` figure would load `put()` at 70-90% of its own capacity, not half). kinesis-local: the',
    `Kinesis API server LocalStack runs, over HTTP, at ${KINESIS_LOCAL_RATE} records/s (it stores only about 1 MB/s),`,
    "default options; its response times vary with the machine's load. Mean PutRecords: the producer's",
    '`RequestTime` over the timed window, the part of the wait spent on the server. A record waits until',
    `its shard's aggregate holds 51,200 B or its first record is ${MAX_BUFFERED_TIME_MS} ms old, so under a light`,
    `load latency stays below ${MAX_BUFFERED_TIME_MS} ms plus a round trip; the goal is p99 within`,
    `${MAX_BUFFERED_TIME_MS + 20} ms on the null sink.`,
  ].join(' '),
  groupHeader: 'target',
  columns: [
    { metric: 'sendRecordsPerSec', header: 'send() capacity, records/s', digits: 0 },
    { metric: 'putRecordsPerSec', header: 'put() capacity, records/s', digits: 0 },
    { metric: 'offeredRecordsPerSec', header: 'offered records/s', digits: 0 },
    { metric: 'p50Ms', header: 'p50 ms', digits: 1 },
    { metric: 'p99Ms', header: 'p99 ms', digits: 1, spread: true },
    { metric: 'maxMs', header: 'max ms', digits: 1 },
    { metric: 'meanRequestMs', header: 'mean PutRecords ms', digits: 1 },
  ],
  ratios: [],
  maxRuns: 3,
};

/**
 * The user records per second the producer writes when fed as fast as it takes them: with `send()`
 * (fire and forget) and with `put()` (a promise per record), each for `durationMs` and then flushed,
 * after a warm-up of `warmupMs` (connections, shard map, JIT).
 */
async function capacities(
  producer: KinesisProducer,
  records: RecordCycle,
  warmupMs: number,
  durationMs: number,
): Promise<{ sendRecordsPerSec: number; putRecordsPerSec: number }> {
  await writtenDuring(producer, () => sendUntil(producer, records, performance.now() + warmupMs));
  let failure: unknown;
  const rate = async (feed: (until: number) => Promise<void>) => {
    const start = performance.now();
    const written = await writtenDuring(producer, () => feed(start + durationMs));
    if (failure !== undefined) throw failure;
    return written / ((performance.now() - start) / 1000);
  };
  return {
    sendRecordsPerSec: await rate((until) => sendUntil(producer, records, until)),
    putRecordsPerSec: await rate((until) =>
      putUntil(producer, records, until, (error) => {
        failure ??= error;
      }),
    ),
  };
}

/** PutRecords requests the producer has made, and their total time in ms (its `RequestTime` metric). */
function requestTime(producer: KinesisProducer): { count: number; sumMs: number } {
  let count = 0;
  let sumMs = 0;
  for (const stream of Object.values(producer.metrics().streams)) {
    count += stream.RequestTime.total.count;
    sumMs += stream.RequestTime.total.sum;
  }
  return { count, sumMs };
}

/** The value at quantile `q` of sorted `values` (nearest rank). */
export function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/**
 * Puts `rate` records a second, spread evenly at millisecond steps, for `warmupMs` and then
 * `windowMs`, and times every put of the window from the call to its settling. Resolves once all
 * have settled.
 */
async function pacedPuts(
  producer: KinesisProducer,
  records: RecordCycle,
  rate: number,
  warmupMs: number,
  windowMs: number,
): Promise<Metrics> {
  const latencies: number[] = [];
  let failure: unknown;
  let timedPuts = 0;
  // Counted in the puts' own reactions rather than awaited with flush(): flush() may resolve before
  // the reaction of the last put it waited for has run.
  let unsettled = 0;
  let allSettled: (() => void) | undefined;
  const settledOne = () => {
    if (--unsettled === 0) allSettled?.();
  };
  const failed = (error: unknown) => {
    failure ??= error;
    settledOne();
  };
  const start = performance.now();
  const windowStart = start + warmupMs;
  const end = windowStart + windowMs;
  let sent = 0;
  let requestsBefore: { count: number; sumMs: number } | undefined;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (now >= windowStart) requestsBefore ??= requestTime(producer);
      const due = Math.floor((rate * (Math.min(now, end) - start)) / 1000);
      for (; sent < due; sent++) {
        const putAt = performance.now();
        const put = producer.put(records.next());
        unsettled++;
        if (putAt < windowStart) {
          put.then(settledOne, failed);
          continue;
        }
        timedPuts++;
        put.then(() => {
          latencies.push(performance.now() - putAt);
          settledOne();
        }, failed);
      }
      if (now >= end) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  if (unsettled > 0)
    await new Promise<void>((resolve) => {
      allSettled = resolve;
    });
  if (failure !== undefined) throw failure;
  const requestsAfter = requestTime(producer);
  const sorted = Float64Array.from(latencies).sort();
  return {
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1]!,
    offeredRecordsPerSec: timedPuts / (windowMs / 1000),
    meanRequestMs:
      (requestsAfter.sumMs - requestsBefore!.sumMs) / (requestsAfter.count - requestsBefore!.count),
  };
}

interface LatencyParams {
  readonly target: 'null-sink' | 'kinesis-local';
}

function runLatency(params: LatencyParams, settings: RunSettings): Promise<Metrics> {
  return params.target === 'null-sink' ? againstNullSink(settings) : againstKinesisLocal(settings);
}

function workload(): RecordCycle {
  return new RecordCycle(
    userRecords({ recordBytes: RECORD_BYTES, totalBytes: SENDING_DATA_BYTES, keyCount: PARTITION_KEYS }),
  );
}

async function againstNullSink(settings: RunSettings): Promise<Metrics> {
  const sink = await startNullKinesis({ shards: SHARDS });
  const producer = benchProducer(sink.endpoint, { rateLimit: UNPACED_RATE_LIMIT });
  try {
    const records = workload();
    const capacity = await capacities(producer, records, settings.warmupMs, settings.measureMs);
    const windowMs = WINDOW_MEASURES * settings.measureMs;
    const rate = capacity.putRecordsPerSec / 2;
    return { ...capacity, ...(await pacedPuts(producer, records, rate, settings.warmupMs, windowMs)) };
  } finally {
    await producer.close();
    await sink.stop();
  }
}

async function againstKinesisLocal(settings: RunSettings): Promise<Metrics> {
  const server = await startLocalKinesis();
  const admin = localClient(server.endpoint);
  let producer: KinesisProducer | undefined;
  try {
    await createStream(admin, BENCH_STREAM, SHARDS);
    producer = benchProducer(server.endpoint);
    const windowMs = WINDOW_MEASURES * settings.measureMs;
    return await pacedPuts(producer, workload(), KINESIS_LOCAL_RATE, settings.warmupMs, windowMs);
  } finally {
    await producer?.close();
    admin.destroy();
    await server.stop();
  }
}

export const latencyCases: readonly Case<LatencyParams>[] = [
  {
    name: 'latency/null-sink',
    section,
    group: `null sink, ${RECORD_BYTES} B`,
    label: 'await put() at half its capacity',
    params: { target: 'null-sink' },
    run: runLatency,
  },
  {
    name: 'latency/kinesis-local',
    section,
    group: `kinesis-local, ${RECORD_BYTES} B`,
    label: `await put() at ${KINESIS_LOCAL_RATE} records/s`,
    params: { target: 'kinesis-local' },
    run: runLatency,
  },
];
