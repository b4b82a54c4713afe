import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** How long failures go untold after one was told, unless they are new. */
export const REPEATED_WARNING_INTERVAL_MS = 60_000;

/**
 * Warnings about a failure that repeats, such as a metadata call tried again in the background all
 * through an outage. A failure (`key`) not told since the failures began is told at once. Any other
 * is told at most once a minute, with how many failures went untold in between, so that failures
 * alternating between two codes are held back as well. Untold ones still go to `debug`.
 */
export class RepeatedWarning {
  readonly #logger: Logger;
  readonly #clock: Clock;
  /** The failures told since the last `clear()`. */
  readonly #told = new Set<string>();
  #toldAt = 0;
  #untold = 0;

  constructor(logger: Logger, clock: Clock) {
    this.#logger = logger;
    this.#clock = clock;
  }

  warn(key: string, context: object, message: string): void {
    const now = this.#clock.now();
    if (this.#told.has(key) && now - this.#toldAt < REPEATED_WARNING_INTERVAL_MS) {
      this.#untold++;
      this.#logger.debug(context, message);
      return;
    }
    const untold = this.#untold;
    this.#told.add(key);
    this.#toldAt = now;
    this.#untold = 0;
    if (untold === 0) this.#logger.warn(context, message);
    else {
      this.#logger.warn(
        { ...context, untold },
        `${message} (${untold} more failure(s) since the last warning)`,
      );
    }
  }

  /** The failures are over: the next one is told at once. */
  clear(): void {
    this.#told.clear();
    this.#untold = 0;
  }
}
