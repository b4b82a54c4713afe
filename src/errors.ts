import { Buffer } from 'node:buffer';
import { types } from 'node:util';
import type { ProducerRecord } from './producer.js';
import type { Attempt } from './result.js';

/**
 * Every error this package raises is a {@link KinesisProducerError}: `instanceof` works across the
 * hierarchy and `code` is a stable string to switch on (it never changes between minor versions).
 *
 * Programmer errors (bad input, bad options) are thrown or rejected at the call that made them and are
 * never retried. Runtime failures of a record carry the record and every attempt made for it.
 */

/** Stable codes of the errors raised by this package (service error codes are passed through as-is). */
export const ErrorCode = {
  /** Bad input at the call: the record can never be written. */
  InvalidRecord: 'InvalidRecord',
  /** A constructor or function option is wrong. */
  InvalidOption: 'InvalidOption',
  /** `deaggregate` with `onCorrupt: 'throw'` met a damaged aggregate. */
  CorruptAggregate: 'CorruptAggregate',
  /** The record's `recordTtlMs` passed before it could be written. */
  Expired: 'Expired',
  /** `put`/`send` after `close()`. */
  ProducerClosed: 'ProducerClosed',
  /** The producer is at `maxOutstandingRecords`/`maxBufferedBytes` and the call does not wait. */
  BufferFull: 'BufferFull',
  /** The caller's AbortSignal ended a wait. */
  Aborted: 'Aborted',
  /** `close({ timeoutMs })` or its signal ended before the record could be written. */
  CloseTimeout: 'CloseTimeout',
  /**
   * An accepted record turned out larger than the stream's record limit, which was not known yet when
   * it was taken (a stream summary that had not answered).
   */
  RecordTooLarge: 'RecordTooLarge',
  /** An accepted record's data changed length before it was written (its buffer was reused or detached). */
  DataChanged: 'DataChanged',
  /** `RecordAggregator.build()` with no record added. */
  EmptyAggregate: 'EmptyAggregate',
  /**
   * A defect of this package (or a throw it could not contain) cut an accepted record's way short:
   * building its Kinesis record, or reading the answer to its request, in which case it may have been
   * written. The error says which; `cause` is what was thrown.
   */
  Internal: 'Internal',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error raised by this package. */
export class KinesisProducerError extends Error {
  /** A stable, machine-readable code. */
  readonly code: string;
  /** True when the same operation may succeed if tried again later. */
  readonly retryable: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    // Not new.target.name: a minifying bundler renames classes. Subclasses set their own.
    this.name = 'KinesisProducerError';
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * A user record that can never be written: wrong type, partition key out of range, explicit hash key
 * out of range, data larger than the stream's record limit. Thrown at the call that passed it.
 */
export class InvalidRecordError extends KinesisProducerError {
  override name = 'InvalidRecordError';
  /** The record field at fault, e.g. `partitionKey`, `explicitHashKey`, `data`. */
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidRecord, message, options);
    this.field = field;
  }
}

/** An option passed to a constructor or function is missing, of the wrong type or out of range. */
export class InvalidOptionError extends KinesisProducerError {
  override name = 'InvalidOptionError';
  /** The option at fault. */
  readonly option: string;

  /**
   * `secret`: the value may hold a secret, so only its kind and size are told. `shownLength`: the
   * longest string told in full (longer ones are told by their length).
   */
  constructor(option: string, expected: string, received: unknown, secret = false, shownLength = 40) {
    super(
      ErrorCode.InvalidOption,
      `Option \`${option}\` must be ${expected}; received ${secret ? describeKind(received) : describeValue(received, shownLength)}.`,
    );
    this.option = option;
  }
}

/**
 * A Kinesis record starts with the KPL magic bytes but is not a valid aggregate (too short, bad
 * checksum, unparsable protobuf, key index out of range, explicit hash key not a number). Only raised
 * by `deaggregate` and `deaggregateAll` when the caller asked for it with `onCorrupt: 'throw'`; by
 * default such records pass through unchanged, as KCL does.
 */
export class CorruptAggregateError extends KinesisProducerError {
  override name = 'CorruptAggregateError';
  /** Sequence number of the Kinesis record, when known. */
  readonly sequenceNumber: string | undefined;

  constructor(message: string, sequenceNumber: string | undefined) {
    super(ErrorCode.CorruptAggregate, message);
    this.sequenceNumber = sequenceNumber;
  }
}

/**
 * A record the producer accepted but could not write. `code` is the service's error code (for example
 * `ResourceNotFoundException`, `AccessDeniedException`, `ProvisionedThroughputExceededException` with
 * `failIfThrottled`) or one of this package's: `Expired` when `recordTtlMs` passed first,
 * `CloseTimeout` when `close()` gave up on it, `RecordTooLarge`, `DataChanged`, `Internal` (a defect of
 * this package, with the error behind it as `cause`).
 *
 * `retryable` is true when putting the same record again later may succeed: it was throttled, it
 * expired, or `close()` gave up on it.
 */
