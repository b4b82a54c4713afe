import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** How long the same failure goes untold after it was told. */
export const REPEATED_WARNING_INTERVAL_MS = 60_000;

/**
 * A warning about a failure that repeats, such as a metadata call tried again in the background all
 * through an outage: told the first time, then at most once a minute while it stays the same (same
 * `key`), with how many times it went untold in between. A different failure is told at once. Untold
 * ones still go to `debug`.
 */
export class RepeatedWarning {
  readonly #logger: Logger;
  readonly #clock: Clock;
  #key: string | undefined;
  #toldAt = 0;
  #untold = 0;

  constructor(logger: Logger, clock: Clock) {
    this.#logger = logger;
    this.#clock = clock;
  }

  warn(key: string, context: object, message: string): void {
    const now = this.#clock.now();
    if (key === this.#key && now - this.#toldAt < REPEATED_WARNING_INTERVAL_MS) {
      this.#untold++;
      this.#logger.debug(context, message);
      return;
    }
    const untold = key === this.#key ? this.#untold : 0;
    this.#key = key;
    this.#toldAt = now;
    this.#untold = 0;
    if (untold === 0) this.#logger.warn(context, message);
    else
      this.#logger.warn({ ...context, untold }, `${message} (${untold} more time(s) since the last warning)`);
  }

  /** The failure is over: the next one is told at once. */
  clear(): void {
    this.#key = undefined;
    this.#untold = 0;
  }
}
