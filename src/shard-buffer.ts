import type { AggregateBuilder } from './aggregator.js';
import { Deque } from './deque.js';
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
   * The sealed records, oldest first, as runs whose expiries rise: the first run's first record is the
   * head. Nearly always one run. Another starts where a record goes ahead of one that expires before
   * it: a retry put back at the head of a merged shard's queue, ahead of older records moved there
   * from the other parent. Each run's first record is its earliest, so expiry looks at those alone.
   * Never an empty run, but the one of an empty buffer.
   */
  #runs: Deque<OutboundRecord>[] = [new Deque()];
  #queued = 0;
  /** Bytes of the sealed records waiting (partition key + data). */
  queuedBytes = 0;

  constructor(key: string, shardId: string | undefined, builder: AggregateBuilder<PendingRecord>) {
    this.key = key;
    this.shardId = shardId;
    this.builder = builder;
  }

  /** Sealed records waiting. */
  get queued(): number {
    return this.#queued;
  }

  /** The oldest sealed record, if any. */
  peek(): OutboundRecord | undefined {
    return this.#runs[0]!.peek();
  }

  push(record: OutboundRecord): void {
    const runs = this.#runs;
    const last = runs[runs.length - 1]!;
    const tail = last.peekLast();
    if (tail === undefined || record.expiresAt >= tail.expiresAt) last.push(record);
    else runs.push(runOf(record));
    this.#added(record);
  }

  /** Puts a record back at the head: retries go before newer records of the same shard. */
  pushFront(record: OutboundRecord): void {
    const runs = this.#runs;
    const head = runs[0]!.peek();
    if (head === undefined || record.expiresAt <= head.expiresAt) runs[0]!.unshift(record);
    else runs.unshift(runOf(record));
    this.#added(record);
  }

  #added(record: OutboundRecord): void {
    this.#queued++;
    this.queuedBytes += record.sizeBytes;
  }

  shift(): OutboundRecord | undefined {
    const runs = this.#runs;
    const record = runs[0]!.shift();
    if (record === undefined) return undefined;
    if (runs[0]!.length === 0 && runs.length > 1) runs.shift();
    this.#queued--;
    this.queuedBytes -= record.sizeBytes;
    return record;
  }

  /** When the first of the records waiting expires (infinity if none waits). */
  get nextExpiry(): number {
    const runs = this.#runs;
    let next = runs[0]!.peek()?.expiresAt ?? Number.POSITIVE_INFINITY;
    for (let i = 1; i < runs.length; i++) next = Math.min(next, runs[i]!.peek()!.expiresAt);
    return next;
  }

  /**
   * Takes out every record expired by `now`, wherever it waits, and puts in its place what `renew`
   * returns for it (its records still alive, in fresh Kinesis records), so that a key's records keep
   * their order. Looks at the first records of the runs and at those it takes out: not the whole
   * queue. `renew` must not add to this buffer.
   */
  replaceExpired(now: number, renew: (expired: OutboundRecord) => readonly OutboundRecord[]): void {
    const runs = this.#runs;
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!;
      for (let first = run.peek(); first !== undefined && first.expiresAt <= now; first = run.peek()) {
        run.shift();
        this.#queued--;
        this.queuedBytes -= first.sizeBytes;
        const fresh = renew(first);
        // Where it was, oldest first. Placed last first, each before the one after it: at the front
        // of that one's run, or (when it expires later) in a run of its own inserted at `at`.
        const at = i;
        let ahead = run;
        for (let j = fresh.length - 1; j >= 0; j--) {
          const record = fresh[j]!;
          const next = ahead.peek();
          if (next === undefined || record.expiresAt <= next.expiresAt) {
            ahead.unshift(record);
          } else {
            ahead = runOf(record);
            runs.splice(at, 0, ahead);
            i++;
          }
          this.#added(record);
        }
      }
      if (run.length === 0 && runs.length > 1) runs.splice(i--, 1);
    }
  }

  /** The sealed records waiting, oldest first (without removing them). */
  *records(): Generator<OutboundRecord> {
    for (const run of this.#runs) yield* run;
  }

  /** Removes and returns every sealed record, oldest first. */
  drain(): OutboundRecord[] {
    const records = this.#runs.length === 1 ? this.#runs[0]!.drain() : [...this.records()];
    this.#runs = [new Deque()];
    this.#queued = 0;
    this.queuedBytes = 0;
    return records;
  }

  /** Nothing open and nothing queued. */
  get empty(): boolean {
    return this.builder.count === 0 && this.queued === 0;
  }
}

function runOf(record: OutboundRecord): Deque<OutboundRecord> {
  const run = new Deque<OutboundRecord>();
  run.push(record);
  return run;
}
