import { Deque } from './deque.js';

/**
 * What `flush()` waits for: every record taken (or waiting for room) before the call. Records belong
 * to the epoch current when they were taken; each flush closes the current epoch and waits until no
 * record of it or an earlier one is unsettled. Records of the current epoch are counted in a plain
 * number (the hot path); closed epochs still unsettled are kept in a map whose keys only grow, so its
 * first key is the oldest.
 */
export class FlushBarrier {
  #epoch = 0;
  /** Unsettled records of the current epoch. */
  #current = 0;
  /** Unsettled records of closed epochs. */
  readonly #closed = new Map<number, number>();
  /** Flushes waiting, in the order of their epochs. */
  readonly #waiters = new Deque<{ epoch: number; resolve: () => void }>();

  /** The epoch a record taken now belongs to. */
  get epoch(): number {
    return this.#epoch;
  }

  /** One more unsettled record, in the current epoch; returns that epoch. */
  count(): number {
    this.#current++;
    return this.#epoch;
  }

  /** A record of `epoch` settled (or left: an aborted wait). */
  release(epoch: number): void {
    if (epoch === this.#epoch) {
      // No flush waits on the current epoch: nothing to resolve.
      this.#current--;
      return;
    }
    const left = (this.#closed.get(epoch) ?? 1) - 1;
    if (left > 0) {
      this.#closed.set(epoch, left);
      return;
    }
    this.#closed.delete(epoch);
    // Waiters are in the order of their epochs: those before the oldest epoch still unsettled go, from
    // the front, and the first that stays ends the look (a flush per record stays O(1) a record).
    const waiters = this.#waiters;
    for (let first = waiters.peek(); first !== undefined; first = waiters.peek()) {
      if (this.#unsettledUpTo(first.epoch)) return;
      waiters.shift();
      // A microtask later: the record settling now answers its own caller first, so code after
      // `await flush()` sees every covered put already resolved.
      queueMicrotask(first.resolve);
    }
  }

  /** Closes the current epoch; resolves once every record of it and before has settled. */
  next(): Promise<void> {
    const epoch = this.#epoch++;
    if (this.#current > 0) this.#closed.set(epoch, this.#current);
    this.#current = 0;
    if (!this.#unsettledUpTo(epoch)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ epoch, resolve }));
  }

  #unsettledUpTo(epoch: number): boolean {
    for (const oldest of this.#closed.keys()) return oldest <= epoch;
    return false;
  }
}
