import { ListShardsCommand, type ListShardsCommandOutput, type Shard } from '@aws-sdk/client-kinesis';
import { MAX_METADATA_ANSWER_BYTES, withBoundedAnswer } from './bounded-answer.js';
import { MAX_HASH_KEY } from './hash-key.js';
import { callFailed, callWithRetries, type MetadataSource, OutlivedCalls } from './metadata-call.js';
import { RepeatedWarning } from './repeated-warning.js';
import { classifyRequestError, FailureKind } from './retry-policy.js';
import { streamParams } from './stream-ref.js';

/**
 * A shard and the hash keys it owns. A shard's range never changes once it exists, but a stream
 * deleted and created again under the same name has shards of the same ids with other ranges (see
 * ShardMap.forget).
 */
export interface ShardRange {
  readonly shardId: string;
  readonly start: bigint;
  readonly end: bigint;
}

/** Wait after a successful load before another may start, so a burst of mispredictions costs one call. */
const MIN_REFRESH_INTERVAL_MS = 500;
/** Wait before trying again after a load gave up (every retry of the call failed). */
const RETRY_AFTER_FAILURE_MS = 5_000;
/** Wait before trying again after ListShards was denied or the stream was not found. */
const RETRY_AFTER_FATAL_MS = 60_000;

/**
 * The stream's open shards (ListShards with `AT_LATEST`, all pages), used to predict which shard a
 * hash key goes to so that an aggregate never mixes shards; and the range of every shard seen, also
 * of closed ones, listed when records land on other shards than predicted (see listAll).
 *
 * Until a map is known (first load, or ListShards denied) `lookup` returns undefined and the producer
 * aggregates only records of one hash key, which is always safe. Loads are coalesced; a refresh asked
 * for while one runs is served by it. Every map that differs from the previous bumps `version`.
 */
export class ShardMap {
  readonly #source: MetadataSource;
  /** Its calls of ListShards that outlived their try: after a few in a row, tries wait (see OutlivedCalls). */
  readonly #outlived = new OutlivedCalls();
  readonly #onChange: () => void;
  readonly #onSame: () => void;

  #starts: bigint[] = [];
  #ranges: ShardRange[] = [];
  /**
   * The last lookup: a record is looked up twice in a row, for its share of the room and then for its
   * buffer.
   */
  #lastHashKey = -1n;
  #lastIndex = -1;
  /**
   * Every shard seen, by id, closed ones too: a shard's range never changes, but an id may come back
   * with another in a stream created again (see resetVersion), which a later listing tells.
   */
  readonly #known = new Map<string, ShardRange>();
  /** The number of the last load whose listing showed each shard of `#known` (see rangeListedSince). */
  readonly #listedIn = new Map<string, number>();
  #version = 0;
  /** The version from which shard ids may own other hash keys than before (see forget); 0 if never. */
  #resetVersion = 0;
  /** The version at which the stream was last found gone (see forget); 0 if never. */
  #goneVersion = 0;
  #loading = false;
  #wanted = false;
  #notBefore = 0;
  #timer: unknown;
  #closed = false;
  /** Failures of the call: each new one told at once, the others once a minute at most. */
  readonly #warning: RepeatedWarning;
  /** Someone waits for a map newer than the current one (see refreshUntilNewer). */
  #newerWanted = false;
  /** Loads started so far, and the number of the last listing of every shard that completed. */
  #loadsStarted = 0;
  #lastListingOfAll = 0;
  /** Tries of ListShards that failed, of any load: see failedTriesSince. */
  #failedTries = 0;
  /**
   * A listing of every shard is wanted that starts after this many loads (the latest mark `listAll`
   * returned), until one completes; -1 when none is (see stopWaitingForNewer).
   */
  #allWantedAfter = -1;
  readonly #onListedAll: () => void;

  /**
   * `onChange` after each change of the map; `onSame` after a load that brought the same map while a
   * newer one was wanted (records landed on shards the map did not predict); `onListedAll` after a
   * listing of every shard completed, and after any try of a listing failed (see listAll).
   */
  constructor(
    source: MetadataSource,
    onChange: () => void,
    onSame: () => void = () => {},
    onListedAll: () => void = () => {},
  ) {
    this.#source = source;
    this.#onChange = onChange;
    this.#onSame = onSame;
    this.#onListedAll = onListedAll;
    this.#warning = new RepeatedWarning(source.logger, source.clock);
  }

