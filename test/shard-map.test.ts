import { getEventListeners } from 'node:events';
import {
  type KinesisClient,
  ListShardsCommand,
  type ListShardsCommandInput,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { MAX_HASH_KEY } from '../src/index.js';
import type { Logger } from '../src/logger.js';
import { callWithRetries, OutlivedCalls } from '../src/metadata-call.js';
import { ShardMap } from '../src/shard-map.js';
import { streamRef } from '../src/stream-ref.js';
import { evenShards, serviceError } from './support/fake-kinesis.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Four even shards, as ListShards describes them, served two to a page. */
const shards: Shard[] = evenShards(4).map((s) => ({
  ShardId: s.id,
  HashKeyRange: { StartingHashKey: s.start.toString(), EndingHashKey: s.end.toString() },
  SequenceNumberRange: { StartingSequenceNumber: '0' },
}));

/**
 * A client answering ListShards page by page; `fail` may throw instead for a given call, 'hang': not
 * answer until aborted, 'hang-deaf': never answer, deaf to the abort signal (a credential provider
 * stuck before the HTTP call), or 'late': deaf to it too, but answer 120 ms after the call.
 */
function pagedClient(
  fail: (
    call: number,
    input: ListShardsCommandInput,
  ) => Error | 'hang' | 'hang-deaf' | 'late' | undefined = () => undefined,
) {
  const inputs: ListShardsCommandInput[] = [];
  const client = {
    async send(command: unknown, options?: { abortSignal?: AbortSignal }) {
      if (!(command instanceof ListShardsCommand)) throw new Error('only ListShards here');
      const input = command.input;
      inputs.push(input);
      const error = fail(inputs.length, input);
      if (error === 'hang-deaf') return await new Promise(() => {});
      if (error === 'late') await new Promise((resolve) => setTimeout(resolve, 120));
      if (error === 'hang') {
        return await new Promise((_, reject) =>
          options?.abortSignal?.addEventListener('abort', () => reject(options.abortSignal?.reason)),
        );
      }
      if (error !== undefined && error !== 'late') throw error;
      const page = input.NextToken === undefined ? 0 : Number(input.NextToken.slice('page-'.length));
      return {
        Shards: shards.slice(page * 2, page * 2 + 2),
        ...(page < 1 ? { NextToken: `page-${page + 1}` } : {}),
        $metadata: {},
      };
    },
  } as unknown as KinesisClient;
  return { client, inputs };
}

function source(client: KinesisClient, timeoutMs = 1000, stopped = new AbortController().signal) {
  return { client, stream: streamRef('s', undefined), timeoutMs, logger: quiet, clock: systemClock, stopped };
}

async function load(client: KinesisClient, timeoutMs = 1000): Promise<ShardMap> {
  let changed!: () => void;
  const loaded = new Promise<void>((resolve) => {
    changed = resolve;
  });
  const map = new ShardMap(source(client, timeoutMs), () => changed());
  map.refresh();
  await loaded;
  map.close();
  return map;
}

describe('ShardMap', () => {
  it('lists every page: the first with the stream and the AT_LATEST filter, the rest by token alone', async () => {
    const { client, inputs } = pagedClient();
    const map = await load(client);
    expect(inputs).toEqual([
      { StreamName: 's', ShardFilter: { Type: 'AT_LATEST' } },
      { NextToken: 'page-1' },
    ]);
    expect(map.lookupIndex(0n)).toBe(0);
    expect(map.lookupIndex(MAX_HASH_KEY)).toBe(3);
    expect(map.range('shardId-000000000003')?.end).toBe(MAX_HASH_KEY);
  });

  it('starts the listing again when a page token expired, instead of giving up for a minute', async () => {
    const expired = serviceError('ExpiredNextTokenException', 400);
    const { client, inputs } = pagedClient((call, input) =>
      call === 2 && input.NextToken ? expired : undefined,
    );
    const map = await load(client);
    expect(inputs.map((i) => i.NextToken ?? 'first')).toEqual(['first', 'page-1', 'first', 'page-1']);
    expect(map.ready).toBe(true);
    expect(map.lookupIndex(MAX_HASH_KEY)).toBe(3);
  });

  it('ends a try at its timeout though the client does not hear the abort, and tries again once that call settled', async () => {
    // Its answer comes after the try ended (at 50 ms), before the next try (at 150 ms or later).
    const { client, inputs } = pagedClient((call) => (call === 1 ? 'late' : undefined));
    const map = await load(client, 50);
    expect(inputs.map((i) => i.NextToken ?? 'first')).toEqual(['first', 'first', 'page-1']);
    expect(map.lookupIndex(MAX_HASH_KEY)).toBe(3);
  });

  it('leaves no listener on the stop signal after tries that timed out in a client that never answers', async () => {
    const { client } = pagedClient(() => 'hang-deaf');
    const stop = new AbortController();
    const call = (signal: AbortSignal) =>
      client.send(new ListShardsCommand({ StreamName: 's' }), { abortSignal: signal });
    await expect(
      callWithRetries(call, source(client, 10, stop.signal), new OutlivedCalls(), 3),
    ).rejects.toThrow(/did not answer within 10 ms/);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('stops a listing in progress when the producer shuts down: no try follows', async () => {
    const { client, inputs } = pagedClient(() => 'hang');
    const stop = new AbortController();
    const warnings: string[] = [];
    const map = new ShardMap(
      {
        ...source(client, 50, stop.signal),
        logger: { ...quiet, warn: (_, message) => warnings.push(message) },
      },
      () => {},
    );
    map.refresh();
    await new Promise((resolve) => setTimeout(resolve, 20));
    map.close();
    stop.abort(new Error('closed'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Without the stop, the hung try would have timed out at 50 ms and been tried again, 4 times.
    expect(inputs).toHaveLength(1);
    expect(warnings).toEqual([]);
  });
});

describe('a stream created again under the same name', () => {
  /** ListShards answering whatever `listed` holds at the time, in one page. */
  function changingClient(first: Shard[]) {
    const state = { listed: first, calls: 0 };
    const client = {
      async send(command: unknown) {
        if (!(command instanceof ListShardsCommand)) throw new Error('only ListShards here');
        state.calls++;
        return { Shards: state.listed, $metadata: {} };
      },
    } as unknown as KinesisClient;
    return { client, state };
  }
  const asListed = (count: number, split = (i: number) => i): Shard[] =>
    evenShards(count).map((s, i) => ({
      ShardId: s.id,
      HashKeyRange: { StartingHashKey: s.start.toString(), EndingHashKey: s.end.toString() },
      SequenceNumberRange: { StartingSequenceNumber: String(split(i)) },
    }));
  async function until(done: () => boolean): Promise<void> {
    for (let waited = 0; !done(); waited += 10) {
      if (waited > 3_000) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  // In the first of two even shards, and in the second of four.
  const key = MAX_HASH_KEY / 2n - 1n;

  /** A map loaded from a listing of two even shards, which `state.listed` changes; `changes()` counts its changes. */
  async function loadedOfTwo() {
    const { client, state } = changingClient(asListed(2));
    let changed = 0;
    const map = new ShardMap(source(client), () => changed++);
    map.refresh();
    await until(() => map.ready);
    return { map, state, changes: () => changed };
  }

  it('forget() drops the map, as if none were known, and loads the new one', async () => {
    const { map, state, changes } = await loadedOfTwo();
    expect(map.shards[map.lookupIndex(key)]!.shardId).toBe('shardId-000000000000');
    const version = map.version;
    // Deleted and created again with four shards: ids 0 and 1 exist again, owning other keys.
    state.listed = asListed(4);
    map.forget();
    expect([map.ready, map.lookupIndex(key), map.version, changes()]).toEqual([false, -1, version + 1, 2]);
    expect(map.range('shardId-000000000000')).toBeUndefined();
    await until(() => map.ready);
    expect(map.shards[map.lookupIndex(key)]!.shardId).toBe('shardId-000000000001');
    expect(map.range('shardId-000000000000')!.end).toBe((MAX_HASH_KEY + 1n) / 4n - 1n);
    expect([map.version, changes(), state.calls]).toEqual([version + 2, 3, 2]);
    map.close();
  });

  it('takes a listing of the same shard ids owning other hash keys as a new map', async () => {
    const { map, state, changes } = await loadedOfTwo();
    const quarter = MAX_HASH_KEY / 4n;
    // The same two ids, split elsewhere: shard 0 now ends a quarter of the way.
    state.listed = [
      { ...state.listed[0]!, HashKeyRange: { StartingHashKey: '0', EndingHashKey: String(quarter) } },
      {
        ...state.listed[1]!,
        HashKeyRange: { StartingHashKey: String(quarter + 1n), EndingHashKey: MAX_HASH_KEY.toString() },
      },
    ];
    map.refresh();
    await until(() => changes() === 2);
    expect(map.version).toBe(2);
    expect(map.shards[map.lookupIndex(key)]!.shardId).toBe('shardId-000000000001');
    map.close();
  });
});
