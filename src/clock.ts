/**
 * The one seam through which the producer reads time and sets timers, so tests can drive buffering
 * deadlines and backoff with fake timers (or a clock of their own).
 */
export interface Clock {
  /**
   * Milliseconds since the epoch, on a clock that never goes back. Every deadline (buffering, TTL,
   * backoff, rate limits) and every age is measured on it.
   */
  now(): number;
  /**
   * Calls `fn` after `ms`. A `ref`ed timer keeps the process alive (records are waiting on it); an
   * unref'ed one does not, so an idle producer never holds the process open.
   */
  setTimeout(fn: () => void, ms: number, ref: boolean): unknown;
  clearTimeout(handle: unknown): void;
}

/** When the process started, by the wall clock; read once (its getter costs as much as a clock read). */
const timeOrigin = performance.timeOrigin;

/**
 * The real clock: the monotonic clock Node's timers run on, counted from the wall-clock time the
 * process started at (`performance.timeOrigin + performance.now()`), and Node's timers; `now()` and
 * the timers are looked up at call time, so fake timers apply when they fake `performance` (vitest 3
 * and Jest do by default), though not a fake start date.
 *
 * Not `Date.now()`: when the wall clock steps back (NTP, a resumed VM), a deadline set before the
 * step would be late by the size of the step, and records would sit unsent, their TTL not running,
 * that long. The price: times reported (an attempt's `startedAt`) drift from the wall clock by the
 * time the machine was suspended, if it was.
 */
export const systemClock: Clock = {
  now: () => Math.floor(timeOrigin + performance.now()),
  setTimeout(fn, ms, ref) {
    const timer = setTimeout(fn, ms);
    if (!ref) timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** Calls of {@link ArrivalClock.now} that one reading of the clock may answer. */
const CALLS_PER_READING = 16;

/**
 * The time records arrive (`put`, `send`), read cheaply: one reading of `clock` answers up to 16
 * calls, until the microtasks queued before the reading have run (the reading queues its own end
 * behind them). A reading costs about 50-60 ns on Node 20; with 100 B records, sharing it made the
 * producer's own work per record about a tenth cheaper (paired A/B with a stand-in client).
 *
 * So a record may be stamped with the time of the first call that shared its reading: its buffering
 * time and TTL end that much sooner, never later, and its `delayMs` and BufferingTime read that much
 * longer. That window ends before the event loop turns, so no timer or I/O of the producer's could
 * have run in it; it is as long as the code that ran in it, up to 15 sends or puts and whatever ran
 * between them in the same turn (a test that moves fake timers synchronously between puts included).
 * Readings never go back, so records taken one after the other are stamped in order: the room's age
 * buckets and the pipelines' lists of open aggregates rely on it.
 */
export class ArrivalClock {
  readonly #clock: Clock;
  #reading = 0;
  /** Calls the reading answered; at the limit, the next call reads the clock. */
  #calls = CALLS_PER_READING;
  #forgetQueued = false;
  readonly #forget = () => {
    this.#calls = CALLS_PER_READING;
    this.#forgetQueued = false;
  };

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  now(): number {
    if (this.#calls < CALLS_PER_READING) {
      this.#calls++;
      return this.#reading;
    }
    // Forgotten once the microtasks queued before this reading have run: later calls read again.
    if (!this.#forgetQueued) {
      this.#forgetQueued = true;
      queueMicrotask(this.#forget);
    }
    this.#calls = 1;
    this.#reading = this.#clock.now();
    return this.#reading;
  }

  /**
   * The arrival at `now`, a reading of the same clock taken elsewhere just before: the later of it and
   * the current reading, which it replaces for the calls that share it, so that arrivals stay in order.
   */
  observe(now: number): number {
    if (now > this.#reading) this.#reading = now;
    return this.#reading;
  }
}