  /** Increases every time the map changes; 0 while none is known. */
  get version(): number {
    return this.#version;
  }

  /**
   * The version from which a shard id may own other hash keys than it did before: the stream was not
   * found, or a listing gave a known id another range (a stream created again under the same name).
   * A prediction made under an older version is not trusted: its id may have come back with other
   * keys. 0 if never.
   */
  get resetVersion(): number {
    return this.#resetVersion;
  }

  /** The version at which the stream was last found gone (see forget): 0 if never. */
  get goneVersion(): number {
    return this.#goneVersion;
  }

  /** Whether a map is known. */
  get ready(): boolean {
    return this.#ranges.length > 0;
  }

  /** The open shards, by starting hash key. */
  get shards(): readonly ShardRange[] {
    return this.#ranges;
  }

  /** Index in `shards` of the open shard owning `hashKey`, or -1 while no map is known. */
  lookupIndex(hashKey: bigint): number {
    if (hashKey === this.#lastHashKey) return this.#lastIndex;
    const starts = this.#starts;
    if (starts.length === 0) return -1;
    // The last shard whose start is <= hashKey (the map covers [0, 2^128-1] without gaps).
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= hashKey) lo = mid;
      else hi = mid - 1;
    }
    this.#lastHashKey = hashKey;
    this.#lastIndex = lo;
    return lo;
  }

  /** The range of any shard seen so far, open or closed. */
  range(shardId: string): ShardRange | undefined {
    return this.#known.get(shardId);
  }

  /** Loads started so far: a mark that {@link rangeListedSince} and {@link listedAllSince} compare with. */
  get loads(): number {
    return this.#loadsStarted;
  }

  /**
   * The range of `shardId` as a listing started after `mark` (a value of {@link loads}) showed it;
   * undefined if none did. One listed before may be of a stream of the same name deleted since.
   */
  rangeListedSince(shardId: string, mark: number): ShardRange | undefined {
    return (this.#listedIn.get(shardId) ?? 0) > mark ? this.#known.get(shardId) : undefined;
  }

  /** Whether `shardId` is one of the open shards of the map. */
  isOpen(shardId: string): boolean {
    return this.#ranges.some((r) => r.shardId === shardId);
  }

  /**
   * Asks for a listing of every shard of the stream, closed ones too, started from now (one under way
   * does not count), tried until one completes; `onListedAll` follows it. Returns the mark
   * {@link listedAllSince} compares with. For records stored on a shard the map did not predict:
   * that shard may have opened and closed between two loads, or its id may own other keys than the
   * map remembers (a stream created again).
   */
  listAll(): number {
    const mark = this.#loadsStarted;
    this.#allWantedAfter = mark;
    this.refresh();
    return mark;
  }

  /** Whether a listing of every shard is wanted that none has answered yet. */
  get #allWanted(): boolean {
    return this.#allWantedAfter >= 0 && this.#lastListingOfAll <= this.#allWantedAfter;
  }

  /** Whether a listing of every shard asked for when `listAll` returned `mark` has completed. */
  listedAllSince(mark: number): boolean {
    return this.#lastListingOfAll > mark;
  }

  /** Whether a try of ListShards has failed since {@link failedTries} was `count`. */
  failedTriesSince(count: number): boolean {
    return this.#failedTries > count;
  }

  /** Tries of ListShards that failed so far, of any load: a mark for {@link failedTriesSince}. */
  get failedTries(): number {
    return this.#failedTries;
  }

  /** Asks for a fresh map (coalesced, rate-limited, in the background). */
  refresh(): void {
    if (this.#closed) return;
    this.#wanted = true;
    if (this.#loading || this.#timer !== undefined) return;
    const wait = this.#notBefore - this.#source.clock.now();
    if (wait > 0) {
      this.#timer = this.#source.clock.setTimeout(
        () => {
          this.#timer = undefined;
          this.refresh();
        },
        wait,
        false,
      );
      return;
    }
    this.#wanted = false;
    this.#loading = true;
    const all = this.#allWanted;
    void this.#load(++this.#loadsStarted, all).finally(() => {
      this.#loading = false;
      if (this.#wanted || this.#newerWanted) this.refresh();
    });
  }

  /**
   * Loads until the map changes: after each load that brings nothing new (or fails), another one
   * follows once the interval allows. For records waiting to learn where a stale map sent them.
   */
  refreshUntilNewer(): void {
    this.#newerWanted = true;
    this.refresh();
  }

  /**
   * Nobody waits for a newer map, nor for a listing of every shard, any more (see refreshUntilNewer and
   * listAll): loads stop once this one ends.
   */
  stopWaitingForNewer(): void {
    this.#newerWanted = false;
    this.#allWantedAfter = -1;
  }

  /**
   * The stream was not found (PutRecords or ListShards answered ResourceNotFoundException): it may
   * have been deleted, and a stream created again under its name has shards of the same ids that own
   * other hash keys, so every prediction would still look right while aggregates mixed shards. The
   * map is dropped, as if none had been known: records are aggregated only with those of the same
   * hash key, which is right on any stream, until ListShards answers again, tried every 5 s.
   */
  forget(): void {
    if (this.#closed || !this.ready) return;
    this.#ranges = [];
    this.#starts = [];
    this.#known.clear();
    this.#listedIn.clear();
    this.#lastHashKey = -1n;
    this.#version++;
    this.#resetVersion = this.#version;
    this.#goneVersion = this.#version;
    // Not after a wait set for the stream it had: it is looked for from now.
    if (this.#timer !== undefined) this.#source.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#notBefore = Math.min(this.#notBefore, this.#source.clock.now());
    this.#source.logger.debug(
      { stream: this.#source.stream.label, version: this.#version },
      'shard map dropped: the stream was not found',
    );
    this.#onChange();
    this.refresh();
  }

  /** Stops background refreshes. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#source.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Load number `number`; with `all`, a listing of every shard (see listAll). */
  async #load(number: number, all: boolean): Promise<void> {
    // A listing started before the stream was found gone may describe the stream that went.
    const gone = this.#goneVersion;
    try {
      const shards = await this.#listShards(all);
      if (this.#closed) return;
      if (gone !== this.#goneVersion) {
        // Listed before the stream was found gone: maybe the stream that went. Listed again at once.
        this.#wanted = true;
        return;
      }
      this.#notBefore = this.#source.clock.now() + MIN_REFRESH_INTERVAL_MS;
      this.#warning.clear();
      const open = toRanges(shards);
      const closed = shards
        .filter((s) => s.SequenceNumberRange?.EndingSequenceNumber !== undefined)
        .map(rangeOf)
        .filter((r) => r.shardId !== '' && r.start <= r.end);
      if (all) this.#lastListingOfAll = number;
      this.#apply(number, open, closed);
      if (all) this.#onListedAll();
    } catch (error) {
      if (this.#closed) return;
      const failure = classifyRequestError(error);
      // The stream went while a map of it was known: dropped, as when PutRecords says so.
      if (failure.code === 'ResourceNotFoundException' && this.ready && gone === this.#goneVersion) {
        this.forget();
      }
      // Not found after forget(): the stream may be created again any moment, so it is looked for sooner.
      const fatal = failure.kind === FailureKind.Fatal && !(this.#goneVersion > 0 && !this.ready);
      this.#notBefore = this.#source.clock.now() + (fatal ? RETRY_AFTER_FATAL_MS : RETRY_AFTER_FAILURE_MS);
      this.#warning.warn(
        `${failure.code} ${this.ready}`,
        {
          stream: this.#source.stream.label,
          code: failure.code,
          error: failure.message,
          mapKnown: this.ready,
        },
        this.ready
          ? `${callFailed('ListShards', failure)}; keeping the previous shard map`
          : `${callFailed('ListShards', failure)}; aggregating only records with the same hash key until a shard map is known`,
      );
      // Keep trying in the background while no map is known: aggregation across keys needs one.
      if (!this.ready) this.#wanted = true;
      // Tried again (after the wait above) until one completes, while records still wait for it (told
      // of the failure first: they may make do without it).
      this.#triedAndFailed();
      if (this.#allWanted) this.#wanted = true;
    }
  }

  /** A try of ListShards failed: whoever waits for a listing may make do without it (see onListedAll). */
  #triedAndFailed(): void {
    if (this.#closed) return;
    this.#failedTries++;
    this.#onListedAll();
  }

  /**
   * Every open shard (with `all`, every shard: closed ones too), page by page. A page token lives
   * 300 s: if a later page's tries outlast it, the service answers ExpiredNextTokenException, and the
   * listing starts again from the first page (once).
   */
  async #listShards(all: boolean): Promise<Shard[]> {
    const shards: Shard[] = [];
    let nextToken: string | undefined;
    let restarted = false;
    for (;;) {
      const token = nextToken;
      let page: ListShardsCommandOutput;
      try {
        page = await callWithRetries(
          (abortSignal) =>
            this.#source.client.send(
              withBoundedAnswer(
                token === undefined
                  ? new ListShardsCommand({
                      ...streamParams(this.#source.stream),
                      ...(all ? {} : { ShardFilter: { Type: 'AT_LATEST' } }),
                    })
                  : new ListShardsCommand({ NextToken: token }),
                MAX_METADATA_ANSWER_BYTES,
              ),
              { abortSignal },
            ),
          this.#source,
          this.#outlived,
          4,
          // Records waiting for a listing of every shard do not wait for all the tries of a load (each
          // up to requestTimeoutMs) to make do without it.
          // Not a stream found gone: it is dropped first (below), and what waited on it sent again.
          (error) => {
            if (classifyRequestError(error).code !== 'ResourceNotFoundException') this.#triedAndFailed();
          },
        );
      } catch (error) {
        const expired = (error as { name?: unknown } | null)?.name === 'ExpiredNextTokenException';
        if (token === undefined || restarted || !expired) throw error;
        restarted = true;
        shards.length = 0;
        nextToken = undefined;
        continue;
      }
      shards.push(...(page.Shards ?? []));
      nextToken = page.NextToken;
      if (nextToken === undefined) return shards;
    }
  }

  /**
   * Load `number`'s listing: its open shards become the map; its closed ones (if it had any) are only
   * remembered.
   */
  #apply(number: number, ranges: ShardRange[], closed: readonly ShardRange[]): void {
    const reused = [...ranges, ...closed].some((r) => {
      const was = this.#known.get(r.shardId);
      return was !== undefined && (was.start !== r.start || was.end !== r.end);
    });
    for (const r of [...closed, ...ranges]) {
      this.#known.set(r.shardId, r);
      this.#listedIn.set(r.shardId, number);
    }
    const same =
      ranges.length === this.#ranges.length &&
      ranges.every((r, i) => {
        const was = this.#ranges[i]!;
        return r.shardId === was.shardId && r.start === was.start && r.end === was.end;
      });
    if (same) {
      if (this.#newerWanted) this.#onSame();
      return;
    }
    this.#ranges = ranges;
    this.#starts = ranges.map((r) => r.start);
    this.#lastHashKey = -1n;
    this.#version++;
    if (reused) this.#resetVersion = this.#version;
    this.#newerWanted = false;
    this.#source.logger.debug(
      { stream: this.#source.stream.label, shards: ranges.length, version: this.#version },
      'shard map updated',
    );
    this.#onChange();
  }
}

/**
 * Open shards sorted by start, checked to cover [0, 2^128-1] exactly once. During a reshard a listing
 * can be momentarily inconsistent; such a listing is rejected (and retried) rather than trusted.
 */
export function toRanges(shards: readonly Shard[]): ShardRange[] {
  const ranges = shards
    .filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined)
    .map(rangeOf)
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let expected = 0n;
  for (const r of ranges) {
    if (r.shardId === '' || r.start !== expected || r.end < r.start) {
      throw new Error(`ListShards returned shards that do not tile the hash key space (at ${expected})`);
    }
    expected = r.end + 1n;
  }
  if (ranges.length === 0 || expected !== MAX_HASH_KEY + 1n) {
    throw new Error('ListShards returned shards that do not cover the hash key space');
  }
  return ranges;
}

/** A listed shard's id and range ('' and -1 for what the listing left out). */
function rangeOf(shard: Shard): ShardRange {
  return {
    shardId: shard.ShardId ?? '',
    start: BigInt(shard.HashKeyRange?.StartingHashKey ?? '-1'),
    end: BigInt(shard.HashKeyRange?.EndingHashKey ?? '-1'),
  };
}
