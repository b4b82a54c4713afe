import type { AggregatableRecord, KinesisRecord } from './aggregator.js';
import type { RecordFailedError } from './errors.js';
import type { KnownPartitionKey } from './key-cache.js';
import type { ProducerRecord } from './producer.js';
import type { AttemptLog, PutResult } from './result.js';
import type { RoomShare } from './room.js';

/**
 * How the caller of one record wants its answer: its promise's functions (`put`), its callback
 * (`send` with one), or neither (fire and forget). Plain fields, not an object of its own: a record
 * carries them itself, so an awaited record costs no extra allocation that lives as long as it does.
 */
export interface Settler {
  readonly resolve: ((result: PutResult) => void) | undefined;
  readonly reject: ((error: RecordFailedError) => void) | undefined;
  readonly callback: ((error: RecordFailedError | null, result?: PutResult) => void) | undefined;
}

/**
 * A user record from acceptance to its one answer. Everything later stages need is measured once,
 * here: sizes, hash key, deadlines. Fields are plain and mutable for a cheap hot path.
 */
export class PendingRecord implements AggregatableRecord, Settler {
  /** What the producer knows of the key, shared by every record with it (see PartitionKeyCache). */
  readonly partitionKeyEntry: KnownPartitionKey;
  readonly data: Uint8Array | string;
  readonly dataBytes: number;
  readonly explicitHashKey: string | undefined;
  /** The hash key routing the record: explicit, or MD5 of the partition key. */
  readonly hashKey: bigint;
  /** The record exactly as the caller passed it, for the error that reports its failure. */
  readonly original: ProducerRecord;
  readonly arrivedAt: number;
  /** Arrival + recordTtlMs: after this the record fails with `Expired`. */
  readonly expiresAt: number;
  /** The flush barrier the record belongs to (see KinesisProducer.flush). */
  readonly epoch: number;
  /**
   * The share of the producer's room it counts in, freed when it settles: the one it was taken into,
   * or its shard's once it is routed there (see Room.move).
   */
  share: RoomShare;
  readonly resolve: ((result: PutResult) => void) | undefined;
  readonly reject: ((error: RecordFailedError) => void) | undefined;
  readonly callback: ((error: RecordFailedError | null, result?: PutResult) => void) | undefined;
  /** Attempts made for it inside earlier Kinesis records, when it was re-aggregated. */
  priorAttempts: AttemptLog[] | undefined;
  settled = false;

  constructor(
    original: ProducerRecord,
    partitionKeyEntry: KnownPartitionKey,
    data: Uint8Array | string,
    dataBytes: number,
    explicitHashKey: string | undefined,
    hashKey: bigint,
    arrivedAt: number,
    expiresAt: number,
    epoch: number,
    share: RoomShare,
    resolve: ((result: PutResult) => void) | undefined,
    reject: ((error: RecordFailedError) => void) | undefined,
    callback: ((error: RecordFailedError | null, result?: PutResult) => void) | undefined,
  ) {
    this.original = original;
    this.partitionKeyEntry = partitionKeyEntry;
    this.data = data;
    this.dataBytes = dataBytes;
    this.explicitHashKey = explicitHashKey;
    this.hashKey = hashKey;
    this.arrivedAt = arrivedAt;
    this.expiresAt = expiresAt;
    this.epoch = epoch;
    this.share = share;
    this.resolve = resolve;
    this.reject = reject;
    this.callback = callback;
    this.priorAttempts = undefined;
  }

  get partitionKey(): string {
    return this.partitionKeyEntry.key;
  }

  /** UTF-8 bytes of the partition key. */
  get partitionKeyBytes(): number {
    return this.partitionKeyEntry.bytes;
  }

  /** Bytes the record counts for in the service's limits and in the producer's buffer. */
  get sizeBytes(): number {
    return this.partitionKeyBytes + this.dataBytes;
  }
}

let nextSequence = 0;

/**
 * One Kinesis record on its way: an aggregate (or a single user record) bound for one predicted
 * shard, with the attempts made to write it.
 */
export class OutboundRecord {
  readonly items: readonly PendingRecord[];
  readonly record: KinesisRecord;
  /** Partition key + data, as the service counts it against request and shard limits. */
  readonly sizeBytes: number;
  /** The shard it was aggregated for; undefined when the shard map was unknown. */
  readonly predictedShardId: string | undefined;
  /** Shard-map version it was aggregated under: a newer map may split its records across shards. */
  readonly mapVersion: number;
  /** When it should be sent by: its oldest record's arrival + maxBufferedTimeMs (or now, once due). */
  sendBy: number;
  /** Earliest expiry among its records. */
  readonly expiresAt: number;
  /** When its backoff ends, while it waits to be retried. */
  retryAt = 0;
  /** With ordering: the shard buffer it was taken from, busy until the record's answer is handled. */
  lane: string | undefined = undefined;
  readonly attempts: AttemptLog[] = [];
  /** Creation order: among records of one shard, the order their records were put. */
  readonly sequence = nextSequence++;
  /** The shard map's loads started when it was last sent (see ShardMap.loads). */
  sentAtLoad = 0;
  /**
   * Whether its MD5 trailer is still to be written: an aggregate's is written when it is first sent,
   * with the rest of its request's (see `writeAggregateDigests`).
   */
  digestPending: boolean;

  constructor(
    items: readonly PendingRecord[],
    record: KinesisRecord,
    predictedShardId: string | undefined,
    mapVersion: number,
    sendBy: number,
  ) {
    this.items = items;
    this.record = record;
    // An aggregate's partition key is "a" (1 byte); a single record keeps its own.
    this.sizeBytes = (items.length > 1 ? 1 : items[0]!.partitionKeyBytes) + record.data.length;
    this.digestPending = this.aggregated;
    this.predictedShardId = predictedShardId;
    this.mapVersion = mapVersion;
    this.sendBy = sendBy;
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const item of items) if (item.expiresAt < expiresAt) expiresAt = item.expiresAt;
    this.expiresAt = expiresAt;
  }

  /** Whether it carries several user records in the KPL format. */
  get aggregated(): boolean {
    return this.items.length > 1;
  }
}

/** Every attempt made for `item`: those of earlier Kinesis records it travelled in, then this one's. */
export function attemptsOf(item: PendingRecord, record: OutboundRecord): readonly AttemptLog[] {
  return item.priorAttempts === undefined ? record.attempts : [...item.priorAttempts, ...record.attempts];
}

/** `item` leaves a Kinesis record that made `attempts`, for a fresh one: they go with it. */
export function carryAttempts(item: PendingRecord, attempts: readonly AttemptLog[]): void {
  if (attempts.length > 0)
    item.priorAttempts =
      item.priorAttempts === undefined ? [...attempts] : [...item.priorAttempts, ...attempts];
}

/**
 * How many attempts the records of `record` have made, counting those of earlier Kinesis records
 * they travelled in (before a split, a reshard or an expiry rebuilt it): what backoff grows with.
 */
export function attemptCount(record: OutboundRecord): number {
  let prior = 0;
  for (const item of record.items) {
    const n = item.priorAttempts?.length ?? 0;
    if (n > prior) prior = n;
  }
  return prior + record.attempts.length;
}
