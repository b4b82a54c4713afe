/**
 * Backpressure: the producer holds at most `maxOutstandingRecords` records and `maxBufferedBytes`
 * bytes that have not settled. Records wait for room in call order; a waiter leaves early when its
 * AbortSignal aborts. 'drain' is owed to whoever was turned away or told to wait, and paid once the
 * producer is at most half full with nobody waiting — like `Writable`, but at half rather than empty
 * so the pipeline keeps batching.
 *
 * The room also adapts to the stream: it holds no more than the stream was measured to write in half
 * of `recordTtlMs` (never less than a small floor, never more than the configured limits). When the
 * stream is slower than the feed, callers wait for room instead of their records waiting in the
 * producer until they expire.
 */
export interface RoomLimits {
  readonly maxOutstandingRecords: number;
  readonly maxBufferedBytes: number;
  readonly recordTtlMs: number;
}

/** The room never shrinks below this (unless the configured limits are smaller). */
export const MIN_ROOM_RECORDS = 4096;
export const MIN_ROOM_BYTES = 4 * 1024 * 1024;
/** The write rate is measured over this many one-second buckets. */
const RATE_BUCKETS = 10;
const BUCKET_MS = 1000;

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
  /** The limits in force: the configured ones, or less while the stream writes slowly. */
  #maxRecords: number;
  #maxBytes: number;
  /** Records and bytes written per one-second bucket (a ring), and the second of each bucket. */
  readonly #writtenRecords = new Float64Array(RATE_BUCKETS);
  readonly #writtenBytes = new Float64Array(RATE_BUCKETS);
  readonly #bucketSecond = new Float64Array(RATE_BUCKETS).fill(-1);
  #currentSecond = -1;
  #firstSecond = -1;

  constructor(limits: RoomLimits, onDrain: () => void) {
    this.#limits = limits;
    this.#onDrain = onDrain;
    // Until the stream's rate is known, start small: a burst must not fill the producer with more
    // than a slow stream can write before the records expire.
    this.#maxRecords = Math.min(limits.maxOutstandingRecords, MIN_ROOM_RECORDS);
    this.#maxBytes = Math.min(limits.maxBufferedBytes, MIN_ROOM_BYTES);
  }

  /** The record limit in force now. */
  get maxRecords(): number {
    return this.#maxRecords;
  }

  /** The byte limit in force now. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /**
   * The stream wrote `records` records of `bytes` bytes. Once a second, the room is set to what the
   * stream wrote per second over the last seconds, times half the TTL, within [floor, configured].
   */
  written(records: number, bytes: number, now: number): void {
    const second = Math.floor(now / BUCKET_MS);
    if (second !== this.#currentSecond) {
      if (this.#currentSecond >= 0) this.#adapt(second);
      else this.#firstSecond = second;
      this.#currentSecond = second;
      const i = second % RATE_BUCKETS;
      this.#bucketSecond[i] = second;
      this.#writtenRecords[i] = 0;
      this.#writtenBytes[i] = 0;
    }
    const i = second % RATE_BUCKETS;
    this.#writtenRecords[i]! += records;
    this.#writtenBytes[i]! += bytes;
  }

  /** Sets the limits from the rate over the complete seconds before `second`. */
  #adapt(second: number): void {
    const from = Math.max(this.#firstSecond, second - RATE_BUCKETS);
    const seconds = second - from;
    if (seconds <= 0) return;
    let records = 0;
    let bytes = 0;
    for (let i = 0; i < RATE_BUCKETS; i++) {
      const s = this.#bucketSecond[i]!;
      if (s >= from && s < second) {
        records += this.#writtenRecords[i]!;
        bytes += this.#writtenBytes[i]!;
      }
    }
    const horizon = this.#limits.recordTtlMs / 2 / 1000;
    const clamp = (value: number, floor: number, ceiling: number) =>
      Math.min(ceiling, Math.max(Math.min(floor, ceiling), value));
    this.#maxRecords = Math.floor(
      clamp((records / seconds) * horizon, MIN_ROOM_RECORDS, this.#limits.maxOutstandingRecords),
    );
    this.#maxBytes = Math.floor(
      clamp((bytes / seconds) * horizon, MIN_ROOM_BYTES, this.#limits.maxBufferedBytes),
    );
    // More room: waiting records may fit now.
    if (this.#waiters.length > 0) this.#admitWaiters();
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
    return this.#records >= this.#maxRecords || this.#bytes >= this.#maxBytes;
  }

  /** Room now for a record of `bytes`, with nobody waiting before it. */
  hasRoomFor(bytes: number): boolean {
    return this.#waiters.length === 0 && this.#fits(bytes);
  }

  /** A record larger than `maxBufferedBytes` still fits an empty producer, or it never would. */
  #fits(bytes: number): boolean {
    return this.#records < this.#maxRecords && (this.#bytes === 0 || this.#bytes + bytes <= this.#maxBytes);
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
      this.#records <= this.#maxRecords / 2 &&
      this.#bytes <= this.#maxBytes / 2
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