export class RecordFailedError extends KinesisProducerError {
  override name = 'RecordFailedError';
  /** The record exactly as it was passed to `put`/`send` (the same object). */
  readonly record: ProducerRecord;
  /** Every attempt made to write it (empty when it failed before the first request). */
  readonly attempts: readonly Attempt[];
  /** The stream it was bound for. */
  readonly streamName: string;
  /** The shard it was predicted to go to or was last sent to, when known. */
  readonly shardId: string | undefined;

  constructor(
    code: string,
    message: string,
    details: {
      record: ProducerRecord;
      attempts: readonly Attempt[];
      streamName: string;
      shardId: string | undefined;
      retryable: boolean;
      cause?: unknown;
    },
  ) {
    super(code, message, { cause: details.cause, retryable: details.retryable });
    this.record = details.record;
    this.attempts = details.attempts;
    this.streamName = details.streamName;
    this.shardId = details.shardId;
  }
}

/** `put` or `send` was called after `close()`. */
export class ProducerClosedError extends KinesisProducerError {
  override name = 'ProducerClosedError';
  constructor() {
    super(
      ErrorCode.ProducerClosed,
      'The producer is closed: put() and send() are not accepted after close().',
    );
  }
}

/**
 * The producer holds `maxOutstandingRecords` records or `maxBufferedBytes` bytes, or the record's
 * shard holds its share of them (see the README's "Backpressure and memory"): thrown by `send()`
 * (which never waits; wait for `'drain'`), and by `put()` with `onFull: 'reject'`. The record was not
 * taken.
 */
export class BufferFullError extends KinesisProducerError {
  override name = 'BufferFullError';
  /**
   * `share` names the shard (or, while its shards are unknown, the stream) whose share of the room
   * was full while the producer as a whole had room; the counts and limits are then that share's.
   */
  constructor(
    outstandingRecords: number,
    bufferedBytes: number,
    room: { records: number; bytes: number },
    share?: string,
  ) {
    const records = Number.isFinite(room.records)
      ? `${outstandingRecords} of ${room.records} records`
      : `${outstandingRecords} records`;
    super(
      ErrorCode.BufferFull,
      share === undefined
        ? `The producer is full (${records}, ${bufferedBytes} of ${room.bytes} bytes allowed now: maxOutstandingRecords and maxBufferedBytes, or less to keep no more than the streams can write in half of recordTtlMs): the record was not taken. Wait for 'drain', or use put(), which waits.`
        : `The producer's room for ${share} is full (${records}, ${bufferedBytes} of ${room.bytes} bytes allowed now: what the shard writes in half of recordTtlMs at rateLimit, or its part of the producer once that is over half full; none while more than one record and an eighth of that have waited longer, or while puts for it wait): the record was not taken. Wait for 'drain', or use put(), which waits.`,
      { retryable: true },
    );
  }
}

/**
 * A wait ended by the caller's AbortSignal; `cause` is the signal's reason. From `put`: the record was
 * not taken. From `putAll`: the records it took still settle; the message says how many.
 */
export class AbortedError extends KinesisProducerError {
  override name = 'AbortedError';
  constructor(
    reason: unknown,
    message = 'The wait for room in the producer was aborted: the record was not taken.',
  ) {
    super(ErrorCode.Aborted, message, { cause: reason });
  }
}

/** What a value is, without any of its content: for values that may hold a secret. */
function describeKind(value: unknown): string {
  if (typeof value === 'string') return `a string of length ${value.length}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return `a ${typeof value}`;
  return describeValue(value);
}

/**
 * A short, safe description of a value for error messages (never dumps large payloads): a string of
 * up to `shownLength` characters is shown whole.
 */
export function describeValue(value: unknown, shownLength = 40): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'string':
      return value.length > shownLength ? `a string of length ${value.length}` : JSON.stringify(value);
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      // Anything may throw here (a revoked Proxy, in the value or in its prototype chain), and
      // describing a bad value must not.
      try {
        if (types.isUint8Array(value)) {
          return `a ${Buffer.isBuffer(value) ? 'Buffer' : 'Uint8Array'} of ${value.byteLength} bytes`;
        }
        if (Array.isArray(value)) return `an array of length ${value.length}`;
        return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
      } catch {
        return 'an object that cannot be shown';
      }
  }
}

/**
 * `String(error)`, or a stand-in when that throws (an object without a prototype, a Proxy that
 * throws or was revoked): what was thrown is told, and telling it never throws again.
 */
export function describeThrown(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    try {
      return Object.prototype.toString.call(error);
    } catch {
      return '[a value that cannot be shown]';
    }
  }
}
