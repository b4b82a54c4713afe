import type { KinesisClient, KinesisClientConfig } from '@aws-sdk/client-kinesis';
import {
  DEFAULT_AGGREGATION_MAX_BYTES,
  DEFAULT_AGGREGATION_MAX_COUNT,
  MAX_RECORD_BYTES_LIMIT,
} from './aggregator.js';
import { type Clock, systemClock } from './clock.js';
import { InvalidOptionError } from './errors.js';
import { defaultLogger, guardedLogger, type Logger } from './logger.js';
import type { MeterLike } from './metrics.js';
import { checkInteger, checkStreamOptions, optionNames, warnUnknownOptions } from './option-checks.js';
import { arnRegion, MAX_STREAM_ARN_LENGTH } from './stream-ref.js';

/** Options of {@link KinesisProducer}. Every duration is in milliseconds, every size in bytes. */
export interface KinesisProducerOptions {
  /** The stream records go to unless a record names its own. One of `streamName`/`streamARN`. */
  readonly streamName?: string | undefined;
  /** The stream by ARN (for cross-account access). */
  readonly streamARN?: string | undefined;
  /**
   * Your own KinesisClient. The producer never destroys it. Its own retries run inside each of the
   * producer's attempts; give it `maxAttempts: 1` to leave retrying to the producer alone.
   * Exclusive with `region`, `endpoint`, `credentials`.
   */
  readonly client?: KinesisClient | undefined;
  /** Region of the client the producer creates. */
  readonly region?: KinesisClientConfig['region'] | undefined;
  /** Endpoint of the client the producer creates, e.g. kinesis-local's plain-HTTP `http://127.0.0.1:4568`. */
  readonly endpoint?: string | undefined;
  /** Credentials of the client the producer creates (default: the SDK's provider chain). */
  readonly credentials?: KinesisClientConfig['credentials'] | undefined;
  /**
   * Longest a record waits to be batched with others, from its arrival (KPL RecordMaxBufferedTime).
   * 0 sends at once, still batching whatever is queued at that moment.
   * @default 100, or a quarter of `recordTtlMs` when that is set and shorter
   */
  readonly maxBufferedTimeMs?: number | undefined;
  /**
   * Pack records bound for the same shard into KPL aggregates (KPL AggregationEnabled). Turned off
   * automatically on streams with `RecordDistributionStrategy` AUTO, where consumers drop aggregates.
   * @default true
   */
  readonly aggregation?: boolean | undefined;
  /** Most user records in one aggregate. @default 4294967295 */
  readonly aggregationMaxCount?: number | undefined;
  /**
   * Largest aggregate, partition key + data.
   * @default 51200, or `collectionMaxBytes` when that is set and smaller
   */
  readonly aggregationMaxBytes?: number | undefined;
  /** Most Kinesis records in one PutRecords request (service limit 500). @default 500 */
  readonly collectionMaxCount?: number | undefined;
  /**
   * Largest PutRecords request, counting partition keys + data (service limit 10 MiB).
   * @default 5242880 (5 MiB, as KPL), or `aggregationMaxBytes` when that is set and larger
   */
  readonly collectionMaxBytes?: number | undefined;
  /**
   * Time a record has to be written, from its arrival; after it the record fails with `Expired`
   * and every attempt made (KPL RecordTtl).
   * @default 30000, or four times `maxBufferedTimeMs`, or `maxBufferedTimeMs` + twice
   * `requestTimeoutMs`, when those are set and that is longer
   */
  readonly recordTtlMs?: number | undefined;
  /**
   * Fail throttled records at once, with the service's throttling code
   * (`ProvisionedThroughputExceededException`, `LimitExceededException`, `ThrottlingException`, ...),
   * instead of retrying.
   * @default false
   */
  readonly failIfThrottled?: boolean | undefined;
  /** Most PutRecords requests in flight at once (and sockets of the client the producer creates). @default 24 */
  readonly maxConnections?: number | undefined;
  /**
   * Longest one PutRecords request may take before it is abandoned and retried.
   * @default 6000, or half of `recordTtlMs` when that is set and below 12000
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * First retry backoff cap; each retry doubles it (full jitter: the wait is random below it).
   * @default 100, or `retryMaxDelayMs` when that is set and smaller
   */
  readonly retryBaseDelayMs?: number | undefined;
  /** Largest retry backoff cap. @default 5000, or `retryBaseDelayMs` when that is set and larger */
  readonly retryMaxDelayMs?: number | undefined;
  /**
   * Most records accepted and not yet settled. Beyond it `put` waits (or rejects, see `onFull`) and
   * `send` throws {@link BufferFullError}. Bounds the producer's memory with `maxBufferedBytes`.
   * @default 100000
   */
  readonly maxOutstandingRecords?: number | undefined;
  /**
   * Most bytes (partition keys + data) of records accepted and not yet settled. A record larger than
   * this is still taken when the producer holds nothing else. Once the producer is over half full (of
   * bytes or of records), a shard takes more only within its part of these limits: its share of all
   * the streams' shards.
   * @default 67108864 (64 MiB)
   */
  readonly maxBufferedBytes?: number | undefined;
  /**
   * What `put` does when the producer is full: `'wait'` for room (honouring the `signal` passed to
   * it), or `'reject'` at once with {@link BufferFullError}. `send` never waits.
   * @default 'wait'
   */
  readonly onFull?: 'wait' | 'reject' | undefined;
  /**
   * `'per-partition-key'`: records of one partition key reach the stream in the order `put`/`send`
   * was called, also across retries (records with an `explicitHashKey`: those of one hash key). It
   * costs throughput: each shard (on an AUTO stream, each hash key) has at most one request in
   * flight, holding one Kinesis record for it (an aggregate when aggregating), and a record in backoff
   * holds back the records behind it.
   * @default 'none'
   */
  readonly ordering?: 'none' | 'per-partition-key' | undefined;
  /**
   * Ceiling of the adaptive per-shard rate, in percent of a shard's write limits (1,000 records/s and
   * 1 MiB/s; KPL RateLimit). The producer paces each shard at this rate, lowers it when the shard
   * throttles and probes back up. It also sizes each shard's share of the room: what the shard writes
   * at this rate in half of `recordTtlMs`.
   * @default 100
   */
  readonly rateLimit?: number | undefined;
  /** An OpenTelemetry `Meter` to receive the producer's metrics as instruments (optional peer `@opentelemetry/api`). */
  readonly meter?: MeterLike | undefined;
  /** Where the producer logs (pino-compatible). @default util.debuglog, warnings as process warnings */
  readonly logger?: Logger | undefined;
}

