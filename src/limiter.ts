/**
 * Per-shard rate limiting: a shard takes 1,000 records and 1 MiB per second (partition keys + data,
 * an aggregate counting as one record). Each shard the producer writes to gets a pair of token
 * buckets — records/s and bytes/s — that records must pass before they go into a request, so the
 * producer paces itself instead of being throttled.
 *
 * The rate adapts (additive increase, multiplicative decrease): each throttled response cuts it by
 * {@link DECREASE_FACTOR} (at most once per {@link DECREASE_INTERVAL_MS}, so one burst of throttles
 * counts once), and every second without throttling raises it by {@link INCREASE_PER_SECOND} of the
 * shard limit, up to the configured ceiling. Several producers sharing a shard so converge to a fair
 * share of it instead of fighting, each probing upward for what the others leave.
 */

/** The service's write limits of one shard. */
export const SHARD_RECORDS_PER_SECOND = 1000;
export const SHARD_BYTES_PER_SECOND = 1024 * 1024;

/** Multiplicative decrease on throttling. */
export const DECREASE_FACTOR = 0.8;
/** Throttles within this interval after a decrease do not decrease again. */
export const DECREASE_INTERVAL_MS = 300;
/** Additive increase, as a fraction of the shard limit per second without throttling. */
export const INCREASE_PER_SECOND = 0.05;
/** The rate never drops below this fraction of the shard limit. */
export const MIN_RATE = 0.05;
/** Tokens a bucket holds at most, in seconds of its rate: the burst a shard may take at once. */
export const BURST_SECONDS = 0.5;

/**
 * How long a saturated shard rests before its records go again: about 50 records or 50 KiB of tokens
 * at a shard's full rate, for one request instead of fifty.
 */
const REST_MS = 50;
/** A shard refused again within this long of its last refusal is saturated. */
const SATURATED_WITHIN_MS = 2 * REST_MS;

/** The two token buckets of one shard and their adaptive rate. */
export class ShardLimiter {
  /** Current rate as a fraction of the shard limit. */
  #rate: number;
  readonly #ceiling: number;
  #records: number;
  #bytes: number;
  #refilledAt: number;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  #lastIncreaseAt: number;
  /** Until when the shard rests (see `refused`), and when it last refused a record. */
  #restUntil = 0;
  #lastRefusedAt = Number.NEGATIVE_INFINITY;

  /** @param ceiling - the highest rate, as a fraction of the shard limit (KPL's RateLimit / 100). */
  constructor(ceiling: number, now: number) {
    this.#ceiling = ceiling;
    this.#rate = ceiling;
    this.#records = this.#maxRecords();
    this.#bytes = this.#maxBytes();
    this.#refilledAt = now;
    this.#lastIncreaseAt = now;
  }

  /** The current rate, as a fraction of the shard limit. */
  get rate(): number {
    return this.#rate;
  }

  #maxRecords(): number {
    return Math.max(1, this.#rate * SHARD_RECORDS_PER_SECOND * BURST_SECONDS);
  }

  #maxBytes(): number {
    return this.#rate * SHARD_BYTES_PER_SECOND * BURST_SECONDS;
  }

  #refill(now: number): void {
    const seconds = (now - this.#refilledAt) / 1000;
    if (seconds <= 0) return;
    this.#refilledAt = now;
    this.#records = Math.min(
      this.#maxRecords(),
      this.#records + seconds * this.#rate * SHARD_RECORDS_PER_SECOND,
    );
    this.#bytes = Math.min(this.#maxBytes(), this.#bytes + seconds * this.#rate * SHARD_BYTES_PER_SECOND);
  }

  /**
   * Takes one Kinesis record of `bytes` if the buckets allow it now. A record larger than a full
   * bucket is let through when the bucket is full (it borrows from the next second), or it could
   * never go; the next such record goes once the bucket is full again, `bytes` ÷ the rate later, so
   * two of them may fall within one second (about twice the limit with records near 1 MiB).
   */
  tryTake(bytes: number, now: number): boolean {
    this.#refill(now);
    if (this.#records < 1) return false;
    if (this.#bytes < bytes && this.#bytes < this.#maxBytes()) return false;
    this.#records -= 1;
    this.#bytes -= bytes;
    return true;
  }

  /**
   * Takes a record as `tryTake` does, unless the shard is resting; if not taken, returns when to try
   * again (else undefined). Refused again soon after its last refusal, the shard is saturated: it
   * rests {@link REST_MS} (when `mayRest`), so that its tokens pile up for a request that carries many
   * of its records rather than one per token (a request per millisecond at 1,000 records/s). The
   * buckets hold half a second, so the rate over time is the same. A first refusal (a burst just
   * spent) does not rest.
   */
  take(bytes: number, now: number, mayRest: boolean): number | undefined {
    if (now < this.#restUntil) return this.#restUntil;
    if (this.tryTake(bytes, now)) return undefined;
    const available = this.availableAt(bytes, now);
    const saturated = mayRest && now - this.#lastRefusedAt <= SATURATED_WITHIN_MS;
    this.#lastRefusedAt = now;
    this.#restUntil = saturated ? Math.max(available, now + REST_MS) : available;
    return this.#restUntil;
  }

  /** Ends a rest early (a flush): what the buckets allow goes now. */
  endRest(): void {
    this.#restUntil = 0;
  }

  /** When a record of `bytes` could next be taken (ms since the epoch). */
  availableAt(bytes: number, now: number): number {
    this.#refill(now);
    const recordsShort = Math.max(0, 1 - this.#records);
    const bytesShort = Math.max(0, Math.min(bytes, this.#maxBytes()) - this.#bytes);
    const seconds = Math.max(
      recordsShort / (this.#rate * SHARD_RECORDS_PER_SECOND),
      bytesShort / (this.#rate * SHARD_BYTES_PER_SECOND),
    );
    return now + Math.ceil(seconds * 1000);
  }

  /** The shard throttled us: slow down (once per burst of throttles). */
  onThrottled(now: number): void {
    if (now - this.#lastDecreaseAt < DECREASE_INTERVAL_MS) return;
    this.#refill(now);
    this.#lastDecreaseAt = now;
    this.#lastIncreaseAt = now;
    // Never below the floor, nor above the ceiling (which may be below the floor: rateLimit 1..4).
    this.#rate = Math.max(Math.min(MIN_RATE, this.#ceiling), this.#rate * DECREASE_FACTOR);
    // Drop tokens above the new burst size: they were granted at the old rate.
    this.#records = Math.min(this.#records, this.#maxRecords());
    this.#bytes = Math.min(this.#bytes, this.#maxBytes());
  }

  /** The shard took records: probe upward, by the time since the last change. */
  onAccepted(now: number): void {
    if (this.#rate >= this.#ceiling) return;
    this.#refill(now);
    const seconds = (now - this.#lastIncreaseAt) / 1000;
    if (seconds <= 0) return;
    this.#lastIncreaseAt = now;
    this.#rate = Math.min(this.#ceiling, this.#rate + seconds * INCREASE_PER_SECOND);
  }
}
