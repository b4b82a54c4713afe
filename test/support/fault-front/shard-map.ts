/**
 * Where the service will store each record: the open shard whose hash key range holds the record's hash
 * key. The front keeps each stream's open shards from upstream ListShards, and asks again when the map
 * is older than the configured age, when a hash key falls in no open shard (a reshard is under way), or
 * when upstream stored a record somewhere else than predicted.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Upstream } from './upstream.js';
import { isObject, type StreamRef } from './wire.js';

interface OpenShard {
  readonly shardId: string;
  readonly start: bigint;
  readonly end: bigint;
}

interface CachedMap {
  /** Shared by every request that needs the map while it is being fetched. */
  readonly shards: Promise<readonly OpenShard[]>;
  readonly fetchedAtMs: number;
}

export class ShardMaps {
  readonly #upstream: Upstream;
  readonly #maps = new Map<string, CachedMap>();

  constructor(upstream: Upstream) {
    this.#upstream = upstream;
  }

  /**
   * The shard id of each hash key, or undefined when some key has no open shard even in a fresh map.
   * @param identity the identity headers of the client the front routes for.
   * @throws {UpstreamRefusal} when upstream refuses ListShards (e.g. the stream does not exist).
   */
  async route(
    stream: StreamRef,
    hashKeys: readonly bigint[],
    maxAgeMs: number,
    identity: OutgoingHttpHeaders,
  ): Promise<string[] | undefined> {
    const routed = assign(await this.#shards(stream, maxAgeMs, identity), hashKeys);
    if (routed !== undefined) return routed;
    this.forget(stream.name);
    return assign(await this.#shards(stream, maxAgeMs, identity), hashKeys);
  }

  /** Drops a stream's map, so the next request fetches it again. */
  forget(streamName: string): void {
    this.#maps.delete(streamName);
  }

  async #shards(
    stream: StreamRef,
    maxAgeMs: number,
    identity: OutgoingHttpHeaders,
  ): Promise<readonly OpenShard[]> {
    const now = performance.now();
    const cached = this.#maps.get(stream.name);
    if (cached !== undefined && now - cached.fetchedAtMs <= maxAgeMs) return await cached.shards;
    const shards = this.#listOpenShards(stream, identity);
    const entry = { shards, fetchedAtMs: now };
    this.#maps.set(stream.name, entry);
    // A failed fetch is not cached: the next request tries again. The caller awaits `shards` itself.
    shards.catch(() => {
      if (this.#maps.get(stream.name) === entry) this.#maps.delete(stream.name);
    });
    return await shards;
  }

  async #listOpenShards(stream: StreamRef, identity: OutgoingHttpHeaders): Promise<OpenShard[]> {
    const open: OpenShard[] = [];
    let input: Record<string, unknown> = { ...stream.selector };
    for (;;) {
      const page = await this.#upstream.call('ListShards', input, identity);
      for (const shard of Array.isArray(page.Shards) ? page.Shards : []) {
        const parsed = parseShard(shard);
        if (parsed !== undefined) open.push(parsed);
      }
      if (typeof page.NextToken !== 'string') return open;
      input = { NextToken: page.NextToken };
    }
  }
}

/** An open shard from a ListShards entry; undefined for a closed shard. */
function parseShard(shard: unknown): OpenShard | undefined {
  if (!isObject(shard) || typeof shard.ShardId !== 'string') return undefined;
  const { HashKeyRange: range, SequenceNumberRange: sequences } = shard;
  if (isObject(sequences) && typeof sequences.EndingSequenceNumber === 'string') return undefined;
  if (
    !isObject(range) ||
    typeof range.StartingHashKey !== 'string' ||
    typeof range.EndingHashKey !== 'string'
  ) {
    return undefined;
  }
  return { shardId: shard.ShardId, start: BigInt(range.StartingHashKey), end: BigInt(range.EndingHashKey) };
}

function assign(shards: readonly OpenShard[], hashKeys: readonly bigint[]): string[] | undefined {
  const shardIds: string[] = [];
  for (const key of hashKeys) {
    const shard = shards.find((s) => s.start <= key && key <= s.end);
    if (shard === undefined) return undefined;
    shardIds.push(shard.shardId);
  }
  return shardIds;
}
