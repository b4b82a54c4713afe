import { InvalidOptionError } from './errors.js';
import { MAX_STREAM_ARN_LENGTH, streamIdExpected } from './stream-ref.js';

/** Throws {@link InvalidOptionError} unless `value` is an integer in [min, max]. */
export function checkInteger(option: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(option, `an integer in [${min}, ${max}]`, value);
  }
}

/**
 * Throws {@link InvalidOptionError} unless `value` is undefined or an AbortSignal: anything with a
 * boolean `aborted` and `addEventListener`/`removeEventListener`, as signals from other realms and
 * polyfills are. Checked at the call: a bad one would otherwise fail later, far from it.
 */
export function checkSignal(option: string, value: unknown): void {
  if (value === undefined) return;
  const signal = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown };
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof signal.aborted !== 'boolean' ||
    typeof signal.addEventListener !== 'function' ||
    typeof signal.removeEventListener !== 'function'
  ) {
    throw new InvalidOptionError(option, 'an AbortSignal', value);
  }
}

/** Throws {@link InvalidOptionError} unless `value` is an object (of options), undefined or null (none). */
export function checkOptionsObject(option: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'object') {
    throw new InvalidOptionError(option, 'an object', value);
  }
}

/**
 * Throws {@link InvalidOptionError} unless the options name at most one stream, by a name or an ARN of
 * the shape the Kinesis API takes. Names and ARNs are no secret: shown whole, so that the one at fault
 * can be seen.
 */
export function checkStreamOptions(streamName: unknown, streamARN: unknown): void {
  if (streamName !== undefined && streamARN !== undefined) {
    throw new InvalidOptionError(
      'streamARN',
      'omitted when `streamName` is given (name one stream once)',
      streamARN,
      false,
      MAX_STREAM_ARN_LENGTH,
    );
  }
  checkStreamId('streamName', streamName);
  checkStreamId('streamARN', streamARN);
}

function checkStreamId(option: 'streamName' | 'streamARN', value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidOptionError(option, 'a non-empty string', value);
  }
  const expected = streamIdExpected(option, value);
  if (expected !== undefined) {
    throw new InvalidOptionError(option, expected, value, false, MAX_STREAM_ARN_LENGTH);
  }
}