/** @internal Options with every default applied. */
export interface ResolvedOptions {
  readonly streamName: string | undefined;
  readonly streamARN: string | undefined;
  /** The client given, if any; else what the producer's own client is made with. */
  readonly client: KinesisClient | undefined;
  readonly region: KinesisClientConfig['region'] | undefined;
  /**
   * The region the producer's own client sends to, when known as it is made: the `region` option (or
   * AWS_REGION), with no `endpoint` of the user's. Undefined for a client of the user's.
   */
  readonly knownRegion: string | undefined;
  readonly endpoint: string | undefined;
  readonly credentials: KinesisClientConfig['credentials'] | undefined;
  readonly maxBufferedTimeMs: number;
  readonly aggregation: boolean;
  readonly aggregationMaxCount: number;
  readonly aggregationMaxBytes: number;
  readonly collectionMaxCount: number;
  readonly collectionMaxBytes: number;
  readonly recordTtlMs: number;
  readonly failIfThrottled: boolean;
  readonly maxConnections: number;
  readonly requestTimeoutMs: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly maxOutstandingRecords: number;
  readonly maxBufferedBytes: number;
  readonly onFull: 'wait' | 'reject';
  readonly ordering: 'none' | 'per-partition-key';
  readonly rateLimit: number;
  readonly meter: MeterLike | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** Service limits the options must respect. */
export const MAX_RECORDS_PER_REQUEST = 500;
export const MAX_REQUEST_BYTES = 10 * 1024 * 1024;

/** The smallest `aggregationMaxBytes`, and so the smallest `collectionMaxBytes`. */
const MIN_AGGREGATION_MAX_BYTES = 64;

export const DEFAULTS = {
  maxBufferedTimeMs: 100,
  aggregation: true,
  aggregationMaxCount: DEFAULT_AGGREGATION_MAX_COUNT,
  aggregationMaxBytes: DEFAULT_AGGREGATION_MAX_BYTES,
  collectionMaxCount: MAX_RECORDS_PER_REQUEST,
  collectionMaxBytes: 5 * 1024 * 1024,
  recordTtlMs: 30_000,
  failIfThrottled: false,
  maxConnections: 24,
  requestTimeoutMs: 6000,
  retryBaseDelayMs: 100,
  retryMaxDelayMs: 5000,
  maxOutstandingRecords: 100_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  onFull: 'wait',
  ordering: 'none',
  rateLimit: 100,
} as const;

const HOUR = 3_600_000;
/** The longest `recordTtlMs`. */
const MAX_RECORD_TTL_MS = 24 * HOUR;

/** Every option's name, so that a misspelt one is pointed out instead of silently taking a default. */
const OPTION_NAMES = [
  ...(Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]),
  'streamName',
  'streamARN',
  'client',
  'region',
  'endpoint',
  'credentials',
  'meter',
  'logger',
] as const satisfies readonly (keyof KinesisProducerOptions)[];

