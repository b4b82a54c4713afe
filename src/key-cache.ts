import type { PartitionKeyEntry } from './aggregator.js';
import { partitionKeyHash } from './hash-key.js';

/**
 * What the producer knows of a partition key it has seen: its UTF-8 length, its MD5 hash key (and
 * that in decimal) once asked for, and — as a {@link PartitionKeyEntry} — its place in the key table
 * of the aggregate that holds it last.
 */
export interface KnownPartitionKey extends PartitionKeyEntry {
  hash: bigint | undefined;
  decimal: string | undefined;
}

/**
 * Remembers recent partition keys: services reuse a small set of hot keys. One lookup per record
 * gives validation its measured key, routing its hash, and the shard's aggregate encoder its table
 * entry (which an encoder would otherwise look up in a map of its own, and allocate again for every
 * aggregate). Bounded: when full it starts over, which costs one re-measure and re-hash per key and
 * never grows memory.
 *
 * Keys seldom repeated (a UUID per event) would only miss: each lookup then costs more than the
 * hashing it could save (a miss in a map of 16,384 keys nobody asks for again, and the map refilled
 * after every clear): with a new key per record, looking up cost about a tenth more CPU per 100 B
 * record than not (alternating runs against the null sink). So when a whole map's worth of keys found
 * fewer than one lookup in three, the cache stops looking for {@link SKIPPED_FILLS} maps' worth of
 * records, then tries again from empty. Meanwhile every record brings an entry of its own: two records of one key in one aggregate each
 * put the key in its table (valid, and what KCL reads), which at that hit rate is rare.
 */
export class PartitionKeyCache {
  readonly #keys = new Map<string, KnownPartitionKey>();
  readonly #maxEntries: number;
  /** Lookups that found their key since the map was last emptied. */
  #hits = 0;
  /** Keys still to be handed out without looking them up or keeping them. */
  #skipping = 0;

  constructor(maxEntries = 16_384) {
    this.#maxEntries = maxEntries;
  }

  /** The key's entry if it was seen (and kept). Only strings are stored: any other value is not found. */
  get(partitionKey: unknown): KnownPartitionKey | undefined {
    if (this.#skipping > 0) return undefined;
    const known = this.#keys.get(partitionKey as string);
    if (known !== undefined) this.#hits++;
    return known;
  }

  /** An entry for a validated key of `bytes` UTF-8 bytes that `get` did not find, remembered if worth it. */
  add(partitionKey: string, bytes: number): KnownPartitionKey {
    // `aggregate` 0 is no aggregate: encoders number theirs from 1.
    const known: KnownPartitionKey = {
      key: partitionKey,
      bytes,
      index: 0,
      aggregate: 0,
      stampedBy: undefined,
      hash: undefined,
      decimal: undefined,
    };
    if (this.#skipping > 0) {
      this.#skipping--;
      return known;
    }
    if (this.#keys.size >= this.#maxEntries) {
      // A full map is as many misses: fewer hits than half of them is under one lookup in three.
      const worthIt = this.#hits >= this.#maxEntries / 2;
      this.#keys.clear();
      this.#hits = 0;
      if (!worthIt) {
        this.#skipping = SKIPPED_FILLS * this.#maxEntries;
        return known;
      }
    }
    this.#keys.set(partitionKey, known);
    return known;
  }
}

/**
 * How long the cache stops looking, once keys were found to be seldom repeated: this many maps' worth
 * of records. Trying again costs one map's worth of misses, about 1/17 of the records meanwhile.
 */
export const SKIPPED_FILLS = 16;

/** MD5 of the partition key as a 128-bit integer, worked out once per entry. */
export function hashOf(known: KnownPartitionKey): bigint {
  let hash = known.hash;
  if (hash === undefined) {
    hash = partitionKeyHash(known.key);
    known.hash = hash;
  }
  return hash;
}

/** The hash key in decimal, as the outer ExplicitHashKey of a Kinesis record. */
export function decimalOf(known: KnownPartitionKey): string {
  let decimal = known.decimal;
  if (decimal === undefined) {
    decimal = hashOf(known).toString();
    known.decimal = decimal;
  }
  return decimal;
}
