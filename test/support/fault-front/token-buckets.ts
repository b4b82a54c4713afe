/**
 * The per-shard write limits: for each shard one bucket of record tokens and one of byte tokens, each
 * refilled continuously at its per-second rate up to `burstSeconds` worth of tokens, and full when first
 * used. A record is admitted only if both buckets hold enough for it; then both are charged. A refused
 * record costs nothing: it was not written.
 *
 * The buckets live in the front, so every connection and every client process shares them, as they
 * share the shard.
 */
import type { ShardLimits } from './config.js';

interface Bucket {
  records: number;
  bytes: number;
  refilledAtMs: number;
}

export class ShardBuckets {
  readonly #limits: ShardLimits;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limits: ShardLimits) {
    this.#limits = limits;
  }

  /** Admits one record of `bytes` bytes to `shard` at `nowMs`, or refuses it. */
  tryTake(shard: string, bytes: number, nowMs: number): boolean {
    const { recordsPerSecond, bytesPerSecond, burstSeconds = 1 } = this.#limits;
    const maxRecords = recordsPerSecond * burstSeconds;
    const maxBytes = bytesPerSecond * burstSeconds;
    let bucket = this.#buckets.get(shard);
    if (bucket === undefined) {
      bucket = { records: maxRecords, bytes: maxBytes, refilledAtMs: nowMs };
      this.#buckets.set(shard, bucket);
    }
    const elapsedSeconds = Math.max(0, nowMs - bucket.refilledAtMs) / 1000;
    bucket.records = Math.min(maxRecords, bucket.records + elapsedSeconds * recordsPerSecond);
    bucket.bytes = Math.min(maxBytes, bucket.bytes + elapsedSeconds * bytesPerSecond);
    bucket.refilledAtMs = Math.max(bucket.refilledAtMs, nowMs);
    if (bucket.records < 1 || bucket.bytes < bytes) return false;
    bucket.records -= 1;
    bucket.bytes -= bytes;
    return true;
  }
}
