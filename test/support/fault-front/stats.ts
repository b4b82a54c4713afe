/**
 * What the front saw and did, for tests to assert on: how many requests and entries came in, what
 * happened to the entries, which faults were injected, and how fast each shard accepted records (so a
 * test can compare a producer's throughput with the shard limits).
 */
import type { EntryFault } from './faults.js';

/** Records upstream stored in one shard through the front. */
export interface ShardStats {
  readonly records: number;
  /** Partition key + data bytes. */
  readonly bytes: number;
  /** When the front admitted the first of these records, in `performance.now()` milliseconds. */
  readonly firstAcceptedAtMs: number;
  /** When the front admitted the last of these records, in `performance.now()` milliseconds. */
  readonly lastAcceptedAtMs: number;
}

/** A snapshot of the front's counters; later requests do not change it. */
export interface FaultFrontStats {
  /** Requests received, by operation (`(none)` for requests without `X-Amz-Target`). */
  readonly requests: Readonly<Record<string, number>>;
  /**
   * PutRecords/PutRecord entries received, in requests the front could read (it forwards the others
   * untouched, e.g. one with an invalid explicit hash key, for upstream to refuse).
   */
  readonly entriesReceived: number;
  /** Entries sent upstream. */
  readonly entriesForwarded: number;
  /** Entries upstream stored (answered with a sequence number). */
  readonly entriesStored: number;
  /** Entries refused by the per-shard limits. */
  readonly entriesThrottled: number;
  /** Entries failed on purpose, by fault. */
  readonly entryFaults: Readonly<Record<EntryFault, number>>;
  /**
   * Requests failed on purpose, by fault kind (`throttle`, `stored-then-hang`, …), or by error code for
   * a scripted error fault.
   */
  readonly requestFaults: Readonly<Record<string, number>>;
  /** Requests refused by the request limits (record count, record size, request size). */
  readonly limitRejections: number;
  /** Stored records by stream name, then by shard id. */
  readonly shards: Readonly<Record<string, Readonly<Record<string, ShardStats>>>>;
}

interface MutableShardStats {
  records: number;
  bytes: number;
  firstAcceptedAtMs: number;
  lastAcceptedAtMs: number;
}

/** The counters behind {@link FaultFrontStats}. */
export class Stats {
  entriesReceived = 0;
  entriesForwarded = 0;
  entriesStored = 0;
  entriesThrottled = 0;
  entryFaults: Record<EntryFault, number> = { 'internal-failure': 0, throttle: 0 };
  limitRejections = 0;
  readonly #requests = new Map<string, number>();
  readonly #requestFaults = new Map<string, number>();
  readonly #shards = new Map<string, Map<string, MutableShardStats>>();

  request(operation: string): void {
    increment(this.#requests, operation);
  }

  requestFault(kind: string): void {
    increment(this.#requestFaults, kind);
  }

  /** Counts a stored record; `acceptedAtMs` is when the front admitted it. */
  stored(stream: string, shardId: string, bytes: number, acceptedAtMs: number): void {
    this.entriesStored++;
    let shards = this.#shards.get(stream);
    if (shards === undefined) {
      shards = new Map();
      this.#shards.set(stream, shards);
    }
    const shard = shards.get(shardId);
    if (shard === undefined) {
      shards.set(shardId, {
        records: 1,
        bytes,
        firstAcceptedAtMs: acceptedAtMs,
        lastAcceptedAtMs: acceptedAtMs,
      });
      return;
    }
    shard.records++;
    shard.bytes += bytes;
    shard.firstAcceptedAtMs = Math.min(shard.firstAcceptedAtMs, acceptedAtMs);
    shard.lastAcceptedAtMs = Math.max(shard.lastAcceptedAtMs, acceptedAtMs);
  }

  snapshot(): FaultFrontStats {
    const shards: Record<string, Record<string, ShardStats>> = {};
    for (const [stream, byShard] of this.#shards) {
      shards[stream] = Object.fromEntries([...byShard].map(([id, stats]) => [id, { ...stats }]));
    }
    return {
      requests: Object.fromEntries(this.#requests),
      entriesReceived: this.entriesReceived,
      entriesForwarded: this.entriesForwarded,
      entriesStored: this.entriesStored,
      entriesThrottled: this.entriesThrottled,
      entryFaults: { ...this.entryFaults },
      requestFaults: Object.fromEntries(this.#requestFaults),
      limitRejections: this.limitRejections,
      shards,
    };
  }
}

function increment(counters: Map<string, number>, key: string): void {
  counters.set(key, (counters.get(key) ?? 0) + 1);
}
