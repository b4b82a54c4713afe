import type { AggregateBuilder } from './aggregator.js';
import type { OutboundRecord, PendingRecord } from './pending-record.js';

/**
 * Where records bound for one shard wait: the aggregate being filled, then the sealed Kinesis records
 * ready to go into a PutRecords request, oldest first.
 */
export class ShardBuffer {
  /** The shard id, `#<hash key>` while the shard map is unknown, or `*` on AUTO streams. */
  readonly key: string;
  /** The shard records here were predicted for, when a shard map was known. */
  readonly shardId: string | undefined;
  readonly builder: AggregateBuilder<PendingRecord>;
  /** When the open aggregate must be sealed: its first record's arrival + maxBufferedTimeMs. */
  sendBy = Number.POSITIVE_INFINITY;
  /** Shard-map version the open aggregate is routed under. */
  mapVersion = 0;
  /**
   * Until when its head may not go: its shard's rate limiter refused it, or (with ordering) it waits
   * out a backoff. Meanwhile its records make no request due (see StreamPipeline.isDue).
   */
  heldUntil = 0;

  /**
   * The sealed records: those put back at the head (retries) in `#front`, a stack whose last element
   * is the oldest record, then the rest in `#queue` from `#head` on. Both ends take a record in O(1):
   * a throttled request can put hundreds of records back in front of a queue of thousands (records
   * sent unaggregated), and an array's `unshift` moves the whole queue each time.
   */
  #front: OutboundRecord[] = [];
  #queue: OutboundRecord[] = [];
  #head = 0;
  /** Bytes of the sealed records waiting (partition key + data). */
  queuedBytes = 0;
  /**
   * Whether expiries rise from head to tail, so that the head expires first. Not so once a record
   * went ahead of one that expires before it: a retry put back at the head of a merged shard's queue,
   * ahead of older records moved there from the other parent. Then until a sweep finds them in order.
   */
  #inOrder = true;
  /** No later than the earliest expiry among the records waiting (read while out of order). */
  #earliest = Number.POSITIVE_INFINITY;

  constructor(key: string, shardId: string | undefined, builder: AggregateBuilder<PendingRecord>) {
    this.key = key;
    this.shardId = shardId;
    this.builder = builder;
  }

  /** Sealed records waiting. */
  get queued(): number {
    return this.#front.length + this.#queue.length - this.#head;
  }

  /** The oldest sealed record, if any. */
  peek(): OutboundRecord | undefined {
    const front = this.#front;
    return front.length > 0 ? front[front.length - 1] : this.#queue[this.#head];
  }

  push(record: OutboundRecord): void {
    const tail = this.#queue.length > this.#head ? this.#queue[this.#queue.length - 1] : this.#front[0];
    if (tail !== undefined && record.expiresAt < tail.expiresAt) this.#inOrder = false;
    this.#queue.push(record);
    this.#added(record);
  }

  /** Puts a record back at the head: retries go before newer records of the same shard. */
  pushFront(record: OutboundRecord): void {
    const head = this.peek();
    if (head !== undefined && record.expiresAt > head.expiresAt) this.#inOrder = false;
    if (this.#head > 0 && this.#front.length === 0) this.#queue[--this.#head] = record;
    else this.#front.push(record);
    this.#added(record);
  }

  #added(record: OutboundRecord): void {
    this.queuedBytes += record.sizeBytes;
    if (record.expiresAt < this.#earliest) this.#earliest = record.expiresAt;
  }

  /** When the first of the records waiting expires, or a moment before (infinity if none waits). */
  get nextExpiry(): number {
    return this.#inOrder ? (this.peek()?.expiresAt ?? Number.POSITIVE_INFINITY) : this.#earliest;
  }

  /**
   * Takes out every record expired by `now`, wherever it waits, and puts in its place what `renew`
   * returns for it (its records still alive, in fresh Kinesis records): a key's records keep their
   * order. `renew` must not add to this buffer.
   */
  replaceExpired(now: number, renew: (expired: OutboundRecord) => readonly OutboundRecord[]): void {
    const kept: OutboundRecord[] = [];
    for (const record of [...this.records()]) {
      if (record.expiresAt > now) kept.push(record);
      else for (const fresh of renew(record)) kept.push(fresh);
    }
    this.#front = [];
    this.#queue = [];
    this.#head = 0;
    this.queuedBytes = 0;
    this.#reset();
    for (const record of kept) this.push(record);
  }

  /** Nothing waits: in order, with no expiry. */
  #reset(): void {
    this.#inOrder = true;
    this.#earliest = Number.POSITIVE_INFINITY;
  }

  shift(): OutboundRecord | undefined {
    if (this.#front.length > 0) {
      const record = this.#front.pop()!;
      this.queuedBytes -= record.sizeBytes;
      if (this.#front.length === 0 && this.#head === this.#queue.length) this.#reset();
      return record;
    }
    if (this.#head >= this.#queue.length) return undefined;
    const record = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined as unknown as OutboundRecord;
    this.queuedBytes -= record.sizeBytes;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      if (this.#front.length === 0) this.#reset();
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return record;
  }

  /** The sealed records waiting, oldest first (without removing them). */
  *records(): Generator<OutboundRecord> {
    for (let i = this.#front.length - 1; i >= 0; i--) yield this.#front[i]!;
    for (let i = this.#head; i < this.#queue.length; i++) yield this.#queue[i]!;
  }

  /** Removes and returns every sealed record, oldest first. */
  drain(): OutboundRecord[] {
    const records = this.#front.reverse().concat(this.#queue.slice(this.#head));
    this.#front = [];
    this.#queue = [];
    this.#head = 0;
    this.queuedBytes = 0;
    this.#reset();
    return records;
  }

  /** Nothing open and nothing queued. */
  get empty(): boolean {
    return this.builder.count === 0 && this.queued === 0;
  }
}
