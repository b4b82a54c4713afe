// The module binding, not the global: global `Buffer` is an accessor, a getter call on every use.
import { Buffer } from 'node:buffer';
import { ErrorCode, InvalidOptionError, InvalidRecordError, KinesisProducerError } from './errors.js';
import { partitionKeyHash } from './hash-key.js';
import { md5Each } from './md5-lanes.js';
import {
  checkInteger,
  checkOptionsObject,
  type OptionNames,
  optionNames,
  warnUnknownOptions,
} from './option-checks.js';
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
  type RecordFacts,
  type UserRecord,
  type ValidatedPartitionKey,
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

/**
 * Options of {@link RecordAggregator}. One it does not know is ignored, with a process warning naming
 * the option most likely meant (once per name in a process).
 */
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

/** Every option's name, so that a misspelt one is pointed out; and KPL's, and the `size` it says for bytes. */
const OPTION_NAMES = optionNames<RecordAggregatorOptions>()(
  'RecordAggregator',
  ['maxBytes', 'maxCount', 'maxRecordBytes'],
  new Map([
    ['maxsize', 'maxBytes'],
    ['aggregationmaxsize', 'maxBytes'],
    ['aggregationmaxcount', 'maxCount'],
    ['maxrecordsize', 'maxRecordBytes'],
  ]),
);
/** The same for aggregateAll, whose warnings name it. */
const AGGREGATE_ALL_NAMES: OptionNames = { ...OPTION_NAMES, api: 'aggregateAll' };

/** Defaults of the aggregation limits, as KPL ships them. */
export const DEFAULT_AGGREGATION_MAX_BYTES = 51200;
export const DEFAULT_AGGREGATION_MAX_COUNT = 4294967295;
/** The largest record size any stream allows (10 MiB). */
export const MAX_RECORD_BYTES_LIMIT = 10 * 1024 * 1024;

/** @internal What the builder keeps of each user record: measured once, by validation. */
export interface AggregatableRecord {
  /** The key's entry (its text and UTF-8 length), kept by the caller, one per key. */
  readonly partitionKeyEntry: PartitionKeyEntry;
  readonly data: Uint8Array | string;
  readonly dataBytes: number;
  /** Normalised decimal, or undefined. */
  readonly explicitHashKey: string | undefined;
}

/** Records an encoder has room for before its per-record arrays first grow. */
const INITIAL_CAPACITY = 64;

/**
 * @internal What an encoder knows of a partition key it has seen: its UTF-8 length, measured once, and
 * its place in the key table of aggregate number `aggregate`. An entry can outlive its aggregate (see
 * `rememberedKeys`), so a key that comes back in the next one is not measured or allocated again.
 *
 * Entries may come from the caller and be shared between encoders (the producer keeps one per key
 * for all its shards and streams): aggregate numbers are unique across encoders, so an entry another
 * encoder stamped reads as "not stamped here". While that other aggregate is still open, the stamp
 * stays with it and this encoder keeps the key's index in a map of its own, so two aggregates filled
 * at once with the same key (two streams, or one key sent with explicit hash keys to two shards) each
 * hold the key once.
 */
export interface PartitionKeyEntry extends ValidatedPartitionKey {
  /** Index in the key table of aggregate number `aggregate`; meaningless for any other. */
  index: number;
  /** The aggregate whose table holds the key at `index`; 0 for none. */
  aggregate: number;
  /** The stamp of the encoder that stamped it, to tell whether that aggregate is still open. */
  stampedBy: AggregateStamp | undefined;
  /**
   * The key's UTF-8 bytes, kept once it is written into a second aggregate: copying them in costs a
   * quarter of encoding the string again. A key written only once is not worth the copy.
   */
  utf8: Uint8Array | undefined;
  /** Aggregates the key was written into, counted up to 2 (see `utf8`). */
  writes: number;
}

/**
 * What an encoder stamps a key's entry with: the number of the aggregate it has open now. Not the
 * encoder itself, which an entry kept by the caller (the producer's key cache) would keep alive, with
 * its arrays, after the caller let it go: without a shard map the producer has one encoder per hash
 * key, and 16,384 cached keys kept about 35 MiB of them.
 */
interface AggregateStamp {
  open: number;
}

