// The module binding, not the global: global `Buffer` is an accessor, a getter call on every use.
import { Buffer } from 'node:buffer';
import { types } from 'node:util';
import { CorruptAggregateError, describeValue, InvalidOptionError, InvalidRecordError } from './errors.js';
import { MAX_HASH_KEY, md5Bytes, parseDigits, partitionKeyHash } from './hash-key.js';
import { md5Each } from './md5-lanes.js';
import { type OptionNames, optionNames, warnUnknownOptions } from './option-checks.js';
import {
  AGGREGATE_OVERHEAD_BYTES,
  DIGEST_BYTES,
  decodeAggregatedRecord,
  hasMagic,
  MAGIC,
  ProtobufParseError,
} from './record-format.js';
import { isUint8Array } from './user-record.js';

/** A record as `GetRecords` of `@aws-sdk/client-kinesis` returns it. */
export interface SdkKinesisRecord {
  // Required, as in the SDK's type (which allows undefined): a record without it cannot be read.
  readonly Data: Uint8Array | undefined;
  readonly PartitionKey?: string | undefined;
  readonly SequenceNumber?: string | undefined;
  readonly ApproximateArrivalTimestamp?: Date | undefined;
  readonly EncryptionType?: string | undefined;
}

/**
 * A record of an AWS Lambda Kinesis event (`event.Records[i]`): `KinesisStreamRecord` of
 * `@types/aws-lambda` fits, and so does the event's JSON as it arrives. Only `kinesis` is read.
 */
export interface LambdaKinesisRecord {
  readonly kinesis: {
    /** Base64 of the record's bytes. */
    readonly data: string;
    readonly partitionKey: string;
    readonly sequenceNumber: string;
    /** Seconds since the epoch, with a fractional part. */
    readonly approximateArrivalTimestamp?: number | undefined;
    readonly kinesisSchemaVersion?: string | undefined;
    readonly encryptionType?: string | undefined;
  };
  // The event's other members, declared so an object literal of a whole event record type-checks.
  // (No index signature: an interface such as @types/aws-lambda's would not be assignable to one.)
  readonly eventSource?: string | undefined;
  readonly eventVersion?: string | undefined;
  readonly eventID?: string | undefined;
  readonly eventName?: string | undefined;
  readonly invokeIdentityArn?: string | undefined;
  readonly awsRegion?: string | undefined;
  readonly eventSourceARN?: string | undefined;
}

/** A plain camelCase record, e.g. the `kinesis` payload of a Lambda event or one of your own. */
export interface PlainKinesisRecord {
  /** The bytes, or their base64 (as in a Lambda payload). */
  readonly data: Uint8Array | string;
  readonly partitionKey: string;
  readonly sequenceNumber?: string | undefined;
  readonly explicitHashKey?: string | undefined;
  /** A Date, or seconds since the epoch (Lambda's convention). */
  readonly approximateArrivalTimestamp?: Date | number | undefined;
}

/** Any record `deaggregate` accepts. */
export type DeaggregateInput = SdkKinesisRecord | LambdaKinesisRecord | PlainKinesisRecord;

/** One user record out of a Kinesis record. */
export interface DeaggregatedRecord {
  readonly partitionKey: string;
  /**
   * The explicit hash key the producer gave the user record, when the record travelled inside an
   * aggregate (the aggregate keeps it). A record sent on its own has none here, whatever it was
   * given: Kinesis routes by it but does not return it (GetRecords has no such field), unless the
   * input passes `explicitHashKey` itself.
   */
  readonly explicitHashKey?: string;
  /** The user's bytes (a view into the Kinesis record's bytes when it was aggregated). */
  readonly data: Uint8Array;
  /** The sequence number of the Kinesis record that carried it. */
  readonly sequenceNumber: string;
  /** The index of the user record inside its aggregate; 0 for a record that was not aggregated. */
  readonly subSequenceNumber: number;
  /** Whether the user record came out of a KPL aggregate. */
  readonly aggregated: boolean;
  readonly approximateArrivalTimestamp?: Date;
}

