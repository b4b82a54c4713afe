import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/clock.js';
import { KinesisProducer } from '../src/index.js';
import { callWithRetries, MAX_OUTLIVED_CALLS, OutlivedCalls } from '../src/metadata-call.js';
import { FakeKinesis } from './support/fake-kinesis.js';
import { memoryLogger } from './support/memory-logger.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A real client whose credential provider never answers, as a `credential_process` that hangs: the
 * SDK memoizes the provider's promise, so every request awaits it, deaf to its abort signal, for
 * good. `unsettled` counts its calls by command, while they have not settled.
 */
function stuckClient() {
  const stuck = new Promise<never>(() => {});
  const client = new KinesisClient({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    requestHandler: new NodeHttpHandler(),
    maxAttempts: 1,
    credentials: () => stuck,
  });
  const unsettled: Record<string, number> = {};
  const send = client.send.bind(client);
  client.send = ((command: object, options: never) => {
    const name = command.constructor.name.replace(/Command$/, '');
    unsettled[name] = (unsettled[name] ?? 0) + 1;
    const answer = send(command as never, options) as Promise<unknown>;
    const settled = () => {
      unsettled[name]!--;
    };
    answer.then(settled, settled);
    return answer;
  }) as never;
  return { client, unsettled };
}

describe('a credential provider stuck for good', () => {
  it('leaves a few calls of ListShards and of DescribeStreamSummary unsettled, not one per try, while the producer keeps trying and warning', async () => {
    vi.useFakeTimers();
    const { client, unsettled } = stuckClient();
    const { logger, lines } = memoryLogger();
    // An idle producer: no record is ever put.
    const producer = new KinesisProducer({ streamName: 's', client, logger });
    await vi.advanceTimersByTimeAsync(3_600_000);
    // Each try still ends at requestTimeoutMs, and fails as one whose call did not answer.
    const warnings = lines
      .filter((l) => l.level === 'warn')
      .map((l) => l.message.replace(/ \(\d+ more failure\(s\) since the last warning\)$/, ''));
    const closing = producer.close();
    await vi.runAllTimersAsync();
    await closing;
    // Before: 811 calls an hour, each in memory for good (about 8 MB an hour).
    // Three, then a try after 1 min without an answer, after 2 more, after 4 more...: 3 + 5 in an hour.
    expect(unsettled).toEqual({
      ListShards: MAX_OUTLIVED_CALLS + 5,
      DescribeStreamSummary: MAX_OUTLIVED_CALLS + 5,
    });
    // Each call is still tried and warned about, about once a minute (48 times each, before and after).
    const told = (call: string) => warnings.filter((w) => w.startsWith(call)).length;
    expect(told('ListShards')).toBeGreaterThan(40);
    expect(told('DescribeStreamSummary')).toBeGreaterThan(40);
    expect([...new Set(warnings)].sort()).toEqual([
      'DescribeStreamSummary failed (RequestTimeout); sending unaggregated and holding records over 1 MiB until it answers',
      'ListShards failed (RequestTimeout); aggregating only records with the same hash key until a shard map is known',
    ]);
  });

  it.each([
    ['while its first calls are under way', { requestTimeoutMs: 100 }, 20, false],
    ['after tries that timed out', { requestTimeoutMs: 20 }, 300, false],
    ['with records in PutRecords requests, close() given a timeout', { requestTimeoutMs: 50 }, 0, true],
  ])('a producer closed %s can be garbage collected once dropped', async (_, options, waitMs, put) => {
    const { client, unsettled } = stuckClient();
    const closed = async () => {
      const producer = new KinesisProducer({ streamName: 's', client, logger: quiet, ...options });
      const records = put ? [producer.put({ partitionKey: 'k', data: 'x' }).catch(() => {})] : [];
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      // PutRecords waits for the summary's tries to fail first.
      for (let waited = 0; put && unsettled.PutRecords === undefined; waited += 10) {
        if (waited > 5_000) throw new Error('no PutRecords call');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await producer.close({ timeoutMs: 10 });
      await Promise.all(records);
      return new WeakRef(producer);
    };
    const producer = await closed();
    for (let i = 0; i < 10 && producer.deref() !== undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      gc();
    }
    expect(producer.deref()).toBeUndefined();
    // The calls the producer made are still there: what it left with them holds nothing of it.
    expect(unsettled.ListShards).toBeGreaterThan(0);
  });
});

describe('callWithRetries after calls outlived their try', () => {
  const source = () => ({ timeoutMs: 1_000, clock: systemClock, stopped: new AbortController().signal });

  it('calls the client again after one call that hangs, deaf to the abort: the next may answer', async () => {
    vi.useFakeTimers();
    let calls = 0;
    // The first call hangs for good; the next one answers.
    const call = () => (++calls === 1 ? new Promise<string>(() => {}) : Promise.resolve('answer'));
    const answer = callWithRetries(call, source(), new OutlivedCalls(), 2);
    await vi.advanceTimersByTimeAsync(1_500);
    await expect(answer).resolves.toBe('answer');
    expect(calls).toBe(2);
  });

  it(`stops calling the client after ${MAX_OUTLIVED_CALLS} calls in a row outlived their try, and calls it once one settles`, async () => {
    vi.useFakeTimers();
    const calls: ((value: string) => void)[] = [];
    // Deaf to the abort: each call answers only when the test says.
    const call = () => new Promise<string>((resolve) => calls.push(resolve));
    const failed: unknown[] = [];
    const answer = callWithRetries(call, source(), new OutlivedCalls(), 20, (error) => failed.push(error));
    // Each try times out at 1 s: once the last call that could outlive its try has, the tries after
    // it wait, and fail as tries that timed out, without calling.
    while (failed.length < MAX_OUTLIVED_CALLS + 2) await vi.advanceTimersByTimeAsync(100);
    expect(calls.length).toBe(MAX_OUTLIVED_CALLS);
    expect(new Set(failed.map(String))).toEqual(
      new Set(['RequestTimeout: the call did not answer within 1000 ms (requestTimeoutMs)']),
    );
    // One answers late: ignored, and the next try calls the client.
    calls[0]!('late');
    for (let waited = 0; calls.length === MAX_OUTLIVED_CALLS && waited < 3_000; waited += 100) {
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(calls.length).toBe(MAX_OUTLIVED_CALLS + 1);
    calls.at(-1)!('answer');
    await expect(answer).resolves.toBe('answer');
  });

  it('calls the client again after hangs far apart, each followed by an answer', async () => {
    vi.useFakeTimers();
    let calls = 0;
    // Calls 1, 3 and 5 hang for good; every other one answers at once.
    const call = () =>
      ++calls % 2 === 1 && calls <= 5 ? new Promise<string>(() => {}) : Promise.resolve('answer');
    const outlived = new OutlivedCalls();
    const results: string[] = [];
    // Loads a minute apart, as a ShardMap's, each meeting at most one hang.
    for (let load = 0; load < 5; load++) {
      callWithRetries(call, source(), outlived, 4).then(
        (value) => results.push(value),
        (error: unknown) => results.push(String(error)),
      );
      await vi.advanceTimersByTimeAsync(60_000);
    }
    expect(results).toEqual(['answer', 'answer', 'answer', 'answer', 'answer']);
  });

  it('keeps the count per reader: another reader calls the client', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const call = () => {
      calls++;
      return new Promise<never>(() => {});
    };
    const outlived = new OutlivedCalls();
    const answer = callWithRetries(call, source(), outlived, MAX_OUTLIVED_CALLS + 2);
    answer.catch(() => {});
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(answer).rejects.toThrow('the call did not answer within 1000 ms (requestTimeoutMs)');
    expect([calls, outlived.mayCall(Date.now())]).toEqual([MAX_OUTLIVED_CALLS, false]);
    void callWithRetries(call, source(), outlived, 0).catch(() => {});
    void callWithRetries(call, source(), new OutlivedCalls(), 0).catch(() => {});
    await vi.advanceTimersByTimeAsync(2_000);
    expect(calls).toBe(MAX_OUTLIVED_CALLS + 1);
  });
});

describe('a producer whose first calls of DescribeStreamSummary hang, deaf to their abort', () => {
  it('reads the summary once a later call answers, and writes a record over 1 MiB the stream allows', async () => {
    vi.useFakeTimers();
    const fake = new FakeKinesis(1);
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    const client = fake.client;
    const send = client.send.bind(client);
    let describes = 0;
    client.send = ((command: object, options: never) => {
      if (command instanceof DescribeStreamSummaryCommand && ++describes <= MAX_OUTLIVED_CALLS) {
        return new Promise(() => {});
      }
      return send(command as never, options);
    }) as never;
    const producer = new KinesisProducer({
      streamName: 's',
      client,
      logger: quiet,
      requestTimeoutMs: 1_000,
      recordTtlMs: 600_000,
    });
    let result: unknown;
    const outcome = producer.put({ partitionKey: 'k', data: new Uint8Array(1_500_000) }).then((r) => {
      result = r;
    });
    // Held until the summary says the stream takes it: a try calls the client a minute after the
    // third call that hung (reads of the summary are up to 31 s apart by then).
    for (let waited = 0; result === undefined && waited < 120_000; waited += 1_000) {
      await vi.advanceTimersByTimeAsync(1_000);
    }
    await outcome;
    expect(result).toMatchObject({ aggregated: false });
    expect(describes).toBe(MAX_OUTLIVED_CALLS + 1);
    const closing = producer.close();
    await vi.runAllTimersAsync();
    await closing;
  });
});
