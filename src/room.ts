/**
 * Backpressure: the producer holds at most `maxOutstandingRecords` records and `maxBufferedBytes`
 * bytes that have not settled. Records wait for room in call order; a waiter leaves early when its
 * AbortSignal aborts. 'drain' is owed to whoever was turned away or told to wait, and paid once the
 * producer is at most half full with nobody waiting — like `Writable`, but at half rather than empty
 * so the pipeline keeps batching.
 *
 * The room is also no larger than the stream can write in half of `recordTtlMs`, so that a feed faster
 * than the stream makes callers wait instead of making records wait in the producer until they
 * expire. Two rules keep it so: the bytes held never exceed what the stream's shards take in that
 * time (1 MiB/s each, at `rateLimit`), known from the shard map; and no record is taken while an
 * eighth of the byte limit has waited that long already (the stream is slower than its shards allow:
 * shared with other producers, throttled, or down).
 */
export interface RoomLimits {
  readonly maxOutstandingRecords: number;
  readonly maxBufferedBytes: number;
  readonly recordTtlMs: number;
  readonly maxBufferedTimeMs: number;
  readonly requestTimeoutMs: number;
}

/** Granularity of the ages of records held. */
const AGE_BUCKET_MS = 100;
/** No record is taken while more than this share of the byte limit has been held too long. */
const STALE_SHARE = 1 / 8;

/** What the producer does with a waiting record: take it once it fits, or drop it. */
export interface RoomRequest {
  /** Takes the record; called when room is found. */
  admit(): void;
  /** The wait ended without room: its signal aborted, or close() gave up on it (`reason` says which). */
  cancel(why: 'aborted' | 'evicted', reason: unknown): void;
}

/**
 * A record waiting for room: a link in the line of waiters, which any of them can leave in O(1) when
 * its signal aborts. (An array's `shift` and `splice` cost O(n) each once it holds some tens of
 * thousands, and a batch of puts made at once can queue hundreds of thousands.)
 */
interface Waiter {
  readonly bytes: number;
  readonly request: RoomRequest;
  readonly signal: AbortSignal | undefined;
  prev: Waiter | undefined;
  next: Waiter | undefined;
}

/**
 * The waiters that share one abort signal. One listener per signal, however many puts pass it: an
 * AbortSignal's listeners cost O(n) each to add, and Node warns past ten of them.
 */
interface SignalGroup {
  readonly waiters: Set<Waiter>;
  readonly onAbort: () => void;
}

export class Room {
  readonly #limits: RoomLimits;
  readonly #onDrain: () => void;
  readonly #now: () => number;
  /** Half the TTL: what the bytes held must be writable in. */
  readonly #horizonMs: number;
  /**
   * A record held longer than this means the stream is behind. Half the TTL, but never less than a
   * record normally waits (buffering plus one request), or slow configurations would never take any.
   */
  readonly #maxAgeMs: number;
  #records = 0;
  #bytes = 0;
  /** The line of waiters, first to last. */
  #first: Waiter | undefined;
  #last: Waiter | undefined;
  #waiting = 0;
  readonly #bySignal = new Map<AbortSignal, SignalGroup>();
  #drainOwed = false;
  #afterFreeScheduled = false;
  /** What the streams' shards can take in `#horizonMs` (infinite while unknown). */
  #capacityBytes = Number.POSITIVE_INFINITY;
  #capacityRecords = Number.POSITIVE_INFINITY;
  /**
   * Bytes of unsettled records by the tenth of a second they were taken in: the current one in a
   * plain number (the hot path), earlier ones in a map whose keys only grow, oldest first.
   */
  #slot = -1;
  #slotBytes = 0;
  readonly #earlier = new Map<number, number>();

  constructor(limits: RoomLimits, now: () => number, onDrain: () => void) {
    this.#limits = limits;
    this.#now = now;
    this.#onDrain = onDrain;
    this.#horizonMs = limits.recordTtlMs / 2;
    this.#maxAgeMs = Math.max(this.#horizonMs, limits.maxBufferedTimeMs + limits.requestTimeoutMs);
  }

