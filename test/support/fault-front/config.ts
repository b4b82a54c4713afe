/**
 * The fault front's settings: which service limits it enforces and which faults it injects. A test may
 * change them at any time with `configure`; a request uses the settings it found when it arrived.
 */
import { type FaultRates, type Latency, REQUEST_FAULT_KINDS } from './faults.js';

/** Per-shard write limits, enforced with one token bucket per shard for records and one for bytes. */
export interface ShardLimits {
  /** The service allows 1,000. */
  readonly recordsPerSecond: number;
  /** Counting partition key + data bytes. The service allows 1 MiB (1,048,576). */
  readonly bytesPerSecond: number;
  /**
   * Bucket capacity, in seconds of refill: how much a shard that has been idle may take at once.
   * @default 1
   */
  readonly burstSeconds?: number;
}

/** Everything `configure` can change. */
export interface FaultFrontConfig extends FaultRates {
  /**
   * Seed of the generator the random faults are drawn from. Setting it (again) restarts the sequence.
   * @default 1
   */
  readonly seed: number;
  /**
   * Most entries in one PutRecords request; more is a 400 `ValidationException`, as is zero.
   * `false` turns the check off. @default 500
   */
  readonly maxRecordsPerRequest: number | false;
  /**
   * Most bytes (partition keys + data) in one PutRecords request; more is a 400
   * `InvalidArgumentException` "Records size exceeds … limit". `false` turns the check off.
   * @default 10 MiB
   */
  readonly maxRequestBytes: number | false;
  /**
   * Most bytes (partition key + data) in one record; more is a 400 `ValidationException`.
   * `false` turns the check off. @default 1 MiB
   */
  readonly maxRecordBytes: number | false;
  /** Per-shard write limits; `false` admits everything. @default false */
  readonly shardLimits: ShardLimits | false;
  /**
   * How long a stream's shard map is trusted before the front asks upstream again. The map is also
   * dropped at once when upstream stores a record in a shard other than the predicted one.
   * @default 1000
   */
  readonly shardMapMaxAgeMs: number;
}

/** The settings a front starts with, before its options are applied. */
export const DEFAULT_CONFIG: FaultFrontConfig = {
  seed: 1,
  maxRecordsPerRequest: 500,
  maxRequestBytes: 10 * 1024 * 1024,
  maxRecordBytes: 1024 * 1024,
  shardLimits: false,
  requestFaultRates: {},
  entryFailureRate: 0,
  latencyMs: 0,
  shardMapMaxAgeMs: 1000,
};

/**
 * Applies `changes` over `current`: each key given replaces the current value as a whole (so
 * `requestFaultRates: {}` clears every request fault rate). Throws a `RangeError` naming the option,
 * the expected range and the value received when the result is not a valid configuration.
 */
export function mergeConfig(current: FaultFrontConfig, changes: Partial<FaultFrontConfig>): FaultFrontConfig {
  const next: FaultFrontConfig = { ...current, ...changes };
  checkConfig(next);
  return next;
}

function checkConfig(config: FaultFrontConfig): void {
  check('seed', config.seed, Number.isInteger(config.seed), 'an integer');
  for (const name of ['maxRecordsPerRequest', 'maxRequestBytes', 'maxRecordBytes'] as const) {
    const value = config[name];
    check(
      name,
      value,
      value === false || (Number.isInteger(value) && value > 0),
      'a positive integer or false',
    );
  }
  const limits = config.shardLimits;
  if (limits !== false) {
    check(
      'shardLimits.recordsPerSecond',
      limits.recordsPerSecond,
      limits.recordsPerSecond > 0,
      'a number > 0',
    );
    check('shardLimits.bytesPerSecond', limits.bytesPerSecond, limits.bytesPerSecond > 0, 'a number > 0');
    const burst = limits.burstSeconds;
    check('shardLimits.burstSeconds', burst, burst === undefined || burst > 0, 'a number > 0');
  }
  let total = 0;
  for (const [kind, rate] of Object.entries(config.requestFaultRates)) {
    const known = (REQUEST_FAULT_KINDS as readonly string[]).includes(kind);
    check('requestFaultRates', kind, known, `keyed by one of ${REQUEST_FAULT_KINDS.join(', ')}`);
    check(`requestFaultRates.${kind}`, rate, isProbability(rate), 'a number in [0, 1]');
    total += rate;
  }
  check('requestFaultRates', total, total <= 1, 'rates summing to at most 1');
  check(
    'entryFailureRate',
    config.entryFailureRate,
    isProbability(config.entryFailureRate),
    'a number in [0, 1]',
  );
  checkLatency(config.latencyMs);
  check('shardMapMaxAgeMs', config.shardMapMaxAgeMs, config.shardMapMaxAgeMs >= 0, 'a number >= 0');
}

function checkLatency(latency: Latency): void {
  if (typeof latency === 'number') {
    check('latencyMs', latency, latency >= 0, 'a number >= 0 or { minMs, maxMs }');
    return;
  }
  const { minMs, maxMs } = latency;
  check('latencyMs', latency, minMs >= 0 && maxMs >= minMs, '{ minMs, maxMs } with 0 <= minMs <= maxMs');
}

function isProbability(value: number): boolean {
  return value >= 0 && value <= 1;
}

function check(option: string, value: unknown, ok: boolean, expected: string): void {
  if (!ok) {
    throw new RangeError(`fault front: ${option} must be ${expected}; received ${JSON.stringify(value)}.`);
  }
}