/** @internal Applies defaults and validates; throws {@link InvalidOptionError} naming the option. */
export function resolveOptions(options: KinesisProducerOptions, clock: Clock = systemClock): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', 'an object', options);
  }
  // Each option read once: a getter that answers differently later changes nothing.
  const set = givenOptions(options);
  const o = { ...DEFAULTS, ...set };
  // An option left to its default gives way to a related one that was set: only two values both
  // set by the caller can conflict.
  const given = (name: keyof typeof DEFAULTS) => set[name] !== undefined;
  // Checked as given, before any other is derived from them: a wrong value (NaN, from an environment
  // variable that is not set) is named as itself, not as the option worked out from it. What is
  // derived below stays within these ranges.
  checkInteger('maxBufferedTimeMs', o.maxBufferedTimeMs, 0, HOUR);
  checkInteger(
    'aggregationMaxBytes',
    o.aggregationMaxBytes,
    MIN_AGGREGATION_MAX_BYTES,
    MAX_RECORD_BYTES_LIMIT,
  );
  // At least the smallest aggregate, so that one fits in a request.
  checkInteger('collectionMaxBytes', o.collectionMaxBytes, MIN_AGGREGATION_MAX_BYTES, MAX_REQUEST_BYTES);
  checkInteger('recordTtlMs', o.recordTtlMs, 1, MAX_RECORD_TTL_MS);
  checkInteger('requestTimeoutMs', o.requestTimeoutMs, 1, HOUR);
  checkInteger('retryBaseDelayMs', o.retryBaseDelayMs, 1, HOUR);
  checkInteger('retryMaxDelayMs', o.retryMaxDelayMs, 1, HOUR);
  if (!given('collectionMaxBytes')) {
    // A request must hold one aggregate: up to the service's 10 MiB, the range checks the rest.
    o.collectionMaxBytes = Math.max(o.collectionMaxBytes, Math.min(o.aggregationMaxBytes, MAX_REQUEST_BYTES));
  }
  if (!given('aggregationMaxBytes')) {
    o.aggregationMaxBytes = Math.min(
      o.aggregationMaxBytes,
      Math.max(MIN_AGGREGATION_MAX_BYTES, o.collectionMaxBytes),
    );
  }
  if (!given('recordTtlMs')) {
    // The other way round: buffering takes at most a quarter of the TTL, and a request set to take
    // longer than the default allows still leaves a record buffered that long time for a second
    // (up to the TTL's own range).
    const room = given('requestTimeoutMs') ? o.maxBufferedTimeMs + 2 * o.requestTimeoutMs : 0;
    o.recordTtlMs = Math.max(
      o.recordTtlMs,
      Math.min(Math.max(o.maxBufferedTimeMs * 4, room), MAX_RECORD_TTL_MS),
    );
  }
  if (!given('maxBufferedTimeMs')) {
    // A quarter of the TTL: buffered that long, then a first request that times out (at half the
    // TTL, below) still leaves a quarter for another. Just under the TTL left none even for one.
    o.maxBufferedTimeMs = Math.min(o.maxBufferedTimeMs, Math.max(0, Math.floor(o.recordTtlMs / 4)));
  }
  if (!given('requestTimeoutMs')) {
    // At most half the TTL: a record buffered (a quarter, above) whose first request times out still
    // has time for another.
    o.requestTimeoutMs = Math.min(o.requestTimeoutMs, Math.max(1, Math.floor(o.recordTtlMs / 2)));
  }
  if (!given('retryMaxDelayMs')) {
    o.retryMaxDelayMs = Math.max(o.retryMaxDelayMs, o.retryBaseDelayMs);
  }
  if (!given('retryBaseDelayMs')) {
    o.retryBaseDelayMs = Math.max(1, Math.min(o.retryBaseDelayMs, o.retryMaxDelayMs));
  }
  checkStreamOptions(set.streamName, set.streamARN);
  if (set.client !== undefined) {
    if (typeof set.client !== 'object' || set.client === null || typeof set.client.send !== 'function') {
      throw new InvalidOptionError('client', 'a KinesisClient', set.client);
    }
    for (const name of ['region', 'endpoint', 'credentials'] as const) {
      if (set[name] !== undefined) {
        throw new InvalidOptionError(
          name,
          'omitted when `client` is given (configure your client instead)',
          set[name],
        );
      }
    }
  }
  checkEndpoint(set.endpoint);
  checkRegion(set.region);
  checkCredentials(set.credentials);
  checkBoolean('aggregation', o.aggregation);
  checkInteger('aggregationMaxCount', o.aggregationMaxCount, 1, DEFAULT_AGGREGATION_MAX_COUNT);
  checkInteger('collectionMaxCount', o.collectionMaxCount, 1, MAX_RECORDS_PER_REQUEST);
  checkBoolean('failIfThrottled', o.failIfThrottled);
  checkInteger('maxConnections', o.maxConnections, 1, 1024);
  if (o.retryMaxDelayMs < o.retryBaseDelayMs) {
    throw new InvalidOptionError(
      'retryMaxDelayMs',
      `at least retryBaseDelayMs (${o.retryBaseDelayMs}), the first retry's longest wait`,
      o.retryMaxDelayMs,
    );
  }
  checkInteger('maxOutstandingRecords', o.maxOutstandingRecords, 1, 100_000_000);
  checkInteger('maxBufferedBytes', o.maxBufferedBytes, 1, Number.MAX_SAFE_INTEGER);
  if (o.onFull !== 'wait' && o.onFull !== 'reject') {
    throw new InvalidOptionError('onFull', "'wait' or 'reject'", o.onFull);
  }
  if (o.ordering !== 'none' && o.ordering !== 'per-partition-key') {
    throw new InvalidOptionError('ordering', "'none' or 'per-partition-key'", o.ordering);
  }
  checkInteger('rateLimit', o.rateLimit, 1, 100_000);
  const meter = set.meter;
  if (meter !== undefined) {
    if (typeof meter !== 'object' || meter === null) {
      throw new InvalidOptionError('meter', 'an OpenTelemetry Meter', meter);
    }
    const methods = [
      'createCounter',
      'createHistogram',
      'createObservableGauge',
      'addBatchObservableCallback',
    ];
    const missing = methods.find(
      (name) => typeof (meter as unknown as Record<string, unknown>)[name] !== 'function',
    );
    if (missing !== undefined) {
      throw new InvalidOptionError('meter', `an OpenTelemetry Meter (it has no ${missing}())`, meter);
    }
  }
  if (o.aggregationMaxBytes > o.collectionMaxBytes) {
    throw new InvalidOptionError(
      'aggregationMaxBytes',
      `at most collectionMaxBytes (${o.collectionMaxBytes}) so an aggregate fits in a request`,
      o.aggregationMaxBytes,
    );
  }
  if (o.maxBufferedTimeMs >= o.recordTtlMs) {
    throw new InvalidOptionError(
      'maxBufferedTimeMs',
      `below recordTtlMs (${o.recordTtlMs}), or records expire while buffered`,
      o.maxBufferedTimeMs,
    );
  }
  const userLogger = set.logger ?? undefined;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (userLogger !== undefined && typeof userLogger[level] !== 'function')
      throw new InvalidOptionError('logger', `an object with a ${level}() method`, userLogger);
  }
  const logger = userLogger === undefined ? defaultLogger : guardedLogger(userLogger);
  // A warning, not an error: callers may pass a larger configuration object of their own. Each
  // producer tells its own logger.
  warnUnknownOptions(options, PRODUCER_OPTION_NAMES, { logger, told: new Set() });
  if (o.maxBufferedTimeMs + o.requestTimeoutMs >= o.recordTtlMs) {
    logger.warn(
      {
        maxBufferedTimeMs: o.maxBufferedTimeMs,
        requestTimeoutMs: o.requestTimeoutMs,
        recordTtlMs: o.recordTtlMs,
      },
      'maxBufferedTimeMs + requestTimeoutMs is not below recordTtlMs: a record buffered that long whose first request times out has no time left to retry',
    );
  }
  const knownRegion =
    set.client !== undefined || set.endpoint !== undefined
      ? undefined
      : typeof set.region === 'string'
        ? set.region
        : set.region === undefined
          ? process.env.AWS_REGION || undefined
          : undefined;
  // The service takes an ARN only in its own region (as KCL says): refused here, not per request.
  if (set.streamARN !== undefined && knownRegion !== undefined && arnRegion(set.streamARN) !== knownRegion) {
    throw new InvalidOptionError(
      'streamARN',
      `an ARN of the region the client sends to (${knownRegion}), or \`region\` set to the ARN's`,
      set.streamARN,
      false,
      MAX_STREAM_ARN_LENGTH,
    );
  }
  return {
    streamName: set.streamName,
    streamARN: set.streamARN,
    client: set.client,
    region: set.region,
    knownRegion,
    endpoint: set.endpoint,
    credentials: set.credentials,
    maxBufferedTimeMs: o.maxBufferedTimeMs,
    aggregation: o.aggregation,
    aggregationMaxCount: o.aggregationMaxCount,
    aggregationMaxBytes: o.aggregationMaxBytes,
    collectionMaxCount: o.collectionMaxCount,
    collectionMaxBytes: o.collectionMaxBytes,
    recordTtlMs: o.recordTtlMs,
    failIfThrottled: o.failIfThrottled,
    maxConnections: o.maxConnections,
    requestTimeoutMs: o.requestTimeoutMs,
    retryBaseDelayMs: o.retryBaseDelayMs,
    retryMaxDelayMs: o.retryMaxDelayMs,
    maxOutstandingRecords: o.maxOutstandingRecords,
    maxBufferedBytes: o.maxBufferedBytes,
    onFull: o.onFull,
    ordering: o.ordering,
    rateLimit: o.rateLimit,
    meter,
    logger,
    clock,
  };
}

