import {
  DescribeStreamSummaryCommand,
  type DescribeStreamSummaryCommandOutput,
  type KinesisClient,
  ListShardsCommand,
  type ListShardsCommandOutput,
  PutRecordsCommand,
  type PutRecordsCommandOutput,
  type PutRecordsRequestEntry,
  type PutRecordsResultEntry,
} from '@aws-sdk/client-kinesis';
import { deaggregate, MAX_HASH_KEY, partitionKeyHash } from '../../src/index.js';

/** A shard of the fake stream. */
export interface FakeShard {
  readonly id: string;
  readonly start: bigint;
  readonly end: bigint;
}

/** The first `n` partition keys `${prefix}0`, `${prefix}1`... whose hash key `fits`. */
export function keysWhere(n: number, fits: (hashKey: bigint) => boolean, prefix = 'key-'): string[] {
  const keys: string[] = [];
  for (let k = 0; keys.length < n; k++)
    if (fits(partitionKeyHash(`${prefix}${k}`))) keys.push(`${prefix}${k}`);
  return keys;
}

/** Two partition keys, one in each half of the hash key space: the two shards of a split. */
export function keysOfHalves(): readonly [string, string] {
  const half = (MAX_HASH_KEY + 1n) / 2n;
  return [keysWhere(1, (h) => h < half, 'k')[0]!, keysWhere(1, (h) => h >= half, 'k')[0]!];
}

