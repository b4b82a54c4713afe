/**
 * The frame of every case that sends to the null sink: the section they share (so every sender is
 * compared with the raw ceiling), the load they run at, and `measureAgainstSink`.
 */
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { DEFAULT_AGGREGATION_MAX_BYTES } from '../src/index.js';
import type { Metrics, RunSettings, Section } from './case.js';
import { measure, ratiosTo, type Tally, throughputMetrics } from './measure.js';
import { startNullKinesis } from './null-kinesis.js';
import { UNPACED_RATE_LIMIT } from './producer-feed.js';
import { benchClient } from './sdk-client.js';
import { PARTITION_KEYS } from './workload.js';

/** Shards of the null sink's stream. */
export const SHARDS = 4;
/** PutRecords requests in flight at once. */
export const IN_FLIGHT = 8;
/** User data generated per workload; sending cycles over it. */
export const SENDING_DATA_BYTES = 8 * 1024 * 1024;
/** User data the callers of `await put()` keep outstanding: one full PutRecords request. */
export const PUT_OUTSTANDING_BYTES = 5 * 1024 * 1024;

/**
 * `put` calls awaited at once when KinesisProducer awaits every record of `recordBytes`: as many as
 * keep `PUT_OUTSTANDING_BYTES` of user data outstanding. Throughput is about callers / latency, and
 * records wait until a request's worth is ready (or `maxBufferedTimeMs`, 100 ms), so fewer callers
 * leave the producer idle; more only queue (and at 10 KiB, 50,000 callers would want 500 MB
 * outstanding, 8 times `maxBufferedBytes`, measuring the wait for room instead of the put).
 */
export function putCallers(recordBytes: number): number {
  return Math.ceil(PUT_OUTSTANDING_BYTES / recordBytes);
}

/**
 * A young generation four times Node 20's default (16 MiB semi-spaces): the tuning the README
 * discusses for many awaited puts of small records, whose promises otherwise outlive it.
 */
export const LARGER_YOUNG_GENERATION = '--max-semi-space-size=64';

/** The peers every sender is compared with: the `reference` of their cases. */
export const SENDING_PEERS = {
  ceiling: 'raw ceiling',
  plainSdk: 'plain SDK',
  kinesisAgg: 'aws-kinesis-agg + SDK',
} as const;

/** Where a sending case sends: the null sink's endpoint, and a client for it with `IN_FLIGHT` sockets. */
export interface SinkTarget {
  readonly endpoint: string;
  readonly client: KinesisClient;
}