/** A shard's hash-key range, as decimal strings or bigints, or as `Shard.HashKeyRange` from the SDK. */
export type HashKeyRange =
  | { readonly startingHashKey: string | bigint; readonly endingHashKey: string | bigint }
  | { readonly StartingHashKey?: string | undefined; readonly EndingHashKey?: string | undefined };

/**
 * Options of {@link deaggregate} and {@link deaggregateAll}. One they do not know is ignored, with a
 * process warning naming the option most likely meant (once per name in a process).
 */
export interface DeaggregateOptions {
  /**
   * The hash-key range of the shard the record was read from. As KCL does, an aggregate holding any
   * user record whose hash key falls outside it is dropped whole. It was stored there by a producer
   * whose shard map was out of date (a reshard); KPL and this package send its records again, to the
   * shard that owns them, but a producer that mixes shards in an aggregate does not, and its records
   * are lost to consumers that filter so.
   * @default the whole range [0, 2^128-1]
   */
  readonly hashKeyRange?: HashKeyRange | undefined;
  /**
   * What to do with a damaged aggregate: a record that starts with the KPL magic and is evidently an
   * aggregate — its MD5 trailer matches its body, or its body reads as an aggregate holding records —
   * but cannot be read whole (a bad MD5, unparsable protobuf, a key index out of range or an explicit
   * hash key that is not a number). `'passthrough'` returns it as one user record, as KCL does for a
   * bad MD5 or protobuf (for a bad key, KCL keeps the records before it and drops the rest); `'throw'`
   * raises {@link CorruptAggregateError}.
   *
   * Any other record passes through in both modes, as in KCL: one without the magic, and one with it
   * that is not evidently an aggregate (its MD5 does not match and its body does not read as one, or
   * it is too short for one). The data of an ordinary record starts with the magic once in 2^32 random
   * payloads (encrypted ones, say): such a record must not stop a consumer.
   * @default 'passthrough'
   */
  readonly onCorrupt?: 'passthrough' | 'throw';
}

/** Every option's name, so that a misspelt one is pointed out instead of silently taking a default. */
const DEAGGREGATE_NAMES = optionNames<DeaggregateOptions>()('deaggregate', ['hashKeyRange', 'onCorrupt']);
const DEAGGREGATE_ALL_NAMES: OptionNames = { ...DEAGGREGATE_NAMES, api: 'deaggregateAll' };

interface NormalizedInput {
  data: Uint8Array;
  partitionKey: string;
  sequenceNumber: string;
  explicitHashKey: string | undefined;
  approximateArrivalTimestamp: Date | undefined;
}

/**
 * Extracts the user records of one Kinesis record with KCL's semantics: a KPL aggregate yields its user
 * records with their sub-sequence numbers; anything else yields itself.
 *
 * For a batch (a Lambda event's `Records`, a GetRecords response), {@link deaggregateAll} is faster.
 *
 * @example
 * ```ts
 * // One record
 * for (const user of deaggregate(record)) handle(user);
 * // GetRecords, filtering by the shard's range as KCL does
 * const out = (GetRecordsOutput.Records ?? []).flatMap((r) => deaggregate(r, { hashKeyRange: shard.HashKeyRange }));
 * ```
 * @throws {InvalidOptionError} for wrong options.
 * @throws {InvalidRecordError} when `record` is none of the accepted shapes.
 * @throws {CorruptAggregateError} only with `onCorrupt: 'throw'`.
 */
export function deaggregate(
  record: DeaggregateInput,
  options: DeaggregateOptions = {},
): DeaggregatedRecord[] {
  const checked = checkOptions(options, DEAGGREGATE_NAMES);
  return deaggregateChecked(normalizeInput(record), checked);
}

/** `deaggregate`'s options, checked once, with the range as numbers. */
interface CheckedOptions {
  readonly start: bigint;
  readonly end: bigint;
  readonly onCorrupt: 'passthrough' | 'throw';
}