/**
 * The options actually given, each read once by its name: own or inherited (a class of your own with
 * getters, an object made from defaults with Object.create), as every other read of them. An option
 * set to `undefined` takes its default, like one left out.
 */
function givenOptions(options: KinesisProducerOptions): {
  [K in keyof KinesisProducerOptions]?: Exclude<KinesisProducerOptions[K], undefined>;
} {
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined) out[name] = value;
  }
  return out as { [K in keyof KinesisProducerOptions]?: Exclude<KinesisProducerOptions[K], undefined> };
}

/** Whether `text` holds a control character (C0, or DEL): no HTTP header may. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** An http(s) URL, or nothing: the SDK would only refuse a malformed one at the first request. */
function checkEndpoint(value: unknown): void {
  if (value === undefined) return;
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new InvalidOptionError('endpoint', 'an http or https URL, such as http://localhost:4566', value);
  }
}

/** A region's name is a hostname label: letters, digits and hyphens, as the SDK checks at each request. */
const REGION = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/**
 * A region name, a function that provides one, or nothing. The SDK checks a name only when it signs a
 * request, and fails that request: every record would be retried until its TTL.
 */
function checkRegion(value: unknown): void {
  // null, as the SDK takes it: not given, so its own chain (AWS_REGION, ~/.aws/config) decides.
  if (value === undefined || value === null || typeof value === 'function') return;
  if (typeof value !== 'string' || !REGION.test(value)) {
    throw new InvalidOptionError(
      'region',
      'a region name such as us-east-1 (or a function providing one)',
      value,
    );
  }
}

