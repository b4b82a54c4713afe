import { createHash } from 'node:crypto';
import { partitionKeyHash } from './hash-key.js';
import { checkInteger } from './option-checks.js';
import {
  AGGREGATE_OVERHEAD_BYTES,
  AGGREGATE_PARTITION_KEY,
  DIGEST_BYTES,
  lengthDelimitedSize,
  MAGIC,
  TAG_DATA,
  TAG_EXPLICIT_HASH_KEY_INDEX,
  TAG_EXPLICIT_HASH_KEY_TABLE,
  TAG_PARTITION_KEY_INDEX,
  TAG_PARTITION_KEY_TABLE,
  TAG_RECORDS,
  varintSize,
  writeVarint,
} from './record-format.js';
import {
  DEFAULT_MAX_RECORD_BYTES,
  newRecordFacts,
  type UserRecord,
  validateUserRecord,
} from './user-record.js';

/** A record ready for PutRecords: what `build()` returns. */
export interface KinesisRecord {
  /** The user's own partition key for a single record, `"a"` for an aggregate (as KPL does). */
  readonly partitionKey: string;
  /** The first user record's hash key in decimal; always set, as KPL does. */
  readonly explicitHashKey: string;
  /** The raw user data for a single record, else magic + protobuf + MD5. */
  readonly data: Uint8Array;
}

/** Options of {@link RecordAggregator}. */
export interface RecordAggregatorOptions {
  /**
   * Largest aggregate to build, counting partition key + data as the service does. A single record
   * larger than this is still accepted by an empty aggregator, since it is sent unaggregated.
   * @default 51200 (KPL AggregationMaxSize)
   */
  readonly maxBytes?: number;
  /**
   * Most user records in one aggregate.
   * @default 4294967295 (KPL AggregationMaxCount)
   */
  readonly maxCount?: number;
  /**
   * The stream's maximum record size (partition key + data); larger records are invalid.
   * @default 1048576 (1 MiB)
   */
  readonly maxRecordBytes?: number;
}

/** Defaults of the aggregation limits, as KPL ships them. */
export const DEFAULT_AGGREGATION_MAX_BYTES = 51200;
export const DEFAULT_AGGREGATION_MAX_COUNT = 4294967295;
/** The largest record size any stream allows (10 MiB). */
export const MAX_RECORD_BYTES_LIMIT = 10 * 1024 * 1024;

/** @internal What the builder keeps of each user record: measured once, by validation. */
export interface AggregatableRecord {
  readonly partitionKey: string;
  readonly partitionKeyBytes: number;
  readonly data: Uint8Array | string;
  readonly dataBytes: number;
  /** Normalised decimal, or undefined. */
  readonly explicitHashKey: string | undefined;
}

/**
 * @internal The incremental encoder behind {@link RecordAggregator}, generic over the record type so
 * the producer can aggregate its own pending-record objects without copying them.
 *
 * It keeps the exact encoded size current on every add: each key-table entry and each record entry is
 * one tag byte, a varint length and the payload; the aggregate adds the 4-byte magic, the 16-byte MD5
 * and the one-byte outer partition key `"a"`.
 */
export class AggregateBuilder<T extends AggregatableRecord> {
  readonly maxBytes: number;
  readonly maxCount: number;
  readonly #hashKeyDecimal: (record: T) => string;

  #items: T[] = [];
  #partitionKeyIndexes: number[] = [];
  #hashKeyIndexes: number[] = [];
  #partitionKeys = new Map<string, number>();
  #partitionKeyTable: T[] = [];
  #hashKeys = new Map<string, number>();
  #hashKeyTable: string[] = [];
  /** Bytes of the protobuf body holding every record added so far. */
  #bodyBytes = 0;

  constructor(maxBytes: number, maxCount: number, hashKeyDecimal?: (record: T) => string) {
    this.maxBytes = maxBytes;
    this.maxCount = maxCount;
    this.#hashKeyDecimal =
      hashKeyDecimal ?? ((r) => r.explicitHashKey ?? partitionKeyHash(r.partitionKey).toString());
  }

  /** Number of user records held. */
  get count(): number {
    return this.#items.length;
  }

  /** The records held, in the order they were added (their sub-sequence order). */
  get items(): readonly T[] {
    return this.#items;
  }

  /** Exact size, partition key + data, of the Kinesis record `build()` would return now (0 if empty). */
  get sizeBytes(): number {
    const n = this.#items.length;
    if (n === 0) return 0;
    if (n === 1) return this.#items[0]!.partitionKeyBytes + this.#items[0]!.dataBytes;
    return AGGREGATE_PARTITION_KEY.length + AGGREGATE_OVERHEAD_BYTES + this.#bodyBytes;
  }

