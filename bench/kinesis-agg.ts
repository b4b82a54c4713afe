/**
 * aws-kinesis-agg (the awslabs Node module for the KPL format), the peer our codec is compared with.
 * Its own typings import the v2 `aws-sdk`, which is not installed, so it is typed here for what the
 * benchmarks use.
 */
import { createRequire } from 'node:module';
import type { BenchRecord } from './workload.js';

/** A Kinesis record as aws-kinesis-agg hands it over: its data is always an aggregate. */
export interface KinesisAggRecord {
  readonly partitionKey: string;
  readonly ExplicitHashKey?: string;
  readonly data: Buffer;
}

const require = createRequire(import.meta.url);
const { aggregate } = require('aws-kinesis-agg') as {
  aggregate(
    records: readonly BenchRecord[],
    encodedRecordHandler: (record: KinesisAggRecord, done: (error?: Error) => void) => void,
    afterPutAggregatedRecords: () => void,
    errorCallback: (error: Error) => void,
  ): void;
};

/**
 * Aggregates `records` with aws-kinesis-agg's documented entry point, `aggregate()`, and resolves with
 * the aggregates it built. Its size limit is fixed: 1 MiB - 20 bytes of protobuf per aggregate.
 *
 * `aggregate()` encodes every aggregate synchronously, then hands them one by one to the handler
 * through an async queue; the handler here only collects them and calls back at once, so the queue
 * costs one setImmediate per call, not per record.
 */
export function kinesisAggAggregate(records: readonly BenchRecord[]): Promise<KinesisAggRecord[]> {
  return new Promise((resolve, reject) => {
    const out: KinesisAggRecord[] = [];
    aggregate(
      records,
      (record, done) => {
        out.push(record);
        done();
      },
      () => resolve(out),
      reject,
    );
  });
}