/** @throws {InvalidOptionError} for options `deaggregate` cannot take. */
function checkOptions(options: DeaggregateOptions, names: OptionNames): CheckedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', 'an object (or left out)', options);
  }
  const [start, end] = resolveRange(options.hashKeyRange);
  const onCorrupt = options.onCorrupt ?? 'passthrough';
  if (onCorrupt !== 'passthrough' && onCorrupt !== 'throw') {
    throw new InvalidOptionError('onCorrupt', "'passthrough' or 'throw'", onCorrupt);
  }
  warnUnknownOptions(options, names);
  return { start, end, onCorrupt };
}

/**
 * `digest`: the MD5 of the record's body, when the caller has computed it (see {@link deaggregateAll});
 * left out, it is computed here.
 */
function deaggregateChecked(
  input: NormalizedInput,
  options: CheckedOptions,
  digest?: Uint8Array,
): DeaggregatedRecord[] {
  const { start, end, onCorrupt } = options;
  const bytes = input.data;

  // KCL: aggregated only with the magic, at least one body byte after it besides the digest, a
  // matching MD5 and a body that parses.
  if (!hasMagic(bytes) || !mayBeAggregate(bytes)) return [passThrough(input)];
  // Set for a damaged aggregate (see `onCorrupt`); an ordinary record that starts with the magic has none.
  let reason: string | undefined;
  const body = bodyOf(bytes);
  if (trailerIs(bytes, digest ?? md5Bytes(body))) {
    try {
      return expand(input, body, start, end);
    } catch (error) {
      if (!(error instanceof ProtobufParseError)) throw error;
      reason = `its body is not a valid AggregatedRecord: ${error.message}`;
    }
  } else if (onCorrupt === 'throw' && holdsRecords(body)) {
    reason = 'its MD5 trailer does not match its body';
  }
  if (reason !== undefined && onCorrupt === 'throw') {
    throw new CorruptAggregateError(
      `Kinesis record ${input.sequenceNumber || '(no sequence number)'} starts with the KPL magic but ${reason}.`,
      input.sequenceNumber || undefined,
    );
  }
  return [passThrough(input)];
}

/**
 * Records deaggregateAll reads at a time: their trailers are checked together, so the more the better
 * for speed, but an iterable is read no further ahead of the record that fails the call than this.
 */
const WINDOW = 64;

/**
 * {@link deaggregate} over many records (e.g. a GetRecords response, a Lambda event's `Records`),
 * flattened in order. Faster than `deaggregate` record by record: the MD5 trailers of the aggregates
 * are checked together, several at a time. An iterable is read 64 records at a time, never further
 * ahead. `undefined` (the SDK types `Records` as optional) gives an empty list.
 *
 * @example
 * ```ts
 * // AWS Lambda
 * export const handler = async (event) => {
 *   for (const user of deaggregateAll(event.Records)) handle(user);
 * };
 * ```
 *
 * @throws {InvalidOptionError} for wrong options, even with no record.
 * @throws {InvalidRecordError} when `records` is not iterable (the whole Lambda event instead of its
 * `Records`) or is a string or bytes (a record's data instead of the records), and as `deaggregate`
 * does.
 * @throws {CorruptAggregateError} as `deaggregate` does.
 */
