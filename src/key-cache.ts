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
 * never grows memory. An entry holds, besides the key, about 100 bytes, and the copy of the key's
 * UTF-8 bytes the encoder keeps once the key is in a second aggregate (about 250 bytes for a 36-byte
 * key): 16,384 hot keys of 36 bytes take about 6 MiB, the longest keys about 14 MiB.
 */
export class PartitionKeyCache {
  readonly #keys = new Map<string, KnownPartitionKey>();
  readonly #maxEntries: number;

  constructor(maxEntries = 16_384) {
    this.#maxEntries = maxEntries;
  }

  /** The key's entry if it was seen (and kept). Only strings are stored: any other value is not found. */
  get(partitionKey: unknown): KnownPartitionKey | undefined {
    return this.#keys.get(partitionKey as string);
  }

  /** Remembers a validated key of `bytes` UTF-8 bytes. */
  add(partitionKey: string, bytes: number): KnownPartitionKey {
    if (this.#keys.size >= this.#maxEntries) this.#keys.clear();
    // `aggregate` 0 is no aggregate: encoders number theirs from 1.
    const known: KnownPartitionKey = {
      key: partitionKey,
      bytes,
      index: 0,
      aggregate: 0,
      stampedBy: undefined,
      utf8: undefined,
      writes: 0,
      hash: undefined,
      decimal: undefined,
    };
    this.#keys.set(partitionKey, known);
    return known;
  }
}

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