/** `count` shards splitting the hash key space evenly, as CreateStream does. */
export function evenShards(count: number, prefix = 'shardId-'): FakeShard[] {
  const size = (MAX_HASH_KEY + 1n) / BigInt(count);
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}${String(i).padStart(12, '0')}`,
    start: size * BigInt(i),
    end: i === count - 1 ? MAX_HASH_KEY : size * BigInt(i + 1) - 1n,
  }));
}

/** One PutRecords call the fake received. */
export interface FakePutCall {
  readonly index: number;
  readonly at: number;
  readonly streamName: string | undefined;
  readonly entries: readonly PutRecordsRequestEntry[];
  readonly signal: AbortSignal | undefined;
  /** The per-entry results the fake answered with (undefined if the call threw or hung). */
  results?: PutRecordsResultEntry[];
}

/** What a scripted PutRecords answer may be: a response, per-entry error codes, or a thrown error. */
export type PutAnswer =
  | PutRecordsCommandOutput
  | { errorCodes: (string | undefined)[] }
  | { throw: unknown }
  /** Resolves with exactly this, whatever it is: what a client of the user's own might answer. */
  | { resolve: unknown }
  | 'hang'
  /** Never answers, and does not hear the abort: a credential provider stuck before the HTTP call. */
  | 'hang-deaf';

/**
 * A stand-in for `client.send` in unit tests: answers ListShards, DescribeStreamSummary and
 * PutRecords like the service (routing each entry by its hash key), and lets a test script answers.
 */
export class FakeKinesis {
  shards: FakeShard[];
  /** Closed shards: listed only by a ListShards without a ShardFilter, as the service lists them. */
  closedShards: FakeShard[] = [];
  /** The ShardFilter type of each ListShards call (undefined: none, every shard listed). */
  readonly listShardsFilters: (string | undefined)[] = [];
  readonly calls: FakePutCall[] = [];
  readonly commands: string[] = [];
  /** Answers for the next PutRecords calls, in order; when empty every entry succeeds. */
  readonly script: PutAnswer[] = [];
  /** Answer each PutRecords call (wins over `script`). */
  onPut: ((call: FakePutCall) => PutAnswer | undefined) | undefined;
  summary: Partial<NonNullable<DescribeStreamSummaryCommandOutput['StreamDescriptionSummary']>> = {};
  describeError: unknown;
  listShardsError: unknown;
  /** ListShards answers this long after it is called (a map that comes after the summary). */
  listShardsDelayMs = 0;
  /**
   * What ListShards lists, as the only shards, while set: the stream as it was before a reshard the
   * service has made (a listing that lags it). PutRecords still routes by `shards`.
   */
  laggingListing: FakeShard[] | undefined;
  #sequence = 0n;
  #held: (() => void)[] | undefined;

  /** From now on PutRecords calls wait until {@link release} (a slow stream, under test control). */
  hold(): void {
    this.#held ??= [];
  }

  /** Lets `count` held calls (default: all) answer, and stops holding new ones if all were released. */
  release(count = Number.POSITIVE_INFINITY): void {
    const held = this.#held ?? [];
    for (let i = 0; i < count && held.length > 0; i++) held.shift()!();
    if (count === Number.POSITIVE_INFINITY) this.#held = undefined;
  }

  /** PutRecords calls waiting for {@link release}. */
  get heldCalls(): number {
    return this.#held?.length ?? 0;
  }

  constructor(shardCount = 1) {
    this.shards = evenShards(shardCount);
  }

  /** The fake as the producer's `client` option. */
  get client(): KinesisClient {
    return {
      send: (command: unknown, options?: { abortSignal?: AbortSignal }) => this.#send(command, options),
      destroy: () => {},
    } as unknown as KinesisClient;
  }

  shardFor(hashKey: bigint): FakeShard {
    return this.shards.find((s) => s.start <= hashKey && hashKey <= s.end)!;
  }

  async #send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown> {
    await Promise.resolve();
    if (command instanceof ListShardsCommand) {
      this.commands.push('ListShards');
      if (this.listShardsDelayMs > 0)
        await new Promise((resolve) => setTimeout(resolve, this.listShardsDelayMs));
      if (this.listShardsError !== undefined) throw this.listShardsError;
      const filter = command.input.ShardFilter?.Type;
      this.listShardsFilters.push(filter);
      const listed = (s: FakeShard, closed: boolean) => ({
        ShardId: s.id,
        HashKeyRange: { StartingHashKey: s.start.toString(), EndingHashKey: s.end.toString() },
        SequenceNumberRange: {
          StartingSequenceNumber: '0',
          ...(closed ? { EndingSequenceNumber: '9' } : {}),
        },
      });
      const lagging = this.laggingListing;
      return {
        Shards:
          lagging !== undefined
            ? lagging.map((s) => listed(s, false))
            : [
                ...(filter === undefined ? this.closedShards.map((s) => listed(s, true)) : []),
                ...this.shards.map((s) => listed(s, false)),
              ],
        $metadata: {},
      } satisfies ListShardsCommandOutput;
    }
    if (command instanceof DescribeStreamSummaryCommand) {
      this.commands.push('DescribeStreamSummary');
      if (this.describeError !== undefined) throw this.describeError;
      return {
        StreamDescriptionSummary: {
          StreamName: command.input.StreamName,
          StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/x',
          StreamStatus: 'ACTIVE',
          RetentionPeriodHours: 24,
          StreamCreationTimestamp: new Date(0),
          EnhancedMonitoring: [],
          OpenShardCount: this.shards.length,
          ...this.summary,
        },
        $metadata: {},
      } as DescribeStreamSummaryCommandOutput;
    }
    if (command instanceof PutRecordsCommand) {
      this.commands.push('PutRecords');
      const call: FakePutCall = {
        index: this.calls.length,
        at: Date.now(),
        streamName: command.input.StreamName,
        entries: command.input.Records ?? [],
        signal: options?.abortSignal,
      };
      this.calls.push(call);
      if (this.#held !== undefined) {
        const held = this.#held;
        await new Promise<void>((resolve) => held.push(resolve));
      }
      const answer = this.onPut?.(call) ?? this.script.shift();
      if (answer === 'hang-deaf') return await new Promise(() => {});
      if (answer === 'hang') {
        return await new Promise((_resolve, reject) => {
          options?.abortSignal?.addEventListener('abort', () =>
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
          );
        });
      }
      if (answer !== undefined && 'throw' in answer) throw answer.throw;
      if (answer !== undefined && 'resolve' in answer) return answer.resolve;
      if (answer !== undefined && 'Records' in answer) {
        call.results = answer.Records ?? [];
        return answer;
      }
      const codes = answer !== undefined && 'errorCodes' in answer ? answer.errorCodes : [];
      const records: PutRecordsResultEntry[] = call.entries.map((entry, i) => {
        const code = codes[i];
        if (code !== undefined) return { ErrorCode: code, ErrorMessage: `${code} for entry ${i}` };
        const hashKey =
          entry.ExplicitHashKey === undefined
            ? partitionKeyHash(entry.PartitionKey!)
            : BigInt(entry.ExplicitHashKey);
        this.#sequence++;
        return {
          ShardId: this.shardFor(hashKey).id,
          SequenceNumber: this.#sequence.toString().padStart(20, '0'),
        };
      });
      call.results = records;
      return {
        Records: records,
        FailedRecordCount: records.filter((r) => r.ErrorCode).length,
        $metadata: {},
      };
    }
    throw new Error(`FakeKinesis does not answer ${String((command as object)?.constructor?.name)}`);
  }

  /** User records carried by the entries the fake stored (answered with a shard), in request order. */
  storedUserRecords(): { partitionKey: string; data: string; call: number }[] {
    return this.calls.flatMap((call) =>
      call.entries.flatMap((entry, i) =>
        call.results?.[i]?.ShardId === undefined
          ? []
          : deaggregate({ data: entry.Data!, partitionKey: entry.PartitionKey! }).map((u) => ({
              partitionKey: u.partitionKey,
              data: Buffer.from(u.data).toString(),
              call: call.index,
            })),
      ),
    );
  }
}

/** An SDK-style service error. */
/**
 * An `onPut` that fails, with `code`, every entry carrying a user record of `partitionKey`, alone or
 * in an aggregate with others: a poison record, as the service sees it.
 */
export function failEntriesHolding(partitionKey: string, code: string): (call: FakePutCall) => PutAnswer {
  return (call) => ({
    errorCodes: call.entries.map((e) =>
      deaggregate({ data: e.Data!, partitionKey: e.PartitionKey! }).some(
        (u) => u.partitionKey === partitionKey,
      )
        ? code
        : undefined,
    ),
  });
}

/**
 * An `onPut` that has the service store every entry of the next PutRecords call on `shardId`, as if
 * the producer's shard map were out of date, and answer the calls after it as usual.
 */
export function nextPutLandsOn(shardId: string): (call: FakePutCall) => PutAnswer | undefined {
  let landed = false;
  return (call) => {
    if (landed) return undefined;
    landed = true;
    return { Records: call.entries.map(() => ({ ShardId: shardId, SequenceNumber: '1' })), $metadata: {} };
  };
}

export function serviceError(name: string, status: number, message = `${name} (fake)`): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
  });
}

/** A Node network error. */
export function networkError(code = 'ECONNRESET'): Error {
  return Object.assign(new Error(`socket hang up (${code})`), { code });
}
