import * as crypto from 'node:crypto';
import { describeValue, InvalidRecordError } from './errors.js';

/**
 * Hash keys: Kinesis routes a record to the shard whose hash-key range holds the record's hash key,
 * which is its explicit hash key when given, else MD5(UTF-8 partition key) read as a big-endian
 * unsigned 128-bit integer.
 */

/** The largest hash key, 2^128 - 1. */
export const MAX_HASH_KEY = (1n << 128n) - 1n;

/** Partition keys are 1..256 characters (UTF-16 code units, as the service and the Java KPL count). */
export const MAX_PARTITION_KEY_LENGTH = 256;

const DECIMAL = /^[0-9]+$/;

/** The number of decimal digits of {@link MAX_HASH_KEY}. */
const MAX_HASH_KEY_DIGITS = 39;

/** How many `0` characters `digits` starts with. */
function leadingZeros(digits: string): number {
  let count = 0;
  while (count < digits.length && digits.charCodeAt(count) === 0x30) count++;
  return count;
}

/**
 * The value of a string of decimal digits, or `MAX_HASH_KEY + 1n` for one with more significant digits
 * than 2^128-1 has (39): those are above every hash key, and are not parsed, since BigInt's parse
 * grows with the square of the length (ten million digits took 2 s).
 */
export function parseDigits(digits: string): bigint {
  const significant = digits.length > MAX_HASH_KEY_DIGITS ? digits.length - leadingZeros(digits) : 0;
  return significant > MAX_HASH_KEY_DIGITS ? MAX_HASH_KEY + 1n : BigInt(digits);
}

/**
 * Node's one-shot `crypto.hash` (Node 20.12 and later): no Hash object per call. With keys that are
 * seldom repeated (a UUID per record) the key's MD5 was a quarter of the producer's CPU, and this
 * takes about 1 µs a key where `createHash` took 3.5.
 */
const oneShot = (
  crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string }
).hash;

/**
 * MD5 of `data` (a string as UTF-8), in hex: the hash key of a partition key, and the trailer of an
 * aggregate. Hex because every Node that has `crypto.hash` returns it.
 */
export function md5Hex(data: string | Uint8Array): string {
  if (oneShot !== undefined) return oneShot('md5', data, 'hex');
  return crypto.createHash('md5').update(data).digest('hex');
}

/** MD5 of `data`, as 16 bytes: one message at a time (for many, `md5Each` of md5-lanes.ts is faster). */
export function md5Bytes(data: Uint8Array): Buffer {
  return Buffer.from(md5Hex(data), 'hex');
}

/**
 * The hash key Kinesis derives from a partition key: MD5 of its UTF-8 bytes, big-endian, 128 bits.
 * Any string is hashed, also one the service would refuse as a partition key (empty, or longer than
 * 256 characters): it answers which hash key, not whether the key is valid.
 *
 * @example
 * partitionKeyHash('user-1') // 0x… as a bigint in [0, 2^128 - 1]
 *
 * @throws {InvalidRecordError} naming `partitionKey`, for anything but a string.
 */
export function partitionKeyHash(partitionKey: string): bigint {
  if (typeof partitionKey !== 'string') {
    throw new InvalidRecordError(
      'partitionKey',
      `partitionKey must be a string to hash; received ${describeValue(partitionKey)}.`,
    );
  }
  return BigInt(`0x${md5Hex(partitionKey)}`);
}

/**
 * Parses and validates an explicit hash key: a decimal string of an integer in [0, 2^128 - 1].
 * Leading zeros are accepted (the value is what counts); signs, spaces, exponents are not.
 *
 * @throws {InvalidRecordError} naming `explicitHashKey` and the allowed range.
 */
export function parseExplicitHashKey(value: unknown, field = 'explicitHashKey'): bigint {
  if (typeof value !== 'string') {
    throw new InvalidRecordError(
      field,
      `${field} must be a decimal string in [0, 2^128-1]; received ${describeValue(value)}.`,
    );
  }
  if (!DECIMAL.test(value)) {
    const why = value.startsWith('-') ? 'is negative' : 'is not a plain decimal integer';
    throw new InvalidRecordError(
      field,
      `${field} ${why}: it must be a decimal string in [0, 2^128-1]; received ${describeValue(value)}.`,
    );
  }
  const parsed = parseDigits(value);
  if (parsed > MAX_HASH_KEY) {
    throw new InvalidRecordError(
      field,
      `${field} is above the maximum hash key 2^128-1 (340282366920938463463374607431768211455); received ${describeValue(value)}.`,
    );
  }
  return parsed;
}