/** A record's data changed length between `add()` and `build()`. */
function dataChanged(index: number, length: number, added: number): InvalidRecordError {
  return new InvalidRecordError(
    'data',
    `Record ${index}'s data is ${length} bytes, not the ${added} it had when added: data must not change until the aggregate is built.`,
  );
}

/** The number of the last aggregate any encoder started: numbers are unique in the process. */
let lastAggregate = 0;

/**
 * The byte-level state of one aggregate, shared by {@link AggregateBuilder} and
 * {@link RecordAggregator}: key tables, and per record only numbers and a data reference, kept as
 * parallel arrays so adding a record allocates nothing of its own.
 *
 * It keeps the exact encoded size current on every add: each key-table entry and each record entry is
 * one tag byte, a varint length and the payload; the aggregate adds the 4-byte magic, the 16-byte MD5
 * and the one-byte outer partition key `"a"`.
 */
class AggregateEncoder {
  readonly maxBytes: number;
  readonly maxCount: number;

  /** Every key seen in this aggregate, and in earlier ones while there are few (`#rememberedKeys`). */
  readonly #partitionKeys = new Map<string, PartitionKeyEntry>();
  /** Most keys `#partitionKeys` keeps from one aggregate to the next; beyond it, all are forgotten. */
  readonly #rememberedKeys: number;
  /** This aggregate's number, so an entry's stamp tells whether it is in this one's key table. */
  #aggregate = ++lastAggregate;
  /** What this encoder stamps a key's entry with; `open` follows `#aggregate`. */
  readonly #stamp: AggregateStamp = { open: this.#aggregate };
  /** This aggregate's key table, in order. */
  #partitionKeyTable: PartitionKeyEntry[] = [];
  /** Indexes of keys in this table whose entry another open aggregate had stamped first. */
  readonly #unstamped = new Map<PartitionKeyEntry, number>();
  #hashKeys = new Map<string, number>();
  #hashKeyTable: string[] = [];
  /** Records added. */
  #count = 0;
  /**
   * Per record, in add order. One array for the encoder's life, emptied by `reset()`: a fresh one per
   * aggregate would be regrown, and re-typed from small integers to objects, every time.
   */
  #data: (Uint8Array | string | undefined)[] = [];
  /**
   * Also per record, but only numbers: typed arrays, grown by doubling and kept from one aggregate to
   * the next (so at most twice what the largest aggregate needed), so they cost neither a growth nor
   * any GC work per record. All Int32 (the hash-key indexes need -1); sizes stay far below 2^31.
   */
  #dataBytes = new Int32Array(INITIAL_CAPACITY);
  #partitionKeyIndexes = new Int32Array(INITIAL_CAPACITY);
  /** -1 for a record without an explicit hash key. */
  #hashKeyIndexes = new Int32Array(INITIAL_CAPACITY);
  /** Bytes of the protobuf body holding every record added so far. */
  #bodyBytes = 0;

  constructor(maxBytes: number, maxCount: number, rememberedKeys: number) {
    this.maxBytes = maxBytes;
    this.maxCount = maxCount;
    this.#rememberedKeys = rememberedKeys;
  }

  get count(): number {
    return this.#count;
  }

  get sizeBytes(): number {
    const n = this.#count;
    if (n === 0) return 0;
    if (n === 1) return this.#partitionKeyTable[0]!.bytes + this.#dataBytes[0]!;
    return AGGREGATE_PARTITION_KEY.length + AGGREGATE_OVERHEAD_BYTES + this.#bodyBytes;
  }

  /** The first record's explicit hash key, or undefined. Only while `count > 0`. */
  get firstExplicitHashKey(): string | undefined {
    const index = this.#hashKeyIndexes[0]!;
    return index < 0 ? undefined : this.#hashKeyTable[index];
  }

  /** The first record's partition key. Only while `count > 0`. */
  get firstPartitionKey(): string {
    return this.#partitionKeyTable[0]!.key;
  }

  /** The entry of `partitionKey` if the encoder has seen it (in this aggregate or an earlier one). */
  partitionKeyEntry(partitionKey: unknown): PartitionKeyEntry | undefined {
    // Only strings are stored, so any other value is simply not found.
    return this.#partitionKeys.get(partitionKey as string);
  }

