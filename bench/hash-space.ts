/**
 * Kinesis routing, written again here rather than imported from src/: the null sink routes records as
 * the service would, and it must not share a bug with the producer it is measuring.
 */
import { createHash } from 'node:crypto';

const HASH_SPACE = 1n << 128n;

/** MD5 of the UTF-8 partition key, big-endian, as the 128-bit hash key Kinesis routes by. */
export function partitionKeyHashKey(partitionKey: string): bigint {
  const digest = createHash('md5').update(partitionKey, 'utf8').digest();
  return (digest.readBigUInt64BE(0) << 64n) | digest.readBigUInt64BE(8);
}

/** The hash-key ranges CreateStream gives `shards` shards: even splits, the last one open-ended. */
export function evenShardRanges(shards: number): { start: bigint; end: bigint }[] {
  const step = HASH_SPACE / BigInt(shards);
  return Array.from({ length: shards }, (_, i) => ({
    start: BigInt(i) * step,
    end: i === shards - 1 ? HASH_SPACE - 1n : BigInt(i + 1) * step - 1n,
  }));
}

/** Index of the shard (of `shards` even splits) whose range holds `hashKey`. */
export function shardIndexOf(hashKey: bigint, shards: number): number {
  const index = Number(hashKey / (HASH_SPACE / BigInt(shards)));
  // The remainder of the division belongs to the last shard.
  return index < shards ? index : shards - 1;
}
