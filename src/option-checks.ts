import { InvalidOptionError } from './errors.js';
import { defaultLogger, type Logger } from './logger.js';
import { MAX_STREAM_ARN_LENGTH, streamIdExpected } from './stream-ref.js';

/** Throws {@link InvalidOptionError} unless `value` is an integer in [min, max]. */
export function checkInteger(option: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(option, `an integer in [${min}, ${max}]`, value);
  }
}

/**
 * Whether `value` is an AbortSignal: anything with a boolean `aborted` and
 * `addEventListener`/`removeEventListener`, as signals from other realms and polyfills are.
 */
function isSignal(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const signal = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown };
  return (
    typeof signal.aborted === 'boolean' &&
    typeof signal.addEventListener === 'function' &&
    typeof signal.removeEventListener === 'function'
  );
}

/**
 * Throws {@link InvalidOptionError} unless `value` is undefined or an AbortSignal (see `isSignal`).
 * Checked at the call: a bad one would otherwise fail later, far from it.
 */
export function checkSignal(option: string, value: unknown): void {
  if (value !== undefined && !isSignal(value)) throw new InvalidOptionError(option, 'an AbortSignal', value);
}

/** Throws {@link InvalidOptionError} unless `value` is an object (of options), undefined or null (none). */
export function checkOptionsObject(option: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'object') {
    throw new InvalidOptionError(option, 'an object', value);
  }
}

/**
 * {@link checkOptionsObject} for options that take a `signal`, refusing a signal passed in their
 * place: read as options it has none, so `put(record, signal)` or `close(signal)` would look
 * abortable to its caller and not be.
 */
export function checkSignalOptions(option: string, value: unknown): void {
  checkOptionsObject(option, value);
  if (isSignal(value)) {
    throw new InvalidOptionError(option, 'an object of options, the signal in it as `{ signal }`', value);
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

/** The option names an API takes, for {@link warnUnknownOptions}. */
export interface OptionNames {
  /** The API, shown before the warning (`close: unknown option …`); none for the constructor's. */
  readonly api: string | undefined;
  readonly known: readonly string[];
  /** Other names of the options (another library's), lower-cased, each to the option it means. */
  readonly aliases?: ReadonlyMap<string, string>;
}

/**
 * "unknown option `name` is ignored", with the option of `names` it was most likely meant as: the one
 * its aliases map the lower-cased name to, the same letters but for case, or one at most 2 edits away.
 */
function unknownOptionMessage(name: string, names: OptionNames): string {
  let like = names.aliases?.get(name.toLowerCase());
  if (like === undefined) {
    let bestDistance = 3;
    for (const option of names.known) {
      const distance = option.toLowerCase() === name.toLowerCase() ? 0 : editDistance(option, name);
      if (distance < bestDistance) {
        like = option;
        bestDistance = distance;
      }
    }
  }
  const message = `unknown option \`${name}\` is ignored${like === undefined ? '' : ` (did you mean \`${like}\`?)`}`;
  return names.api === undefined ? message : `${names.api}: ${message}`;
}

/** Levenshtein distance: insertions, deletions and substitutions that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The options of `O` that `K` does not name. */
type Unnamed<O, K extends readonly string[]> = Exclude<keyof O, K[number]>;

/**
 * The {@link OptionNames} of an API whose options are `O`: `optionNames<PutOptions>()('put',
 * ['signal'])`. It fails to compile when `known` leaves out an option of `O` (the error names it as
 * `missingOptions`) or names one `O` does not have, so a new option cannot be forgotten here.
 */
export function optionNames<O>() {
  return <const K extends readonly (keyof O & string)[]>(
    api: string | undefined,
    known: K & ([Unnamed<O, K>] extends [never] ? unknown : { readonly missingOptions: Unnamed<O, K> }),
    aliases?: ReadonlyMap<string, K[number]>,
  ): OptionNames => (aliases === undefined ? { api, known } : { api, known, aliases });
}

/**
 * Most unknown names one {@link OptionWarnings} tells: past them it stays quiet, so that names made
 * from data cannot grow its memory without bound.
 */
const MAX_TOLD = 100;

/** Where {@link warnUnknownOptions} tells, and the names it has told there. */
export interface OptionWarnings {
  readonly logger: Logger;
  /** API and name of each unknown option told. */
  readonly told: Set<string>;
}

/** The codec's (RecordAggregator, deaggregate): process warnings, each name told once in a process. */
const codecWarnings: OptionWarnings = { logger: defaultLogger, told: new Set() };

/**
 * Warns about each option of `options` that `names` does not know, naming the one most likely meant:
 * through `warnings`' logger, once for each name (many of these calls are made per batch or per
 * record, where a warning per call would flood the output), and for at most 100 names. Call it once
 * the options are valid: an error comes first, and the warning is kept for a call that works.
 */
export function warnUnknownOptions(
  options: object,
  names: OptionNames,
  warnings: OptionWarnings = codecWarnings,
): void {
  for (const name in options) {
    if (!Object.hasOwn(options, name) || names.known.includes(name)) continue;
    const key = `${names.api}\u0000${name}`;
    if (warnings.told.has(key) || warnings.told.size >= MAX_TOLD) continue;
    warnings.told.add(key);
    warnings.logger.warn({ option: name }, unknownOptionMessage(name, names));
  }
}