export function deaggregateAll(
  records: Iterable<DeaggregateInput> | undefined,
  options: DeaggregateOptions = {},
): DeaggregatedRecord[] {
  // Checked before the records, so that wrong options are refused even with no record to read.
  const checked = checkOptions(options, DEAGGREGATE_ALL_NAMES);
  const out: DeaggregatedRecord[] = [];
  if (records === undefined) return out;
  if (typeof (records as { [Symbol.iterator]?: unknown } | null)?.[Symbol.iterator] !== 'function') {
    // The whole Lambda event instead of its Records is the likely slip.
    const hint =
      typeof records === 'object' && records !== null && 'Records' in records
        ? ' (it has `Records`: pass those)'
        : '';
    throw new InvalidRecordError(
      'records',
      `records must be an iterable of Kinesis records, such as a Lambda event's or a GetRecords response's \`Records\`; received ${describeValue(records)}${hint}.`,
    );
  }
  // Iterable, but of characters or bytes: a record's data instead of the records.
  if (typeof records === 'string' || isUint8Array(records)) {
    throw new InvalidRecordError(
      'records',
      `records must be an iterable of Kinesis records, such as a Lambda event's or a GetRecords response's \`Records\`; received ${describeValue(records)}, which looks like a record's data: pass the records.`,
    );
  }
  const window: NormalizedInput[] = [];
  const readWindow = () => {
    // Emptied first: if a record in it fails the call, nothing is left to read again.
    const inputs = window.splice(0);
    const digests = bodyDigests(inputs);
    for (let i = 0; i < inputs.length; i++) {
      for (const user of deaggregateChecked(inputs[i]!, checked, digests[i])) out.push(user);
    }
  };
  try {
    for (const record of records) {
      window.push(normalizeInput(record));
      if (window.length === WINDOW) readWindow();
    }
  } catch (error) {
    // A record of none of the shapes, or an iterable that threw: the records before it are read
    // first, as they would be one at a time, and one of them may fail the call instead.
    readWindow();
    throw error;
  }
  readWindow();
  return out;
}

/**
 * The MD5 of the body of each input that may be an aggregate (undefined for the others), computed
 * together, four at a time (see md5-lanes.ts): with records of 1 KiB, MD5 was three quarters of
 * deaggregating.
 */
function bodyDigests(inputs: readonly NormalizedInput[]): (Uint8Array | undefined)[] {
  const digests = new Array<Uint8Array | undefined>(inputs.length);
  const bodies: Uint8Array[] = [];
  const into: Uint8Array[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const bytes = inputs[i]!.data;
    if (!hasMagic(bytes) || !mayBeAggregate(bytes)) continue;
    const digest = new Uint8Array(DIGEST_BYTES);
    digests[i] = digest;
    bodies.push(bodyOf(bytes));
    into.push(digest);
  }
  md5Each(bodies, into);
  return digests;
}

/**
 * Whether `body` reads as an aggregate holding records: what tells an aggregate whose MD5 trailer no
 * longer matches from an ordinary record whose data happens to start with the magic.
 */
function holdsRecords(body: Uint8Array): boolean {
  try {
    // Its tables are not checked: an index out of range is damage too, as a bad hash key is.
    return decodeAggregatedRecord(body, false).records.length > 0;
  } catch (error) {
    if (error instanceof ProtobufParseError) return false;
    throw error;
  }
}

/** Whether `bytes` is long enough for magic + at least one body byte + MD5. */
function mayBeAggregate(bytes: Uint8Array): boolean {
  return bytes.length > AGGREGATE_OVERHEAD_BYTES;
}

/** What an aggregate's MD5 is taken over: the bytes between the magic and the trailer. */
function bodyOf(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(MAGIC.length, bytes.length - DIGEST_BYTES);
}

/** Whether the last 16 bytes of `bytes` are `digest`. */
function trailerIs(bytes: Uint8Array, digest: Uint8Array): boolean {
  const trailer = bytes.length - DIGEST_BYTES;
  for (let i = 0; i < DIGEST_BYTES; i++) if (bytes[trailer + i] !== digest[i]) return false;
  return true;
}

