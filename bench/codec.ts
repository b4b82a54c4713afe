/**
 * Codec throughput: our RecordAggregator and aggregateAll against aws-kinesis-agg, turning user
 * records into KPL aggregates in memory — no network, no shard map, no batching.
 */
import {
  aggregateAll,
  DEFAULT_AGGREGATION_MAX_BYTES,
  deaggregate,
  type KinesisRecord,
  RecordAggregator,
} from '../src/index.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { type KinesisAggRecord, kinesisAggAggregate } from './kinesis-agg.js';
import { measure, ratiosTo, THROUGHPUT_COLUMNS, throughputMetrics } from './measure.js';
import { type BenchRecord, checkReadBack, PARTITION_KEYS, RECORD_SIZES, userRecords } from './workload.js';

/** aws-kinesis-agg's fixed aggregate limit, which ours is given too: 1 MiB of data per aggregate. */
const SAME_AS_KINESIS_AGG_BYTES = 1024 * 1024;
/** User data per pass over the workload: well past the 1 MiB L2 of a core, yet quick to generate and verify. */
export const DATA_BYTES = 8 * 1024 * 1024;

const section: Section = {
  title: 'Codec throughput',
  about: [
    `User records of random bytes, ${PARTITION_KEYS} distinct partition keys, ${DATA_BYTES / 1024 / 1024} MiB`,
    'of data per pass, all generated before timing; one pass turns them all into aggregates and keeps the',
    'output. RecordAggregator: `add()` until it returns false, `build()`, start again. `aggregateAll()` and',
    "aws-kinesis-agg's `aggregate()`: over the whole pass. All are held to 1 MiB per aggregate, the limit built into",
    `aws-kinesis-agg; the ${DEFAULT_AGGREGATION_MAX_BYTES.toLocaleString('en-US')} B row is the KPL default the producer uses, shown for scale and not`,
    'like for like. Before timing, every output is deaggregated with our `deaggregate` and must give back',
    'every input record, in order. MB/s counts user data only; CPU is every thread of the process, GC',
    'included.',
  ].join(' '),
  groupHeader: 'record size',
  columns: [...THROUGHPUT_COLUMNS, { metric: 'aggregateKiB', header: 'mean aggregate KiB', digits: 1 }],
  ratios: ratiosTo('aws-kinesis-agg', 'aws-kinesis-agg'),
};

interface CodecParams {
  readonly recordBytes: number;
  readonly codec: 'RecordAggregator' | 'aggregateAll' | 'aws-kinesis-agg';
  /** Only for ours: aws-kinesis-agg's limit is fixed. */
  readonly maxBytes?: number;
}

type Encoded = readonly (KinesisRecord | KinesisAggRecord)[];

/** The documented way to use RecordAggregator: add until full, build, go on. */
function encodeWithRecordAggregator(records: readonly BenchRecord[], maxBytes: number): KinesisRecord[] {
  const aggregator = new RecordAggregator({ maxBytes });
  const out: KinesisRecord[] = [];
  for (const record of records) {
    if (!aggregator.add(record)) {
      out.push(aggregator.build());
      aggregator.add(record);
    }
  }
  if (aggregator.count > 0) out.push(aggregator.build());
  return out;
}

/** The user records in `output`, as our `deaggregate` reads them. */
function* readBack(output: Encoded) {
  for (const record of output) yield* deaggregate({ partitionKey: record.partitionKey, data: record.data });
}

async function runCodec(params: CodecParams, settings: RunSettings): Promise<Metrics> {
  const records = userRecords({
    recordBytes: params.recordBytes,
    totalBytes: DATA_BYTES,
    keyCount: PARTITION_KEYS,
  });
  const maxBytes = params.maxBytes ?? SAME_AS_KINESIS_AGG_BYTES;
  const encoders = {
    RecordAggregator: (batch: readonly BenchRecord[]) => encodeWithRecordAggregator(batch, maxBytes),
    aggregateAll: (batch: readonly BenchRecord[]) => aggregateAll(batch, { maxBytes }),
    'aws-kinesis-agg': kinesisAggAggregate,
  };
  const encode: (records: readonly BenchRecord[]) => Encoded | Promise<Encoded> = encoders[params.codec];

  const sample = await encode(records);
  checkReadBack(params.codec, records, readBack(sample));
  let aggregateBytes = 0;
  for (const record of sample) aggregateBytes += record.data.byteLength;

  const passBytes = records.length * params.recordBytes;
  const work = async (until: number) => {
    let passes = 0;
    do {
      await encode(records);
      passes++;
    } while (performance.now() < until);
    return { records: passes * records.length, bytes: passes * passBytes };
  };
  await work(performance.now() + settings.warmupMs);
  const m = await measure(settings.measureMs, work);
  return { ...throughputMetrics(m), aggregateKiB: aggregateBytes / sample.length / 1024 };
}

export const codecCases: readonly Case<CodecParams>[] = RECORD_SIZES.flatMap(({ bytes, label }) => [
  {
    name: `codec/aws-kinesis-agg/${bytes}`,
    section,
    group: label,
    label: 'aws-kinesis-agg aggregate(), 1 MiB',
    reference: 'aws-kinesis-agg',
    params: { recordBytes: bytes, codec: 'aws-kinesis-agg' },
    run: runCodec,
  },
  {
    name: `codec/record-aggregator-1mib/${bytes}`,
    section,
    group: label,
    label: 'RecordAggregator, maxBytes 1 MiB',
    params: { recordBytes: bytes, codec: 'RecordAggregator', maxBytes: SAME_AS_KINESIS_AGG_BYTES },
    run: runCodec,
  },
  {
    name: `codec/aggregate-all-1mib/${bytes}`,
    section,
    group: label,
    label: 'aggregateAll(), maxBytes 1 MiB',
    params: { recordBytes: bytes, codec: 'aggregateAll', maxBytes: SAME_AS_KINESIS_AGG_BYTES },
    run: runCodec,
  },
  {
    name: `codec/record-aggregator-kpl-default/${bytes}`,
    section,
    group: label,
    label: `RecordAggregator, maxBytes ${DEFAULT_AGGREGATION_MAX_BYTES.toLocaleString('en-US')} (KPL default; not like for like)`,
    params: { recordBytes: bytes, codec: 'RecordAggregator', maxBytes: DEFAULT_AGGREGATION_MAX_BYTES },
    run: runCodec,
  },
]);
