import { MinHeap } from './min-heap.js';

/**
 * Backpressure: the producer holds at most `maxOutstandingRecords` records and `maxBufferedBytes`
 * bytes that have not settled. Records that do not fit wait for room; a waiter leaves early when its
 * AbortSignal aborts. 'drain' is owed to whoever was turned away or told to wait, and paid once the
 * producer, and every share a send was turned away from, is at most half full with nobody waiting
 * there — like `Writable`, but at half rather than empty so the pipeline keeps batching.
 *
 * Each shard also has a share of the room (a {@link RoomShare}), so that one slow shard or stream
 * neither holds its records until they expire nor keeps the others waiting:
 * - a shard's share holds no more than the shard writes in half of `recordTtlMs` (1 MiB/s, and 1,000
 *   records/s when not aggregating, at `rateLimit`), so a feed faster than the shard makes its
 *   callers wait instead of making its records wait in the producer until they expire;
 * - once the producer is over half full (bytes, or records), a share takes more only within its part
 *   of the producer: its shards over all the streams' shards. Below half, a busy share borrows what
 *   the others leave;
 * - no record is taken into a share while more than one of its records, and more than an eighth of
 *   its part of the bytes, have waited that long already (the shard is slower than its limits allow:
 *   shared with other producers, throttled, or down). One stuck record alone never closes it.
 *
 * Records wait in call order within a share. Across shares, the first waiter whose share has room
 * goes first: a put for a shard with room is not queued behind one for a full shard. Records of a
 * stream whose shards are not known have one share for the stream: as large as one shard's until the
 * shard map is known, when they count in their shards' shares instead (see `move`); on a stream that
 * routes records itself (AUTO), as large as its open shards'.
 *
 * The producer as a whole is also no larger than its streams' shards write in half the TTL, known
 * from the shard maps.
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
/** No record is taken into a share while more than this part of its byte limit has been held too long. */
const STALE_SHARE = 1 / 8;

/** What the producer does with a waiting record: take it once it fits, or drop it. */
export interface RoomRequest {
  /** Takes the record into `share`; called when room is found, at `now` (a fresh clock reading). */
  admit(share: RoomShare, now: number): void;
  /** The wait ended without room: its signal aborted, or close() gave up on it (`reason` says which). */
  cancel(why: 'aborted' | 'evicted', reason: unknown): void;
  /** The share the record belongs to now (asked again when a shard map changes). */
  share(): RoomShare;
}

/**
 * A record waiting for room: a link in its share's line of waiters, which any of them can leave in
 * O(1) when its signal aborts. (An array's `shift` and `splice` cost O(n) each once it holds some
 * tens of thousands, and a batch of puts made at once can queue hundreds of thousands.)
 */
interface Waiter {
  readonly bytes: number;
  readonly request: RoomRequest;
  readonly signal: AbortSignal | undefined;
  /** Call order, across shares. */
  readonly seq: number;
  share: RoomShare;
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

/** Bytes and records taken in one tenth of a second and not settled. */
interface AgeSlot {
  bytes: number;
  records: number;
}

/**
 * Unsettled records by the tenth of a second they were taken in: the current one in plain numbers
 * (the hot path), earlier ones in a map whose keys only grow, oldest first.
 */
class AgeBuckets {
  #slot = -1;
  #slotBytes = 0;
  #slotRecords = 0;
  readonly #earlier = new Map<number, AgeSlot>();
  /**
   * The oldest slot holding records (infinite when none): `takenBefore` answers from it alone while
   * nothing is old, without walking the map — it is asked for every record taken.
   */
  #oldest = Number.POSITIVE_INFINITY;
  /** Records counted by the last `takenBefore`. */
  staleRecords = 0;