  /** The key's index in this aggregate's key table, or undefined if it is not in it yet. */
  #tableIndex(entry: PartitionKeyEntry | undefined): number | undefined {
    if (entry === undefined) return undefined;
    if (entry.aggregate === this.#aggregate) return entry.index;
    return this.#unstamped.size === 0 ? undefined : this.#unstamped.get(entry);
  }

  /**
   * Adds a record unless it would push a non-empty aggregate past `maxBytes` or `maxCount`. `entry`
   * is the key's entry, from `partitionKeyEntry` or the caller's own, or undefined for a key seen
   * nowhere yet: each key is looked up once per record, by the caller.
   */
  tryAdd(
    partitionKey: string,
    partitionKeyBytes: number,
    data: Uint8Array | string,
    dataBytes: number,
    hashKey: string | undefined,
    entry: PartitionKeyEntry | undefined,
  ): boolean {
    const n = this.#count;
    const pkIndex = this.#tableIndex(entry);
    const ehkIndex = hashKey === undefined ? -1 : this.#hashKeys.get(hashKey);
    const growth = this.#growth(pkIndex, partitionKeyBytes, dataBytes, hashKey, ehkIndex);
    if (n > 0) {
      if (n >= this.maxCount) return false;
      if (
        AGGREGATE_PARTITION_KEY.length + AGGREGATE_OVERHEAD_BYTES + this.#bodyBytes + growth >
        this.maxBytes
      ) {
        return false;
      }
    }
    let pk = pkIndex;
    if (pk === undefined) {
      pk = this.#partitionKeyTable.length;
      if (entry === undefined) {
        entry = {
          key: partitionKey,
          bytes: partitionKeyBytes,
          index: pk,
          aggregate: this.#aggregate,
          stampedBy: this.#stamp,
          utf8: undefined,
          writes: 0,
        };
        this.#partitionKeys.set(partitionKey, entry);
      } else {
        const holder = entry.stampedBy;
        if (holder !== undefined && holder !== this.#stamp && holder.open === entry.aggregate) {
          this.#unstamped.set(entry, pk);
        } else {
          entry.index = pk;
          entry.aggregate = this.#aggregate;
          entry.stampedBy = this.#stamp;
        }
      }
      this.#partitionKeyTable.push(entry);
    }
    let ehk = ehkIndex;
    if (ehk === undefined) {
      ehk = this.#hashKeyTable.length;
      this.#hashKeys.set(hashKey!, ehk);
      this.#hashKeyTable.push(hashKey!);
    }
    if (n === this.#dataBytes.length) this.#grow();
    this.#bodyBytes += growth;
    this.#data[n] = data;
    this.#count = n + 1;
    this.#dataBytes[n] = dataBytes;
    this.#partitionKeyIndexes[n] = pk;
    this.#hashKeyIndexes[n] = ehk;
    return true;
  }

  #grow(): void {
    const capacity = this.#dataBytes.length * 2;
    const dataBytes = new Int32Array(capacity);
    dataBytes.set(this.#dataBytes);
    this.#dataBytes = dataBytes;
    const pkIndexes = new Int32Array(capacity);
    pkIndexes.set(this.#partitionKeyIndexes);
    this.#partitionKeyIndexes = pkIndexes;
    const ehkIndexes = new Int32Array(capacity);
    ehkIndexes.set(this.#hashKeyIndexes);
    this.#hashKeyIndexes = ehkIndexes;
  }

  /**
   * Bytes a record adds to the protobuf body: a new table entry or two, and its own entry. An index
   * is undefined for a key not yet in its table; `ehkIndex` is -1 when there is no explicit hash key.
   */
  #growth(
    pkIndex: number | undefined,
    partitionKeyBytes: number,
    dataBytes: number,
    hashKey: string | undefined,
    ehkIndex: number | undefined,
  ): number {
    let growth = 0;
    if (pkIndex === undefined) growth += lengthDelimitedSize(partitionKeyBytes);
    let entry = 1 + varintSize(pkIndex ?? this.#partitionKeyTable.length) + lengthDelimitedSize(dataBytes);
    if (ehkIndex === undefined) growth += lengthDelimitedSize(hashKey!.length);
    if (ehkIndex !== -1) entry += 1 + varintSize(ehkIndex ?? this.#hashKeyTable.length);
    return growth + lengthDelimitedSize(entry);
  }

  /**
   * Returns the Kinesis record for what was added and empties the encoder. Throws if it is empty.
   * One record is returned raw under its own partition key; two or more as one KPL aggregate.
   */
  build(explicitHashKey: string, firstIndex = 0): KinesisRecord {
    const n = this.#count;
    let result: KinesisRecord;
    if (n === 1) {
      const data = this.#data[0]!;
      if (typeof data !== 'string' && data.byteLength !== this.#dataBytes[0]) {
        throw dataChanged(firstIndex, data.byteLength, this.#dataBytes[0]!);
      }
      result = {
        partitionKey: this.#partitionKeyTable[0]!.key,
        explicitHashKey,
        data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
      };
    } else {
      result = { partitionKey: AGGREGATE_PARTITION_KEY, explicitHashKey, data: this.#encode(firstIndex) };
    }
    this.reset();
    return result;
  }

  #encode(firstIndex: number): Buffer {
    const bodyBytes = this.#bodyBytes;
    const buf = Buffer.allocUnsafe(MAGIC.length + bodyBytes + DIGEST_BYTES);
    buf.set(MAGIC, 0);
    let pos = MAGIC.length;
    for (const entry of this.#partitionKeyTable) {
      buf[pos++] = TAG_PARTITION_KEY_TABLE;
      pos = writeVarint(buf, pos, entry.bytes);
      const utf8 = entry.utf8;
      if (utf8 !== undefined) {
        buf.set(utf8, pos);
        pos += utf8.length;
      } else {
        const start = pos;
        pos += buf.write(entry.key, pos, 'utf8');
        // A copy, not a view: a view would keep this whole aggregate in memory.
        if (++entry.writes > 1) entry.utf8 = new Uint8Array(buf.subarray(start, pos));
      }
    }
    for (const ehk of this.#hashKeyTable) {
      buf[pos++] = TAG_EXPLICIT_HASH_KEY_TABLE;
      pos = writeVarint(buf, pos, ehk.length);
      pos += buf.write(ehk, pos, 'latin1');
    }
    const datas = this.#data;
    const dataBytesOf = this.#dataBytes;
    const pkIndexes = this.#partitionKeyIndexes;
    const ehkIndexes = this.#hashKeyIndexes;
    const n = this.#count;
    for (let i = 0; i < n; i++) {
      const pkIndex = pkIndexes[i]!;
      const ehkIndex = ehkIndexes[i]!;
      const dataBytes = dataBytesOf[i]!;
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
      const data = datas[i]!;
      if (typeof data === 'string') {
        pos += buf.write(data, pos, 'utf8');
      } else {
        // Data the caller changed since it was added would leave bytes of this buffer unwritten.
        // `byteLength`, not `length`: Node 20's optimized code can read a detached view's old length.
        if (data.byteLength !== dataBytes) throw dataChanged(firstIndex + i, data.byteLength, dataBytes);
        buf.set(data, pos);
        pos += dataBytes;
      }
    }
    if (pos !== MAGIC.length + bodyBytes) {
      // The size bookkeeping and the encoder disagree: a bug, never bad input. Fail loudly.
      throw new Error(`aggregate encoder wrote ${pos - MAGIC.length} body bytes, expected ${bodyBytes}`);
    }
    // The MD5 trailer is left to writeAggregateDigests, so that the producer can hash a request's
    // aggregates together. (Computing it on a worker thread was tried, c0fa048 and fd80911, and
    // reverted: on 2 cores it took 8-12% off the event loop's time per record at 1-10 KiB for 10-20%
    // more CPU in all.)
    return buf;
  }

  reset(): void {
    // Every entry goes stale at once; when there are too many to be worth keeping, they go.
    this.#aggregate = ++lastAggregate;
    this.#stamp.open = this.#aggregate;
    if (this.#partitionKeys.size > this.#rememberedKeys) this.#partitionKeys.clear();
    this.#partitionKeyTable = [];
    if (this.#unstamped.size > 0) this.#unstamped.clear();
    this.#hashKeys.clear();
    this.#hashKeyTable = [];
    // Drop the references, keep the room.
    this.#data.fill(undefined, 0, this.#count);
    this.#count = 0;
    this.#bodyBytes = 0;
  }
}

/**
 * @internal The producer's incremental encoder: an aggregate that also keeps the records added to it,
 * generic over the record type so the producer can aggregate its own pending-record objects without
 * copying them.
 */
export class AggregateBuilder<T extends AggregatableRecord> {
  readonly #encoder: AggregateEncoder;
  readonly #hashKeyDecimal: (record: T) => string;
  #items: T[] = [];

  /** `hashKeyDecimal`: the outer ExplicitHashKey of an aggregate, from its first record. */
  constructor(maxBytes: number, maxCount: number, hashKeyDecimal: (record: T) => string) {
    // Every record brings its key's entry, so the encoder's own key map stays empty.
    this.#encoder = new AggregateEncoder(maxBytes, maxCount, 0);
    this.#hashKeyDecimal = hashKeyDecimal;
  }

  get maxBytes(): number {
    return this.#encoder.maxBytes;
  }

  get maxCount(): number {
    return this.#encoder.maxCount;
  }

  /** Number of user records held. */
  get count(): number {
    return this.#items.length;
  }

  /**
   * The records held, in the order they were added (their sub-sequence order). `build()` and
   * `reset()` start a new array, so what this returned before them may be kept as it is.
   */
  get items(): readonly T[] {
    return this.#items;
  }

  /** Exact size, partition key + data, of the Kinesis record `build()` would return now (0 if empty). */
  get sizeBytes(): number {
    return this.#encoder.sizeBytes;
  }

  /**
   * Adds `record` unless the aggregate already holds records and this one would push it past
   * `maxBytes` or `maxCount`; returns whether it was added.
   */
  tryAdd(record: T): boolean {
    const entry = record.partitionKeyEntry;
    const added = this.#encoder.tryAdd(
      entry.key,
      entry.bytes,
      record.data,
      record.dataBytes,
      record.explicitHashKey,
      entry,
    );
    if (added) this.#items.push(record);
    return added;
  }

  /**
   * Encodes what was added and empties the builder. Throws if it is empty.
   * One record is returned raw under its own partition key; two or more as one KPL aggregate, whose
   * MD5 trailer is not written yet: {@link writeAggregateDigests} writes it, for all of a request's
   * aggregates at once, before they are sent.
   */
  build(): KinesisRecord {
    const first = this.#items[0];
    if (first === undefined) throw new Error('AggregateBuilder.build() called on an empty builder');
    const result = this.#encoder.build(this.#hashKeyDecimal(first));
    this.#items = [];
    return result;
  }

  /** Empties the builder without encoding. */
  reset(): void {
    this.#encoder.reset();
    this.#items = [];
  }

  /**
   * Takes out the records whose data no longer has the length it had when added (the caller reused,
   * detached or resized its buffer) and returns them; the others stay, in order. Encoding such a
   * record would send bytes that were never its own: `build()` throws InvalidRecordError for it.
   */
  takeChanged(): T[] {
    let changed: Set<T> | undefined;
    for (const item of this.#items) {
      const data = item.data;
      if (typeof data === 'string' || data.byteLength === item.dataBytes) continue;
      changed ??= new Set();
      changed.add(item);
    }
    if (changed === undefined) return [];
    const kept = this.#items.filter((item) => !changed.has(item));
    this.reset();
    for (const item of kept) this.tryAdd(item);
    return [...changed];
  }
}

/**
 * @internal Writes the MD5 trailer of each of `aggregates`, which the encoder leaves unwritten:
 * `RecordAggregator.build()` writes its aggregate's at once; the producer writes those of a request
 * together, in about half the time they would take one by one (see md5-lanes.ts).
 */
export function writeAggregateDigests(aggregates: readonly Uint8Array[]): void {
  const bodies = new Array<Uint8Array>(aggregates.length);
  const trailers = new Array<Uint8Array>(aggregates.length);
  for (let i = 0; i < aggregates.length; i++) {
    const aggregate = aggregates[i]!;
    const end = aggregate.length - DIGEST_BYTES;
    bodies[i] = aggregate.subarray(MAGIC.length, end);
    trailers[i] = aggregate.subarray(end);
  }
  md5Each(bodies, trailers);
}

/**
 * Partition keys a RecordAggregator remembers across aggregates (about 100 bytes each, plus the key,
 * and once a key is written into a second aggregate a copy of its UTF-8 bytes: about 250 bytes for a
 * 36-byte key; 4 MiB for 16,384 of them, at most about 12 MiB with the longest keys): a key seen
 * before is neither validated, measured nor allocated for again.
 */
const REMEMBERED_PARTITION_KEYS = 16_384;

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
 * To aggregate a batch you already hold, {@link aggregateAll} gives the same records faster.
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
  readonly #encoder: AggregateEncoder;
  readonly #maxRecordBytes: number;
  readonly #facts = newRecordFacts();

  constructor(options: RecordAggregatorOptions = {}) {
    const { maxRecordBytes, maxBytes, maxCount } = resolveAggregatorOptions(options, OPTION_NAMES);
    this.#maxRecordBytes = maxRecordBytes;
    this.#encoder = new AggregateEncoder(maxBytes, maxCount, REMEMBERED_PARTITION_KEYS);
  }

  /** Number of user records held. */
  get count(): number {
    return this.#encoder.count;
  }

  /** Exact size (partition key + data, as the service counts it) of what `build()` would return. */
  get sizeBytes(): number {
    return this.#encoder.sizeBytes;
  }

  /**
   * Adds a user record. Returns false, leaving the aggregator unchanged, when it already holds records
   * and this one would push it past `maxBytes` or `maxCount`: build, then add it again.
   *
   * The record's data is kept by reference, not copied, until `build()` encodes it: a buffer changed
   * before then is sent as it is then (a change of its length makes `build()` throw).
   *
   * @throws {InvalidRecordError} when the record can never be written (names the field and the limit).
   */
  add(record: UserRecord): boolean {
    return addUserRecord(this.#encoder, record, this.#maxRecordBytes, this.#facts);
  }

  /** Returns the Kinesis record for everything added, and empties the aggregator. Throws if empty. */
  build(): KinesisRecord {
    const count = this.#encoder.count;
    if (count === 0) {
      throw new KinesisProducerError(
        ErrorCode.EmptyAggregate,
        'RecordAggregator.build() was called with no record added: check `count` first.',
      );
    }
    const built = buildWithoutDigest(this.#encoder);
    if (count > 1) writeAggregateDigests([built.data]);
    return built;
  }

  /** Empties the aggregator without building. */
  reset(): void {
    this.#encoder.reset();
  }
}

/**
 * Packs `records`, in order, into as few Kinesis records as `maxBytes` and `maxCount` allow: the records
 * {@link RecordAggregator} gives when added to until full and built each time, byte for byte. Faster
 * than that for a batch: the MD5 trailers of the aggregates are written together, several at a time.
 *
 * It returns them all at once, so it holds them all: for a source without end, or to send each
 * aggregate as soon as it is full, use RecordAggregator. As with it, aggregate only records bound for
 * the same shard.
 *
 * Each record is read once, and its data kept by reference until the call returns: a generator must
 * yield a buffer of its own for each record, not refill one (a refill of another length is caught;
 * one of the same length is not, and every record gets the last bytes).
 *
 * @example
 * ```ts
 * const kinesisRecords = aggregateAll(records, { maxBytes: 1024 * 1024 });
 * // Each is { partitionKey, explicitHashKey, data }: a PutRecords entry.
 * ```
 *
 * @throws {InvalidOptionError} for wrong options, as RecordAggregator's constructor, and for
 * `records` that is not iterable.
 * @throws {InvalidRecordError} for the first record that can never be written, its message starting
 * with its place in `records` (`Record 41: ...`), or for a record whose data changed length while
 * the call ran, named by its place too; nothing is returned then.
 */
export function aggregateAll(
  records: Iterable<UserRecord>,
  options?: RecordAggregatorOptions,
): KinesisRecord[] {
  const { maxRecordBytes, maxBytes, maxCount } = resolveAggregatorOptions(options, AGGREGATE_ALL_NAMES);
  if (
    typeof (records as Partial<Iterable<UserRecord>> | null | undefined)?.[Symbol.iterator] !== 'function'
  ) {
    throw new InvalidOptionError('records', 'an iterable of records', records);
  }
  const encoder = new AggregateEncoder(maxBytes, maxCount, REMEMBERED_PARTITION_KEYS);
  const facts = newRecordFacts();
  const out: KinesisRecord[] = [];
  const aggregates: Uint8Array[] = [];
  let index = 0;
  // The place in `records` of the open aggregate's first record: a record whose data changed is
  // named by its place in `records`.
  let firstIndex = 0;
  const build = () => {
    const aggregated = encoder.count > 1;
    const built = buildWithoutDigest(encoder, firstIndex);
    out.push(built);
    if (aggregated) aggregates.push(built.data);
    firstIndex = index;
  };
  const add = (record: UserRecord) => {
    try {
      return addUserRecord(encoder, record, maxRecordBytes, facts);
    } catch (error) {
      if (!(error instanceof InvalidRecordError)) throw error;
      throw new InvalidRecordError(error.field, `Record ${index}: ${error.message}`, { cause: error });
    }
  };
  for (const record of records) {
    if (!add(record)) {
      build();
      // An empty aggregate takes any valid record: the one just measured, not read again.
      addMeasured(encoder, facts, encoder.partitionKeyEntry(facts.partitionKey));
    }
    index++;
  }
  if (encoder.count > 0) build();
  writeAggregateDigests(aggregates);
  return out;
}

/** RecordAggregator's options, checked, with their defaults; unknown ones told as `names` says. */
function resolveAggregatorOptions(
  options: RecordAggregatorOptions | undefined,
  names: OptionNames,
): {
  maxRecordBytes: number;
  maxBytes: number;
  maxCount: number;
} {
  checkOptionsObject('options', options);
  options ??= {};
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  // The smallest record that can hold an aggregate: magic, MD5, one body byte and the key "a".
  checkInteger('maxRecordBytes', maxRecordBytes, AGGREGATE_OVERHEAD_BYTES + 1, MAX_RECORD_BYTES_LIMIT);
  const maxBytes = options.maxBytes ?? Math.min(DEFAULT_AGGREGATION_MAX_BYTES, maxRecordBytes);
  checkInteger('maxBytes', maxBytes, AGGREGATE_OVERHEAD_BYTES + 1, maxRecordBytes);
  const maxCount = options.maxCount ?? DEFAULT_AGGREGATION_MAX_COUNT;
  checkInteger('maxCount', maxCount, 1, DEFAULT_AGGREGATION_MAX_COUNT);
  warnUnknownOptions(options, names);
  return { maxRecordBytes, maxBytes, maxCount };
}

/**
 * Validates a user record and adds it to `encoder` (see RecordAggregator.add); `facts` is scratch
 * space for the validation.
 */
function addUserRecord(
  encoder: AggregateEncoder,
  record: UserRecord,
  maxRecordBytes: number,
  facts: RecordFacts,
): boolean {
  // One lookup of the key serves validation (a key already in the table is valid and measured)
  // and the encoder. `?.` because validation, not this line, reports a record that is no object.
  const known = encoder.partitionKeyEntry((record as UserRecord | null | undefined)?.partitionKey);
  validateUserRecord(record, maxRecordBytes, facts, known);
  return addMeasured(encoder, facts, known);
}

/**
 * Adds the record `facts` describes: its fields as validation read them (a getter may answer
 * differently on another read), with no per-record object. `known` is the encoder's entry for the key
 * looked up before validation (undefined: none): it is for another key only if the key's getter
 * changed.
 */
function addMeasured(
  encoder: AggregateEncoder,
  facts: RecordFacts,
  known: PartitionKeyEntry | undefined,
): boolean {
  const key = facts.partitionKey;
  return encoder.tryAdd(
    key,
    facts.partitionKeyBytes,
    facts.data,
    facts.dataBytes,
    facts.explicitHashKey,
    known === undefined || known.key === key ? known : encoder.partitionKeyEntry(key),
  );
}

/**
 * What `encoder` holds (one record or more) as one Kinesis record, an aggregate's MD5 trailer not yet
 * written. A record whose data changed is named by its place plus `firstIndex`.
 */
function buildWithoutDigest(encoder: AggregateEncoder, firstIndex = 0): KinesisRecord {
  return encoder.build(
    encoder.firstExplicitHashKey ?? partitionKeyHash(encoder.firstPartitionKey).toString(),
    firstIndex,
  );
}
