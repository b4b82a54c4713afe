/**
 * Deaggregation, the consumer's side of the codec: our `deaggregate` and `deaggregateAll` against
 * aws-kinesis-agg's `deaggregateSync`, reading the aggregates the producer writes as a Lambda function
 * receives them. In memory: no network.
 */
import { createRequire } from 'node:module';
import {
  DEFAULT_AGGREGATION_MAX_BYTES,
  type DeaggregatedRecord,
  deaggregate,
  deaggregateAll,
  RecordAggregator,
} from '../src/index.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { DATA_BYTES } from './codec.js';
import { measure, ratiosTo, THROUGHPUT_COLUMNS, throughputMetrics } from './measure.js';
import { type BenchRecord, checkReadBack, PARTITION_KEYS, RECORD_SIZES, userRecords } from './workload.js';

/** Kinesis records a Lambda function is handed at a time by default (its event source's BatchSize). */
const LAMBDA_BATCH = 100;

/** The `kinesis` member of a Lambda Kinesis event record, as far as either deaggregator reads it. */
interface LambdaKinesis {
  readonly data: string;
  readonly partitionKey: string;
  readonly sequenceNumber: string;
}

/** A user record as aws-kinesis-agg hands it over: its data in base64. */
interface KinesisAggUserRecord {
  readonly partitionKey: string;
  readonly data: string;
}

const require = createRequire(import.meta.url);
const { deaggregateSync } = require('aws-kinesis-agg') as {
  deaggregateSync(
    record: LambdaKinesis,
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: KinesisAggUserRecord[]) => void,
  ): void;
};

const section: Section = {
  title: 'Deaggregation',
  about: [
    `User records of random bytes, ${PARTITION_KEYS} distinct partition keys, ${DATA_BYTES / 1024 / 1024} MiB`,
    `of data per pass, aggregated before timing by RecordAggregator at ${DEFAULT_AGGREGATION_MAX_BYTES.toLocaleString('en-US')} B (what the producer`,
    'writes) and handed over as a Lambda function receives them: event records whose `kinesis.data` is',
    'base64. One pass reads every user record back, MD5 trailers checked by each: aws-kinesis-agg',
    '`deaggregateSync(record.kinesis, true, …)` record by record (it gives each user record its data in',
    'base64); our `deaggregate(record)` record by record; our `deaggregateAll(batch)` on batches of',
    `${LAMBDA_BATCH} records, Lambda's default batch size (it checks the trailers of a batch together).`,
    'Before timing, each must give back every user record, in order. MB/s counts user data only; CPU is',
    'every thread of the process, GC included.',
  ].join(' '),
  groupHeader: 'record size',
  columns: THROUGHPUT_COLUMNS,
  ratios: ratiosTo('aws-kinesis-agg', 'aws-kinesis-agg'),
};

type Reader = 'aws-kinesis-agg' | 'deaggregate' | 'deaggregateAll';

interface DeaggregationParams {
  readonly recordBytes: number;
  readonly reader: Reader;
}

/** The Lambda batches of one pass: the workload's aggregates, each as an event record. */
function lambdaBatches(records: readonly BenchRecord[]): { kinesis: LambdaKinesis }[][] {
  const aggregator = new RecordAggregator();
  const events: { kinesis: LambdaKinesis }[] = [];
  const push = () => {
    const built = aggregator.build();
    events.push({
      kinesis: {
        data: Buffer.from(built.data).toString('base64'),
        partitionKey: built.partitionKey,
        sequenceNumber: String(10n ** 55n + BigInt(events.length)),
      },
    });
  };
  for (const record of records) {
    if (!aggregator.add(record)) {
      push();
      aggregator.add(record);
    }
  }
  if (aggregator.count > 0) push();
  const batches: { kinesis: LambdaKinesis }[][] = [];
  for (let i = 0; i < events.length; i += LAMBDA_BATCH) batches.push(events.slice(i, i + LAMBDA_BATCH));
  return batches;
}

/** Reads one batch; returns each user record's partition key and data (as the reader gives it). */
function readBatch(
  reader: Reader,
  batch: readonly { kinesis: LambdaKinesis }[],
): (DeaggregatedRecord | KinesisAggUserRecord)[] {
  if (reader === 'deaggregateAll') return deaggregateAll(batch);
  const out: (DeaggregatedRecord | KinesisAggUserRecord)[] = [];
  for (const event of batch) {
    if (reader === 'deaggregate') {
      for (const user of deaggregate(event)) out.push(user);
    } else {
      deaggregateSync(event.kinesis, true, (error, users) => {
        if (error) throw error;
        for (const user of users!) out.push(user);
      });
    }
  }
  return out;
}

/** The user records of every batch, read by `reader`, with their data as bytes. */
function* readBack(reader: Reader, batches: readonly { kinesis: LambdaKinesis }[][]) {
  for (const batch of batches) {
    for (const user of readBatch(reader, batch)) {
      yield {
        partitionKey: user.partitionKey,
        data: typeof user.data === 'string' ? Buffer.from(user.data, 'base64') : user.data,
      };
    }
  }
}

async function runDeaggregation(params: DeaggregationParams, settings: RunSettings): Promise<Metrics> {
  const records = userRecords({
    recordBytes: params.recordBytes,
    totalBytes: DATA_BYTES,
    keyCount: PARTITION_KEYS,
  });
  const batches = lambdaBatches(records);
  checkReadBack(params.reader, records, readBack(params.reader, batches));
  const passBytes = records.length * params.recordBytes;
  const work = async (until: number) => {
    let passes = 0;
    do {
      for (const batch of batches) readBatch(params.reader, batch);
      passes++;
    } while (performance.now() < until);
    return { records: passes * records.length, bytes: passes * passBytes };
  };
  await work(performance.now() + settings.warmupMs);
  return throughputMetrics(await measure(settings.measureMs, work));
}

export const deaggregationCases: readonly Case<DeaggregationParams>[] = RECORD_SIZES.flatMap(
  ({ bytes, label }) => [
    {
      name: `deaggregation/aws-kinesis-agg/${bytes}`,
      section,
      group: label,
      label: 'aws-kinesis-agg deaggregateSync(), checksums on, per record',
      reference: 'aws-kinesis-agg',
      params: { recordBytes: bytes, reader: 'aws-kinesis-agg' as const },
      run: runDeaggregation,
    },
    {
      name: `deaggregation/deaggregate/${bytes}`,
      section,
      group: label,
      label: 'deaggregate(), per record',
      params: { recordBytes: bytes, reader: 'deaggregate' as const },
      run: runDeaggregation,
    },
    {
      name: `deaggregation/deaggregate-all/${bytes}`,
      section,
      group: label,
      label: `deaggregateAll(), per batch of ${LAMBDA_BATCH}`,
      params: { recordBytes: bytes, reader: 'deaggregateAll' as const },
      run: runDeaggregation,
    },
  ],
);
