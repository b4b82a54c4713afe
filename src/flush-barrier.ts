/**
 * What `flush()` waits for: every record taken (or waiting for room) before the call. Records belong
 * to the epoch current when they were taken; each flush starts a new epoch and waits until no record
 * of its epoch or an earlier one is unsettled. Epochs only grow, so the first key of the map is the
 * oldest epoch still unsettled.
 */
export class FlushBarrier {
  #epoch = 0;
  readonly #unsettled = new Map<number, number>();
  #waiters: { epoch: number; resolve: () => void }[] = [];

  /** The epoch a record taken now belongs to. */
  get epoch(): number {
    return this.#epoch;
  }

  /** One more unsettled record in `epoch`. */
  count(epoch: number): void {
    this.#unsettled.set(epoch, (this.#unsettled.get(epoch) ?? 0) + 1);
  }

  /** A record of `epoch` settled (or left: an aborted wait). */
  release(epoch: number): void {
    const left = (this.#unsettled.get(epoch) ?? 1) - 1;
    if (left > 0) {
      this.#unsettled.set(epoch, left);
      return;
    }
    this.#unsettled.delete(epoch);
    if (this.#waiters.length === 0) return;
    const still: { epoch: number; resolve: () => void }[] = [];
    for (const waiter of this.#waiters) {
      if (this.#unsettledUpTo(waiter.epoch)) still.push(waiter);
      // A microtask later: the record settling now answers its own caller first, so code after
      // `await flush()` sees every covered put already resolved.
      else queueMicrotask(waiter.resolve);
    }
    this.#waiters = still;
  }

  /** Closes the current epoch; resolves once every record of it and before has settled. */
  next(): Promise<void> {
    const epoch = this.#epoch++;
    if (!this.#unsettledUpTo(epoch)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ epoch, resolve }));
  }

  #unsettledUpTo(epoch: number): boolean {
    for (const oldest of this.#unsettled.keys()) return oldest <= epoch;
    return false;
  }
}