/**
 * Credentials with a non-empty `accessKeyId` and `secretAccessKey`, a function providing them, or
 * nothing (null too: the SDK's default provider chain). Like the region, the SDK checks them only per
 * request. The error tells the fields and the kinds of their values, never the values: secrets.
 */
function checkCredentials(value: unknown): void {
  if (value === undefined || value === null || typeof value === 'function') return;
  const expected =
    'an object with non-empty string accessKeyId and secretAccessKey (and optionally a string sessionToken and a Date expiration), or a function providing one';
  if (typeof value !== 'object') throw new InvalidOptionError('credentials', expected, value, true);
  const { accessKeyId, secretAccessKey, sessionToken, expiration } = value as Record<string, unknown>;
  // A key read from a file often keeps its line ending: Node then refuses the signed header of every
  // request, which no retry changes.
  for (const [field, key] of [
    ['accessKeyId', accessKeyId],
    ['secretAccessKey', secretAccessKey],
    ['sessionToken', sessionToken],
  ] as const) {
    if (typeof key === 'string' && (hasControlCharacter(key) || key.trim() !== key)) {
      throw new InvalidOptionError(
        'credentials',
        `an object whose ${field} has no spaces or line endings around it, nor control characters (read from a file or a .env, is a line ending left on it?)`,
        value,
        true,
      );
    }
  }
  if (
    typeof accessKeyId !== 'string' ||
    accessKeyId === '' ||
    typeof secretAccessKey !== 'string' ||
    secretAccessKey === '' ||
    (sessionToken !== undefined && sessionToken !== null && typeof sessionToken !== 'string') ||
    (expiration !== undefined && expiration !== null && !(expiration instanceof Date))
  ) {
    const fields = Object.entries(value).map(([key, field]) => `${key}: ${kindOf(field)}`);
    throw new InvalidOptionError(
      'credentials',
      `${expected} (it has ${fields.join(', ') || 'no fields'})`,
      value,
      true,
    );
  }
}

/** The kind of a value, for a message that must not show it: its type, or empty/null/Date/object. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === '') return 'empty string';
  if (value instanceof Date) return 'Date';
  return typeof value;
}

function checkBoolean(name: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'a boolean', value);
}

/**
 * KPL's names (KinesisProducerConfiguration) of options this producer names otherwise, lower-cased:
 * a configuration carried over from KPL is pointed to ours.
 */
const KPL_NAMES = new Map<string, (typeof OPTION_NAMES)[number]>([
  ['aggregationenabled', 'aggregation'],
  ['aggregationmaxsize', 'aggregationMaxBytes'],
  ['collectionmaxsize', 'collectionMaxBytes'],
  ['recordmaxbufferedtime', 'maxBufferedTimeMs'],
  ['recordttl', 'recordTtlMs'],
  ['requesttimeout', 'requestTimeoutMs'],
  ['kinesisendpoint', 'endpoint'],
  ['kinesisport', 'endpoint'],
  ['credentialsprovider', 'credentials'],
]);

const PRODUCER_OPTION_NAMES = optionNames<KinesisProducerOptions>()(undefined, OPTION_NAMES, KPL_NAMES);
