import { AggregateBuilder, type KinesisRecord } from './aggregator.js';
import { describeThrown, ErrorCode, InvalidRecordError } from './errors.js';
import { SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND, ShardLimiter } from './limiter.js';
import { MinHeap } from './min-heap.js';
import type { ResolvedOptions } from './options.js';
import { attemptsOf, carryAttempts, OutboundRecord, type PendingRecord } from './pending-record.js';
import {
  type AttemptLog,
  earlierUnanswered,
  UNLISTED_SHARD,
  unansweredAttempt,
  unansweredCode,
} from './result.js';
import { type Room, RoomShare } from './room.js';
import type { Settlement } from './settlement.js';
import { ShardBuffer } from './shard-buffer.js';
import type { ShardMap, ShardRange } from './shard-map.js';
import { PROVISIONAL_STREAM_INFO, type StreamInfo, type StreamSummary } from './stream-info.js';
import type { StreamRef } from './stream-ref.js';

/** KPL sends a PutRecords request early once one shard has this much waiting in it. */
const SHARD_QUEUE_FLUSH_BYTES = 256 * 1024;
/** The error code of an attempt whose aggregate landed on a shard some of its records do not belong to. */
const WRONG_SHARD = 'WrongShard';
/** The error code of an attempt stored in a stream that was not found afterwards (see ShardMap.forget). */
const STREAM_GONE = 'StreamGone';
/**
 * The error code of an aggregate stored in a stream that routes records itself (AUTO), whose consumers
 * drop aggregates: one built before the stream was found to be such (created again as AUTO).
 */
const STORED_IN_AUTO_STREAM = 'StoredInAutoStream';

/** The message of a `StoredInAutoStream` attempt. */
const storedInAutoStream = (shardId: string) =>
  `Aggregate stored on ${shardId} of a stream that routes records itself (RecordDistributionStrategy AUTO), whose consumers drop aggregates; its records are sent again, each alone`;

/** Aggregates due within this much of a request going out go with it (at most a quarter of the buffering time). */
const COALESCE_MS = 25;

/**
 * How long after an aggregate landed listings may still not show the shard that took it, taken for
 * listings that lag the service after a reshard, before the shard is taken for one of a stream gone.
 */
const LISTING_LAG_MS = 5_000;

/** An aggregate stored on another shard than predicted, waiting to be decided (see #settleLanded). */
interface Landed {
  readonly record: OutboundRecord;
  readonly shardId: string;
  readonly sequenceNumber: string;
  /** The mark of the listing of every shard asked for when it landed (see ShardMap.listAll). */
  readonly listedAfter: number;
  /** The shard map's failed tries of ListShards when it landed (see ShardMap.failedTries). */
  readonly failedTries: number;
}

/** What a stream pipeline needs from the producer that owns it. */
export interface PipelineHost {
  readonly options: ResolvedOptions;
  /** Fails a record for good with every attempt made for it. */
  readonly fail: Settlement['fail'];
  /** The service stored `record` in `shardId` and consumers will read it there: it succeeded. */
  stored(stream: StreamRef, record: OutboundRecord, shardId: string, sequenceNumber: string): void;
  /** Counts a failed attempt of `count` user records, by code, in the metrics (`ErrorsByCode`). */
  attemptFailed(stream: StreamRef, shardId: string, code: string, count: number, now: number): void;
  /**
   * The service stored `record` in `shardId`, but consumers will not read its records there (they are
   * sent again): it counts as a Kinesis record written, its user records do not.
   */
  storedUnread(stream: StreamRef, record: OutboundRecord, shardId: string, now: number): void;
  /** The stream's open shards changed: the metrics of closed ones may go (see ProducerMetrics.openShards). */
  openShards(stream: StreamRef, open: ReadonlySet<string>, now: number): void;
  /** The producer's clock. */
  now(): number;
  /** Something will be due at `at` (ms since the epoch): make sure the producer wakes up then. */
  wakeAt(at: number): void;
  /** The decimal hash key of a record, for the outer record's ExplicitHashKey. */
  hashKeyDecimal(item: PendingRecord): string;
  /** The producer's room, which sizes the shards' shares of it. */
  readonly room: Room;
}

/**
 * Everything that happens to records of one stream before and after a PutRecords request: wait for
 * the stream's summary (the gate), route to a predicted shard, aggregate per shard, wait sealed
 * until a request is due, and wait again for a retry after backoff.
 *
 * A record waits, in order: in the gate (until DescribeStreamSummary answered), in its shard's open
 * aggregate (until full or `maxBufferedTimeMs` after its arrival), in its shard's queue (until a
 * request is due, a connection is free and the shard's rate limiter has a token — with ordering, also
 * until the shard has nothing in flight), then in flight; after a retryable failure in the retry heap
 * (until its backoff ends; with ordering, at the head of its shard's queue instead), then back at the
 * head of its shard's queue. Its TTL runs all along: wherever it waits, it fails on time.
 */
export class StreamPipeline {
  readonly stream: StreamRef;
  readonly shardMap: ShardMap;
  readonly #summary: StreamSummary;
  readonly #host: PipelineHost;
  readonly #options: ResolvedOptions;

