import type { Clock } from './clock.js';
import type { OutboundRecord } from './pending-record.js';
import type { Sender, SendOutcome } from './sender.js';
import type { StreamPipeline } from './stream-pipeline.js';

/** A PutRecords request under way. */
export interface InFlightRequest {
  readonly pipeline: StreamPipeline;
  /** When it started, as its outcome will say. */
  readonly startedAt: number;
  /** The earliest TTL among its records not settled yet: they expire then even without an answer. */
  expiresAt: number;
}

/**
 * Drives the pipelines: one timer wakes the producer at the earliest moment something is due — an
 * aggregate's buffering time, a backoff's end, a record's expiry, a rate limiter's next token — and
 * the pump starts PutRecords requests while a connection is free and some stream has one due, taking
 * streams in turn. The timer keeps Node running only while records wait on it.
 */
export class Dispatcher {
  readonly #sender: Sender;
  readonly #clock: Clock;
  readonly #pipelines: () => readonly StreamPipeline[];
  readonly #onOutcome: (
    pipeline: StreamPipeline,
    batch: readonly OutboundRecord[],
    outcome: SendOutcome,
  ) => void;
  /**
   * Requests in flight: their records expire on time while they wait for the answer, and close() fails
   * them when it gives up.
   */
  readonly #inFlight = new Map<readonly OutboundRecord[], InFlightRequest>();
  #next = 0;
  #wakeTime = Number.POSITIVE_INFINITY;
  #timer: unknown;
  /** While the pipelines tick: the time they tick at (else -infinity). */
  #tickingAt = Number.NEGATIVE_INFINITY;
  #stopped = false;

  constructor(
    sender: Sender,
    clock: Clock,
    pipelines: () => readonly StreamPipeline[],
    onOutcome: (pipeline: StreamPipeline, batch: readonly OutboundRecord[], outcome: SendOutcome) => void,
  ) {
    this.#sender = sender;
    this.#clock = clock;
    this.#pipelines = pipelines;
    this.#onOutcome = onOutcome;
  }

  /** Requests in flight, by their batch. */
  get inFlight(): ReadonlyMap<readonly OutboundRecord[], InFlightRequest> {
    return this.#inFlight;
  }

  /** Makes sure the producer wakes up at `at` (ms since the epoch; at once if past). */
  wakeAt(at: number): void {
    if (at >= this.#wakeTime || this.#stopped) return;
    // While the pipelines tick, the pump runs right after them: what is due by then needs no timer.
    // (Only then: a wake-up asked for from within the pump itself must be kept, or nothing may ever
    // call the pump again.)
    if (at <= this.#tickingAt) return;
    const now = this.#clock.now();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#wakeTime = at;
    this.#timer = this.#clock.setTimeout(() => this.#onWake(), Math.max(0, at - now), true);
  }

  /** Nothing is pending: drop the timer, so an idle producer holds the process for nothing. */
  idle(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeTime = Number.POSITIVE_INFINITY;
  }

  /** Stops for good: no timer, no new request, and the requests in flight are abandoned. */
  stop(): void {
    this.#stopped = true;
    this.idle();
    this.#sender.abandonAll();
  }

  #onWake(): void {
    this.#timer = undefined;
    this.#wakeTime = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    let next = Number.POSITIVE_INFINITY;
    this.#tickingAt = now;
    try {
      for (const pipeline of this.#pipelines()) next = Math.min(next, pipeline.tick(now));
      // Records whose request has not answered by their TTL fail then, not when it answers.
      for (const [batch, request] of this.#inFlight) {
        if (request.expiresAt <= now) {
          request.expiresAt = request.pipeline.expireInFlight(batch, request.startedAt, now);
        }
        next = Math.min(next, request.expiresAt);
      }
    } finally {
      this.#tickingAt = Number.NEGATIVE_INFINITY;
    }
    this.pump();
    if (next !== Number.POSITIVE_INFINITY) this.wakeAt(next);
  }

  /** Starts PutRecords requests while a connection is free and some stream has a request due. */
  pump(): void {
    const sender = this.#sender;
    const pipelines = this.#pipelines();
    if (pipelines.length === 0 || this.#stopped) return;
    const now = this.#clock.now();
    let idle = 0;
    while (sender.hasCapacity && idle < pipelines.length) {
      const pipeline = pipelines[this.#next % pipelines.length]!;
      this.#next = (this.#next + 1) % pipelines.length;
      // Nothing due, or nothing could go (rate-limited shards, backoff: the pipeline asked for a wake-up).
      const batch = pipeline.isDue(now) ? pipeline.collect(now) : undefined;
      if (batch === undefined || batch.length === 0) {
        idle++;
        continue;
      }
      idle = 0;
      // `done` is never called synchronously: the request is in the map before its answer.
      const startedAt = sender.send(pipeline.stream, batch, (outcome) => {
        this.#inFlight.delete(batch);
        if (!this.#stopped) this.#onOutcome(pipeline, batch, outcome);
      });
      const expiresAt = earliestExpiry(batch);
      this.#inFlight.set(batch, { pipeline, startedAt, expiresAt });
      this.wakeAt(expiresAt);
    }
    // What is left waits for its buffering time (or for a free connection, which calls pump again).
    for (const pipeline of pipelines) {
      const sendBy = pipeline.nextSendBy;
      if (sendBy > now && sendBy !== Number.POSITIVE_INFINITY) this.wakeAt(sendBy);
    }
  }
}

/** The earliest TTL among the records of `batch`. */
function earliestExpiry(batch: readonly OutboundRecord[]): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const record of batch) if (record.expiresAt < earliest) earliest = record.expiresAt;
  return earliest;
}
