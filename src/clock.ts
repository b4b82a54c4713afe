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