  add(bytes: number, now: number): void {
    const slot = Math.floor(now / AGE_BUCKET_MS);
    if (slot !== this.#slot) {
      if (this.#slotRecords > 0)
        this.#earlier.set(this.#slot, { bytes: this.#slotBytes, records: this.#slotRecords });
      this.#slot = slot;
      this.#slotBytes = 0;
      this.#slotRecords = 0;
    }
    this.#slotBytes += bytes;
    this.#slotRecords++;
    if (slot < this.#oldest) this.#oldest = slot;
  }

  /** Adds a record taken at `at`, which may be earlier than the latest slot (a record moving shares). */
  addAt(bytes: number, at: number): void {
    const slot = Math.floor(at / AGE_BUCKET_MS);
    if (slot >= this.#slot) {
      this.add(bytes, at);
      return;
    }
    const held = this.#earlier.get(slot);
    if (held !== undefined) {
      held.bytes += bytes;
      held.records++;
    } else {
      // Keep the map oldest first: rebuilt, which a burst of moved records pays once per slot.
      const entries = [...this.#earlier, [slot, { bytes, records: 1 }] as const].sort((a, b) => a[0] - b[0]);
      this.#earlier.clear();
      for (const [key, value] of entries) this.#earlier.set(key, value);
    }
    if (slot < this.#oldest) this.#oldest = slot;
  }

  remove(bytes: number, takenAt: number): void {
    const slot = Math.floor(takenAt / AGE_BUCKET_MS);
    let emptied: boolean;
    if (slot === this.#slot) {
      this.#slotBytes -= bytes;
      emptied = --this.#slotRecords <= 0;
    } else {
      const held = this.#earlier.get(slot);
      emptied = held === undefined || --held.records <= 0;
      if (emptied) this.#earlier.delete(slot);
      else held!.bytes -= bytes;
    }
    if (emptied && slot === this.#oldest) this.#findOldest();
  }

  #findOldest(): void {
    for (const [slot] of this.#earlier) {
      this.#oldest = slot;
      return;
    }
    this.#oldest = this.#slotRecords > 0 ? this.#slot : Number.POSITIVE_INFINITY;
  }

  /** Bytes taken before `before`; their records in `staleRecords`. */
  takenBefore(before: number): number {
    const limit = Math.floor(before / AGE_BUCKET_MS);
    this.staleRecords = 0;
    if (this.#oldest >= limit) return 0;
    let stale = 0;
    for (const [slot, held] of this.#earlier) {
      if (slot >= limit) return stale;
      stale += held.bytes;
      this.staleRecords += held.records;
    }
    // The latest slot too, when nothing was taken since it grew old.
    if (this.#slot < limit) {
      stale += this.#slotBytes;
      this.staleRecords += this.#slotRecords;
    }
    return stale;
  }
}

/**
 * @internal One shard's part of the room (or one stream's, while its shards are unknown): the records
 * taken for it and not settled, its limits, and the records waiting for it, first to last. Created by
 * the stream's pipeline, one per open shard; records keep theirs until they settle, also after a
 * reshard.
 */
export class RoomShare {
  /** The stream and shard, for errors. */
  readonly label: string;
  /** How many shards it stands for: 1, or an AUTO stream's open shards (see StreamPipeline). */
  shards = 1;
  records = 0;
  bytes = 0;
  /** What its shards write in half the TTL (records: infinite when aggregated). */
  maxBytes = Number.POSITIVE_INFINITY;
  maxRecords = Number.POSITIVE_INFINITY;
  readonly ages = new AgeBuckets();
  first: Waiter | undefined = undefined;
  last: Waiter | undefined = undefined;
  waiting = 0;

  constructor(label: string) {
    this.label = label;
  }
}

/** Why a record does not fit: the producer's limits, or its share's. */
export type FullFor = 'producer' | 'share';

export class Room {
  readonly #limits: RoomLimits;
  readonly #onDrain: () => void;
  readonly #now: () => number;
  /** Half the TTL: what the bytes held must be writable in. */
  readonly #horizonMs: number;
  /**
   * A record held longer than this means the shard is behind. Half the TTL, but never less than a
   * record normally waits (buffering plus one request), or slow configurations would never take any.
   */
  readonly #maxAgeMs: number;
  #records = 0;
  #bytes = 0;
  /** Shares with records waiting, and how many wait in all. */
  readonly #waitingShares = new Set<RoomShare>();
  #waiting = 0;
  #nextSeq = 0;
  /**
   * The last look at the waiters found one whose share had room but the producer had not: until the
   * next look, nobody may pass it.
   */
  #stalled = false;
  readonly #bySignal = new Map<AbortSignal, SignalGroup>();
  #drainOwed = false;
  /**
   * Shares a send was refused (or told "full") for, with the largest record it was for: 'drain'
   * waits until each has room again, for such a record too.
   */
  readonly #owing = new Map<RoomShare, number>();
  #afterFreeScheduled = false;
  /** What the streams' shards can take in `#horizonMs` (infinite while unknown). */
  #capacityBytes = Number.POSITIVE_INFINITY;
  #capacityRecords = Number.POSITIVE_INFINITY;
  /** The streams' shards, a stream counting as one while its shards are unknown: what parts divide. */
  #shards = 1;

  constructor(limits: RoomLimits, now: () => number, onDrain: () => void) {
    this.#limits = limits;
    this.#now = now;
    this.#onDrain = onDrain;
    this.#horizonMs = limits.recordTtlMs / 2;
    this.#maxAgeMs = Math.max(this.#horizonMs, limits.maxBufferedTimeMs + limits.requestTimeoutMs);
  }

  /** The record limit of the producer now. */
  get maxRecords(): number {
    return Math.min(this.#limits.maxOutstandingRecords, this.#capacityRecords);
  }

  /** The byte limit of the producer now. */
  get maxBytes(): number {
    return Math.min(this.#limits.maxBufferedBytes, this.#capacityBytes);
  }

  /**
   * What the streams can write per second, when known (infinity otherwise): the producer holds at most
   * that much for half the TTL.
   */
  setCapacity(bytesPerSecond: number, recordsPerSecond: number): void {
    this.#capacityBytes = (bytesPerSecond * this.#horizonMs) / 1000;
    this.#capacityRecords = (recordsPerSecond * this.#horizonMs) / 1000;
    this.#lookSoon();
  }

  /**
   * How many shards the streams have in all (a stream whose shards are unknown counting as the shards
   * its share stands for): each share's part of the producer is its shards over these.
   */
  setShards(shards: number): void {
    this.#shards = Math.max(1, shards);
    this.#lookSoon();
  }

  /** What the shards of `share` write per second: it holds that much for half the TTL. */
  setShareCapacity(share: RoomShare, bytesPerSecond: number, recordsPerSecond: number): void {
    share.maxBytes = (bytesPerSecond * this.#horizonMs) / 1000;
    share.maxRecords = (recordsPerSecond * this.#horizonMs) / 1000;
    if (share.waiting > 0) this.#lookSoon();
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

  /** Room now for a record of `bytes` in `share`, with nobody waiting before it. */
  hasRoomFor(bytes: number, share: RoomShare, now: number): boolean {
    return share.waiting === 0 && !this.#stalled && this.#fits(bytes) && this.#shareFits(bytes, share, now);
  }

  /** When `hasRoomFor` said no: whether the producer's limits keep a record of `bytes` out, or its share's. */
  fullFor(bytes: number): FullFor {
    return this.#stalled || !this.#fits(bytes) ? 'producer' : 'share';
  }

  /** A record larger than the byte limit still fits an empty producer, or it never would. */
  #fits(bytes: number): boolean {
    if (this.#records >= this.maxRecords) return false;
    return this.#bytes === 0 || this.#bytes + bytes <= this.maxBytes;
  }

  /** The same for a share, and none while too much of it has been held too long. */
  #shareFits(bytes: number, share: RoomShare, now: number): boolean {
    if (share.records >= share.maxRecords) return false;
    if (share.records !== 0) {
      if (share.bytes + bytes > share.maxBytes) return false;
      // Past half the producer, a share takes more only within its own part of it: a slow shard or
      // stream may borrow room the others do not use, but never fill the producer for all.
      if (this.#bytes + bytes > this.maxBytes / 2 && share.bytes + bytes > this.fairBytes(share))
        return false;
      if (this.#records + 1 > this.maxRecords / 2 && share.records + 1 > this.fairRecords(share))
        return false;
    }
    return !this.#closedByStale(share, now);
  }

  /**
   * The bytes `share` may hold for a record of `bytes` now: its own limit, or its part of the producer
   * once that would be over half full (as `#shareFits` counts them; for errors).
   */
  shareBytesAllowed(bytes: number, share: RoomShare): number {
    const overHalf = this.#bytes + bytes > this.maxBytes / 2;
    return overHalf ? this.fairBytes(share) : Math.min(share.maxBytes, this.maxBytes);
  }

  /** The part of the producer that is `share`'s: its shards over all the streams' shards. */
  #part(share: RoomShare): number {
    return share.shards / Math.max(this.#shards, share.shards);
  }

  /** The part of the producer's byte limit that is `share`'s, and no more than its own limit. */
  fairBytes(share: RoomShare): number {
    return Math.min(share.maxBytes, this.maxBytes * this.#part(share));
  }

  /** The same for records. */
  fairRecords(share: RoomShare): number {
    return Math.min(share.maxRecords, this.maxRecords * this.#part(share));
  }

  /**
   * Whether more than an eighth of the share's part of the bytes has been held too long, in more than
   * one record: one stuck record (a poison record retried alone) does not close its shard.
   */
  #closedByStale(share: RoomShare, now: number): boolean {
    if (share.records < 2) return false;
    const ages = share.ages;
    const stale = ages.takenBefore(now - this.#maxAgeMs);
    return ages.staleRecords > 1 && stale > this.fairBytes(share) * STALE_SHARE;
  }

  /** Someone was turned away or told to wait for `share`: 'drain' is owed once it has room. */
  owe(share: RoomShare, bytes: number): void {
    this.#drainOwed = true;
    this.#owing.set(share, Math.max(bytes, this.#owing.get(share) ?? 0));
  }

  /** Counts a record of `bytes` taken into `share` at `now`. */
  take(bytes: number, now: number, share: RoomShare): void {
    this.#records++;
    this.#bytes += bytes;
    share.records++;
    share.bytes += bytes;
    share.ages.add(bytes, now);
  }

  /**
   * Counts a record taken at `takenAt` in `to` instead of `from`: it was taken while its shard was
   * not known, and now is.
   */
  move(bytes: number, takenAt: number, from: RoomShare, to: RoomShare): void {
    from.records--;
    from.bytes -= bytes;
    from.ages.remove(bytes, takenAt);
    to.records++;
    to.bytes += bytes;
    to.ages.addAt(bytes, takenAt);
    // A send refused for `from` was for records that now count in `to`: 'drain' waits for it too.
    const owed = this.#owing.get(from);
    if (owed !== undefined) this.#owing.set(to, Math.max(owed, this.#owing.get(to) ?? 0));
    if (from.waiting > 0) this.#lookSoon();
  }

  /**
   * Counts a record of `share` settled (taken at `takenAt`): takes waiters that now fit, and pays
   * 'drain' if owed.
   */
  free(bytes: number, takenAt: number, share: RoomShare): void {
    this.#records--;
    this.#bytes -= bytes;
    share.records--;
    share.bytes -= bytes;
    share.ages.remove(bytes, takenAt);
    this.#lookSoon();
  }

  /**
   * Waiters are taken, and 'drain' paid, a microtask later: never in the middle of the pipeline work
   * that settled a record (a taken record goes straight into that pipeline).
   */
  #lookSoon(): void {
    if ((this.#waiting > 0 || this.#drainOwed) && !this.#afterFreeScheduled) {
      this.#afterFreeScheduled = true;
      queueMicrotask(() => this.#afterFree());
    }
  }

  #afterFree(): void {
    this.#afterFreeScheduled = false;
    const now = this.#now();
    this.#admitWaiters(now);
    if (
      this.#drainOwed &&
      !this.#stalled &&
      this.#records <= this.maxRecords / 2 &&
      this.#bytes <= this.maxBytes / 2 &&
      this.#owingHaveRoom(now)
    ) {
      this.#drainOwed = false;
      this.#owing.clear();
      this.#onDrain();
    }
  }

  /**
   * Whether every share a send was refused for has nobody waiting, is at most half full, takes now
   * the largest record it was refused for (up to half the producer's bytes and its own part), and is
   * not closed by records held too long (a send in 'drain' would throw; only a record settling lowers
   * those, and each one brings us back here).
   * Waiters of other shares do not hold 'drain' back: a send for a share with room passes them.
   */
  #owingHaveRoom(now: number): boolean {
    for (const [share, bytes] of this.#owing) {
      if (share.waiting > 0) return false;
      if (share.records > this.fairRecords(share) / 2 || share.bytes > this.fairBytes(share) / 2)
        return false;
      // Up to what a producer and a share at most half full can always take: a record larger than
      // that fits only an empty producer, which callers of put() may never leave it.
      if (!this.#fits(Math.min(bytes, this.maxBytes / 2))) return false;
      if (!this.#shareFits(Math.min(bytes, this.fairBytes(share)), share, now)) return false;
    }
    return true;
  }

  /**
   * Queues a record of `bytes` for `share` until it fits, then admits it. If `signal` aborts first,
   * the waiter leaves and is cancelled with the signal's reason.
   */
  wait(bytes: number, share: RoomShare, request: RoomRequest, signal: AbortSignal | undefined): void {
    // Listening first: a signal that refuses the listener leaves nothing behind.
    let group = signal === undefined ? undefined : this.#bySignal.get(signal);
    if (signal !== undefined && group === undefined) {
      const onAbort = () => this.#aborted(signal);
      signal.addEventListener('abort', onAbort, { once: true });
      group = { waiters: new Set(), onAbort };
      this.#bySignal.set(signal, group);
    }
    this.#drainOwed = true;
    const waiter: Waiter = {
      bytes,
      request,
      signal,
      seq: this.#nextSeq++,
      share,
      prev: undefined,
      next: undefined,
    };
    // Its share has room but the producer has not: nobody passes it until it is in.
    if (share.waiting === 0 && !this.#fits(bytes) && this.#shareFits(bytes, share, this.#now())) {
      this.#stalled = true;
    }
    this.#append(waiter);
    group?.waiters.add(waiter);
  }

  /**
   * Records can no longer be taken into `shares` (a reshard closed their shard, or the stream's shards
   * became known, or stopped being its routing): their waiters move to the share they belong to now,
   * keeping call order.
   */
  reshare(shares: Iterable<RoomShare>): void {
    const moving: Waiter[] = [];
    for (const share of shares) {
      if (share.waiting === 0) continue;
      for (let waiter = share.first; waiter !== undefined; waiter = waiter.next) moving.push(waiter);
      this.#waiting -= share.waiting;
      share.first = share.last = undefined;
      share.waiting = 0;
      this.#waitingShares.delete(share);
    }
    if (moving.length === 0) return;
    moving.sort((a, b) => a.seq - b.seq);
    for (const waiter of moving) {
      waiter.share = waiter.request.share();
      this.#append(waiter);
    }
    this.#lookSoon();
  }

  /** Every waiter with `signal` leaves, cancelled; others may fit now. */
  #aborted(signal: AbortSignal): void {
    const group = this.#bySignal.get(signal);
    if (group === undefined) return;
    this.#bySignal.delete(signal);
    for (const waiter of group.waiters) {
      this.#unlink(waiter);
      waiter.request.cancel('aborted', signal.reason);
    }
    // Those behind them may fit now, and 'drain' may be due.
    this.#lookSoon();
  }

  /**
   * Admits waiters while they fit: always the one called first among the shares that have room, so
   * within a share in call order. Stops at the first the producer has no room for.
   */
  #admitWaiters(now: number): void {
    this.#stalled = false;
    if (this.#waiting === 0) return;
    const ready = new MinHeap<RoomShare>((a, b) => a.first!.seq < b.first!.seq);
    for (const share of this.#waitingShares) {
      if (this.#shareFits(share.first!.bytes, share, now)) ready.push(share);
    }
    for (let share = ready.peek(); share !== undefined; share = ready.peek()) {
      const waiter = share.first!;
      // Those admitted since it was queued may have taken the producer past half full, where a share
      // holds no more than its part: asked again. A share that no longer fits waits for a record of
      // its own to settle, and holds nobody back (nor is it the producer that keeps it out).
      if (!this.#shareFits(waiter.bytes, share, now)) {
        ready.pop();
        continue;
      }
      if (!this.#fits(waiter.bytes)) {
        this.#stalled = true;
        return;
      }
      ready.pop();
      this.#unlink(waiter);
      if (waiter.signal !== undefined) this.#leaveGroup(waiter, waiter.signal);
      waiter.request.admit(share, now);
      const next = share.first;
      if (next !== undefined && this.#shareFits(next.bytes, share, now)) ready.push(share);
    }
  }

  #append(waiter: Waiter): void {
    const share = waiter.share;
    waiter.prev = share.last;
    waiter.next = undefined;
    if (share.last === undefined) share.first = waiter;
    else share.last.next = waiter;
    share.last = waiter;
    if (share.waiting++ === 0) this.#waitingShares.add(share);
    this.#waiting++;
  }

  #unlink(waiter: Waiter): void {
    const share = waiter.share;
    if (waiter.prev === undefined) share.first = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) share.last = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = undefined;
    if (--share.waiting === 0) this.#waitingShares.delete(share);
    // Nobody left to pass.
    if (--this.#waiting === 0) this.#stalled = false;
  }

  /** Unlinks every waiter of every share (close gave up); returns them in call order. */
  #takeAllWaiters(): Waiter[] {
    const waiters: Waiter[] = [];
    for (const share of this.#waitingShares) {
      for (let waiter = share.first; waiter !== undefined; waiter = waiter.next) waiters.push(waiter);
      share.first = share.last = undefined;
      share.waiting = 0;
    }
    this.#waitingShares.clear();
    this.#waiting = 0;
    waiters.sort((a, b) => a.seq - b.seq);
    return waiters;
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
    this.#stalled = false;
    for (const waiter of this.#takeAllWaiters()) waiter.request.cancel('evicted', message);
  }
}
