/**
 * The data the benchmarks feed to every implementation: generated before any timing starts, and the
 * same objects handed to each peer of a comparison.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';

/** A user record: the shape RecordAggregator, aws-kinesis-agg and the producer all accept. */
export interface BenchRecord {
  readonly partitionKey: string;
  readonly data: Buffer;
}

/** The user record sizes every section measures, with the label their tables show. */
export const RECORD_SIZES = [
  { bytes: 100, label: '100 B' },
  { bytes: 1024, label: '1 KiB' },
  { bytes: 10 * 1024, label: '10 KiB' },
] as const;

/** Distinct partition keys in a workload. */
export const PARTITION_KEYS = 1000;

/** PutRecords limits the benchmarks batch by: KPL's CollectionMaxCount and CollectionMaxSize. */
const PUT_RECORDS_MAX_COUNT = 500;
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;

/**
 * User records of `recordBytes` random bytes each, `totalBytes` of data in all, each with one of
 * `keyCount` partition keys drawn at random. The keys are UUIDs: never integer-like, which
 * aws-kinesis-agg would mis-index (it builds its key table with Object.keys()).
 */
export function userRecords(options: {
  readonly recordBytes: number;
  readonly totalBytes: number;
  readonly keyCount: number;
}): BenchRecord[] {
  const keys = Array.from({ length: options.keyCount }, () => randomUUID());
  const count = Math.max(1, Math.floor(options.totalBytes / options.recordBytes));
  // One allocation sliced into records, as Buffer's own pool slices small buffers.
  const pool = randomBytes(count * options.recordBytes);
  return Array.from({ length: count }, (_, i) => ({
    partitionKey: keys[randomInt(keys.length)]!,
    data: pool.subarray(i * options.recordBytes, (i + 1) * options.recordBytes),
  }));
}

/**
 * Throws unless `output` is exactly `input`, in order (same partition keys, same bytes): how a codec
 * case checks what it read back before it is timed. `label` names the case in the error.
 */
export function checkReadBack(
  label: string,
  input: readonly BenchRecord[],
  output: Iterable<{ readonly partitionKey: string; readonly data: Uint8Array }>,
): void {
  let i = 0;
  for (const user of output) {
    const expected = input[i];
    if (
      expected === undefined ||
      user.partitionKey !== expected.partitionKey ||
      !expected.data.equals(user.data)
    ) {
      throw new Error(`${label}: user record ${i} read back is not the one put in`);
    }
    i++;
  }
  if (i !== input.length) throw new Error(`${label}: ${input.length} records put in, ${i} read back`);
}

/** Bytes a record counts for against PutRecords' request limit: partition key + data. */
function requestBytes(record: { readonly partitionKey: string; readonly data: Uint8Array }): number {
  return Buffer.byteLength(record.partitionKey) + record.data.byteLength;
}

/**
 * Splits `items` in order into PutRecords-sized groups: at most 500 records and 5 MiB of partition
 * keys + data each, as KPL collects them.
 */
export function packRequests<T extends { readonly partitionKey: string; readonly data: Uint8Array }>(
  items: readonly T[],
): T[][] {
  const requests: T[][] = [];
  let current: T[] = [];
  let currentBytes = 0;
  for (const item of items) {
    const bytes = requestBytes(item);
    if (
      current.length > 0 &&
      (current.length >= PUT_RECORDS_MAX_COUNT || currentBytes + bytes > PUT_RECORDS_MAX_BYTES)
    ) {
      requests.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(item);
    currentBytes += bytes;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}