  /**
   * Exact size the Kinesis record would have with `record` added. An aggregate of two or more
   * records is `1 + 4 + body + 16`; a single record is sent raw, so it is its own key + data.
   */
  sizeWith(record: T): number {
    if (this.#items.length === 0) return record.partitionKeyBytes + record.dataBytes;
    return AGGREGATE_PARTITION_KEY.length + AGGREGATE_OVERHEAD_BYTES + this.#bodyBytes + this.#growth(record);
  }

  /**
   * Adds `record` unless the aggregate already holds records and this one would push it past
   * `maxBytes` or `maxCount`; returns whether it was added.
   */
  tryAdd(record: T): boolean {
    const n = this.#items.length;
    if (n > 0) {
      if (n >= this.maxCount) return false;
      const growth = this.#growth(record);
      if (
        AGGREGATE_PARTITION_KEY.length + AGGREGATE_OVERHEAD_BYTES + this.#bodyBytes + growth >
        this.maxBytes
      ) {
        return false;
      }
    }
    this.#append(record);
    return true;
  }

  /** Bytes `record` would add to the protobuf body: a new table entry or two, and its own entry. */
  #growth(record: T): number {
    let growth = 0;
    let pkIndex = this.#partitionKeys.get(record.partitionKey);
    if (pkIndex === undefined) {
      pkIndex = this.#partitionKeyTable.length;
      growth += lengthDelimitedSize(record.partitionKeyBytes);
    }
    let entry = 1 + varintSize(pkIndex) + lengthDelimitedSize(record.dataBytes);
    const ehk = record.explicitHashKey;
    if (ehk !== undefined) {
      let ehkIndex = this.#hashKeys.get(ehk);
      if (ehkIndex === undefined) {
        ehkIndex = this.#hashKeyTable.length;
        growth += lengthDelimitedSize(ehk.length);
      }
      entry += 1 + varintSize(ehkIndex);
    }
    return growth + lengthDelimitedSize(entry);
  }

  #append(record: T): void {
    let pkIndex = this.#partitionKeys.get(record.partitionKey);
    if (pkIndex === undefined) {
      pkIndex = this.#partitionKeyTable.length;
      this.#partitionKeys.set(record.partitionKey, pkIndex);
      this.#partitionKeyTable.push(record);
      this.#bodyBytes += lengthDelimitedSize(record.partitionKeyBytes);
    }
    let entry = 1 + varintSize(pkIndex) + lengthDelimitedSize(record.dataBytes);
    let ehkIndex = -1;
    const ehk = record.explicitHashKey;
    if (ehk !== undefined) {
      const known = this.#hashKeys.get(ehk);
      if (known === undefined) {
        ehkIndex = this.#hashKeyTable.length;
        this.#hashKeys.set(ehk, ehkIndex);
        this.#hashKeyTable.push(ehk);
        this.#bodyBytes += lengthDelimitedSize(ehk.length);
      } else {
        ehkIndex = known;
      }
      entry += 1 + varintSize(ehkIndex);
    }
    this.#bodyBytes += lengthDelimitedSize(entry);
    this.#items.push(record);
    this.#partitionKeyIndexes.push(pkIndex);
    this.#hashKeyIndexes.push(ehkIndex);
  }

  /**
   * Encodes what was added and empties the builder. Throws if it is empty.
   * One record is returned raw under its own partition key; two or more as one KPL aggregate.
   */
  build(): KinesisRecord {
    const n = this.#items.length;
    if (n === 0) throw new Error('RecordAggregator.build() called on an empty aggregator');
    const first = this.#items[0]!;
    const explicitHashKey = this.#hashKeyDecimal(first);
    let result: KinesisRecord;
    if (n === 1) {
      const data = typeof first.data === 'string' ? Buffer.from(first.data, 'utf8') : first.data;
      result = { partitionKey: first.partitionKey, explicitHashKey, data };
    } else {
      result = { partitionKey: AGGREGATE_PARTITION_KEY, explicitHashKey, data: this.#encode() };
    }
    this.reset();
    return result;
  }

  #encode(): Buffer {
    const bodyBytes = this.#bodyBytes;
    const buf = Buffer.allocUnsafe(MAGIC.length + bodyBytes + DIGEST_BYTES);
    buf.set(MAGIC, 0);
    let pos = MAGIC.length;
    for (const owner of this.#partitionKeyTable) {
      buf[pos++] = TAG_PARTITION_KEY_TABLE;
      pos = writeVarint(buf, pos, owner.partitionKeyBytes);
      pos += buf.write(owner.partitionKey, pos, 'utf8');
    }
    for (const ehk of this.#hashKeyTable) {
      buf[pos++] = TAG_EXPLICIT_HASH_KEY_TABLE;
      pos = writeVarint(buf, pos, ehk.length);
      pos += buf.write(ehk, pos, 'latin1');
    }
    const items = this.#items;
    const pkIndexes = this.#partitionKeyIndexes;
    const ehkIndexes = this.#hashKeyIndexes;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const pkIndex = pkIndexes[i]!;
      const ehkIndex = ehkIndexes[i]!;
      const dataBytes = item.dataBytes;
      let entry = 1 + varintSize(pkIndex) + lengthDelimitedSize(dataBytes);
      if (ehkIndex >= 0) entry += 1 + varintSize(ehkIndex);
      buf[pos++] = TAG_RECORDS;
      pos = writeVarint(buf, pos, entry);
      buf[pos++] = TAG_PARTITION_KEY_INDEX;
      pos = writeVarint(buf, pos, pkIndex);
      if (ehkIndex >= 0) {
        buf[pos++] = TAG_EXPLICIT_HASH_KEY_INDEX;
        pos = writeVarint(buf, pos, ehkIndex);
      }
      buf[pos++] = TAG_DATA;
      pos = writeVarint(buf, pos, dataBytes);
      const data = item.data;
      if (typeof data === 'string') {
        pos += buf.write(data, pos, 'utf8');
      } else {
        buf.set(data, pos);
        pos += dataBytes;
      }
    }
    if (pos !== MAGIC.length + bodyBytes) {
      // The size bookkeeping and the encoder disagree: a bug, never bad input. Fail loudly.
      throw new Error(`aggregate encoder wrote ${pos - MAGIC.length} body bytes, expected ${bodyBytes}`);
    }
    const digest = createHash('md5').update(buf.subarray(MAGIC.length, pos)).digest();
    buf.set(digest, pos);
    return buf;
  }

  /** Empties the builder without encoding. */
  reset(): void {
    this.#items = [];
    this.#partitionKeyIndexes = [];
    this.#hashKeyIndexes = [];
    this.#partitionKeys.clear();
    this.#partitionKeyTable = [];
    this.#hashKeys.clear();
    this.#hashKeyTable = [];
    this.#bodyBytes = 0;
  }
}