  #info: StreamInfo | undefined;
  #gate: PendingRecord[] = [];
  /**
   * The room share of records whose shard is not known: as large as one shard's until the shard map
   * is known (then records move to their shards' shares, see sharesLeft), or as the stream's open
   * shards' on a stream that routes records itself (AUTO).
   */
  readonly #streamShare: RoomShare;
  /** The room share of each open shard, and the same in the shard map's order, as of `#sharesVersion`. */
  #shares = new Map<string, RoomShare>();
  #sharesByIndex: RoomShare[] = [];
  #sharesVersion = -1;
  /** Shares no record is taken into any more, whose waiters have not been moved yet (see sharesLeft). */
  #sharesLeft: RoomShare[] = [];
  /**
   * A flush was asked for while records waited in the gate (all of them, before any summary, or the
   * ones a provisional summary holds): they are flushed as soon as they are let go.
   */
  #flushWhenOpen = false;
  /** Every buffer by key; shard buffers are also in `#byShardIndex`, aligned with the map's shards. */
  readonly #buffers = new Map<string, ShardBuffer>();
  #byShardIndex: ShardBuffer[] = [];
  #byShardIndexVersion = -1;
  #unpartitioned: ShardBuffer | undefined;
  /** Buffers with an open aggregate, in the order they opened: their `sendBy` only grows along it. */
  #open: { buffer: ShardBuffer; sendBy: number }[] = [];
  #openHead = 0;
  /** Buffers with sealed records waiting. */
  readonly #ready = new Set<ShardBuffer>();
  /** Lanes whose head waits for the stream's summary, read again (see #setAsideTooLarge). */
  readonly #heldForSummary = new Set<ShardBuffer>();
  #readyCount = 0;
  #readyBytes = 0;
  /**
   * Of those, the records of buffers held back (see ShardBuffer.heldUntil) as of `#heldAsOf`, the
   * time of the last count, and when the first hold ends: held records make no request due, or a
   * shard its rate limiter holds back would have every other shard's records sent as they come.
   */
  #heldCount = 0;
  #heldBytes = 0;
  #heldAsOf = 0;
  #heldEnds = Number.POSITIVE_INFINITY;
  /** The earliest `sendBy` and whether one shard has 256 KiB waiting, among buffers not held. */
  #minSendBy = Number.POSITIVE_INFINITY;
  #urgent = false;
  /** Per-shard rate limiters, by shard id: they outlive buffers so a shard keeps its learned rate. */
  readonly #limiters = new Map<string, ShardLimiter>();
  /** With ordering: shard buffers (by key) with a record in flight or being verified. */
  readonly #busyLanes = new Set<string>();
  readonly #ordered: boolean;
  /**
   * With ordering, after the shard map changed: no shard sends until the records in flight under the
   * old map are answered, so a key's newer records cannot overtake its older ones on another lane.
   */
  #laneBarrier = false;
  /**
   * Aggregates stored on another shard than predicted, waiting for a newer shard map to tell whether
   * consumers will read them there (then they succeeded) or drop them (then they are sent again).
   */
  #landed: Landed[] = [];
  /** The shard map's resetVersion and goneVersion as of the last change handled (see onShardMapChange). */
  #resetSeen = 0;
  #goneSeen = 0;
  /** Records in backoff, soonest due first; ties in creation order so retries keep put order. */
  readonly #waiting = new MinHeap<OutboundRecord>((a, b) => {
    const da = Math.min(a.retryAt, a.expiresAt);
    const db = Math.min(b.retryAt, b.expiresAt);
    return da < db || (da === db && a.sequence < b.sequence);
  });

  constructor(stream: StreamRef, shardMap: ShardMap, summary: StreamSummary, host: PipelineHost) {
    this.stream = stream;
    this.shardMap = shardMap;
    this.#summary = summary;
    this.#host = host;
    this.#options = host.options;
    this.#ordered = host.options.ordering === 'per-partition-key';
    this.#streamShare = new RoomShare(`stream ${stream.label}`);
    this.#sizeShare(this.#streamShare);
  }

  /**
   * The share of the producer's room for a record of `hashKey`: its shard's, or the stream's while
   * the shard is not known.
   */
  shareFor(hashKey: bigint): RoomShare {
    const index = this.#info?.userPartitioned === true ? this.shardMap.lookupIndex(hashKey) : -1;
    if (index < 0) return this.#streamShare;
    if (this.#sharesVersion !== this.shardMap.version) this.#indexShares();
    return this.#sharesByIndex[index]!;
  }

  /**
   * Lines up one share per open shard with the shard map's order. A closed shard's share stays with
   * the records it holds.
   */
  #indexShares(): void {
    const previous = this.#shares;
    this.#shares = new Map();
    this.#sharesByIndex = this.shardMap.shards.map(({ shardId }) => {
      const share = previous.get(shardId) ?? new RoomShare(`shard ${shardId} of stream ${this.stream.label}`);
      this.#sizeShare(share);
      this.#shares.set(shardId, share);
      previous.delete(shardId);
      return share;
    });
    this.#sharesLeft.push(...previous.values());
    this.#sharesVersion = this.shardMap.version;
  }

  /**
   * The shares this stream's records are no longer taken into, since the last call: closed shards',
   * and the stream's own once its shards are known (or the shards' once the stream turns out to route
   * records itself). Their waiting puts must move (see Room.reshare). Records taken into the stream's
   * share before its shards were known count in their shard's from then on, wherever they are: held
   * here, or `inFlight` (the stream's records in requests under way).
   */
  sharesLeft(inFlight: Iterable<PendingRecord>): RoomShare[] {
    const left = this.#sharesLeft;
    this.#sharesLeft = [];
    if (this.#info?.userPartitioned === true && this.shardMap.ready) {
      if (this.#sharesVersion !== this.shardMap.version) this.#indexShares();
      left.push(...this.#sharesLeft.splice(0), this.#streamShare);
      if (this.#streamShare.records > 0) {
        for (const [item] of this.#held()) this.#countInShard(item);
        for (const item of inFlight) this.#countInShard(item);
      }
    } else {
      left.push(...this.#shares.values());
      this.#shares.clear();
      this.#sharesByIndex = [];
      this.#sharesVersion = -1;
    }
    return left;
  }

  /**
   * Sizes a share as what its shards write in half the TTL at `rateLimit`: 1 MiB/s each, and 1,000
   * records/s when records are known not to be aggregated (until the summary answers, that is not
   * known: a burst of small records at start is bounded by bytes and the producer's record limit).
   */
  #sizeShare(share: RoomShare): void {
    const rate = (this.#options.rateLimit / 100) * share.shards;
    const countsRecords = this.#info !== undefined && !this.aggregating;
    this.#host.room.setShareCapacity(
      share,
      rate * SHARD_BYTES_PER_SECOND,
      countsRecords ? rate * SHARD_RECORDS_PER_SECOND : Number.POSITIVE_INFINITY,
    );
  }

  /** How many shards the stream counts for in the producer's room: those of its map, once known. */
  get roomShards(): number {
    if (this.#info?.userPartitioned === true && this.shardMap.ready) return this.shardMap.shards.length;
    return this.#streamShare.shards;
  }

  /**
   * A record goes to a shard: if it still counts in the stream's share (it was taken while its shard
   * was unknown) and has not settled, it counts in that shard's share from now on.
   */
  #countInShard(item: PendingRecord): void {
    if (item.share !== this.#streamShare || item.settled) return;
    const share = this.shareFor(item.hashKey);
    if (share === item.share) return;
    this.#host.room.move(item.sizeBytes, item.arrivedAt, item.share, share);
    item.share = share;
  }

  /** The stream's summary once read (or the defaults, for good or provisionally, if the read failed). */
  get info(): StreamInfo | undefined {
    return this.#info;
  }

  /**
   * Whether records of this stream are aggregated: only once the summary is known for sure, since
   * consumers drop aggregates on streams the service routes itself.
   */
  get aggregating(): boolean {
    return this.#options.aggregation && this.#info?.final === true && this.#info.userPartitioned;
  }

  /** The largest record the stream is known to take; the largest any stream takes until then. */
  get maxRecordBytes(): number | undefined {
    return this.#info?.final === true ? this.#info.maxRecordBytes : undefined;
  }

  /** What `maxRecordBytes` is (or the limit used while it is undefined), for the error of a record above it. */
  get recordLimitName(): string {
    const info = this.#info;
    if (info?.final !== true) return 'the largest record size any stream takes';
    return info.routingKnown
      ? "the stream's maximum record size"
      : 'the maximum record size assumed for the stream (1 MiB: its DescribeStreamSummary was denied)';
  }

  /**
   * Opens the gate with what the stream's summary said: records waiting for it go on (or fail if too
   * large). With a provisional summary, records above its size limit keep waiting for a final one,
   * and with ordering so does every record behind them.
   */
  open(info: StreamInfo, now: number): void {
    const wasPartitioned = this.#info?.userPartitioned !== false;
    this.#info = info;
    // Whether records are aggregated may have changed, and with it what a shard's share holds.
    this.#sharesVersion = -1;
    this.#streamShare.shards = info.userPartitioned ? 1 : (info.openShards ?? 1);
    this.#sizeShare(this.#streamShare);
    if (!info.userPartitioned) {
      this.shardMap.close();
      // A provisional summary said partition keys route records, and the final one says the service
      // routes them (AUTO): with ordering, records queued in shard lanes move to their hash keys'
      // lanes, ahead of the records put after them.
      if (wasPartitioned && this.#ordered) {
        this.#reroute(() => false, now);
        this.#recomputeReady(now);
      }
      // Aggregates of the stream as it was (created again as AUTO) that waited to be decided: no
      // listing decides them now, and consumers drop them. Sent again, each record alone.
      this.#resendLanded(STORED_IN_AUTO_STREAM, storedInAutoStream, now);
    } else if (info.final) {
      // Decided once the summary is known (see #settleLanded).
      this.#settleLanded(now);
    }
    this.#releaseGate(info);
    // A lane held for the summary (see #setAsideTooLarge) is looked at again; a backoff's or a rate
    // limiter's hold stays.
    if (this.#heldForSummary.size > 0) {
      for (const buffer of this.#heldForSummary) buffer.heldUntil = 0;
      this.#heldForSummary.clear();
      this.#recomputeReady(now);
    }
    if (this.#flushWhenOpen) this.flushAll(now);
  }

  /**
   * Routes the records in the gate that need not wait under `info` any more (or fails those too
   * large for it), in order; with ordering, the first that must still wait holds back all behind it.
   */
  #releaseGate(info: StreamInfo): void {
    const waiting = this.#gate;
    this.#gate = [];
    for (const item of waiting) {
      if (item.settled) continue;
      if (this.#mustWait(item, info)) {
        this.#gate.push(item);
      } else if (item.sizeBytes > info.maxRecordBytes) {
        this.#failTooLarge(item, info);
      } else {
        this.#route(item);
      }
    }
  }

  /** Stops the stream's background reads (the producer shut down). */
  close(): void {
    this.shardMap.close();
    this.#summary.close();
  }

  /**
   * Takes an accepted record into the pipeline. One checked at the call against a limit the stream
   * turned out not to have may be taken only now (a put that waited for room while the summary
   * came): it fails here, alone, instead of failing the whole request it would be sent in.
   */
  accept(item: PendingRecord): void {
    const info = this.#info;
    if (this.#mustWait(item, info)) {
      this.#gate.push(item);
      this.#host.wakeAt(item.expiresAt);
    } else if (info !== undefined && item.sizeBytes > info.maxRecordBytes) {
      this.#failTooLarge(item, info);
    } else {
      this.#route(item);
    }
  }

  #failTooLarge(
    item: PendingRecord,
    info: StreamInfo,
    shardId?: string,
    attempts: readonly AttemptLog[] = [],
  ): void {
    const noAnswer = unansweredCode(attempts);
    this.#host.fail(
      this.stream,
      item,
      ErrorCode.RecordTooLarge,
      `partitionKey + data is ${item.sizeBytes} bytes, above ${this.recordLimitName} of ${info.maxRecordBytes} bytes${noAnswer === undefined ? '' : `; ${earlierUnanswered(noAnswer)}`}.`,
      shardId,
      attempts,
    );
  }

  /**
   * A record sent alone that is above the size limit the stream has now: taken before the stream was
   * found gone and created again with smaller records. It fails alone (final limit) or waits for the
   * summary (provisional), instead of failing the whole request it would be sent in: in the gate, or
   * with ordering at the head of its lane, which it holds (the records behind it may be of its key).
   * Says whether `record` fits, was taken out of `buffer` for that, or holds its lane.
   */
  #setAsideTooLarge(buffer: ShardBuffer, record: OutboundRecord): 'fits' | 'taken' | 'held' {
    const info = this.#info;
    if (info === undefined || record.aggregated) return 'fits';
    const item = record.items[0]!;
    if (item.sizeBytes <= info.maxRecordBytes) return 'fits';
    if (!info.final && this.#ordered) return 'held';
    this.#take(buffer);
    if (item.settled) return 'taken';
    if (info.final) {
      this.#failTooLarge(item, info, buffer.shardId, attemptsOf(item, record));
    } else {
      carryAttempts(item, record.attempts);
      this.#gate.push(item);
      this.#host.wakeAt(item.expiresAt);
    }
    return 'taken';
  }

  /**
   * Whether `item` waits in the gate: while the summary is unknown; while it is provisional, if the
   * record is above its size limit — and with ordering, if records before it wait.
   */
  #mustWait(item: PendingRecord, info: StreamInfo | undefined): boolean {
    if (info === undefined) return true;
    if (info.final) return false;
    return item.sizeBytes > info.maxRecordBytes || (this.#ordered && this.#gate.length > 0);
  }

  #route(item: PendingRecord): void {
    const buffer = this.#bufferFor(item);
    if (buffer.shardId !== undefined) this.#countInShard(item);
    if (!this.aggregating) {
      this.#enqueue(
        buffer,
        this.#single(item, buffer, this.shardMap.version, item.arrivedAt + this.#options.maxBufferedTimeMs),
        false,
      );
      return;
    }
    const builder = buffer.builder;
    if (!builder.tryAdd(item)) {
      this.#seal(buffer);
      builder.tryAdd(item);
    }
    if (builder.count === 1) {
      buffer.sendBy = item.arrivedAt + this.#options.maxBufferedTimeMs;
      buffer.mapVersion = this.shardMap.version;
      this.#open.push({ buffer, sendBy: buffer.sendBy });
      this.#host.wakeAt(buffer.sendBy);
    }
    // Full (or a single record at least as large as an aggregate may be): no reason to wait.
    if (builder.sizeBytes >= builder.maxBytes || builder.count >= builder.maxCount) this.#seal(buffer);
  }

  /** One user record as a Kinesis record of its own (aggregation off), due by `sendBy`. */
  #single(item: PendingRecord, buffer: ShardBuffer, mapVersion: number, sendBy: number): OutboundRecord {
    const record = {
      partitionKey: item.partitionKey,
      explicitHashKey: this.#host.hashKeyDecimal(item),
      data: toBytes(item.data),
    };
    return new OutboundRecord([item], record, buffer.shardId, mapVersion, sendBy);
  }

  #bufferFor(item: PendingRecord): ShardBuffer {
    const partitioned = this.#info?.userPartitioned !== false;
    if (!partitioned && !this.#ordered) {
      this.#unpartitioned ??= this.#newBuffer('*', undefined);
      return this.#unpartitioned;
    }
    const index = partitioned ? this.shardMap.lookupIndex(item.hashKey) : -1;
    if (index >= 0) {
      if (this.#byShardIndexVersion !== this.shardMap.version) this.#indexShardBuffers();
      return this.#byShardIndex[index]!;
    }
    // No shard map: only records of the same hash key may share an aggregate. With ordering on a
    // stream that routes records itself (AUTO), a hash key is also a lane of its own, so that keys go
    // side by side rather than the whole stream one record per round trip.
    const key = `#${item.hashKey}`;
    let buffer = this.#buffers.get(key);
    if (buffer === undefined) {
      buffer = this.#newBuffer(key, undefined);
      this.#buffers.set(key, buffer);
    }
    return buffer;
  }

  /** Lines up one buffer per open shard with the shard map's order (after each map change). */
  #indexShardBuffers(): void {
    this.#byShardIndex = this.shardMap.shards.map((s) => {
      let buffer = this.#buffers.get(s.shardId);
      if (buffer === undefined) {
        buffer = this.#newBuffer(s.shardId, s.shardId);
        this.#buffers.set(s.shardId, buffer);
      }
      return buffer;
    });
    this.#byShardIndexVersion = this.shardMap.version;
  }

  #newBuffer(key: string, shardId: string | undefined): ShardBuffer {
    const maxBytes = Math.min(
      this.#options.aggregationMaxBytes,
      this.#info?.maxRecordBytes ?? Number.POSITIVE_INFINITY,
    );
    return new ShardBuffer(
      key,
      shardId,
      new AggregateBuilder<PendingRecord>(maxBytes, this.#options.aggregationMaxCount, (r) =>
        this.#host.hashKeyDecimal(r),
      ),
    );
  }

  /** Turns the open aggregate of `buffer` into a sealed Kinesis record waiting for a request. */
  #seal(buffer: ShardBuffer): void {
    const sealed = this.#build(buffer.builder, buffer.shardId, buffer.mapVersion, buffer.sendBy);
    buffer.sendBy = Number.POSITIVE_INFINITY;
    if (sealed !== undefined) this.#enqueue(buffer, sealed, false);
  }

  /**
   * Encodes what `builder` holds as one Kinesis record. A record whose data changed length since it
   * was taken (the caller reused, detached or resized the buffer it passed) cannot be sent as it was:
   * the encoder refuses it, and it fails alone while the others are encoded without it. Undefined
   * when none is left.
   */
  #build(
    builder: AggregateBuilder<PendingRecord>,
    shardId: string | undefined,
    mapVersion: number,
    sendBy: number,
  ): OutboundRecord | undefined {
    let items = builder.items;
    let record: KinesisRecord;
    try {
      try {
        record = builder.build();
      } catch (error) {
        if (!(error instanceof InvalidRecordError)) throw error;
        for (const item of builder.takeChanged()) {
          this.#failChangedItem(item, shardId, item.priorAttempts ?? []);
        }
        if (builder.count === 0) return undefined;
        items = builder.items;
        record = builder.build();
      }
    } catch (error) {
      // A defect of this package, not of the records: thrown on, it would leave them in no queue,
      // never to settle, and stop their shard for good. They fail, and say so.
      this.#failUnencodable(builder, shardId, error);
      return undefined;
    }
    return new OutboundRecord(items, record, shardId, mapVersion, sendBy);
  }

  #failUnencodable(
    builder: AggregateBuilder<PendingRecord>,
    shardId: string | undefined,
    error: unknown,
  ): void {
    const items = builder.items;
    builder.reset();
    const reason = describeThrown(error);
    for (const item of items) {
      this.#host.fail(
        this.stream,
        item,
        ErrorCode.Internal,
        `kinesis-producer failed to encode the Kinesis record holding this record (${reason}). This is a defect of kinesis-producer, not of the record: please report it.`,
        shardId,
        item.priorAttempts ?? [],
        error,
      );
    }
  }

  #failChangedItem(item: PendingRecord, shardId: string | undefined, attempts: readonly AttemptLog[]): void {
    this.#host.fail(
      this.stream,
      item,
      ErrorCode.DataChanged,
      `The record's data is now ${(item.data as Uint8Array).byteLength} bytes, not the ${item.dataBytes} it had when it was taken: its buffer was changed (reused, detached or resized) ${beforeWritten(attempts)}. Data must not change until its record settles.`,
      shardId,
      attempts,
    );
  }

  #enqueue(buffer: ShardBuffer, record: OutboundRecord, front: boolean): void {
    if (front) buffer.pushFront(record);
    else buffer.push(record);
    this.#ready.add(buffer);
    // Still among the ready ones since the hold began (its head leaving ends the hold): the hold's end
    // is in `#heldEnds`, where they are counted again, and go if due.
    if (this.#countReady(buffer, record)) return;
    if (record.sendBy < this.#minSendBy) this.#minSendBy = record.sendBy;
    if (buffer.queuedBytes >= SHARD_QUEUE_FLUSH_BYTES) this.#urgent = true;
    // A full request is due at once; otherwise when its oldest record's buffering time is up.
    this.#host.wakeAt(this.#full() ? 0 : Math.min(record.sendBy, record.expiresAt));
  }

  /** Counts `record`, just added to `buffer`'s sealed records; returns whether it is held back. */
  #countReady(buffer: ShardBuffer, record: OutboundRecord): boolean {
    this.#readyCount++;
    this.#readyBytes += record.sizeBytes;
    if (!this.#isHeld(buffer)) return false;
    this.#heldCount++;
    this.#heldBytes += record.sizeBytes;
    return true;
  }

  /** Whether `buffer` was held back at the last count of the ready records. */
  #isHeld(buffer: ShardBuffer): boolean {
    return buffer.heldUntil > this.#heldAsOf;
  }

  /** Whether a PutRecords request should go out now. */
  isDue(now: number): boolean {
    if (now >= this.#heldEnds) this.#recomputeReady(now);
    if (this.#readyCount === this.#heldCount) return false;
    return this.#minSendBy <= now || this.#full();
  }

  /** Enough that is not held back is waiting to fill a request, or one shard has 256 KiB waiting. */
  #full(): boolean {
    return (
      this.#urgent ||
      this.#readyCount - this.#heldCount >= this.#options.collectionMaxCount ||
      this.#readyBytes - this.#heldBytes >= this.#options.collectionMaxBytes
    );
  }

  /** When a sealed record waiting must be sent, or a hold ends (infinity if none waits). */
  get nextSendBy(): number {
    return this.#readyCount > 0 ? Math.min(this.#minSendBy, this.#heldEnds) : Number.POSITIVE_INFINITY;
  }

  /**
   * Collects the next PutRecords request: sealed records, oldest first per shard, shards in turn, up to
   * `collectionMaxCount` records and `collectionMaxBytes` (a single record larger than that still goes
   * alone: the service takes up to 10 MiB per request). Each record must pass its shard's rate limiter;
   * with ordering, a shard gives at most one record, and none while one is in flight or in backoff.
   * Expired records are failed, not sent.
   */
  collect(now: number): OutboundRecord[] {
    const maxCount = this.#options.collectionMaxCount;
    const maxBytes = this.#options.collectionMaxBytes;
    const ordered = this.#ordered;
    const batch: OutboundRecord[] = [];
    let bytes = 0;
    let rotate: ShardBuffer | undefined;
    const served: ShardBuffer[] = [];
    let blockedUntil = Number.POSITIVE_INFINITY;
    if (ordered && this.#laneBarrier) {
      this.#recomputeReady(now);
      return batch;
    }
    for (const buffer of this.#ready) {
      if (ordered && this.#busyLanes.has(buffer.key)) continue;
      const limiter = buffer.shardId === undefined ? undefined : this.#limiter(buffer.shardId, now);
      const taken = batch.length;
      let full = false;
      for (let record = buffer.peek(); record !== undefined; record = buffer.peek()) {
        if (record.expiresAt <= now) {
          this.#take(buffer);
          // Those left of it keep its backoff (with ordering, one in backoff waits at its lane's head).
          this.#expire(record, now, Math.max(now, record.retryAt));
          continue;
        }
        const changed = changedSingle(record);
        if (changed !== undefined) {
          this.#take(buffer);
          this.#failChangedItem(changed, buffer.shardId, attemptsOf(changed, record));
          continue;
        }
        const tooLarge = this.#setAsideTooLarge(buffer, record);
        if (tooLarge === 'taken') continue;
        if (tooLarge === 'held') {
          // Held as a backoff holds it: its lane makes no request due, until the summary answers
          // (open() ends the hold) or the record expires.
          buffer.heldUntil = record.expiresAt;
          this.#heldForSummary.add(buffer);
          break;
        }
        if (record.retryAt > now) {
          // Only with ordering does a record wait for its backoff at the head of its queue.
          blockedUntil = Math.min(blockedUntil, record.retryAt);
          buffer.heldUntil = record.retryAt;
          // A backoff's hold now, not the summary's (see open()).
          this.#heldForSummary.delete(buffer);
          break;
        }
        if (batch.length >= maxCount || (batch.length > 0 && bytes + record.sizeBytes > maxBytes)) {
          full = true;
          break;
        }
        if (limiter !== undefined) {
          // With ordering a shard sends one record per request anyway: resting would only delay it.
          const retryAt = limiter.take(record.sizeBytes, now, !ordered);
          if (retryAt !== undefined) {
            blockedUntil = Math.min(blockedUntil, retryAt);
            buffer.heldUntil = retryAt;
            this.#heldForSummary.delete(buffer);
            break;
          }
        }
        this.#take(buffer);
        record.sentAtLoad = this.shardMap.loads;
        batch.push(record);
        bytes += record.sizeBytes;
        if (ordered) {
          record.lane = buffer.key;
          this.#busyLanes.add(buffer.key);
          break;
        }
      }
      // The request filled up while this shard had more: it goes last next time, so shards take turns.
      if (full && batch.length > taken) rotate = buffer;
      // With ordering a lane sends one record per request, and stops before it could find the
      // request full: every lane that sent goes last, or lanes that always have a record waiting
      // would fill every request while those behind them never send.
      if (ordered && batch.length > taken) served.push(buffer);
      if (batch.length >= maxCount) break;
    }
    if (rotate !== undefined && this.#ready.delete(rotate)) this.#ready.add(rotate);
    for (const buffer of served) if (this.#ready.delete(buffer)) this.#ready.add(buffer);
    this.#recomputeReady(now);
    if (blockedUntil !== Number.POSITIVE_INFINITY) this.#host.wakeAt(blockedUntil);
    return batch;
  }

  #limiter(shardId: string, now: number): ShardLimiter {
    let limiter = this.#limiters.get(shardId);
    if (limiter === undefined) {
      limiter = new ShardLimiter(this.#options.rateLimit / 100, now);
      this.#limiters.set(shardId, limiter);
    }
    return limiter;
  }

  /** The service throttled records predicted for `shardId`: that shard's rate comes down. */
  onThrottled(shardId: string | undefined, now: number): void {
    if (shardId !== undefined) this.#limiters.get(shardId)?.onThrottled(now);
  }

  /** The service took records predicted for `shardId`: that shard's rate may probe upward. */
  onAccepted(shardId: string | undefined, now: number): void {
    if (shardId !== undefined) this.#limiters.get(shardId)?.onAccepted(now);
  }

  /** With ordering: the record's answer is handled, its shard may send again. */
  release(record: OutboundRecord): void {
    if (record.lane === undefined) return;
    this.#busyLanes.delete(record.lane);
    record.lane = undefined;
    if (this.#busyLanes.size === 0) this.#laneBarrier = false;
    if (this.#readyCount > 0) this.#host.wakeAt(0);
  }

  /**
   * `record` (an aggregate) was stored in `shardId`, not the predicted shard: the shard map is stale.
   * Consumers reading `shardId` keep the aggregate only if all its records belong there. It waits
   * here (its TTL still running, its ordering lane still busy) for a listing of every shard, closed
   * ones too, made after it landed: the shard may have opened and closed between two loads of the
   * map, and what the map remembers of it may be of a stream of the same name deleted since (see
   * #settleLanded).
   */
  landedElsewhere(record: OutboundRecord, shardId: string, sequenceNumber: string): void {
    const map = this.shardMap;
    const { failedTries } = map;
    const listedAfter = map.listAll();
    this.#landed.push({
      record,
      shardId,
      sequenceNumber,
      listedAfter,
      failedTries,
    });
    this.#host.wakeAt(record.expiresAt);
  }

  /** Whether the stream is known to route records itself (AUTO): consumers there drop aggregates. */
  get routesItself(): boolean {
    return this.#info?.final === true && !this.#info.userPartitioned;
  }

  /**
   * An aggregate built before the stream was known to route records itself (created again as AUTO)
   * was stored there: consumers drop it, so its records are sent again, each alone. (The response
   * handler releases its lane.)
   */
  storedInAutoStream(record: OutboundRecord, shardId: string, now: number): void {
    this.#sendAgain(record, shardId, STORED_IN_AUTO_STREAM, storedInAutoStream(shardId), now);
  }

  /** Whether `record` landed on another shard than predicted and waits to be decided (see landedElsewhere). */
  isLanded(record: OutboundRecord): boolean {
    return this.#landed.some((landed) => landed.record === record);
  }

  /** A listing of every shard completed, or a try of ListShards failed (see ShardMap.listAll). */
  onListedAll(now: number): void {
    this.#settleLanded(now);
    this.#recomputeReady(now);
  }

  /**
   * Decides the aggregates that landed on another shard than predicted, by the range of the shard that
   * took them as a listing of every shard made after they landed shows it; once a try of ListShards
   * failed since they landed, as the last listing made since they were sent showed it, if one did
   * (only a stream deleted and created again within one request's flight would make that one wrong):
   * - one whose records all lie in that range has succeeded;
   * - one that landed on a shard no listing made since shows waits for another listing, for a few
   *   seconds (LISTING_LAG_MS): listings may lag the service after a reshard, and it may well be
   *   read where it is; then its records are sent again, each alone under the same map;
   * - one that holds records of other shards is sent again, once the map routes them elsewhere than
   *   it did: a map newer than the one it was built under,
   *   or one in which that shard is not open. While that shard is open in the map it was built
   *   under, the map lags the service (a reshard under way, or a stream the service routes itself)
   *   and a newer one is waited for.
   */
  #settleLanded(now: number): void {
    // While the summary is read again (the stream may have been created again as AUTO, where a range
    // says nothing of what consumers read), nothing is decided: open() decides once it answers.
    if (this.#info?.final !== true || !this.#info.userPartitioned) return;
    const map = this.shardMap;
    const waiting: Landed[] = [];
    let newerWanted = false;
    for (const landed of this.#landed) {
      const { record, shardId } = landed;
      let range: ShardRange | undefined;
      if (map.listedAllSince(landed.listedAfter)) {
        range = map.rangeListedSince(shardId, landed.listedAfter);
      } else if (!map.failedTriesSince(landed.failedTries)) {
        waiting.push(landed);
        continue;
      } else {
        range = map.rangeListedSince(shardId, record.sentAtLoad);
        if (range === undefined) {
          waiting.push(landed);
          continue;
        }
      }
      if (
        range !== undefined &&
        record.items.every((item) => item.hashKey >= range.start && item.hashKey <= range.end)
      ) {
        this.#host.stored(this.stream, record, shardId, landed.sequenceNumber);
      } else if (
        range === undefined &&
        record.mapVersion >= map.resetVersion &&
        now - record.attempts[record.attempts.length - 1]!.endedAt < LISTING_LAG_MS
      ) {
        // No listing shows the shard that took it yet: the listings may lag the service (a reshard
        // just made it), and sending it again would write records consumers may already read there.
        // Another listing is asked for (ListShards rests between loads), for a few seconds.
        waiting.push({ ...landed, listedAfter: map.listAll() });
        continue;
      } else if (record.mapVersion === map.version && map.isOpen(shardId)) {
        waiting.push(landed);
        newerWanted = true;
        continue;
      } else if (range === undefined) {
        // Still no listing shows it: the listings lag for longer, or it is a shard of a stream since
        // deleted (the shard ids were given other keys). Sent again; each record alone while the map
        // is the one it went by (a single record is read wherever it lands: under a lagging map an
        // aggregate would land there again, and again).
        const alone = record.mapVersion >= map.resetVersion;
        this.#sendAgain(
          record,
          shardId,
          UNLISTED_SHARD,
          `Aggregate landed on ${shardId}, which no listing of the stream's shards showed within ${LISTING_LAG_MS / 1000} s (the listings lag, or the stream was deleted and created again): its records are sent again${alone ? ', each alone' : ''}`,
          now,
          alone,
        );
      } else {
        this.#sendAgain(
          record,
          shardId,
          WRONG_SHARD,
          shardId === record.predictedShardId
            ? `Aggregate landed on ${shardId} as predicted, but by a shard map from before the stream was found gone or its shard ids were given other hash keys (created again), and ${shardId} now owns other keys: it holds records of other shards, which consumers would drop; its records are sent again`
            : `Aggregate landed on ${shardId}, not ${record.predictedShardId} as predicted, and holds records of other shards, which consumers would drop; its records are sent again`,
          now,
        );
      }
      this.release(record);
    }
    this.#landed = waiting;
    if (newerWanted) map.refreshUntilNewer();
    else if (waiting.length === 0) map.stopWaitingForNewer();
  }

  /**
   * An aggregate stored on `shardId` that consumers will not read there, or not at all: its attempt
   * is logged as failed with `code`, and its records are routed again, ahead of newer ones.
   */
  #sendAgain(
    record: OutboundRecord,
    shardId: string,
    code: string,
    message: string,
    now: number,
    alone = false,
  ): void {
    const last = record.attempts[record.attempts.length - 1]!;
    this.#host.storedUnread(this.stream, record, shardId, now);
    // Records that failed meanwhile (expired while the aggregate waited) made no attempt here.
    let pending = 0;
    for (const item of record.items) if (!item.settled) pending++;
    if (pending > 0) this.#host.attemptFailed(this.stream, shardId, code, pending, now);
    record.attempts[record.attempts.length - 1] = {
      ...last,
      success: false,
      byEntry: false,
      errorCode: code,
      errorMessage: message,
    };
    this.requeue(record.items, record.attempts, now, now, alone ? 'alone' : 'as-is');
  }

  #take(buffer: ShardBuffer): OutboundRecord {
    const record = buffer.shift()!;
    this.#unready(buffer, record);
    this.#endHold(buffer);
    if (buffer.queued === 0) {
      this.#ready.delete(buffer);
      this.#dropIfIdle(buffer);
    }
    return record;
  }

  /**
   * Its head left `buffer` (sent, expired, failed): what held it back was that record's (a backoff),
   * or its shard's tokens, which the next head asks again when collected. The records left count as
   * ready from now.
   */
  #endHold(buffer: ShardBuffer): void {
    const held = this.#isHeld(buffer);
    buffer.heldUntil = 0;
    this.#heldForSummary.delete(buffer);
    if (!held) return;
    this.#heldCount -= buffer.queued;
    this.#heldBytes -= buffer.queuedBytes;
    const head = buffer.peek();
    if (head !== undefined && head.sendBy < this.#minSendBy) this.#minSendBy = head.sendBy;
    if (buffer.queuedBytes >= SHARD_QUEUE_FLUSH_BYTES) this.#urgent = true;
  }

  /** `record` left `buffer`'s sealed records. */
  #unready(buffer: ShardBuffer, record: OutboundRecord): void {
    this.#readyCount--;
    this.#readyBytes -= record.sizeBytes;
    if (this.#isHeld(buffer)) {
      this.#heldCount--;
      this.#heldBytes -= record.sizeBytes;
    }
  }

  /** Counts again, as of `now`, what is held back, and what is due when among the rest. */
  #recomputeReady(now: number): void {
    let min = Number.POSITIVE_INFINITY;
    let urgent = false;
    let heldCount = 0;
    let heldBytes = 0;
    let heldEnds = Number.POSITIVE_INFINITY;
    for (const buffer of this.#ready) {
      if (buffer.heldUntil > now) {
        heldCount += buffer.queued;
        heldBytes += buffer.queuedBytes;
        if (buffer.heldUntil < heldEnds) heldEnds = buffer.heldUntil;
        continue;
      }
      const head = buffer.peek();
      if (head !== undefined && head.sendBy < min) min = head.sendBy;
      if (buffer.queuedBytes >= SHARD_QUEUE_FLUSH_BYTES) urgent = true;
    }
    this.#minSendBy = min;
    this.#urgent = urgent;
    this.#heldCount = heldCount;
    this.#heldBytes = heldBytes;
    this.#heldAsOf = now;
    this.#heldEnds = heldEnds;
  }

  /** Buffers keyed by hash key (no map) or of closed shards are dropped once empty. */
  #dropIfIdle(buffer: ShardBuffer): void {
    // Open shards keep their buffer (a closed shard's goes in onShardMapChange); only buffers of one
    // hash key, used while no map is known, come and go.
    if (buffer.empty && buffer.shardId === undefined) this.#buffers.delete(buffer.key);
  }

  /** Puts a record that failed a retryable attempt into backoff until `retryAt`. */
  retryLater(record: OutboundRecord, retryAt: number): void {
    record.retryAt = retryAt;
    if (this.#ordered) {
      if (record.predictedShardId !== undefined && this.#isStale(record)) {
        // Its shard closed (a reshard): route its records again, still ahead of newer ones.
        this.requeue(record.items, record.attempts, this.#host.now(), retryAt);
        return;
      }
      // It holds back the records behind it: it stays at the head of its shard's queue.
      record.sendBy = retryAt;
      this.#enqueue(this.#bufferForRecord(record), record, true);
      return;
    }
    this.#waiting.push(record);
    this.#host.wakeAt(Math.min(retryAt, record.expiresAt));
  }

  /**
   * Fails the records of `record` that have expired and sends the rest again in fresh Kinesis records
   * (not before `notBefore`), carrying the attempts made so far.
   */
  #expire(record: OutboundRecord, now: number, notBefore: number): void {
    const alive = this.#failExpiredOf(record, now);
    if (alive.length > 0) this.requeue(alive, record.attempts, now, notBefore);
  }

  /** Fails the records of `record` past their TTL; returns those still alive, unsettled. */
  #failExpiredOf(record: OutboundRecord, now: number): PendingRecord[] {
    const alive: PendingRecord[] = [];
    for (const item of record.items) {
      if (item.settled) continue;
      if (item.expiresAt <= now) this.#failExpired(item, record.predictedShardId, attemptsOf(item, record));
      else alive.push(item);
    }
    return alive;
  }

  /**
   * `expired` waits behind the head of `buffer`: its records past their TTL fail, and the rest are
   * returned in fresh Kinesis records to take its place, due and held back as it was. Sent again from
   * the head instead, as #expire does, they would go before older records of their keys.
   */
  #renewInPlace(buffer: ShardBuffer, expired: OutboundRecord, now: number): OutboundRecord[] {
    this.#unready(buffer, expired);
    const alive = this.#failExpiredOf(expired, now);
    for (const item of alive) carryAttempts(item, expired.attempts);
    const fresh = this.#encode(alive, buffer, expired.mapVersion, expired.sendBy, 'as-is');
    for (const record of fresh) {
      record.retryAt = expired.retryAt;
      this.#countReady(buffer, record);
    }
    return fresh;
  }

  /**
   * Fails `item` as expired after `attempts`; `unanswered`, when the request carrying it has not
   * answered, is logged as the last attempt, and the message tells how the last answered one failed.
   */
  #failExpired(
    item: PendingRecord,
    shardId: string | undefined,
    attempts: readonly AttemptLog[],
    unanswered?: AttemptLog,
  ): void {
    const all = unanswered === undefined ? attempts : [...attempts, unanswered];
    // A request that ended without an answer may have stored it: then it is not said to be unwritten.
    const noAnswer = unanswered === undefined ? unansweredCode(attempts) : undefined;
    const pending =
      unanswered !== undefined
        ? `; the request carrying it had not answered after ${unanswered.endedAt - unanswered.startedAt} ms, and may still store it`
        : noAnswer !== undefined
          ? `; ${earlierUnanswered(noAnswer)}`
          : '';
    const written =
      unanswered === undefined && noAnswer === undefined
        ? 'without being written'
        : 'without being known to be written';
    // Held for the stream's summary, read again (see #setAsideTooLarge): what that read is waiting for.
    const info = this.#info;
    const summary =
      info !== undefined && !info.final && item.sizeBytes > info.maxRecordBytes
        ? `; it waited for the stream's summary, read again: ${this.#summary.waitReason}`
        : '';
    this.#host.fail(
      this.stream,
      item,
      ErrorCode.Expired,
      `Record expired after ${this.#options.recordTtlMs} ms (recordTtlMs) ${written}; ${all.length} attempt(s) made${lastFailure(attempts)}${pending}${summary}.`,
      shardId,
      all,
    );
  }

  /**
   * `batch` is a request of this stream, started at `startedAt`, that has not answered: its records
   * past their TTL fail now, as `Expired`, their last attempt `Unanswered` (it may still store them;
   * its answer is then ignored for them). Returns the earliest TTL among the others.
   */
  expireInFlight(batch: readonly OutboundRecord[], startedAt: number, now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const record of batch) {
      if (record.expiresAt > now) {
        next = Math.min(next, record.expiresAt);
        continue;
      }
      let unanswered: AttemptLog | undefined;
      for (const item of record.items) {
        if (item.settled) continue;
        if (item.expiresAt > now) {
          next = Math.min(next, item.expiresAt);
          continue;
        }
        unanswered ??= unansweredAttempt(startedAt, now, 'the record expired');
        this.#failExpired(item, record.predictedShardId, attemptsOf(item, record), unanswered);
      }
    }
    return next;
  }

  /**
   * Re-routes records (after a reshard, an expiry inside their aggregate, a wrong-shard landing, or an
   * aggregate split to isolate a record that keeps failing) into fresh Kinesis records under the
   * current shard map, due at once or after `notBefore`. With `split`, each shard's records go into
   * two halves (in order) rather than one aggregate.
   */
  requeue(
    items: readonly PendingRecord[],
    attempts: readonly AttemptLog[],
    now: number,
    notBefore: number,
    shape: 'as-is' | 'halves' | 'alone' = 'as-is',
  ): void {
    const byBuffer = new Map<ShardBuffer, PendingRecord[]>();
    for (const item of items) {
      if (item.settled) continue;
      carryAttempts(item, attempts);
      const buffer = this.#bufferFor(item);
      const list = byBuffer.get(buffer);
      if (list === undefined) byBuffer.set(buffer, [item]);
      else list.push(item);
    }
    for (const [buffer, list] of byBuffer) {
      const records = this.#encode(list, buffer, this.shardMap.version, now, shape);
      // Oldest first at the head of the queue, ahead of newer records of the same shard.
      for (let i = records.length - 1; i >= 0; i--) {
        const record = records[i]!;
        if (notBefore > now) this.retryLater(record, notBefore);
        else this.#enqueue(buffer, record, true);
      }
    }
  }

  /**
   * `items`, in order, as Kinesis records for `buffer` under map `mapVersion`, due by `sendBy`: each
   * alone (aggregation off, or `alone`), in two halves, or in as few aggregates as they fit.
   */
  #encode(
    items: readonly PendingRecord[],
    buffer: ShardBuffer,
    mapVersion: number,
    sendBy: number,
    shape: 'as-is' | 'halves' | 'alone',
  ): OutboundRecord[] {
    const records: OutboundRecord[] = [];
    if (!this.aggregating || shape === 'alone') {
      for (const item of items) records.push(this.#single(item, buffer, mapVersion, sendBy));
      return records;
    }
    const builder = new AggregateBuilder<PendingRecord>(
      buffer.builder.maxBytes,
      buffer.builder.maxCount,
      (r) => this.#host.hashKeyDecimal(r),
    );
    const sealFresh = () => {
      const sealed = this.#build(builder, buffer.shardId, mapVersion, sendBy);
      if (sealed !== undefined) records.push(sealed);
    };
    const perRecord = shape === 'halves' ? Math.ceil(items.length / 2) : Number.POSITIVE_INFINITY;
    for (const item of items) {
      if (builder.count >= perRecord || !builder.tryAdd(item)) {
        sealFresh();
        builder.tryAdd(item);
      }
    }
    if (builder.count > 0) sealFresh();
    return records;
  }

  /** Seals every open aggregate and makes every waiting record due now (for flush and close). */
  flushAll(now: number): void {
    if (this.#info === undefined) {
      this.#flushWhenOpen = true;
      return;
    }
    // Records still held in the gate (a provisional summary) are flushed when they are let go.
    this.#flushWhenOpen = this.#gate.length > 0;
    for (let i = this.#openHead; i < this.#open.length; i++) {
      const { buffer, sendBy } = this.#open[i]!;
      if (buffer.sendBy === sendBy && buffer.builder.count > 0) this.#seal(buffer);
    }
    this.#open = [];
    this.#openHead = 0;
    for (const buffer of this.#ready) {
      for (const record of buffer.records()) if (record.sendBy > now) record.sendBy = now;
    }
    // A flush does not wait out a rest: what the buckets allow goes now.
    for (const limiter of this.#limiters.values()) limiter.endRest();
    for (const buffer of this.#ready) buffer.heldUntil = 0;
    this.#recomputeReady(now);
    if (this.#readyCount > 0) this.#minSendBy = now;
  }

  /**
   * Seals aggregates whose time is up, expires records past their TTL, moves retries whose backoff
   * ended back to their queues. Returns when it next needs to run.
   */
  tick(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    // Records still waiting for the stream's summary: those past their TTL fail. With ordering, one
    // that leaves (expired, or settled by close) may have held back the others, which go on now
    // rather than at the next read of the summary (that may be after their TTL). First, so that what
    // goes on is aggregated and sealed in this same tick.
    if (this.#gate.length > 0) {
      const before = this.#gate.length;
      const alive: PendingRecord[] = [];
      for (const item of this.#gate) {
        if (item.settled) continue;
        if (item.expiresAt <= now) {
          // One sent before may be back here (see #setAsideTooLarge), with its attempts.
          const attempts = item.priorAttempts ?? [];
          const noAnswer = unansweredCode(attempts);
          this.#host.fail(
            this.stream,
            item,
            ErrorCode.Expired,
            `Record expired after ${this.#options.recordTtlMs} ms (recordTtlMs) while the stream's summary was being read: ${this.#summary.waitReason}${noAnswer === undefined ? '' : `; ${earlierUnanswered(noAnswer)}`}.`,
            undefined,
            attempts,
          );
        } else {
          alive.push(item);
        }
      }
      this.#gate = alive;
      if (this.#info !== undefined && alive.length < before) {
        this.#releaseGate(this.#info);
        if (this.#flushWhenOpen) this.flushAll(now);
      }
      for (const item of this.#gate) next = Math.min(next, item.expiresAt);
    }
    // Open aggregates, oldest first: seal those whose sendBy passed, and those due within the next
    // moment too, so that aggregates of many shards, opened a few milliseconds apart, share one request
    // instead of each going alone.
    const horizon = now + Math.min(COALESCE_MS, this.#options.maxBufferedTimeMs / 4);
    while (this.#openHead < this.#open.length) {
      const { buffer, sendBy } = this.#open[this.#openHead]!;
      const live = buffer.sendBy === sendBy && buffer.builder.count > 0;
      if (live && sendBy > horizon) {
        next = sendBy;
        break;
      }
      this.#openHead++;
      if (live) this.#seal(buffer);
    }
    if (this.#openHead > 1024 && this.#openHead * 2 > this.#open.length) {
      this.#open = this.#open.slice(this.#openHead);
      this.#openHead = 0;
    }
    // Retries: back into the queues once their backoff ended; expired records fail on time. Due
    // retries go to the heads of their queues, oldest ending up first.
    const due: OutboundRecord[] = [];
    for (let top = this.#waiting.peek(); top !== undefined; top = this.#waiting.peek()) {
      if (Math.min(top.retryAt, top.expiresAt) > now) break;
      this.#waiting.pop();
      if (top.expiresAt <= now) this.#expire(top, now, top.retryAt);
      else due.push(top);
    }
    due.sort((a, b) => a.sequence - b.sequence);
    for (let i = due.length - 1; i >= 0; i--) {
      const record = due[i]!;
      if (record.predictedShardId !== undefined && record.aggregated && this.#isStale(record)) {
        this.requeue(record.items, record.attempts, now, now);
      } else {
        record.sendBy = now;
        this.#enqueue(this.#bufferForRecord(record), record, true);
      }
    }
    const waitingTop = this.#waiting.peek();
    if (waitingTop !== undefined) next = Math.min(next, waitingTop.retryAt, waitingTop.expiresAt);
    // Sealed records past their TTL: at the heads, where the oldest wait, then behind a head that
    // expires later than some record behind it (see ShardBuffer.nextExpiry).
    let expiredAny = false;
    for (const buffer of this.#ready) {
      for (let head = buffer.peek(); head !== undefined && head.expiresAt <= now; head = buffer.peek()) {
        this.#take(buffer);
        this.#expire(head, now, Math.max(now, head.retryAt));
        expiredAny = true;
      }
      let expiry = buffer.nextExpiry;
      if (expiry <= now) {
        buffer.replaceExpired(now, (expired) => this.#renewInPlace(buffer, expired, now));
        expiredAny = true;
        expiry = buffer.nextExpiry;
      }
      next = Math.min(next, expiry);
    }
    if (expiredAny) this.#recomputeReady(now);
    // Aggregates waiting to be decided (see #settleLanded): each record fails at its own TTL, and the
    // others keep waiting (a listing or a newer map may still come for them).
    if (this.#landed.length > 0) {
      const waiting: Landed[] = [];
      for (const landed of this.#landed) {
        const { record } = landed;
        if (record.expiresAt > now) {
          waiting.push(landed);
          next = Math.min(next, record.expiresAt);
          continue;
        }
        let nextExpiry = Number.POSITIVE_INFINITY;
        for (const item of record.items) {
          if (item.settled) continue;
          if (item.expiresAt > now) {
            nextExpiry = Math.min(nextExpiry, item.expiresAt);
            continue;
          }
          this.#host.fail(
            this.stream,
            item,
            ErrorCode.Expired,
            `Record expired after ${this.#options.recordTtlMs} ms (recordTtlMs): it was stored in ${landed.shardId}, ${landed.shardId === record.predictedShardId ? 'the shard a map from before the stream was found gone predicted' : 'not the predicted shard'}, and no listing of the stream's shards since has told whether consumers read it there.`,
            landed.shardId,
            attemptsOf(item, record),
          );
        }
        if (nextExpiry === Number.POSITIVE_INFINITY) {
          // The service took it: counted as stored (KinesisRecordsPut), as any Kinesis record it took.
          this.#host.storedUnread(this.stream, record, landed.shardId, now);
          this.release(record);
        } else {
          waiting.push(landed);
          next = Math.min(next, nextExpiry);
        }
      }
      this.#landed = waiting;
      if (waiting.length === 0) this.shardMap.stopWaitingForNewer();
    }
    return next;
  }

  /**
   * Whether a record's predicted shard is no longer in the current map (a reshard closed it), or its
   * id may own other hash keys now (see ShardMap.resetVersion).
   */
  #isStale(record: OutboundRecord): boolean {
    return (
      record.mapVersion < this.shardMap.resetVersion ||
      (record.mapVersion !== this.shardMap.version &&
        !this.shardMap.shards.some((s) => s.shardId === record.predictedShardId))
    );
  }

  #bufferForRecord(record: OutboundRecord): ShardBuffer {
    if (record.predictedShardId !== undefined) {
      const buffer = this.#buffers.get(record.predictedShardId);
      if (buffer !== undefined) return buffer;
    }
    return this.#bufferFor(record.items[0]!);
  }

  /**
   * The shard map changed (a reshard): records aggregated for shards that are now closed are taken
   * apart and routed again, so no aggregate mixes the new shards.
   */
  onShardMapChange(now: number): void {
    // Shard ids that may own other hash keys now (the stream was not found, maybe created again): no
    // aggregate built before is trusted to one of them, nor a landing there (see ShardMap.forget).
    const reset = this.shardMap.resetVersion > this.#resetSeen;
    this.#resetSeen = this.shardMap.resetVersion;
    const gone = this.shardMap.goneVersion > this.#goneSeen;
    this.#goneSeen = this.shardMap.goneVersion;
    // Before anything is routed again: from here records go unaggregated until the summary answers.
    if (reset) this.readSummaryAgain(now);
    const open = new Set(this.shardMap.shards.map((s) => s.shardId));
    this.#host.openShards(this.stream, open, now);
    // A closed shard takes no more records: its rate limiter goes (each reshard would add more).
    for (const shardId of this.#limiters.keys()) {
      if (reset || !open.has(shardId)) this.#limiters.delete(shardId);
    }
    // Buffers of one hash key (no map before) stay valid, but with ordering their keys now belong
    // to shard lanes: they move there too, ahead of newer records.
    this.#reroute(
      (buffer) => (buffer.shardId === undefined ? !this.#ordered : !reset && open.has(buffer.shardId)),
      now,
    );
    // Stored in the stream that went: sent again. (After a listing that showed reused ids, those that
    // landed elsewhere are checked against the new map, like any others.)
    if (gone) {
      this.#resendLanded(
        STREAM_GONE,
        (shardId) =>
          `Aggregate stored on ${shardId} of a stream that was not found afterwards (deleted, maybe created again with other shards); its records are sent again`,
        now,
      );
    }
    this.#settleLanded(now);
    this.#recomputeReady(now);
  }

  /**
   * The stream was found gone, or its shard ids own other keys: it may have been created again
   * under its name, to route records itself (AUTO), where consumers drop aggregates, or to take
   * records of another size. Its summary is read again, and until it answers records are sent
   * unaggregated (safe on any stream), as before the first read. Not after a summary that was
   * denied (it would be again).
   */
  readSummaryAgain(now: number): void {
    const info = this.#info;
    // Denied: it would be again.
    if (info?.final === true && !info.routingKnown) return;
    if (info?.final === true) this.open(PROVISIONAL_STREAM_INFO, now);
    // Also while a read is under way: its answer may be of the stream that went (see StreamSummary.read).
    this.#summary.read();
  }

  /**
   * Records landed where a listing just made does not send them, and the listing shows the same
   * shards: the map lags a reshard, or the stream was created again as AUTO. Its summary is read
   * again (at most every 10 s) to tell.
   */
  recheckSummary(): void {
    if (this.#info?.final === true && this.#info.routingKnown) this.#summary.recheck();
  }

  /**
   * The aggregates that landed on other shards than predicted and waited to learn whether consumers
   * read them there were stored in a stream that was not found since: their records are sent again.
   */
  #resendLanded(code: string, message: (shardId: string) => string, now: number): void {
    for (const { record, shardId } of this.#landed) {
      this.#sendAgain(record, shardId, code, message(shardId), now);
      this.release(record);
    }
    this.#landed = [];
    this.shardMap.stopWaitingForNewer();
  }

  /**
   * Routes again the records held in every buffer that `current` says no longer fits (the records
   * waiting in it and those sealed in it), ahead of newer records in their new buffers. With ordering,
   * no lane sends until the requests in flight from the old lanes are answered.
   */
  #reroute(current: (buffer: ShardBuffer) => boolean, now: number): void {
    // What the buffers routed again held, in each buffer's queue order: sealed records, then the open
    // aggregate's records. `fresh`: never sent; `order`: the oldest record's expiry, raised to that
    // of the units before it in its buffer, so that sorting by it keeps each buffer's order.
    type Unit = {
      items: readonly PendingRecord[];
      attempts: readonly AttemptLog[];
      notBefore: number;
      fresh: boolean;
      order: number;
    };
    const units: Unit[] = [];
    for (const buffer of [...this.#buffers.values()]) {
      if (current(buffer)) continue;
      this.#buffers.delete(buffer.key);
      const items = buffer.builder.items;
      buffer.builder.reset();
      buffer.sendBy = Number.POSITIVE_INFINITY;
      const sealed = this.#ready.delete(buffer) ? buffer.drain() : [];
      let order = Number.NEGATIVE_INFINITY;
      for (const record of sealed) {
        this.#unready(buffer, record);
        order = Math.max(order, record.expiresAt);
        units.push({
          items: record.items,
          attempts: record.attempts,
          // With ordering, one waiting out a backoff at its lane's head keeps waiting in its new lane.
          notBefore: Math.max(now, record.retryAt),
          fresh: record.attempts.length === 0 && record.retryAt <= now,
          order,
        });
      }
      if (items.length > 0) {
        let oldest = Number.POSITIVE_INFINITY;
        for (const item of items) if (item.expiresAt < oldest) oldest = item.expiresAt;
        units.push({ items, attempts: [], notBefore: now, fresh: true, order: Math.max(order, oldest) });
      }
    }
    // Several old buffers may go to one new queue (a merge; lanes of hash keys folding into a shard's):
    // by age across them all, so that the oldest waits at the head, where expiry looks; a stable sort
    // by `order` keeps each buffer's own order, and with it each key's. Then runs of records never
    // sent are aggregated again together under the new map (records sent alone under a map that
    // lagged among them). requeue() puts records at the head of their new queues: newest first.
    units.sort((a, b) => a.order - b.order);
    // `run`: the records of a run of units never sent, gathered (the same array as `items`).
    const moving: {
      items: readonly PendingRecord[];
      attempts: readonly AttemptLog[];
      notBefore: number;
      run: PendingRecord[] | undefined;
    }[] = [];
    for (const unit of units) {
      const run = moving[moving.length - 1]?.run;
      if (unit.fresh && run !== undefined) {
        for (const item of unit.items) run.push(item);
      } else {
        const gathered = unit.fresh ? [...unit.items] : undefined;
        moving.push({ ...unit, items: gathered ?? unit.items, run: gathered });
      }
    }
    for (let i = moving.length - 1; i >= 0; i--) {
      const { items, attempts, notBefore } = moving[i]!;
      this.requeue(items, attempts, now, notBefore);
    }
    this.#byShardIndexVersion = -1;
    this.#sharesVersion = -1;
    if (this.#ordered && this.#busyLanes.size > 0) this.#laneBarrier = true;
  }

  /**
   * close() gave up (`gaveUp` says how): every record still inside the pipeline (not in flight) fails
   * with `code`, carrying the attempts made so far — also those of records waiting out a backoff, and
   * those stored on another shard than predicted, not known yet to be read there (which may be).
   */
  failPending(code: string, gaveUp: string): void {
    const landed = new Set(this.#landed.map((each) => each.record));
    // Those the service took count as stored (KinesisRecordsPut), as any Kinesis record it took.
    const now = this.#host.now();
    for (const { record, shardId } of this.#landed)
      this.#host.storedUnread(this.stream, record, shardId, now);
    for (const [item, record, shardId] of this.#held()) {
      const attempts = record === undefined ? (item.priorAttempts ?? []) : attemptsOf(item, record);
      const noAnswer = unansweredCode(attempts);
      const message =
        record !== undefined && landed.has(record)
          ? `${gaveUp} while the record, stored on ${shardId} after a reshard, waited to learn whether consumers read it there: it may have been written`
          : noAnswer !== undefined
            ? `${gaveUp} before the record was known to be written: ${earlierUnanswered(noAnswer)}`
            : `${gaveUp} before the record was written`;
      this.#host.fail(this.stream, item, code, message, shardId, attempts);
    }
  }

  /** Records still inside the pipeline (not in flight), for the producer's gauges. */
  *pendingItems(): Generator<PendingRecord> {
    for (const [item] of this.#held()) yield item;
  }

  /**
   * Every record still inside the pipeline (not in flight), wherever it waits: with the Kinesis
   * record it was sealed into, if it was, and that record's shard, if known (the one it landed on, or
   * else the one it was built for).
   */
  *#held(): Generator<readonly [PendingRecord, OutboundRecord | undefined, string | undefined]> {
    for (const item of this.#gate) yield [item, undefined, undefined];
    for (const buffer of this.#buffers.values())
      for (const item of buffer.builder.items) yield [item, undefined, buffer.shardId];
    if (this.#unpartitioned !== undefined)
      for (const item of this.#unpartitioned.builder.items) yield [item, undefined, undefined];
    for (const buffer of this.#ready)
      for (const record of buffer.records())
        for (const item of record.items) yield [item, record, record.predictedShardId];
    for (const record of this.#waiting.values())
      for (const item of record.items) yield [item, record, record.predictedShardId];
    for (const { record, shardId } of this.#landed)
      for (const item of record.items) yield [item, record, shardId];
  }
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * The user record of a Kinesis record sent as it is (not aggregated), when its data, which is the
 * caller's own buffer, no longer has the length it was taken with.
 */
function changedSingle(record: OutboundRecord): PendingRecord | undefined {
  const items = record.items;
  if (items.length !== 1) return undefined;
  const item = items[0]!;
  const data = item.data;
  // `byteLength`: see the encoder's check of the same.
  return record.record.data === data && typeof data !== 'string' && data.byteLength !== item.dataBytes
    ? item
    : undefined;
}

/** Most of a failure's message an expiry repeats: an error page can be long. */
const MAX_QUOTED_MESSAGE = 200;

/**
 * "before the record was written", or, when an earlier request carrying it ended without an answer
 * and may have stored it, a clause that says so.
 */
function beforeWritten(attempts: readonly AttemptLog[]): string {
  const code = unansweredCode(attempts);
  return code === undefined
    ? 'before the record was written'
    : `before the record was known to be written (${earlierUnanswered(code)})`;
}

/**
 * How the last failed attempt failed, for an expiry's message (`; the last failed with …`), so that a
 * message alone tells a wrong endpoint from throttling. Empty if none failed.
 */
function lastFailure(attempts: readonly AttemptLog[]): string {
  for (let i = attempts.length - 1; i >= 0; i--) {
    const { errorCode } = attempts[i]!;
    if (errorCode === undefined) continue;
    // Its own closing period would double the sentence's.
    const errorMessage = attempts[i]!.errorMessage?.replace(/\.$/, '');
    const message =
      errorMessage === undefined || errorMessage === ''
        ? ''
        : `: ${errorMessage.length > MAX_QUOTED_MESSAGE ? `${errorMessage.slice(0, MAX_QUOTED_MESSAGE)}…` : errorMessage}`;
    return `; the last failed with ${errorCode}${message}`;
  }
  return '';
}
