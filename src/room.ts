/**
 * Backpressure: the producer holds at most `maxOutstandingRecords` records and `maxBufferedBytes`
 * bytes that have not settled. Records wait for room in call order; a waiter leaves early when its
 * AbortSignal aborts. 'drain' is owed to whoever was turned away or told to wait, and paid once the
 * producer is at most half full with nobody waiting — like `Writable`, but at half rather than empty
 * so the pipeline keeps batching.
 */
export interface RoomLimits {
  readonly maxOutstandingRecords: number;
  readonly maxBufferedBytes: number;
}

/** What the producer does with a waiting record: take it once it fits, or drop it. */
export interface RoomRequest {
  /** Takes the record; called when room is found. */
  admit(): void;
  /** The wait ended without room: its signal aborted (`reason`), or close() gave up on it. */
  cancel(why: 'aborted' | 'evicted', reason: unknown): void;
}

interface Waiter {
  readonly bytes: number;
  readonly request: RoomRequest;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

export class Room {
  readonly #limits: RoomLimits;
  readonly #onDrain: () => void;
  #records = 0;
  #bytes = 0;
  #waiters: Waiter[] = [];
  #drainOwed = false;

  constructor(limits: RoomLimits, onDrain: () => void) {
    this.#limits = limits;
    this.#onDrain = onDrain;
  }

  /** Records taken and not settled. */
  get records(): number {
    return this.#records;
  }

  /** Their bytes (partition keys + data). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records waiting for room. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** At either limit. */
  get full(): boolean {
    return (
      this.#records >= this.#limits.maxOutstandingRecords || this.#bytes >= this.#limits.maxBufferedBytes
    );
  }

  /** Room now for a record of `bytes`, with nobody waiting before it. */
  hasRoomFor(bytes: number): boolean {
    return this.#waiters.length === 0 && this.#fits(bytes);
  }

  /** A record larger than `maxBufferedBytes` still fits an empty producer, or it never would. */
  #fits(bytes: number): boolean {
    return (
      this.#records < this.#limits.maxOutstandingRecords &&
      (this.#bytes === 0 || this.#bytes + bytes <= this.#limits.maxBufferedBytes)
    );
  }

  /** Someone was turned away or told to wait: 'drain' is owed. */
  owe(): void {
    this.#drainOwed = true;
  }

  /** Counts a record taken. */
  take(bytes: number): void {
    this.#records++;
    this.#bytes += bytes;
  }

  /** Counts a record settled: takes waiters that now fit, in order, and pays 'drain' if owed. */
  free(bytes: number): void {
    this.#records--;
    this.#bytes -= bytes;
    if (this.#waiters.length > 0) this.#admitWaiters();
    if (
      this.#drainOwed &&
      this.#waiters.length === 0 &&
      this.#records <= this.#limits.maxOutstandingRecords / 2 &&
      this.#bytes <= this.#limits.maxBufferedBytes / 2
    ) {
      this.#drainOwed = false;
      this.#onDrain();
    }
  }

  /**
   * Queues a record of `bytes` until it fits, then admits it. If `signal` aborts first, the waiter
   * leaves and is cancelled with the signal's reason.
   */
  wait(bytes: number, request: RoomRequest, signal: AbortSignal | undefined): void {
    this.#drainOwed = true;
    let waiter: Waiter;
    const onAbort =
      signal === undefined
        ? undefined
        : () => {
            const index = this.#waiters.indexOf(waiter);
            if (index < 0) return;
            this.#waiters.splice(index, 1);
            request.cancel('aborted', signal.reason);
            // The next waiter may fit now that the one before it left.
            this.#admitWaiters();
          };
    waiter = { bytes, request, signal, onAbort };
    if (signal !== undefined) signal.addEventListener('abort', onAbort!, { once: true });
    this.#waiters.push(waiter);
  }

  #admitWaiters(): void {
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.bytes)) {
      const waiter = this.#waiters.shift()!;
      waiter.signal?.removeEventListener('abort', waiter.onAbort!);
      waiter.request.admit();
    }
  }

  /** Cancels every waiter without taking it (close gave up). */
  evict(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort!);
      waiter.request.cancel('evicted', undefined);
    }
  }
}
