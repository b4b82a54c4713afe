/**
 * The frame of every case that sends to the null sink: the section they share (so every sender is
 * compared with the raw ceiling), the load they run at, and `measureAgainstSink`.
 */
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { DEFAULT_AGGREGATION_MAX_BYTES } from '../src/index.js';
import type { Metrics, RunSettings, Section } from './case.js';
import { measure, type Tally, throughputMetrics } from './measure.js';
import { startNullKinesis } from './null-kinesis.js';
import { benchClient } from './sdk-client.js';
import { PARTITION_KEYS } from './workload.js';

/** Shards of the null sink's stream. */
export const SHARDS = 4;
/** PutRecords requests in flight at once. */
export const IN_FLIGHT = 8;
/** User data generated per workload; sending cycles over it. */
export const SENDING_DATA_BYTES = 8 * 1024 * 1024;

export const sendingSection: Section = {
  title: 'Sending through the SDK to the null sink',
  about: [
    `A local null Kinesis sink in its own process (${SHARDS} shards, acknowledges everything), user records`,
    `of random bytes with ${PARTITION_KEYS} partition keys, @aws-sdk/client-kinesis over HTTP/1.1 keep-alive`,
    `with retries off, ${IN_FLIGHT} PutRecords requests in flight, each of at most 500 records and 5 MiB.`,
    'Plain SDK: 500 user records per request, unaggregated. aws-kinesis-agg + SDK: its `aggregate()` on',
    '~4 MiB of user records at a time, timed with the sends. Raw ceiling: aggregates built by RecordAggregator',
    `(${DEFAULT_AGGREGATION_MAX_BYTES.toLocaleString('en-US')} B, per predicted shard, as the producer builds`,
    'them) before timing, so only the sends are timed: what a producer built on the SDK could at best reach.',
    'Client CPU is the sending process; sink CPU is the sink process. Every run checks that the sink',
    'received exactly the user records and bytes sent (it counts those inside aggregates itself).',
  ].join(' '),
  groupHeader: 'record size',
  columns: [
    { metric: 'recordsPerSec', header: 'user records/s', digits: 0 },
    { metric: 'mbPerSec', header: 'MB/s', digits: 1 },
    { metric: 'cpuSecPerMillion', header: 'client CPU s / M records', digits: 2 },
    { metric: 'sinkCpuSecPerMillion', header: 'sink CPU s / M records', digits: 2 },
  ],
  ratios: [
    { metric: 'recordsPerSec', header: '× ceiling, records/s' },
    { metric: 'cpuSecPerMillion', header: '× ceiling, client CPU', lowerIsBetter: true },
  ],
};

/**
 * Runs a sending case. `setUp` builds the workload (while the sink starts) and returns the work, which
 * sends with the client it is given until `until` and returns the user records and bytes it had
 * acknowledged. The work is warmed up, then measured; the sink, which counts the user records inside
 * aggregates itself, must then have received exactly those. Adds the sink's CPU per million user
 * records to the throughput figures.
 */
export async function measureAgainstSink(
  settings: RunSettings,
  setUp: () => (client: KinesisClient, until: number) => Promise<Tally>,
): Promise<Metrics> {
  const starting = startNullKinesis({ shards: SHARDS });
  try {
    const work = setUp();
    const sink = await starting;
    const client = benchClient(sink.endpoint, IN_FLIGHT);
    await work(client, performance.now() + settings.warmupMs);
    const before = await sink.stats();
    const m = await measure(settings.measureMs, (until) => work(client, until));
    const after = await sink.stats();
    client.destroy();
    const records = after.userRecords - before.userRecords;
    const bytes = after.userBytes - before.userBytes;
    if (records !== m.tally.records || bytes !== m.tally.bytes) {
      throw new Error(
        `sent ${m.tally.records} user records / ${m.tally.bytes} bytes, the sink received ${records} / ${bytes}`,
      );
    }
    const sinkCpuSec = (after.cpuMicros - before.cpuMicros) / 1e6;
    return { ...throughputMetrics(m), sinkCpuSecPerMillion: (sinkCpuSec / m.tally.records) * 1e6 };
  } finally {
    await (await starting).stop();
  }
}