export const sendingSection: Section = {
  title: 'Sending through the SDK to the null sink',
  about: [
    `A local null Kinesis sink in its own process (${SHARDS} shards, acknowledges everything), user records`,
    `of random bytes with ${PARTITION_KEYS} partition keys, @aws-sdk/client-kinesis over HTTP/1.1 keep-alive`,
    `with retries off, ${IN_FLIGHT} PutRecords requests in flight, each of at most 500 records and 5 MiB.`,
    'Plain SDK: 500 user records per request, unaggregated. aws-kinesis-agg + SDK: its `aggregate()` on',
    '~4 MiB of user records at a time, timed with the sends. Raw ceiling: aggregates built by RecordAggregator',
    `(${DEFAULT_AGGREGATION_MAX_BYTES.toLocaleString('en-US')} B, per predicted shard, as the producer builds`,
    'them) before timing, so only the sends are timed: what a producer that lets the SDK serialize its',
    'requests could at best reach. KinesisProducer writes the PutRecords body itself (native base64, the',
    "same bytes), so it can pass that ceiling where the SDK's serializer is the larger cost. Aggregate + send",
    "alone: KinesisProducer's own parts and nothing around them, timed together on ~4 MiB of user records at",
    'a time, as aws-kinesis-agg + SDK: each record validated, its key looked up once (table entry and',
    "predicted shard) and added to its shard's aggregate builder; the MD5 trailers of a chunk's aggregates",
    "written together, as the producer writes a request's; the PutRecords body written as the producer",
    'writes it. That is the work a producer cannot skip for a record sent and forgotten, without',
    "KinesisProducer's room, settlement, metrics, timers and retries.",
    'KinesisProducer: one producer for the warm-up and the measurement, with default options except',
    `\`rateLimit\` ${UNPACED_RATE_LIMIT.toLocaleString('en-US')} (%): the sink has no shard limits, and the default pacing of`,
    `1 MiB/s and 1,000 records/s a shard would hold it to ${SHARDS} MiB/s. It creates its own client, with`,
    `the default \`maxConnections\` 24 where the peers have ${IN_FLIGHT} requests in flight; on this loopback sink the`,
    `client is CPU-bound (with maxConnections ${IN_FLIGHT} the producer measured within noise of 24 when these`,
    'cases were written). `send()`: fire and forget, no callback, 1,000 records between turns of the event',
    "loop and a wait for 'drain' when full; flushed before the measurement ends and counted by its",
    '`UserRecordsPut` metric. `await put()`: callers, each a loop awaiting its put before the next, as many',
    `as keep ${PUT_OUTSTANDING_BYTES / 1024 / 1024} MiB of user data outstanding (a full request): its rate is about callers ÷ latency`,
    '(records wait until a request is ready or up to `maxBufferedTimeMs`, 100 ms).',
    'The row "a key per record" gives every record of its workload a UUID of its own, so each key is new to',
    "the producer (past its cache of 16,384 keys) and is measured and hashed again; the peers' rows keep",
    '1,000 keys, of the same length (the plain SDK does no work per distinct key).',
    `Rows marked \`node ${LARGER_YOUNG_GENERATION}\` run the sending process with a young generation four`,
    "times Node's default: a tuning for many awaited puts (see the README), measured beside the default.",
    'Client CPU is the sending process; sink CPU is the sink process. Client peak RSS is the sending',
    "process's largest resident set over its whole run (the workload's 8 MiB of records, warm-up and",
    'measurement). Every run checks that the sink',
    'received exactly the user records and bytes sent (it counts those inside aggregates itself), and that',
    'the MD5 trailer of one aggregate in 16 is right.',
  ].join(' '),
  groupHeader: 'record size',
  columns: [
    { metric: 'recordsPerSec', header: 'user records/s', digits: 0 },
    { metric: 'mbPerSec', header: 'MB/s', digits: 1 },
    { metric: 'cpuSecPerMillion', header: 'client CPU s / M records', digits: 2 },
    { metric: 'sinkCpuSecPerMillion', header: 'sink CPU s / M records', digits: 2 },
    { metric: 'clientPeakRssMiB', header: 'client peak RSS MiB', digits: 0 },
  ],
  ratios: [
    ...ratiosTo(SENDING_PEERS.ceiling, 'ceiling', 'client CPU'),
    ...ratiosTo(SENDING_PEERS.plainSdk, 'plain SDK', 'client CPU'),
    ...ratiosTo(SENDING_PEERS.kinesisAgg, 'aws-kinesis-agg', 'client CPU'),
  ],
};

/**
 * Runs a sending case. `setUp` builds the workload (while the sink starts) and returns the work, which
 * sends to the target it is given until `until` and returns the user records and bytes it had
 * acknowledged. The work is warmed up, then measured; the sink, which counts the user records inside
 * aggregates itself, must then have received exactly those. Adds the sink's CPU per million user
 * records to the throughput figures.
 */
export async function measureAgainstSink(
  settings: RunSettings,
  setUp: () => (target: SinkTarget, until: number) => Promise<Tally>,
): Promise<Metrics> {
  const starting = startNullKinesis({ shards: SHARDS });
  try {
    const work = setUp();
    const sink = await starting;
    const target = { endpoint: sink.endpoint, client: benchClient(sink.endpoint, IN_FLIGHT) };
    await work(target, performance.now() + settings.warmupMs);
    const before = await sink.stats();
    const m = await measure(settings.measureMs, (until) => work(target, until));
    const after = await sink.stats();
    target.client.destroy();
    const records = after.userRecords - before.userRecords;
    const bytes = after.userBytes - before.userBytes;
    if (records !== m.tally.records || bytes !== m.tally.bytes) {
      throw new Error(
        `sent ${m.tally.records} user records / ${m.tally.bytes} bytes, the sink received ${records} / ${bytes}`,
      );
    }
    if (after.badDigests > 0) {
      throw new Error(
        `${after.badDigests} of ${after.digestsChecked} aggregates checked had a wrong MD5 trailer`,
      );
    }
    const sinkCpuSec = (after.cpuMicros - before.cpuMicros) / 1e6;
    return {
      ...throughputMetrics(m),
      sinkCpuSecPerMillion: (sinkCpuSec / m.tally.records) * 1e6,
      clientPeakRssMiB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await (await starting).stop();
  }
}