function expand(input: NormalizedInput, body: Uint8Array, start: bigint, end: bigint): DeaggregatedRecord[] {
  const decoded = decodeAggregatedRecord(body);
  /** Explicit hash keys by table index, each parsed once, when a record uses it (KCL parses no other). */
  const hashKeys: bigint[] = [];
  // An MD5 hash key always lies in [0, 2^128-1]: unless the range is narrower, only explicit hash keys
  // can fall outside it, and partition keys need no hashing.
  const hashPartitionKeys = start > 0n || end < MAX_HASH_KEY;
  /** MD5 hash keys by partition-key table index, each computed once. */
  const partitionKeyHashes: bigint[] = [];
  const out: DeaggregatedRecord[] = [];
  for (let i = 0; i < decoded.records.length; i++) {
    const sub = decoded.records[i]!;
    const partitionKey = decoded.partitionKeys[sub.partitionKeyIndex]!;
    const explicitHashKey =
      sub.explicitHashKeyIndex >= 0 ? decoded.explicitHashKeys[sub.explicitHashKeyIndex] : undefined;
    let hashKey: bigint | undefined;
    if (explicitHashKey !== undefined) {
      hashKey = hashKeys[sub.explicitHashKeyIndex] ??= parseTableHashKey(explicitHashKey);
    } else if (hashPartitionKeys) {
      hashKey = partitionKeyHashes[sub.partitionKeyIndex] ??= partitionKeyHash(partitionKey);
    }
    // KCL drops the whole aggregate, not just this record: it belongs to another shard's history.
    if (hashKey !== undefined && (hashKey < start || hashKey > end)) return [];
    out.push(userRecord(input, partitionKey, explicitHashKey, sub.data, i, true));
  }
  return out;
}

/**
 * Table hash keys are parsed as Java's `new BigInteger(s)` does (optional sign, decimal digits); one
 * too long for a hash key is only known to be out of range, not parsed (see parseDigits).
 */
function parseTableHashKey(value: string): bigint {
  if (!/^[+-]?[0-9]+$/.test(value)) {
    throw new ProtobufParseError(`explicit hash key ${describeValue(value)} is not a decimal integer`);
  }
  const signed = value.charCodeAt(0) === 0x2b || value.charCodeAt(0) === 0x2d;
  const magnitude = parseDigits(signed ? value.slice(1) : value);
  return value.charCodeAt(0) === 0x2d ? -magnitude : magnitude;
}

function passThrough(input: NormalizedInput): DeaggregatedRecord {
  return userRecord(input, input.partitionKey, input.explicitHashKey, input.data, 0, false);
}

function userRecord(
  input: NormalizedInput,
  partitionKey: string,
  explicitHashKey: string | undefined,
  data: Uint8Array,
  subSequenceNumber: number,
  aggregated: boolean,
): DeaggregatedRecord {
  const out: {
    partitionKey: string;
    explicitHashKey?: string;
    data: Uint8Array;
    sequenceNumber: string;
    subSequenceNumber: number;
    aggregated: boolean;
    approximateArrivalTimestamp?: Date;
  } = { partitionKey, data, sequenceNumber: input.sequenceNumber, subSequenceNumber, aggregated };
  if (explicitHashKey !== undefined) out.explicitHashKey = explicitHashKey;
  if (input.approximateArrivalTimestamp !== undefined)
    out.approximateArrivalTimestamp = input.approximateArrivalTimestamp;
  return out;
}

