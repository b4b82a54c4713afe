import { partitionKeyHash } from './hash-key.js';

/**
 * Remembers the MD5 hash keys of recent partition keys: services reuse a small set of hot keys, and
 * hashing is the costliest per-record step after validation. Bounded: when full it starts over, which
 * costs one re-hash per key and never grows memory.
 */
export class PartitionKeyHashCache {
  readonly #hashes = new Map<string, bigint>();
  readonly #decimals = new Map<string, string>();
  readonly #maxEntries: number;

  constructor(maxEntries = 16_384) {
    this.#maxEntries = maxEntries;
  }

  /** MD5 of the partition key as a 128-bit integer. */
  hash(partitionKey: string): bigint {
    let hash = this.#hashes.get(partitionKey);
    if (hash === undefined) {
      hash = partitionKeyHash(partitionKey);
      if (this.#hashes.size >= this.#maxEntries) this.#hashes.clear();
      this.#hashes.set(partitionKey, hash);
    }
    return hash;
  }

  /** The hash key in decimal, as the outer ExplicitHashKey of a Kinesis record. */
  decimal(partitionKey: string, hash: bigint): string {
    let decimal = this.#decimals.get(partitionKey);
    if (decimal === undefined) {
      decimal = hash.toString();
      if (this.#decimals.size >= this.#maxEntries) this.#decimals.clear();
      this.#decimals.set(partitionKey, decimal);
    }
    return decimal;
  }
}
