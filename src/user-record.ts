// The module binding, not the global: global `Buffer` is an accessor, a getter call on every use.
import { Buffer } from 'node:buffer';
import { types } from 'node:util';
import { describeValue, InvalidRecordError } from './errors.js';
import { MAX_PARTITION_KEY_LENGTH, parseExplicitHashKey } from './hash-key.js';

/** A record as the application hands it over. */
export interface UserRecord {
  /** 1..256 characters of well-formed Unicode; routes the record unless `explicitHashKey` is given. */
  readonly partitionKey: string;
  /** The payload. A string is sent as its UTF-8 bytes. */
  readonly data: Uint8Array | string;
  /** A decimal integer in [0, 2^128-1] that routes the record instead of the partition key. */
  readonly explicitHashKey?: string | undefined;
}

/**
 * Whether `value` is a Uint8Array (a Buffer included), by its internal type: also one made in another
 * realm (a `vm` context, a test sandbox), where `instanceof` says no; never a Proxy or an object that
 * merely inherits from Uint8Array.prototype, whose bytes cannot be read.
 */
export function isUint8Array(value: unknown): value is Uint8Array {
  // Not `instanceof` first: it walks the prototype chain (a Proxy in it throws), and takes any typed
  // array or DataView given Uint8Array.prototype, whose bytes `set` would not copy as they are.
  return types.isUint8Array(value);
}

/** %TypedArray%.prototype's `byteLength` getter: a typed array's size, whatever its own properties say. */
const byteLengthOf = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  'byteLength',
)?.get as (this: Uint8Array) => number;

/** Default maximum size of one Kinesis record (partition key + data): 1 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/** What validation learns about a record, so later stages never measure it twice. */
export interface RecordFacts {
  /**
   * The partition key and the data as validation read them, each read once: use these, not the
   * record's fields again. A getter may answer differently on each read, and what was measured must
   * be what is sent.
   */
  partitionKey: string;
  /** The data; a zero-length Uint8Array is replaced by a constant one of this module's own. */
  data: Uint8Array | string;
  /** UTF-8 length of the partition key. */
  partitionKeyBytes: number;
  /** Length of the data in bytes (UTF-8 length for string data). */
  dataBytes: number;
  /** The explicit hash key as a normalised decimal string, or undefined. */
  explicitHashKey: string | undefined;
  /** The explicit hash key's value, or -1n when there is none. */
  explicitHashKeyValue: bigint;
}

/** `explicitHashKeyValue` without an explicit hash key. A constant: `-1n` in code allocates a BigInt per use. */
const NO_HASH_KEY_VALUE = -1n;

/**
 * The data of every record taken with zero bytes of data. There is nothing of the caller's buffer to
 * keep, and keeping it would let a later change to it (detaching its ArrayBuffer) break the encoding of
 * a record whose bytes, none, cannot have changed.
 */
const NO_DATA = new Uint8Array(0);

/** Returns a fresh {@link RecordFacts} to pass to {@link validateUserRecord}. */
export function newRecordFacts(): RecordFacts {
  return {
    partitionKey: '',
    data: NO_DATA,
    partitionKeyBytes: 0,
    dataBytes: 0,
    explicitHashKey: undefined,
    explicitHashKeyValue: NO_HASH_KEY_VALUE,
  };
}

/** Throws unless `partitionKey` is a string of 1..256 UTF-16 units of well-formed Unicode. */
export function validatePartitionKey(partitionKey: unknown): asserts partitionKey is string {
  if (typeof partitionKey !== 'string') {
    throw new InvalidRecordError(
      'partitionKey',
      `partitionKey must be a string of 1..${MAX_PARTITION_KEY_LENGTH} characters; received ${describeValue(partitionKey)}.`,
    );
  }
  const length = partitionKey.length;
  if (length === 0 || length > MAX_PARTITION_KEY_LENGTH) {
    throw new InvalidRecordError(
      'partitionKey',
      `partitionKey must be 1..${MAX_PARTITION_KEY_LENGTH} characters long; received ${length} characters.`,
    );
  }
  if (!partitionKey.isWellFormed()) {
    // A lone surrogate has no UTF-8 form: the service and this producer would hash different bytes.
    throw new InvalidRecordError(
      'partitionKey',
      'partitionKey must be well-formed Unicode; it contains a lone surrogate (UTF-16 half of a pair).',
    );
  }
}

