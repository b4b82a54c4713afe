/**
 * The one seam through which the producer reads time and sets timers, so tests can drive buffering
 * deadlines and backoff with fake timers (or a clock of their own).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` after `ms`. A `ref`ed timer keeps the process alive (records are waiting on it); an
   * unref'ed one does not, so an idle producer never holds the process open.
   */
  setTimeout(fn: () => void, ms: number, ref: boolean): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock: `Date.now()` and Node's timers, looked up at call time so fake timers apply. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, ref) {
    const timer = setTimeout(fn, ms);
    if (!ref) timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