  /** The record limit in force now. */
  get maxRecords(): number {
    return Math.min(this.#limits.maxOutstandingRecords, this.#capacityRecords);
  }

  /** The byte limit in force now. */
  get maxBytes(): number {
    return Math.min(this.#limits.maxBufferedBytes, this.#capacityBytes);
  }

  /**
   * What the streams can write per second, when known (infinity otherwise): the room holds at most
   * that much for half the TTL.
   */
  setCapacity(bytesPerSecond: number, recordsPerSecond: number): void {
    this.#capacityBytes = (bytesPerSecond * this.#horizonMs) / 1000;
    this.#capacityRecords = (recordsPerSecond * this.#horizonMs) / 1000;
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
    return this.#waiting;
  }

  /** Room now for a record of `bytes`, with nobody waiting before it. */
  hasRoomFor(bytes: number, now: number): boolean {
    return this.#waiting === 0 && this.#fits(bytes, now);
  }

  /** A record larger than the byte limit still fits an empty producer, or it never would. */
  #fits(bytes: number, now: number): boolean {
    const maxBytes = this.maxBytes;
    if (this.#records >= this.maxRecords) return false;
    if (this.#bytes !== 0 && this.#bytes + bytes > maxBytes) return false;
    return this.#staleBytes(now) <= maxBytes * STALE_SHARE;
  }

  /**
   * Bytes held longer than `#maxAgeMs`. Counting bytes, not the single oldest record, keeps one stuck
   * record (a poison record retried alone, a hot shard) from closing the room for everyone.
   */
  #staleBytes(now: number): number {
    const limit = Math.floor((now - this.#maxAgeMs) / AGE_BUCKET_MS);
    let stale = 0;
    for (const [slot, bytes] of this.#earlier) {
      if (slot >= limit) return stale;
      stale += bytes;
    }
    // The latest slot too, when nothing was taken since it grew old.
    if (this.#slot < limit) stale += this.#slotBytes;
    return stale;
  }

  /** Someone was turned away or told to wait: 'drain' is owed. */
  owe(): void {
    this.#drainOwed = true;
  }

  /** Counts a record of `bytes` taken at `now`. */
  take(bytes: number, now: number): void {
    this.#records++;
    this.#bytes += bytes;
    const slot = Math.floor(now / AGE_BUCKET_MS);
    if (slot !== this.#slot) {
      if (this.#slotBytes > 0) this.#earlier.set(this.#slot, this.#slotBytes);
      this.#slot = slot;
      this.#slotBytes = 0;
    }
    this.#slotBytes += bytes;
  }

  /**
   * Counts a record settled (taken at `takenAt`): takes waiters that now fit, in order, and pays
   * 'drain' if owed.
   */
  free(bytes: number, takenAt: number): void {
    this.#records--;
    this.#bytes -= bytes;
    const slot = Math.floor(takenAt / AGE_BUCKET_MS);
    if (slot === this.#slot) {
      this.#slotBytes -= bytes;
    } else {
      const left = (this.#earlier.get(slot) ?? bytes) - bytes;
      if (left > 0) this.#earlier.set(slot, left);
      else this.#earlier.delete(slot);
    }
    // Waiters are taken, and 'drain' paid, a microtask later: never in the middle of the pipeline
    // work that settled this record (a taken record goes straight into that pipeline).
    if ((this.#waiting > 0 || this.#drainOwed) && !this.#afterFreeScheduled) {
      this.#afterFreeScheduled = true;
      queueMicrotask(() => this.#afterFree());
    }
  }

  #afterFree(): void {
    this.#afterFreeScheduled = false;
    if (this.#waiting > 0) this.#admitWaiters(this.#now());
    if (
      this.#drainOwed &&
      this.#waiting === 0 &&
      this.#records <= this.maxRecords / 2 &&
      this.#bytes <= this.maxBytes / 2 &&
      // Nor while records held too long still keep the room closed: a send in 'drain' would throw.
      // Only a record settling lowers those bytes, and each one brings us back here.
      this.#staleBytes(this.#now()) <= this.maxBytes * STALE_SHARE
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
    const waiter: Waiter = { bytes, request, signal, prev: this.#last, next: undefined };
    if (this.#last === undefined) this.#first = waiter;
    else this.#last.next = waiter;
    this.#last = waiter;
    this.#waiting++;
    if (signal === undefined) return;
    let group = this.#bySignal.get(signal);
    if (group === undefined) {
      group = { waiters: new Set(), onAbort: () => this.#aborted(signal) };
      this.#bySignal.set(signal, group);
      signal.addEventListener('abort', group.onAbort, { once: true });
    }
    group.waiters.add(waiter);
  }

  /** Every waiter with `signal` leaves, cancelled; the ones after them may fit now. */
  #aborted(signal: AbortSignal): void {
    const group = this.#bySignal.get(signal);
    if (group === undefined) return;
    this.#bySignal.delete(signal);
    for (const waiter of group.waiters) {
      this.#unlink(waiter);
      waiter.request.cancel('aborted', signal.reason);
    }
    this.#admitWaiters(this.#now());
  }

  #admitWaiters(now: number): void {
    for (let waiter = this.#first; waiter !== undefined; waiter = this.#first) {
      if (!this.#fits(waiter.bytes, now)) return;
      this.#unlink(waiter);
      if (waiter.signal !== undefined) this.#leaveGroup(waiter, waiter.signal);
      waiter.request.admit();
    }
  }

  #unlink(waiter: Waiter): void {
    if (waiter.prev === undefined) this.#first = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.#last = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.#waiting--;
  }

  /** A waiter admitted: the last of its signal's group takes the listener away with it. */
  #leaveGroup(waiter: Waiter, signal: AbortSignal): void {
    const group = this.#bySignal.get(signal);
    if (group === undefined) return;
    group.waiters.delete(waiter);
    if (group.waiters.size > 0) return;
    this.#bySignal.delete(signal);
    signal.removeEventListener('abort', group.onAbort);
  }

  /** Cancels every waiter without taking it (close gave up), with `message` as the reason. */
  evict(message: string): void {
    for (const [signal, group] of this.#bySignal) signal.removeEventListener('abort', group.onAbort);
    this.#bySignal.clear();
    let waiter = this.#first;
    this.#first = this.#last = undefined;
    this.#waiting = 0;
    while (waiter !== undefined) {
      const next = waiter.next;
      waiter.prev = waiter.next = undefined;
      waiter.request.cancel('evicted', message);
      waiter = next;
    }
  }
}