function normalizeInput(record: DeaggregateInput): NormalizedInput {
  if (typeof record !== 'object' || record === null) {
    throw new InvalidRecordError(
      'record',
      `deaggregate expects a Kinesis record object; received ${describeValue(record)}.`,
    );
  }
  if ('kinesis' in record && typeof record.kinesis === 'object' && record.kinesis !== null) {
    const k = record.kinesis;
    return {
      data: bytesOf(k.data, 'kinesis.data'),
      partitionKey: stringOf(k.partitionKey, 'kinesis.partitionKey'),
      sequenceNumber: optionalString(k.sequenceNumber, 'kinesis.sequenceNumber'),
      explicitHashKey: undefined,
      approximateArrivalTimestamp: timestampOf(k.approximateArrivalTimestamp),
    };
  }
  if ('Data' in record) {
    return {
      data: bytesOf(record.Data, 'Data'),
      partitionKey: stringOf(record.PartitionKey, 'PartitionKey'),
      sequenceNumber: optionalString(record.SequenceNumber, 'SequenceNumber'),
      explicitHashKey: undefined,
      approximateArrivalTimestamp: timestampOf(record.ApproximateArrivalTimestamp),
    };
  }
  if ('data' in record) {
    const ehk = record.explicitHashKey;
    return {
      data: bytesOf(record.data, 'data'),
      partitionKey: stringOf(record.partitionKey, 'partitionKey'),
      sequenceNumber: optionalString(record.sequenceNumber, 'sequenceNumber'),
      explicitHashKey: ehk === undefined ? undefined : stringOf(ehk, 'explicitHashKey'),
      approximateArrivalTimestamp: timestampOf(record.approximateArrivalTimestamp),
    };
  }
  throw new InvalidRecordError(
    'record',
    `deaggregate expects a GetRecords record ({ Data, PartitionKey, SequenceNumber }), a Lambda Kinesis event record ({ kinesis: { data, partitionKey, sequenceNumber } }) or a plain record ({ data, partitionKey, sequenceNumber })${'Records' in record ? '; this one has `Records` (a whole event or response): pass each of those, or all of them to deaggregateAll' : ''}.`,
  );
}

function bytesOf(value: unknown, field: string): Uint8Array {
  if (isUint8Array(value)) return value;
  if (typeof value === 'string') {
    const bytes = decodeBase64(value);
    if (bytes !== undefined) return bytes;
  }
  throw new InvalidRecordError(
    field,
    `${field} must be a Uint8Array or a base64 string; received ${describeValue(value)}.`,
  );
}

/**
 * Padded base64, as Lambda and the Kinesis API write it, or undefined. Node's decoder skips characters
 * that are not base64, so plain text would otherwise turn into bytes nobody sent: a skipped character
 * shows as fewer bytes than the length promises. (A regular expression takes 100 times as long, and
 * overflows V8's stack on some megabytes.)
 */
function decodeBase64(value: string): Uint8Array | undefined {
  // Node also reads base64url's "-" and "_", which Lambda and the API never write: more likely text.
  if (value.length % 4 !== 0 || value.includes('-') || value.includes('_')) return undefined;
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === (value.length / 4) * 3 - padding ? bytes : undefined;
}

function stringOf(value: unknown, field: string): string {
  if (typeof value === 'string') return value;
  throw new InvalidRecordError(field, `${field} must be a string; received ${describeValue(value)}.`);
}

function optionalString(value: unknown, field: string): string {
  return value === undefined ? '' : stringOf(value, field);
}

function timestampOf(value: unknown): Date | undefined {
  // Also a Date of another realm (a vm context), as records' bytes may be.
  if (types.isDate(value)) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(Math.round(value * 1000));
  return undefined;
}

function resolveRange(range: HashKeyRange | undefined): [bigint, bigint] {
  if (range === undefined) return [0n, MAX_HASH_KEY];
  if (typeof range !== 'object' || range === null) {
    throw new InvalidOptionError('hashKeyRange', 'a shard hash-key range object', range);
  }
  const start = 'startingHashKey' in range ? range.startingHashKey : range.StartingHashKey;
  const end = 'endingHashKey' in range ? range.endingHashKey : range.EndingHashKey;
  const first = rangeBound(start, 'hashKeyRange.startingHashKey');
  const last = rangeBound(end, 'hashKeyRange.endingHashKey');
  // An empty range would drop every aggregate without a word.
  if (last < first) {
    throw new InvalidOptionError('hashKeyRange.endingHashKey', `at least startingHashKey (${first})`, end);
  }
  return [first, last];
}

function rangeBound(value: unknown, field: string): bigint {
  const bound =
    typeof value === 'bigint'
      ? value
      : typeof value === 'string' && /^[0-9]+$/.test(value)
        ? parseDigits(value)
        : undefined;
  if (bound === undefined || bound > MAX_HASH_KEY || bound < 0n) {
    throw new InvalidOptionError(field, 'a hash key in [0, 2^128-1], as a decimal string or a bigint', value);
  }
  return bound;
}