/** A partition key that passed {@link validatePartitionKey}, with its UTF-8 length. */
export interface ValidatedPartitionKey {
  readonly key: string;
  readonly bytes: number;
}

/** @throws {InvalidRecordError} unless `record` is an object (the fields are checked apart). */
export function assertRecordObject(record: unknown): asserts record is object {
  if (typeof record !== 'object' || record === null) {
    throw new InvalidRecordError(
      'record',
      `A record must be an object { partitionKey, data, explicitHashKey? }; received ${describeValue(record)}.`,
    );
  }
}

/**
 * Validates a user record and fills `facts` with its measured sizes.
 *
 * @param maxRecordBytes - the stream's maximum record size (partition key + data).
 * @param knownKey - a key the caller validated before (e.g. one already in its aggregate): if it is
 *   the record's key, it is neither checked nor measured again, most of the work for a small record.
 * @param limit - what `maxRecordBytes` is, read only for the error of a record above it (by default
 *   the stream's maximum record size).
 * @throws {InvalidRecordError} naming the field at fault and its limit.
 */
export function validateUserRecord(
  record: unknown,
  maxRecordBytes: number,
  facts: RecordFacts,
  knownKey?: ValidatedPartitionKey,
  limit?: { readonly recordLimitName: string },
): void {
  assertRecordObject(record);
  const { partitionKey, data, explicitHashKey } = record as Record<string, unknown>;
  let partitionKeyBytes: number;
  if (knownKey !== undefined && knownKey.key === partitionKey) {
    partitionKeyBytes = knownKey.bytes;
  } else {
    validatePartitionKey(partitionKey);
    partitionKeyBytes = Buffer.byteLength(partitionKey, 'utf8');
  }

  let dataBytes: number;
  if (typeof data === 'string') {
    dataBytes = Buffer.byteLength(data, 'utf8');
  } else if (isUint8Array(data)) {
    // `length`, the getter V8 inlines: `byteLength` cost 4.5% of aggregateAll's CPU at 100 B. Where
    // they disagree (a length redefined on the array or a subclass, a view detached since Node 20's
    // optimized code read it), the encoder, which measures by `byteLength`, refuses the data as
    // changed. Only a zero (no data is kept for it) or a length that is no byte count at all (NaN
    // would stay in the room's count for good) is measured again here, by the array's own getter.
    dataBytes = data.length;
    if (dataBytes === 0 || dataBytes >>> 0 !== dataBytes) dataBytes = byteLengthOf.call(data);
  } else {
    throw new InvalidRecordError(
      'data',
      `data must be a Uint8Array (or Buffer) or a string; received ${describeValue(data)}.`,
    );
  }

  if (partitionKeyBytes + dataBytes > maxRecordBytes) {
    throw new InvalidRecordError(
      'data',
      `partitionKey + data is ${partitionKeyBytes + dataBytes} bytes, above ${limit?.recordLimitName ?? "the stream's maximum record size"} of ${maxRecordBytes} bytes.`,
    );
  }

  if (explicitHashKey === undefined) {
    facts.explicitHashKey = undefined;
    facts.explicitHashKeyValue = NO_HASH_KEY_VALUE;
  } else {
    const value = parseExplicitHashKey(explicitHashKey);
    facts.explicitHashKeyValue = value;
    // Normalise ("007" → "7") so equal keys share one table entry and the service sees canonical form.
    facts.explicitHashKey =
      (explicitHashKey as string).length > 1 && (explicitHashKey as string)[0] === '0'
        ? value.toString()
        : (explicitHashKey as string);
  }
  facts.partitionKey = partitionKey as string;
  facts.data = dataBytes === 0 && typeof data !== 'string' ? NO_DATA : data;
  facts.partitionKeyBytes = partitionKeyBytes;
  facts.dataBytes = dataBytes;
}