/**
 * Packs user records into one Kinesis record in the KPL aggregated format, byte for byte as the Kinesis
 * Producer Library writes it, so KCL consumers (Java, Python, Lambda deaggregators) read them back.
 *
 * It knows the exact size of the record it would build at every moment (`sizeBytes`) and refuses a
 * record that would push an aggregate past `maxBytes` or `maxCount`.
 *
 * Aggregate only records bound for the same shard: KCL drops a whole aggregate if any record inside
 * hashes outside the shard it was read from. The producer does this for you.
 *
 * @example
 * ```ts
 * const aggregator = new RecordAggregator();
 * for (const r of records) {
 *   if (!aggregator.add(r)) {            // full: ship what we have, start again
 *     await send(aggregator.build());
 *     aggregator.add(r);
 *   }
 * }
 * if (aggregator.count > 0) await send(aggregator.build());
 * ```
 */
export class RecordAggregator {
  readonly #builder: AggregateBuilder<AggregatableRecord>;
  readonly #maxRecordBytes: number;
  readonly #facts = newRecordFacts();

  constructor(options: RecordAggregatorOptions = {}) {
    const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    checkInteger('maxRecordBytes', maxRecordBytes, 1, MAX_RECORD_BYTES_LIMIT);
    const maxBytes = options.maxBytes ?? Math.min(DEFAULT_AGGREGATION_MAX_BYTES, maxRecordBytes);
    checkInteger('maxBytes', maxBytes, AGGREGATE_OVERHEAD_BYTES + 1, maxRecordBytes);
    const maxCount = options.maxCount ?? DEFAULT_AGGREGATION_MAX_COUNT;
    checkInteger('maxCount', maxCount, 1, DEFAULT_AGGREGATION_MAX_COUNT);
    this.#maxRecordBytes = maxRecordBytes;
    this.#builder = new AggregateBuilder(maxBytes, maxCount);
  }

  /** Number of user records held. */
  get count(): number {
    return this.#builder.count;
  }

  /** Exact size (partition key + data, as the service counts it) of what `build()` would return. */
  get sizeBytes(): number {
    return this.#builder.sizeBytes;
  }

  /**
   * Adds a user record. Returns false, leaving the aggregator unchanged, when it already holds records
   * and this one would push it past `maxBytes` or `maxCount`: build, then add it again.
   *
   * @throws {InvalidRecordError} when the record can never be written (names the field and the limit).
   */
  add(record: UserRecord): boolean {
    const facts = this.#facts;
    validateUserRecord(record, this.#maxRecordBytes, facts);
    return this.#builder.tryAdd({
      partitionKey: record.partitionKey,
      partitionKeyBytes: facts.partitionKeyBytes,
      data: record.data,
      dataBytes: facts.dataBytes,
      explicitHashKey: facts.explicitHashKey,
    });
  }

  /** Returns the Kinesis record for everything added, and empties the aggregator. Throws if empty. */
  build(): KinesisRecord {
    return this.#builder.build();
  }

  /** Empties the aggregator without building. */
  reset(): void {
    this.#builder.reset();
  }
}
