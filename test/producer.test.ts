import { DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AbortedError,
  BufferFullError,
  deaggregate,
  InvalidOptionError,
  InvalidRecordError,
  KinesisProducer,
  ProducerClosedError,
  type PutResult,
  RecordFailedError,
} from '../src/index.js';
import type { Logger } from '../src/logger.js';
import { resolveOptions } from '../src/options.js';
import { FakeKinesis, serviceError } from './support/fake-kinesis.js';
import { memoryLogger } from './support/memory-logger.js';
import { producersOn } from './support/producers.js';
import { track } from './support/track.js';

const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let fake: FakeKinesis;
const producer = producersOn(() => fake);

beforeEach(() => {
  vi.useFakeTimers();
  fake = new FakeKinesis(2);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('put: await each record', () => {
  it('resolves with the shard, sequence number, sub-sequence number and attempts the service reported', async () => {
    const p = producer();
    const a = p.put({ partitionKey: 'user-1', data: 'one' });
    const b = p.put({ partitionKey: 'user-1', data: 'two' });
    await vi.advanceTimersByTimeAsync(150);
    const [ra, rb] = await Promise.all([a, b]);
    expect(fake.calls).toHaveLength(1);
    const entry = fake.calls[0]!.entries[0]!;
    const result = fake.calls[0]!.results![0]!;
    expect(ra).toMatchObject({
      shardId: result.ShardId,
      sequenceNumber: result.SequenceNumber,
      subSequenceNumber: 0,
      aggregated: true,
    });
    expect(rb).toMatchObject({
      shardId: result.ShardId,
      sequenceNumber: result.SequenceNumber,
      subSequenceNumber: 1,
      aggregated: true,
    });
    expect(ra.attempts).toHaveLength(1);
    expect(ra.attempts[0]).toMatchObject({
      success: true,
      durationMs: expect.any(Number),
      delayMs: expect.any(Number),
    });
    // What went on the wire is one KPL aggregate holding both records in put order.
    expect(entry.PartitionKey).toBe('a');
    expect(
      deaggregate({ data: entry.Data!, partitionKey: 'a' }).map((u) => Buffer.from(u.data).toString()),
    ).toEqual(['one', 'two']);
  });

  it('gives records that arrived together one frozen list of attempts, and a later one its own', async () => {
    const p = producer();
    const a = p.put({ partitionKey: 'k', data: 'a' });
    const b = p.put({ partitionKey: 'k', data: 'b' });
    await vi.advanceTimersByTimeAsync(30);
    const c = p.put({ partitionKey: 'k', data: 'c' });
    await vi.advanceTimersByTimeAsync(150);
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(fake.calls).toHaveLength(1);
    expect(rc.subSequenceNumber).toBe(2); // all three in one aggregate
    expect(rb.attempts).toBe(ra.attempts);
    expect(Object.isFrozen(ra.attempts) && Object.isFrozen(ra.attempts[0])).toBe(true);
    expect(rc.attempts).not.toBe(ra.attempts);
    expect(Object.isFrozen(rc.attempts) && Object.isFrozen(rc.attempts[0])).toBe(true);
    // Each counts its wait from its own arrival.
    expect(ra.attempts[0]!.startedAt).toBe(rc.attempts[0]!.startedAt);
    expect(ra.attempts[0]!.delayMs - rc.attempts[0]!.delayMs).toBe(30);
  });

  it('reports a record sent alone as not aggregated, with sub-sequence number 0', async () => {
    const p = producer();
    const put = p.put({ partitionKey: 'solo', data: 'x' });
    await vi.advanceTimersByTimeAsync(150);
    expect(await put).toMatchObject({ subSequenceNumber: 0, aggregated: false });
    expect(fake.calls[0]!.entries[0]).toMatchObject({ PartitionKey: 'solo' });
  });

  it('rejects invalid records at the call with a typed error, leaving other records alone', async () => {
    const p = producer();
    const good = p.put({ partitionKey: 'ok', data: 'fine' });
    await expect(p.put({ partitionKey: '', data: 'x' })).rejects.toThrow(InvalidRecordError);
    await expect(p.put({ partitionKey: 'k', data: 5 as never })).rejects.toMatchObject({
      code: 'InvalidRecord',
      field: 'data',
    });
    await expect(p.put({ partitionKey: 'k', data: 'x', explicitHashKey: '-1' })).rejects.toMatchObject({
      field: 'explicitHashKey',
    });
    await expect(p.put(null as never)).rejects.toMatchObject({ field: 'record' });
    expect(p.outstandingRecords).toBe(1);
    await vi.advanceTimersByTimeAsync(150);
    await expect(good).resolves.toMatchObject({ aggregated: false });
  });

  it('fails a record larger than the stream allows (MaxRecordSizeInKiB) with InvalidRecord', async () => {
    fake.summary = { MaxRecordSizeInKiB: 1024 };
    const p = producer();
    await vi.advanceTimersByTimeAsync(0);
    await expect(p.put({ partitionKey: 'k', data: Buffer.alloc(1024 * 1024) })).rejects.toMatchObject({
      code: 'InvalidRecord',
      field: 'data',
    });
  });

  it("says which limit refused a record: the stream's, the one assumed when the summary is denied, or the largest any stream takes", async () => {
    const messageFor = async (p: KinesisProducer, bytes: number) =>
      await p.put({ partitionKey: 'k', data: Buffer.alloc(bytes) }).then(
        () => 'written',
        (error: Error) => error.message,
      );
    fake.summary = { MaxRecordSizeInKiB: 1024 };
    const read = producer();
    expect(await messageFor(read, 11 * 1024 * 1024)).toMatch(
      /bytes, above the largest record size any stream takes of 10485760 bytes\.$/,
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(await messageFor(read, 1024 * 1024)).toMatch(
      /bytes, above the stream's maximum record size of 1048576 bytes\.$/,
    );
    fake.describeError = serviceError('AccessDeniedException', 400);
    const denied = producer({ logger: memoryLogger().logger });
    // Taken before the summary was tried (up to 10 MiB then), and failed once it was denied.
    const early = messageFor(denied, 1.5 * 1024 * 1024);
    await vi.advanceTimersByTimeAsync(0);
    const assumed =
      /bytes, above the maximum record size assumed for the stream \(1 MiB: its DescribeStreamSummary was denied\) of 1048576 bytes\.$/;
    expect(await early).toMatch(assumed);
    expect(await messageFor(denied, 1024 * 1024)).toMatch(assumed);
  });

  it('accepts records up to a raised MaxRecordSizeInKiB, sent unaggregated', async () => {
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    const p = producer();
    const big = p.put({ partitionKey: 'k', data: Buffer.alloc(1_500_000, 1) });
    await vi.advanceTimersByTimeAsync(150);
    await expect(big).resolves.toMatchObject({ aggregated: false });
    expect(fake.calls[0]!.entries[0]!.Data!.length).toBe(1_500_000);
  });

  it('takes a MaxRecordSizeInKiB above what any stream allows as 10 MiB (an endpoint that is not Kinesis)', async () => {
    fake.summary = { MaxRecordSizeInKiB: 20_480 };
    const p = producer();
    await vi.advanceTimersByTimeAsync(150);
    const over = p.put({ partitionKey: 'k', data: Buffer.alloc(10 * 1024 * 1024, 1) });
    await expect(over).rejects.toMatchObject({ name: 'InvalidRecordError' });
    await expect(over).rejects.toThrow(/10485760/);
  });

  it('writes a record of exactly the limit (partition key + data) taken before the stream was described', async () => {
    const p = producer();
    const exact = p.put({ partitionKey: 'k', data: Buffer.alloc(1024 * 1024 - 1, 1) });
    await vi.advanceTimersByTimeAsync(150);
    await expect(exact).resolves.toMatchObject({ aggregated: false });
    expect(fake.calls[0]!.entries[0]!.Data!.length).toBe(1024 * 1024 - 1);
  });

  it('fails a record over the limit learned after it was accepted, through its promise', async () => {
    fake.summary = { MaxRecordSizeInKiB: 1024 };
    const p = producer();
    // Sent before DescribeStreamSummary answers: the stream's limit is not known yet.
    const early = expect(
      p.put({ partitionKey: 'k', data: Buffer.alloc(2 * 1024 * 1024) }),
    ).rejects.toMatchObject({
      name: 'RecordFailedError',
      code: 'RecordTooLarge',
      retryable: false,
      message: expect.stringMatching(/above the stream's maximum record size of 1048576 bytes/),
    });
    await vi.advanceTimersByTimeAsync(0);
    await early;
    expect(fake.calls).toHaveLength(0);
  });

  it('fails alone a put over that limit that waited for room while the limit was learned', async () => {
    // Kinesis refuses a whole request for one entry over the limit (a 400 ValidationException).
    fake.onPut = (call) =>
      call.entries.some((e) => e.Data!.length + e.PartitionKey!.length > 1024 * 1024)
        ? { throw: serviceError('ValidationException', 400, 'Member must have length <= 1048576') }
        : undefined;
    let describe!: () => void;
    const described = new Promise<void>((resolve) => (describe = resolve));
    const send = fake.client.send.bind(fake.client);
    const client = {
      async send(command: object, options?: object) {
        if (command instanceof DescribeStreamSummaryCommand) await described;
        return send(command as never, options as never);
      },
    } as unknown as KinesisClient;
    fake.hold();
    const p = producer({ client, maxBufferedBytes: 3_000_000, aggregation: false, maxConnections: 1 });
    const a = track(p.put({ partitionKey: 'a', data: Buffer.alloc(900_000, 2) }));
    const b = track(p.put({ partitionKey: 'b', data: Buffer.alloc(900_000, 3) }));
    // The producer is full: these wait, checked against the 10 MiB any stream may allow.
    const big = track(p.put({ partitionKey: 'big', data: Buffer.alloc(2 * 1024 * 1024, 1) }));
    const small = track(p.put({ partitionKey: 'c', data: 'small' }));
    expect(p.waitingPuts).toBe(2);
    describe(); // the stream takes records of 1 MiB
    await vi.advanceTimersByTimeAsync(200);
    fake.release(1); // `a` is written: room for the two waiting
    await vi.advanceTimersByTimeAsync(200);
    fake.release();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(big.status).toBe('rejected');
    expect(big.error).toMatchObject({ code: 'RecordTooLarge', attempts: [] });
    expect([a.status, b.status, small.status]).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(fake.storedUserRecords().map((r) => r.partitionKey)).toEqual(['a', 'b', 'c']);
  });
});

describe('data changed after it was taken', () => {
  /** A buffer whose memory is moved elsewhere (postMessage with transfer does the same). */
  const detach = (data: Uint8Array) =>
    structuredClone(data.buffer, { transfer: [data.buffer as ArrayBuffer] });
  /** A resizable ArrayBuffer (ES2024, in Node 20; this project's TypeScript lib is older). */
  const Resizable = ArrayBuffer as unknown as new (
    bytes: number,
    options: { maxByteLength: number },
  ) => ArrayBuffer & { resize(bytes: number): void };

  it('fails only that record, with DataChanged, and writes the others of its aggregate as they were', async () => {
    const p = producer();
    const before = p.put({ partitionKey: 'k', data: Buffer.from('before') });
    const moved = new Uint8Array(new ArrayBuffer(32)).fill(7);
    const changed = p.put({ partitionKey: 'k', data: moved }).catch((e: unknown) => e);
    // A resizable buffer shrunk: encoding it as taken would send 44 bytes nobody wrote.
    const shrinking = new Resizable(48, { maxByteLength: 48 });
    const shrunk = p
      .put({ partitionKey: 'k', data: new Uint8Array(shrinking).fill(1) })
      .catch((e: unknown) => e);
    const after = p.put({ partitionKey: 'k', data: 'after' });
    detach(moved);
    shrinking.resize(4);
    await vi.advanceTimersByTimeAsync(150);
    for (const error of [await changed, await shrunk]) {
      expect(error).toBeInstanceOf(RecordFailedError);
      expect(error).toMatchObject({ code: 'DataChanged', retryable: false, attempts: [] });
    }
    expect(String(((await changed) as Error).message)).toMatch(/data is now 0 bytes, not the 32/);
    expect(String(((await shrunk) as Error).message)).toMatch(/data is now 4 bytes, not the 48/);
    await expect(before).resolves.toMatchObject({ aggregated: true });
    await expect(after).resolves.toMatchObject({ aggregated: true });
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['before', 'after']);
    expect(p.outstandingRecords).toBe(0);
  });

  it('fails a record sent on its own (aggregation off) instead of sending what is left of it', async () => {
    const p = producer({ aggregation: false });
    const data = new Uint8Array(new ArrayBuffer(10)).fill(9);
    const failed = p.put({ partitionKey: 'k', data }).catch((e: unknown) => e);
    const other = p.put({ partitionKey: 'k', data: 'other' });
    detach(data);
    await vi.advanceTimersByTimeAsync(150);
    expect(await failed).toMatchObject({ code: 'DataChanged', retryable: false });
    await expect(other).resolves.toMatchObject({ aggregated: false });
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['other']);
  });

  it('fails the record when every other one of its aggregate did too, and sends nothing', async () => {
    const p = producer();
    const data = new Uint8Array(new ArrayBuffer(10));
    const failed = p.put({ partitionKey: 'k', data }).catch((e: unknown) => e);
    detach(data);
    await vi.advanceTimersByTimeAsync(150);
    expect(await failed).toMatchObject({ code: 'DataChanged' });
    expect(fake.calls).toHaveLength(0);
    // The shard takes records again afterwards.
    const next = p.put({ partitionKey: 'k', data: 'next' });
    await vi.advanceTimersByTimeAsync(150);
    await expect(next).resolves.toMatchObject({ aggregated: false });
  });
});

describe('send: fire and forget', () => {
  it('calls the callback once, asynchronously, with the result', async () => {
    const p = producer();
    const callback = vi.fn();
    p.send({ partitionKey: 'k', data: 'x' }, callback);
    expect(callback).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(150);
    expect(callback).toHaveBeenCalledTimes(1);
    const [error, result] = callback.mock.calls[0]! as [null, PutResult];
    expect(error).toBeNull();
    expect(result.shardId).toMatch(/^shardId-/);
  });

  it('throws synchronously for an invalid record and for a callback that is not a function', () => {
    const p = producer();
    expect(() => p.send({ partitionKey: 'k'.repeat(300), data: 'x' })).toThrow(InvalidRecordError);
    expect(() => p.send({ partitionKey: 'k', data: 'x' }, { signal: undefined } as never)).toThrow(
      'Option `callback` must be a function; received an object (Object).',
    );
    expect(() => p.send({ partitionKey: 'k', data: 'x' }, 'nope' as never)).toThrow(InvalidOptionError);
    expect(p.outstandingRecords).toBe(0);
  });

  it('emits recordFailed for a record sent without a callback', async () => {
    fake.script.push({ throw: serviceError('AccessDeniedException', 400) });
    const p = producer();
    const failed: RecordFailedError[] = [];
    p.on('recordFailed', (e) => failed.push(e));
    const record = { partitionKey: 'k', data: 'x' };
    p.send(record);
    await vi.advanceTimersByTimeAsync(150);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toBeInstanceOf(RecordFailedError);
    expect(failed[0]).toMatchObject({ code: 'AccessDeniedException', record, streamName: 'test' });
    // The very object sent, typed as a record (no cast needed to read its fields).
    expect(failed[0]!.record).toBe(record);
    expect(failed[0]!.record.partitionKey).toBe('k');
    expect(failed[0]!.attempts).toHaveLength(1);
  });

  it('logs a warning when a record without callback fails and nobody listens', async () => {
    fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    p.send({ partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(150);
    const warning = lines.find((l) => l.level === 'warn' && l.message.includes("no 'recordFailed' listener"));
    expect(warning?.message).toContain('ResourceNotFoundException');
    expect(warning?.context).toMatchObject({ failedRecords: 1 });
  });

  it('does not warn of an unheard failure when the record had a callback', async () => {
    fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    const heard: unknown[] = [];
    p.send({ partitionKey: 'k', data: 'x' }, (error) => heard.push(error));
    await vi.advanceTimersByTimeAsync(150);
    await p.close();
    expect(heard).toEqual([expect.objectContaining({ code: 'ResourceNotFoundException' })]);
    expect(lines.filter((l) => l.message.includes("no 'recordFailed' listener"))).toEqual([]);
  });

  it('counts every unheard failure: those within 5 s of a warning are told at its end, or at close', async () => {
    fake.onPut = () => ({ throw: serviceError('ResourceNotFoundException', 400) });
    const { logger, lines } = memoryLogger();
    const unheard = () =>
      lines
        .filter((l) => l.level === 'warn' && l.message.includes("no 'recordFailed' listener"))
        .map((l) => (l.context as { failedRecords: number }).failedRecords);
    const p = producer({ logger, maxBufferedTimeMs: 0 });
    p.send({ partitionKey: 'k', data: '1' });
    await vi.advanceTimersByTimeAsync(10);
    for (const data of ['2', '3']) p.send({ partitionKey: 'k', data });
    await vi.advanceTimersByTimeAsync(10);
    expect(unheard()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(unheard()).toEqual([1, 2]);
    p.send({ partitionKey: 'k', data: '4' });
    p.send({ partitionKey: 'k', data: '5' });
    await vi.advanceTimersByTimeAsync(10);
    const closed = p.close();
    await vi.advanceTimersByTimeAsync(0);
    await closed;
    // All five told, the last two by close, though their interval had not ended.
    expect(unheard().reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('survives callbacks and listeners that throw', async () => {
    fake.script.push({ errorCodes: ['AccessDeniedException'] });
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    p.on('recordFailed', () => {
      throw new Error('listener boom');
    });
    p.send({ partitionKey: 'a', data: '1', explicitHashKey: '1' }, () => {
      throw new Error('callback boom');
    });
    await vi.advanceTimersByTimeAsync(150);
    expect(lines.filter((l) => l.level === 'error').map((l) => l.message)).toEqual([
      'a send() callback threw; the producer carries on',
      "a 'recordFailed' listener threw; the producer carries on",
    ]);
    // With the stack, which points at the app's own code.
    expect(lines.filter((l) => l.level === 'error').map((l) => l.context)).toEqual([
      {
        error: 'Error: callback boom',
        stack: expect.stringMatching(/callback boom\n\s+at .*producer\.test\.ts/),
      },
      {
        error: 'Error: listener boom',
        stack: expect.stringMatching(/listener boom\n\s+at .*producer\.test\.ts/),
      },
    ]);
    // And it keeps working.
    const next = p.put({ partitionKey: 'b', data: '2' });
    await vi.advanceTimersByTimeAsync(150);
    await expect(next).resolves.toMatchObject({ attempts: [expect.objectContaining({ success: true })] });
  });

  it("calls each 'recordFailed' listener as emit would: with its context, a once added meanwhile kept", async () => {
    fake.script.push({ errorCodes: ['AccessDeniedException'] }, { errorCodes: ['AccessDeniedException'] });
    const p = producer({ aggregation: false, logger: quietLogger });
    const context = { name: 'dead-letter' };
    let seenThis: unknown;
    p.on(
      'recordFailed',
      function (this: unknown) {
        seenThis = this;
      },
      context,
    );
    const heard: string[] = [];
    const b = () => heard.push('b');
    let added = false;
    p.on('recordFailed', () => {
      heard.push('a');
      if (added) return;
      added = true;
      p.once('recordFailed', b); // heard from the next failure on, once
    });
    p.on('recordFailed', b);
    for (const data of ['1', '2']) {
      p.send({ partitionKey: 'k', data });
      await vi.advanceTimersByTimeAsync(200);
    }
    expect(seenThis).toBe(context);
    expect(heard).toEqual(['a', 'b', 'a', 'b', 'b']);
  });

  it('logs what a callback or listener threw even when it cannot be made a string, and goes on', async () => {
    fake.script.push({ errorCodes: ['AccessDeniedException', 'AccessDeniedException'] });
    const { logger, lines } = memoryLogger();
    const p = producer({ aggregation: false, logger });
    const heard: string[] = [];
    // String() of an object without a prototype throws a TypeError.
    p.on('recordFailed', () => {
      throw Object.create(null);
    });
    p.on('recordFailed', (error) => heard.push(`listener ${error.record.partitionKey}`));
    p.send({ partitionKey: 'a', data: '1' }, () => {
      throw Object.create(null);
    });
    p.send({ partitionKey: 'b', data: '2' }, (error) => heard.push(`callback b ${error?.code}`));
    await vi.advanceTimersByTimeAsync(200);
    expect(heard).toEqual(['callback b AccessDeniedException', 'listener a', 'listener b']);
    expect(lines.filter((l) => l.level === 'error').map((l) => l.context)).toContainEqual({
      error: '[object Object]',
    });
  });

  it('logs a thrown revoked Proxy (nothing can be read of it) and calls the next callback', async () => {
    fake.script.push({ errorCodes: ['AccessDeniedException', 'AccessDeniedException'] });
    const { logger, lines } = memoryLogger();
    const p = producer({ aggregation: false, logger });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const heard: string[] = [];
    p.send({ partitionKey: 'a', data: '1' }, () => {
      throw proxy;
    });
    p.send({ partitionKey: 'b', data: '2' }, (error) => heard.push(`callback ${error?.code}`));
    await vi.advanceTimersByTimeAsync(200);
    expect(heard).toEqual(['callback AccessDeniedException']);
    expect(lines.filter((l) => l.level === 'error').map((l) => l.context)).toEqual([
      { error: '[a value that cannot be shown]' },
    ]);
  });

  it("tells every 'recordFailed' listener of every failure, though one before them throws", async () => {
    fake.script.push({ errorCodes: ['AccessDeniedException', 'AccessDeniedException'] });
    const p = producer({ logger: quietLogger, aggregation: false });
    p.on('recordFailed', () => {
      throw new Error('listener boom');
    });
    const heard: string[] = [];
    p.on('recordFailed', (error) => heard.push(`on ${error.record.partitionKey}`));
    p.once('recordFailed', (error) => heard.push(`once ${error.record.partitionKey}`));
    p.send({ partitionKey: 'a', data: '1' });
    p.send({ partitionKey: 'b', data: '2' });
    await vi.advanceTimersByTimeAsync(150);
    // The `once` listener heard the first failure only, and was removed as `emit` removes it.
    expect(heard).toEqual(['on a', 'once a', 'on b']);
    expect(p.listenerCount('recordFailed')).toBe(2);
  });
});

describe("who hears a failure is decided when 'recordFailed' goes out", () => {
  const unheardWarnings = (lines: { level: string; message: string }[]) =>
    lines.filter((l) => l.level === 'warn' && /sent without a callback failed/.test(l.message)).length;

  it.each([
    ['a once listener was used up by an earlier failure of the same answer', 'once'],
    ['a callback removed the only listener', 'off'],
  ])('warns about a failure nobody heard when %s', async (_, how) => {
    fake.script.push({ errorCodes: ['AccessDeniedException', 'AccessDeniedException'] });
    const { logger, lines } = memoryLogger();
    const p = producer({ aggregation: false, logger });
    const heard: string[] = [];
    const listener = (e: RecordFailedError) => heard.push(String(e.record.data));
    if (how === 'once') {
      p.once('recordFailed', listener);
      p.send({ partitionKey: 'a', data: '1' });
    } else {
      p.on('recordFailed', listener);
      p.send({ partitionKey: 'a', data: '1' }, () => p.off('recordFailed', listener));
    }
    p.send({ partitionKey: 'b', data: '2' });
    await vi.advanceTimersByTimeAsync(200);
    await p.close();
    expect(heard).toEqual(how === 'once' ? ['1'] : []);
    // The second record's failure reached no listener: it is told in the warning.
    expect(unheardWarnings(lines)).toBe(1);
  });

  it("tells a listener added in the catch of an answer's first failed put of every failure of that answer", async () => {
    fake.script.push({ errorCodes: ['AccessDeniedException', 'AccessDeniedException'] });
    const p = producer({ aggregation: false });
    const heard: string[] = [];
    const watch = async (data: string) => {
      try {
        await p.put({ partitionKey: data, data });
      } catch {
        p.on('recordFailed', (e: RecordFailedError) => heard.push(`${data} heard ${String(e.record.data)}`));
      }
    };
    const done = Promise.all([watch('1'), watch('2')]);
    await vi.advanceTimersByTimeAsync(200);
    await done;
    // The events go out after the first put's catch, before the second's (see the README): callbacks
    // and events keep their place ahead of a flush() that covers them.
    expect(heard).toEqual(['1 heard 1', '1 heard 2']);
  });

  it("tells a listener added in the first failed put's catch also when a send's failure settled just before it", async () => {
    const { logger, lines } = memoryLogger();
    const p = producer({ maxBufferedTimeMs: 10_000, aggregation: false, logger });
    await vi.advanceTimersByTimeAsync(0);
    // One request, both entries refused for good: the send's first, then the put's.
    fake.script.push({ errorCodes: ['AccessDeniedException', 'AccessDeniedException'] });
    const heard: string[] = [];
    p.send({ partitionKey: 'a', data: 'sent' });
    const put = p.put({ partitionKey: 'b', data: 'put' }).catch((error: RecordFailedError) => {
      p.on('recordFailed', (failed) => heard.push(String(failed.record.data)));
      return error;
    });
    await p.flush();
    expect(await put).toMatchObject({ code: 'AccessDeniedException' });
    expect(fake.calls[0]!.entries.map((e) => Buffer.from(e.Data!).toString())).toEqual(['sent', 'put']);
    expect(heard).toEqual(['sent', 'put']);
    // So the send's failure is heard, and not warned about as heard by nobody.
    expect(unheardWarnings(lines)).toBe(0);
  });

  it("tells a listener added in the first failed put's catch of its answer's failures when another answer settles at the same moment", async () => {
    fake = new FakeKinesis(1);
    const { logger, lines } = memoryLogger();
    const p = producer({ aggregation: false, logger });
    await vi.advanceTimersByTimeAsync(10);
    fake.hold();
    // Answer 1: put 'a', whose catch adds nothing.
    const first = p.put({ partitionKey: 'a', data: 'a' }).catch(() => {});
    await vi.advanceTimersByTimeAsync(150);
    // Answer 2: send 's', then put 'b', whose catch adds the listener.
    p.send({ partitionKey: 's', data: 's' });
    const heard: string[] = [];
    const second = p.put({ partitionKey: 'b', data: 'b' }).catch(() => {
      p.on('recordFailed', (e: RecordFailedError) => heard.push(String(e.record.data)));
    });
    await vi.advanceTimersByTimeAsync(150);
    expect(fake.calls.map((c) => c.entries.map((e) => Buffer.from(e.Data!).toString()))).toEqual([
      ['a'],
      ['s', 'b'],
    ]);
    fake.script.push(
      { errorCodes: ['AccessDeniedException'] },
      { errorCodes: ['AccessDeniedException', 'AccessDeniedException'] },
    );
    fake.release(); // both answers are handled before any reaction runs
    await vi.advanceTimersByTimeAsync(10);
    await Promise.all([first, second]);
    // Answer 1's event went out with them, in the one outbox: the listener hears it too.
    expect(heard).toEqual(['a', 's', 'b']);
    expect(unheardWarnings(lines)).toBe(0);
  });
});

describe('flush and close', () => {
  it("ends the streams' metadata calls in progress on close: none is made after", async () => {
    const made: string[] = [];
    // A service that never answers ListShards or DescribeStreamSummary (each call hears its abort).
    const client = {
      send(command: { constructor: { name: string } }, options?: { abortSignal?: AbortSignal }) {
        made.push(command.constructor.name);
        return new Promise((_, reject) =>
          options?.abortSignal?.addEventListener('abort', () => reject(options.abortSignal?.reason)),
        );
      },
    } as unknown as KinesisClient;
    vi.useRealTimers();
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const p = new KinesisProducer({ streamName: 's', client, requestTimeoutMs: 50, logger: quietLogger });
    await sleep(10);
    expect(made.sort()).toEqual(['DescribeStreamSummaryCommand', 'ListShardsCommand']);
    await p.close();
    // Each try would time out at 50 ms and be tried again within 200 ms.
    await sleep(600);
    expect(made).toHaveLength(2);
  });

  it('flush sends at once and resolves only when every earlier record has settled', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000 });
    const settled: string[] = [];
    for (let i = 0; i < 10; i++)
      p.send({ partitionKey: `k${i}`, data: String(i) }, () => settled.push(String(i)));
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(0);
    let flushed = false;
    const flushing = p.flush().then(() => {
      flushed = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    await flushing;
    expect(flushed).toBe(true);
    expect(settled).toHaveLength(10);
    expect(fake.calls.length).toBeGreaterThan(0);
  });

  it('flush sends at once what waits queued behind a full request, not at maxBufferedTimeMs', async () => {
    fake = new FakeKinesis(4);
    const p = producer({ aggregation: false, maxBufferedTimeMs: 20_000 });
    await vi.advanceTimersByTimeAsync(0);
    // 700 records: more than one request takes (500).
    for (let i = 0; i < 700; i++) p.send({ partitionKey: `k${i}`, data: 'x' });
    let flushed = false;
    void p.flush().then(() => {
      flushed = true;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(flushed).toBe(true);
    expect(fake.calls.map((c) => c.entries.length)).toEqual([500, 200]);
  });

  it('after await flush(), every put it covered has already resolved', async () => {
    const p = producer();
    let reactions = 0;
    const puts = [1, 2, 3].map((i) =>
      p.put({ partitionKey: `k${i}`, data: String(i) }).then(() => reactions++),
    );
    let seenAfterFlush = -1;
    const flushed = p.flush().then(() => {
      seenAfterFlush = reactions;
    });
    await vi.advanceTimersByTimeAsync(10);
    await flushed;
    expect(seenAfterFlush).toBe(3);
    await Promise.all(puts);
  });

  it('flush waits for records that are being retried', async () => {
    fake.script.push({ errorCodes: ['InternalFailure'] });
    // A backoff of 50 ms (full jitter below 100 ms can be 0 ms, which would retry before we look).
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const p = producer();
    const put = p.put({ partitionKey: 'k', data: 'x' });
    let flushed = false;
    void p.flush().then(() => {
      flushed = true;
    });
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.calls).toHaveLength(1);
    expect(flushed).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(flushed).toBe(true);
    expect((await put).attempts.map((a) => [a.success, a.delayMs])).toEqual([
      [false, 0],
      [true, 50],
    ]);
  });

  it('flush does not wait for records accepted after it', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0); // the stream's summary is known
    p.send({ partitionKey: 'a', data: '1' });
    const flushed = p.flush();
    p.send({ partitionKey: 'b', data: '2' });
    await vi.advanceTimersByTimeAsync(0);
    await flushed;
    expect(p.outstandingRecords).toBe(1);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1']);
  });

  it('close flushes, settles everything, returns the same promise, and refuses later records', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000 });
    const put = p.put({ partitionKey: 'k', data: 'x' });
    const first = p.close();
    expect(p.close()).toBe(first);
    await expect(p.put({ partitionKey: 'k', data: 'y' })).rejects.toThrow(ProducerClosedError);
    expect(() => p.send({ partitionKey: 'k', data: 'y' })).toThrow(ProducerClosedError);
    await vi.advanceTimersByTimeAsync(0);
    await first;
    await expect(put).resolves.toMatchObject({ shardId: expect.any(String) });
    expect(p.outstandingRecords).toBe(0);
  });

  it('counts data whose length is no byte count by its bytes, so the room stays a number', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000 });
    const data = Object.defineProperty(new Uint8Array([1, 2, 3]), 'length', { value: Number.NaN });
    const put = p.put({ partitionKey: 'k', data });
    expect(p.bufferedBytes).toBe(1 + 3);
    const flushed = p.flush();
    await vi.advanceTimersByTimeAsync(0);
    await flushed;
    await expect(put).resolves.toMatchObject({ shardId: expect.any(String) });
    expect(p.bufferedBytes).toBe(0);
    expect(fake.storedUserRecords()).toHaveLength(1);
  });

  it('refuses a record whose getter starts close(), with put() and send() alike', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000 });
    const closing = (data: string) => ({
      partitionKey: 'k',
      get data() {
        void p.close();
        return data;
      },
    });
    await expect(p.put(closing('x'))).rejects.toThrow(ProducerClosedError);
    expect(() => p.send(closing('y'), () => {})).toThrow(ProducerClosedError);
    expect(p.outstandingRecords).toBe(0);
    await vi.advanceTimersByTimeAsync(0);
    await p.close();
    expect(fake.storedUserRecords()).toEqual([]);
  });

  it('await using closes the producer at the end of the scope', async () => {
    let sent: Promise<PutResult> | undefined;
    const scope = async () => {
      await using p = new KinesisProducer({
        streamName: 's',
        client: fake.client,
        maxBufferedTimeMs: 10_000,
      });
      sent = p.put({ partitionKey: 'k', data: 'x' });
    };
    const done = scope();
    await vi.advanceTimersByTimeAsync(0);
    await done;
    await expect(sent).resolves.toMatchObject({ aggregated: false });
  });
});

describe('streams', () => {
  it('sends a record that names another stream to that stream', async () => {
    const p = producer();
    const a = p.put({ partitionKey: 'k', data: 'default' });
    const b = p.put({ partitionKey: 'k', data: 'other', streamName: 'other-stream' });
    await vi.advanceTimersByTimeAsync(150);
    await Promise.all([a, b]);
    expect(fake.calls.map((c) => c.streamName).sort()).toEqual(['other-stream', 'test']);
  });

  it('writes to many streams at once without a listener-leak warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const p = producer();
      const names = Array.from({ length: 12 }, (_, i) => `stream-${i}`);
      const puts = names.map((streamName) => p.put({ partitionKey: 'k', data: streamName, streamName }));
      await vi.advanceTimersByTimeAsync(150);
      await Promise.all(puts);
      expect(new Set(fake.calls.map((c) => c.streamName))).toEqual(new Set(names));
      await new Promise((resolve) => process.nextTick(resolve)); // warnings are emitted on the next tick
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a refused record naming a stream new to the producer starts no calls for it and takes no room', async () => {
    const options = { aggregation: false, maxOutstandingRecords: 100, logger: quietLogger };
    const p = producer(options);
    const baseline = producer(options);
    await vi.advanceTimersByTimeAsync(10); // the default stream's summary and shard map are known
    const before = fake.commands.length;
    for (const streamName of ['typo-1', 'typo-2', 'typo-3']) {
      expect(() => p.send({ streamName, partitionKey: '', data: 'x' })).toThrow(InvalidRecordError);
      expect(() => p.send({ streamName, partitionKey: 'k', data: 'x', explicitHashKey: '-1' })).toThrow(
        InvalidRecordError,
      );
    }
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(fake.commands.slice(before)).toEqual([]);
    // The default stream's shards keep their parts of the producer, as beside a producer that never
    // saw those records (the refused streams would each have counted as a shard).
    fake.hold();
    const fill = (target: KinesisProducer) => {
      let taken = 0;
      while (taken < 1000) {
        try {
          target.send({ partitionKey: `k${taken}`, data: 'x' });
        } catch (error) {
          expect(error).toBeInstanceOf(BufferFullError);
          return taken;
        }
        taken++;
      }
      return taken;
    };
    const taken = fill(p);
    expect(taken).toBeGreaterThan(50);
    expect(taken).toBe(fill(baseline));
    fake.release();
  });

  it('a record refused for room, or for its aborted signal, naming a stream new to the producer starts no calls and takes no room', async () => {
    const options = { aggregation: false, maxOutstandingRecords: 100, logger: quietLogger };
    const p = producer(options);
    const rejecting = producer({ ...options, onFull: 'reject' as const });
    const baseline = producer(options);
    await vi.advanceTimersByTimeAsync(10);
    fake.hold();
    const fill = (target: KinesisProducer, prefix: string) => {
      let taken = 0;
      for (let i = 0; i < 1000; i++) {
        try {
          target.send({ partitionKey: `${prefix}${i}`, data: 'x' });
          taken++;
        } catch (error) {
          expect(error).toBeInstanceOf(BufferFullError);
        }
      }
      return taken;
    };
    expect([fill(p, 'a'), fill(rejecting, 'a'), fill(baseline, 'a')]).toEqual([100, 100, 100]);
    const before = fake.commands.length;
    const aborted = AbortSignal.abort();
    for (const streamName of ['tenant-1', 'tenant-2']) {
      expect(() => p.send({ streamName, partitionKey: 'k', data: 'x' })).toThrow(BufferFullError);
      await expect(rejecting.put({ streamName, partitionKey: 'k', data: 'x' })).rejects.toThrow(
        BufferFullError,
      );
      await expect(p.put({ streamName, partitionKey: 'k', data: 'x' }, { signal: aborted })).rejects.toThrow(
        AbortedError,
      );
      await expect(
        p.putAll([{ streamName, partitionKey: 'k', data: 'x' }], { signal: aborted }),
      ).rejects.toThrow(AbortedError);
      // A signal that refuses the room's listener: nothing waits either.
      const refusing = {
        aborted: false,
        addEventListener() {
          throw new Error('no listeners here');
        },
        removeEventListener() {},
      } as unknown as AbortSignal;
      await expect(p.put({ streamName, partitionKey: 'k', data: 'x' }, { signal: refusing })).rejects.toThrow(
        'no listeners here',
      );
    }
    await vi.advanceTimersByTimeAsync(10);
    expect(fake.commands.slice(before).filter((c) => c !== 'PutRecords')).toEqual([]);
    fake.release();
    await vi.advanceTimersByTimeAsync(1_000);
    // The default stream's shards keep their parts of the producer, as beside a producer that never
    // saw those records.
    fake.hold();
    expect([fill(p, 'b'), fill(rejecting, 'b'), fill(baseline, 'b')]).toEqual([100, 100, 100]);
    expect(Object.keys(p.metrics().streams)).toEqual(['test']);
    fake.release();
  });

  it('a record whose getter sends to the same new stream: one pipeline, counted whole', async () => {
    const p = producer({ maxBufferedTimeMs: 5_000, logger: quietLogger });
    let inner: Promise<unknown> | undefined;
    const record = {
      partitionKey: 'k',
      streamName: 'fresh',
      get data() {
        inner ??= p.put({ partitionKey: 'k2', data: 'from the getter', streamName: 'fresh' });
        return 'outer';
      },
    };
    const outer = p.put(record);
    await vi.advanceTimersByTimeAsync(50);
    expect(p.outstandingRecords).toBe(2);
    expect(p.metrics().streams.fresh!.UserRecordsPending).toBe(2);
    expect(fake.commands.filter((c) => c === 'DescribeStreamSummary')).toHaveLength(2); // 'test' and 'fresh'
    const flushed = p.flush();
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all([outer, inner, flushed]);
  });

  it('refuses a record naming a stream in a shape the Kinesis API does not take, at the call, alone', async () => {
    const p = producer();
    const good = p.put({ partitionKey: 'k', data: 'good' });
    expect(() => p.send({ partitionKey: 'k', data: 'x', streamName: 'my stream' })).toThrow(
      new InvalidRecordError(
        'streamName',
        `streamName must be a stream name of 1..128 characters from a-z, A-Z, 0-9, '_', '.' and '-'; received "my stream".`,
      ),
    );
    expect(() => p.send({ partitionKey: 'k', data: 'x', streamName: 's'.repeat(129) })).toThrow(
      /streamName must be a stream name of 1\.\.128 characters/,
    );
    // An ARN is shown whole, however long: the one at fault can be seen.
    const gov = 'arn:aws-us-gov:kinesis:us-gov-west-1:12345678901:stream/orders';
    expect(() => p.send({ partitionKey: 'k', data: 'x', streamARN: gov })).toThrow(`received "${gov}".`);
    expect(() => p.send({ partitionKey: 'k', data: 'x', streamARN: 'orders' })).toThrow(
      new InvalidRecordError(
        'streamARN',
        'streamARN must be a Kinesis stream ARN (arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>); received "orders".',
      ),
    );
    // Twice: the refused name left no pipeline behind to let it through.
    await expect(p.put({ partitionKey: 'k', data: 'x', streamName: 'my stream' })).rejects.toThrow(
      InvalidRecordError,
    );
    const byARN = p.put({
      partitionKey: 'k',
      data: 'arn',
      streamARN: 'arn:aws-cn:kinesis:cn-north-1:123456789012:stream/orders.v2',
    });
    await vi.advanceTimersByTimeAsync(150);
    await expect(good).resolves.toMatchObject({ aggregated: false });
    await expect(byARN).resolves.toMatchObject({ aggregated: false });
    expect(p.outstandingRecords).toBe(0);
  });

  it("refuses a stream ARN of another region than the producer's own client sends to, at the call", async () => {
    const made = () => ({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    const other = 'arn:aws:kinesis:eu-west-1:123456789012:stream/orders';
    expect(() => new KinesisProducer({ ...made(), streamARN: other })).toThrow(
      `Option \`streamARN\` must be an ARN of the region the client sends to (us-east-1), or \`region\` set to the ARN's; received "${other}".`,
    );
    const p = new KinesisProducer({ ...made(), logger: quietLogger });
    expect(() => p.send({ partitionKey: 'k', data: 'x', streamARN: other })).toThrow(
      new InvalidRecordError(
        'streamARN',
        `${other} names region eu-west-1, and the producer's client sends to us-east-1: give records of that region a producer of their own, with region eu-west-1.`,
      ),
    );
    // Not checked where the region the requests go to is not known as the client is made: a client of
    // your own, or an endpoint of your own (a local Kinesis).
    const local = new KinesisProducer({ ...made(), endpoint: 'http://127.0.0.1:1', logger: quietLogger });
    expect(local.send({ partitionKey: 'k', data: 'x', streamARN: other })).toBe(true);
    const own = producer({ streamName: undefined });
    expect(own.send({ partitionKey: 'k', data: 'x', streamARN: other })).toBe(true);
    const closed = Promise.all([p.close(), local.close({ timeoutMs: 0 })]);
    await vi.runAllTimersAsync();
    await closed;
  });

  it('refuses a record without a stream when the producer has none', async () => {
    const p = producer({ streamName: undefined });
    await expect(p.put({ partitionKey: 'k', data: 'x' })).rejects.toThrow(/names no stream/);
  });

  it('turns aggregation off on streams with RecordDistributionStrategy AUTO', async () => {
    fake.summary = { RecordDistributionStrategy: 'AUTO' };
    const p = producer();
    const puts = [p.put({ partitionKey: 'k', data: '1' }), p.put({ partitionKey: 'k', data: '2' })];
    await vi.advanceTimersByTimeAsync(150);
    const results = await Promise.all(puts);
    expect(results.map((r) => r.aggregated)).toEqual([false, false]);
    expect(fake.calls[0]!.entries.map((e) => Buffer.from(e.Data!).toString())).toEqual(['1', '2']);
  });

  it('goes on with defaults, and says so, when DescribeStreamSummary is denied', async () => {
    fake.describeError = serviceError('AccessDeniedException', 400);
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    const put = p.put({ partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(150);
    await expect(put).resolves.toBeDefined();
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toContain(
      'DescribeStreamSummary failed (AccessDeniedException: allow kinesis:DescribeStreamSummary); assuming a 1 MiB record limit and partition-key routing',
    );
  });

  it('says what to check when the stream is not found', async () => {
    fake.describeError = serviceError('ResourceNotFoundException', 400);
    fake.listShardsError = serviceError('ResourceNotFoundException', 400);
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    await vi.advanceTimersByTimeAsync(150);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
      "DescribeStreamSummary failed (ResourceNotFoundException: check the stream's name and region); sending unaggregated and holding records over 1 MiB until it is found (looked for again in the background)",
      "ListShards failed (ResourceNotFoundException: check the stream's name and region); aggregating only records with the same hash key until a shard map is known",
    ]);
    await p.close();
  });

  it('reads the summary of a stream created after the producer started, and takes its own limits', async () => {
    fake.describeError = serviceError('ResourceNotFoundException', 400);
    fake.listShardsError = serviceError('ResourceNotFoundException', 400);
    const p = producer({ logger: memoryLogger().logger, recordTtlMs: 120_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    // Created now, with records of up to 2 MiB.
    fake.describeError = undefined;
    fake.listShardsError = undefined;
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    await vi.advanceTimersByTimeAsync(60_000);
    const big = p.put({ partitionKey: 'k', data: new Uint8Array(1.5 * 1024 * 1024) });
    await vi.advanceTimersByTimeAsync(200);
    await expect(big).resolves.toMatchObject({ aggregated: false });
    // Aggregated again: the summary says the stream routes by partition key. (After the shard's
    // rate limiter let the 1.5 MiB go by.)
    const small = [p.put({ partitionKey: 'k', data: '1' }), p.put({ partitionKey: 'k', data: '2' })];
    await vi.advanceTimersByTimeAsync(3_000);
    expect((await Promise.all(small)).map((r) => r.aggregated)).toEqual([true, true]);
  });
});

describe('metadata calls failing all through an outage', () => {
  it('warn once, then once a minute per call with how many went untold; every failure goes to debug', async () => {
    fake.describeError = serviceError('LimitExceededException', 400);
    fake.listShardsError = serviceError('LimitExceededException', 400);
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    const put = p.put({ partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(5 * 60_000 + 1_000);
    const warned = (call: string) =>
      lines.filter((l) => l.level === 'warn' && l.message.startsWith(`${call} failed`)).map((l) => l.message);
    const told = (call: string) => lines.filter((l) => l.message.startsWith(`${call} failed`)).length;
    for (const call of ['DescribeStreamSummary', 'ListShards']) {
      const warnings = warned(call);
      // The first at once, then one a minute at most: the calls themselves were tried far more often.
      expect(warnings.length, call).toBeGreaterThanOrEqual(4);
      expect(warnings.length, call).toBeLessThanOrEqual(6);
      expect(told(call), call).toBeGreaterThan(warnings.length + 5);
      expect(warnings[0]).toMatch(/^\w+ failed \(LimitExceededException\); [^(]+$/);
      for (const later of warnings.slice(1))
        expect(later).toMatch(/ \(\d+ more failure\(s\) since the last warning\)$/);
    }
    // The record went out unaggregated meanwhile.
    await expect(put).resolves.toMatchObject({ aggregated: false });
    await p.close();
  });
});

describe('while DescribeStreamSummary fails for a passing reason', () => {
  it('sends unaggregated and holds records over 1 MiB until it answers, then aggregates and sends them', async () => {
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    fake.describeError = serviceError('LimitExceededException', 400);
    const { logger, lines } = memoryLogger();
    const p = producer({ logger, recordTtlMs: 20_000 });
    const big = p.put({ partitionKey: 'k', data: Buffer.alloc(1_500_000, 1) });
    const early = [p.put({ partitionKey: 'k', data: '1' }), p.put({ partitionKey: 'k', data: '2' })];
    // The call and its two retries fail; the two small records go out one Kinesis record each.
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await Promise.all(early)).map((r) => r.aggregated)).toEqual([false, false]);
    expect(fake.calls.flatMap((c) => c.entries.map((e) => Buffer.from(e.Data!).toString()))).toEqual([
      '1',
      '2',
    ]);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toContain(
      'DescribeStreamSummary failed (LimitExceededException); sending unaggregated and holding records over 1 MiB until it answers',
    );
    // A big record put while the summary is provisional waits too.
    const bigLater = p.put({ partitionKey: 'k', data: Buffer.alloc(1_200_000, 2) });
    await vi.advanceTimersByTimeAsync(500);
    const sizes = () => fake.calls.flatMap((c) => c.entries.map((e) => e.Data!.length));
    expect(sizes().filter((n) => n > 1024 * 1024)).toEqual([]);
    // Read again in the background; once it answers, the big records go and aggregation resumes.
    fake.describeError = undefined;
    await vi.advanceTimersByTimeAsync(5_000);
    await expect(big).resolves.toMatchObject({ aggregated: false });
    await expect(bigLater).resolves.toMatchObject({ aggregated: false });
    expect(sizes().filter((n) => n > 1024 * 1024)).toEqual([1_500_000, 1_200_000]);
    const later = [p.put({ partitionKey: 'k', data: '3' }), p.put({ partitionKey: 'k', data: '4' })];
    await vi.advanceTimersByTimeAsync(150);
    expect((await Promise.all(later)).map((r) => r.aggregated)).toEqual([true, true]);
    await p.close();
  });

  it('with ordering, holds the records put behind a held one, so they keep put order', async () => {
    fake.summary = { MaxRecordSizeInKiB: 2048 };
    fake.describeError = serviceError('InternalFailure', 500);
    const p = producer({ ordering: 'per-partition-key', recordTtlMs: 20_000 });
    const puts = [
      p.put({ partitionKey: 'k', data: 'before' }),
      p.put({ partitionKey: 'k', data: Buffer.alloc(1_500_000, 1) }),
      p.put({ partitionKey: 'k', data: 'after' }),
    ];
    await vi.advanceTimersByTimeAsync(2_000);
    const sent = () =>
      fake.calls.flatMap((c) =>
        c.entries.map((e) => (e.Data!.length > 100 ? 'big' : Buffer.from(e.Data!).toString())),
      );
    expect(sent()).toEqual(['before']);
    const late = p.put({ partitionKey: 'k', data: 'late' });
    await vi.advanceTimersByTimeAsync(500);
    expect(sent()).toEqual(['before']);
    fake.describeError = undefined;
    await vi.advanceTimersByTimeAsync(5_000);
    await Promise.all([...puts, late]);
    expect(sent().slice(0, 2)).toEqual(['before', 'big']);
    const rest = fake.calls
      .slice(2)
      .flatMap((c) =>
        c.entries.flatMap((e) =>
          deaggregate({ data: e.Data!, partitionKey: e.PartitionKey! }).map((r) =>
            Buffer.from(r.data).toString(),
          ),
        ),
      );
    expect(rest).toEqual(['after', 'late']);
  });

  it('with ordering, lets the records behind a held one go when it expires, not at the next read', async () => {
    // The longest jitter: after two minutes of failed reads, the next is about 30 s away.
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    fake.describeError = serviceError('LimitExceededException', 400);
    const p = producer({ ordering: 'per-partition-key', recordTtlMs: 20_000 });
    await vi.advanceTimersByTimeAsync(120_000);
    const big = p.put({ partitionKey: 'a', data: Buffer.alloc(1_500_000, 1) }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    const small = track(p.put({ partitionKey: 'b', data: 'small' }));
    // The big record expires with 10 s of the small one's TTL left; the summary has not been read since.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await big).toMatchObject({ code: 'Expired' });
    const describes = () => fake.commands.filter((c) => c === 'DescribeStreamSummary').length;
    const readsBefore = describes();
    await vi.advanceTimersByTimeAsync(200);
    expect(small.status).toBe('fulfilled');
    expect(small.value).toMatchObject({ aggregated: false, attempts: [expect.anything()] });
    expect(describes()).toBe(readsBefore);
    expect(fake.calls.flatMap((c) => c.entries.map((e) => Buffer.from(e.Data!).toString()))).toEqual([
      'small',
    ]);
    await p.close();
  });

  it('with ordering, flushes the records a flush found held, once they are let go', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    fake.describeError = serviceError('LimitExceededException', 400);
    const p = producer({ ordering: 'per-partition-key', recordTtlMs: 20_000, maxBufferedTimeMs: 10_000 });
    const big = p.put({ partitionKey: 'a', data: Buffer.alloc(1_500_000, 1) }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(15_000);
    const small = track(p.put({ partitionKey: 'b', data: 'small' }));
    await vi.advanceTimersByTimeAsync(1_000);
    const closed = track(p.close());
    // The big record expires at 20 s and lets the small one go: flushed, not buffered another 10 s.
    await vi.advanceTimersByTimeAsync(4_200);
    expect(await big).toMatchObject({ code: 'Expired' });
    expect([small.status, closed.status]).toEqual(['fulfilled', 'fulfilled']);
  });

  it('fails a held record over 1 MiB with Expired at its TTL if the summary never comes', async () => {
    fake.describeError = serviceError('InternalFailure', 500);
    const p = producer({ recordTtlMs: 5_000 });
    const big = p.put({ partitionKey: 'k', data: Buffer.alloc(1_500_000, 1) });
    const caught = big.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5_500);
    expect(await caught).toMatchObject({ code: 'Expired' });
    expect(String(((await caught) as Error).message)).toMatch(
      /while the stream's summary was being read: DescribeStreamSummary has not answered; its last try failed with InternalFailure/,
    );
    expect(fake.calls).toHaveLength(0);
  });

  it('tells a record that expired waiting for a summary that never answers why: its tries timed out', async () => {
    // An endpoint that takes the connection and never answers (a black hole): each try times out.
    const send = fake.client.send.bind(fake.client);
    const client = {
      send(command: object, options?: { abortSignal?: AbortSignal }) {
        if (!(command instanceof DescribeStreamSummaryCommand))
          return send(command as never, options as never);
        return new Promise((_, reject) =>
          options?.abortSignal?.addEventListener('abort', () => reject(options.abortSignal?.reason)),
        );
      },
    } as unknown as KinesisClient;
    const p = producer({ client, recordTtlMs: 2_500, requestTimeoutMs: 1_000, logger: quietLogger });
    const caught = p.put({ partitionKey: 'k', data: 'x' }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await caught).toMatchObject({
      code: 'Expired',
      message: expect.stringMatching(
        /while the stream's summary was being read: DescribeStreamSummary has not answered; its last try failed with RequestTimeout: .*1000 ms/,
      ),
    });
  });
});

describe('options', () => {
  it.each([
    [
      { maxBufferedTimeMs: -1 },
      'Option `maxBufferedTimeMs` must be an integer in [0, 3600000]; received number -1.',
    ],
    [{ collectionMaxCount: 501 }, /collectionMaxCount` must be an integer in \[1, 500\]/],
    [{ collectionMaxBytes: 11 * 1024 * 1024 }, /collectionMaxBytes` must be an integer in \[64, 10485760\]/],
    [
      { aggregationMaxBytes: 6 * 1024 * 1024, collectionMaxBytes: 5 * 1024 * 1024 },
      /aggregationMaxBytes` must be at most collectionMaxBytes/,
    ],
    [{ maxBufferedTimeMs: 30_000, recordTtlMs: 20_000 }, /maxBufferedTimeMs` must be below recordTtlMs/],
    [{ aggregation: 'yes' }, 'Option `aggregation` must be a boolean; received "yes".'],
    [{ streamARN: 'arn:x' }, /streamARN` must be omitted when `streamName` is given/],
    [
      { streamName: 'orders/eu' },
      `Option \`streamName\` must be a stream name of 1..128 characters from a-z, A-Z, 0-9, '_', '.' and '-'; received "orders/eu".`,
    ],
    [
      { streamName: undefined, streamARN: 'arn:aws:kinesis:us-east-1:12345:stream/orders' },
      'Option `streamARN` must be a Kinesis stream ARN (arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>); received "arn:aws:kinesis:us-east-1:12345:stream/orders".',
    ],
    [{ region: 'eu-west-1' }, /region` must be omitted when `client` is given/],
    [
      { client: undefined, endpoint: 'localhost:4566' },
      'Option `endpoint` must be an http or https URL, such as http://localhost:4566; received "localhost:4566".',
    ],
    [{ client: undefined, endpoint: 'not a url' }, /endpoint` must be an http or https URL/],
    [{ maxConnections: 0 }, /maxConnections/],
    [
      { collectionMaxBytes: 50 },
      // The same range whatever the value: the smallest is that of an aggregate (64 B).
      'Option `collectionMaxBytes` must be an integer in [64, 10485760]; received number 50.',
    ],
    [
      { meter: { createCounter() {} } },
      'Option `meter` must be an OpenTelemetry Meter (it has no createHistogram()); received an object (Object).',
    ],
    [
      { retryMaxDelayMs: 10, retryBaseDelayMs: 100 },
      "Option `retryMaxDelayMs` must be at least retryBaseDelayMs (100), the first retry's longest wait; received number 10.",
    ],
    [
      { client: undefined, region: 'eu west 1' },
      'Option `region` must be a region name such as us-east-1 (or a function providing one); received "eu west 1".',
    ],
    [{ client: undefined, region: '' }, /region` must be a region name/],
    [{ client: undefined, region: 5 }, /region` must be a region name .*; received number 5\./],
    [
      { client: undefined, credentials: { accessKeyId: 'AKIDEXAMPLE' } },
      'Option `credentials` must be an object with non-empty string accessKeyId and secretAccessKey (and optionally a string sessionToken and a Date expiration), or a function providing one (it has accessKeyId: string); received an object (Object).',
    ],
    [
      { client: undefined, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: '' } },
      /credentials` must be .* \(it has accessKeyId: string, secretAccessKey: empty string\)/,
    ],
    [
      { client: undefined, credentials: { accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 5 } },
      /\(it has accessKeyId: string, secretAccessKey: string, sessionToken: number\)/,
    ],
    [
      {
        client: undefined,
        credentials: { accessKeyId: 'a', secretAccessKey: 'b', expiration: '2030-01-01' },
      },
      /\(it has accessKeyId: string, secretAccessKey: string, expiration: string\)/,
    ],
    [{ client: undefined, credentials: 'AKIDEXAMPLE:secret' }, /received a string of length 18\.$/],
  ])('rejects %j with a clear message', (bad, message) => {
    expect(() => new KinesisProducer({ streamName: 's', client: fake.client, ...(bad as object) })).toThrow(
      InvalidOptionError,
    );
    expect(() => new KinesisProducer({ streamName: 's', client: fake.client, ...(bad as object) })).toThrow(
      message,
    );
  });

  it.each([
    {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      sessionToken: 7,
    },
    'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  ])('never puts a credential in its message: %#', (credentials) => {
    let message = '';
    try {
      resolveOptions({ streamName: 's', credentials: credentials as never });
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^Option `credentials` must be/);
    expect(message).not.toMatch(/AKIDEXAMPLE|wJalr/);
  });

  it.each([
    { region: 'us-east-1' },
    { region: 'us-gov-west-1' },
    { region: 'fips-us-east-1' },
    { region: async () => 'eu-west-1' },
    { credentials: { accessKeyId: 'a', secretAccessKey: 'b' } },
    { credentials: { accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 't', expiration: new Date() } },
    { credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) },
    // null, as the SDK takes it: not given.
    { region: null },
    { credentials: null },
    { credentials: { accessKeyId: 'a', secretAccessKey: 'b', sessionToken: null, expiration: null } },
  ])('takes the region or credentials %j', (options) => {
    expect(() => resolveOptions({ streamName: 's', ...(options as object) })).not.toThrow();
  });

  it.each([
    { collectionMaxBytes: 50_000 },
    { recordTtlMs: 100 },
    { recordTtlMs: 2 },
    { retryBaseDelayMs: 10_000 },
    { retryMaxDelayMs: 50 },
    { maxBufferedTimeMs: 30_000 },
    { maxBufferedTimeMs: 3_600_000 },
    { aggregationMaxBytes: 6_000_000 },
    { aggregationMaxBytes: 10 * 1024 * 1024 },
    { requestTimeoutMs: 30_000 },
    { requestTimeoutMs: 3_600_000 },
  ])('takes %j alone: the default of a related option gives way to it, without a warning', (options) => {
    const { logger, lines } = memoryLogger();
    expect(
      () => new KinesisProducer({ streamName: 's', client: fake.client, logger, ...options }),
    ).not.toThrow();
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it.each([
    [{ maxBufferedTimeMs: 10_000 }, { recordTtlMs: 40_000, maxBufferedTimeMs: 10_000 }],
    [{ maxBufferedTimeMs: 3_600_000 }, { recordTtlMs: 14_400_000 }],
    [{ maxBufferedTimeMs: 5_000 }, { recordTtlMs: 30_000 }],
    [{ aggregationMaxBytes: 8 * 1024 * 1024 }, { collectionMaxBytes: 8 * 1024 * 1024 }],
    [{ aggregationMaxBytes: 100_000 }, { collectionMaxBytes: 5 * 1024 * 1024 }],
    // Buffered 100 ms, a first request that times out at 3,025 ms, and 2,925 ms left for another.
    [{ recordTtlMs: 6_050 }, { maxBufferedTimeMs: 100, requestTimeoutMs: 3_025 }],
    [{ recordTtlMs: 12_000 }, { maxBufferedTimeMs: 100, requestTimeoutMs: 6_000 }],
    // Time for a second request after a first that timed out; below the default, the default.
    [{ requestTimeoutMs: 30_000 }, { recordTtlMs: 60_100, maxBufferedTimeMs: 100 }],
    [{ requestTimeoutMs: 10_000 }, { recordTtlMs: 30_000 }],
    [{ requestTimeoutMs: 3_600_000 }, { recordTtlMs: 7_200_100 }],
  ])('resolves %j set alone to %j', (options, expected) => {
    expect(resolveOptions({ streamName: 's', ...options })).toMatchObject(expected);
  });

  it.each([
    // NaN: Number(process.env.X) with X not set.
    ['recordTtlMs', Number.NaN],
    ['maxBufferedTimeMs', Number.NaN],
    ['collectionMaxBytes', Number.NaN],
    ['collectionMaxBytes', 20_000.5],
    ['aggregationMaxBytes', Number.NaN],
    ['retryMaxDelayMs', Number.NaN],
    ['retryMaxDelayMs', 50.5],
    ['retryBaseDelayMs', '100'],
  ])('names %s when it is %o, not an option derived from it', (option, value) => {
    let error: unknown;
    try {
      resolveOptions({ streamName: 's', [option]: value });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    expect((error as Error).message).toMatch(new RegExp(`^Option \`${option}\` must be an integer`));
  });

  it('gives a record whose first request times out time for another when only recordTtlMs is set', async () => {
    fake.script.push('hang');
    const p = producer({ recordTtlMs: 3_000 });
    const result = p.put({ partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(3_000);
    // requestTimeoutMs became 1,500: the first try timed out, the second got through.
    expect((await result).attempts.map((a) => [a.errorCode ?? 'ok', a.durationMs])).toEqual([
      ['RequestTimeout', 1_500],
      ['ok', expect.any(Number)],
    ]);
  });

  it('leaves a short recordTtlMs, set alone, time to buffer, time out once and be written', async () => {
    // The backoff before the second try: a quarter of its 100 ms ceiling.
    vi.spyOn(Math, 'random').mockReturnValue(0.25);
    fake.script.push('hang');
    const p = producer({ recordTtlMs: 200 });
    const result = track(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(200);
    // maxBufferedTimeMs became 50 and requestTimeoutMs 100: sent at 50, timed out at 150, sent again
    // at 175. (It was 199, so it was sent at 100 and expired in its first request.)
    expect(result.status).toBe('fulfilled');
    expect((result.value as PutResult).attempts.map((a) => [a.errorCode ?? 'ok', a.durationMs])).toEqual([
      ['RequestTimeout', 100],
      ['ok', expect.any(Number)],
    ]);
  });

  it('keeps aggregates within a collectionMaxBytes below the default aggregate size', async () => {
    const p = producer({ collectionMaxBytes: 20_000 });
    for (let i = 0; i < 100; i++) p.send({ partitionKey: 'k', data: Buffer.alloc(1000, i) });
    await vi.advanceTimersByTimeAsync(1000);
    await p.flush();
    const entries = fake.calls.flatMap((c) => c.entries);
    expect(fake.storedUserRecords()).toHaveLength(100);
    for (const call of fake.calls) {
      const bytes = call.entries.reduce((n, e) => n + e.PartitionKey!.length + e.Data!.length, 0);
      expect(bytes).toBeLessThanOrEqual(20_000);
    }
    expect(entries.length).toBeGreaterThan(5);
  });

  it.each([
    [
      'maxBufferedTimeMS',
      'unknown option `maxBufferedTimeMS` is ignored (did you mean `maxBufferedTimeMs`?)',
    ],
    ['streamNmae', 'unknown option `streamNmae` is ignored (did you mean `streamName`?)'],
    ['recordTTL', 'unknown option `recordTTL` is ignored (did you mean `recordTtlMs`?)'],
    ['AggregationEnabled', 'unknown option `AggregationEnabled` is ignored (did you mean `aggregation`?)'],
    [
      'recordMaxBufferedTime',
      'unknown option `recordMaxBufferedTime` is ignored (did you mean `maxBufferedTimeMs`?)',
    ],
    ['threadPoolSize', 'unknown option `threadPoolSize` is ignored'],
  ])('warns that the unknown option %s is ignored, naming the one meant', (name, message) => {
    const { logger, lines } = memoryLogger();
    producer({ logger, [name]: 5 });
    expect(lines.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', message, context: { option: name } },
    ]);
  });

  it('warns about no option when every one is known', () => {
    const { logger, lines } = memoryLogger();
    producer({
      logger,
      maxBufferedTimeMs: 50,
      aggregation: true,
      ordering: 'per-partition-key',
      meter: undefined,
      rateLimit: 80,
    });
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it("warns once about a method's option it does not know, naming the one meant, and takes the call", async () => {
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    const record = { partitionKey: 'k', data: 'x' };
    const puts = [p.put(record, { signl: undefined } as never), p.put(record, { signl: undefined } as never)];
    const all = p.putAll([record], { sigal: undefined } as never);
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all([...puts, all]);
    p.writable({ partitionKey: 'id', highWatermark: 8 } as never).destroy();
    await p.close({ timeout: 5000 } as never);
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings.map((l) => l.message)).toEqual([
      'put: unknown option `signl` is ignored (did you mean `signal`?)',
      'putAll: unknown option `sigal` is ignored (did you mean `signal`?)',
      'writable: unknown option `highWatermark` is ignored (did you mean `highWaterMark`?)',
      'close: unknown option `timeout` is ignored (did you mean `timeoutMs`?)',
    ]);
    expect(warnings.map((l) => l.context)).toEqual(
      ['signl', 'sigal', 'highWatermark', 'timeout'].map((option) => ({ option })),
    );
    expect(fake.storedUserRecords()).toHaveLength(3);
  });

  it("tells each producer's logger of a method's unknown option, after the checks", async () => {
    const [a, b] = [memoryLogger(), memoryLogger()];
    const warns = (lines: typeof a.lines) => lines.filter((l) => l.level === 'warn').map((l) => l.message);
    const pa = producer({ logger: a.logger });
    const pb = producer({ logger: b.logger });
    // A wrong option throws, and uses up no warning.
    expect(() => pa.close({ timeout: 1, timeoutMs: -1 } as never)).toThrow(InvalidOptionError);
    expect(warns(a.lines)).toEqual([]);
    await Promise.all([pa.close({ timeout: 1 } as never), pb.close({ timeout: 1 } as never)]);
    const told = ['close: unknown option `timeout` is ignored (did you mean `timeoutMs`?)'];
    expect(warns(a.lines)).toEqual(told);
    expect(warns(b.lines)).toEqual(told);
  });

  it.each([
    ['the SDK default (HTTP/2) to a plain-HTTP endpoint', 'http://127.0.0.1:4568', false, true],
    ['HTTP/1.1 to a plain-HTTP endpoint', 'http://127.0.0.1:4568', true, false],
    ['the SDK default to an HTTPS endpoint', 'https://kinesis.example.com', false, false],
  ])('warns about a client of your own that speaks %s: %s', async (_, endpoint, http1, warned) => {
    const { logger, lines } = memoryLogger();
    const client = new KinesisClient({
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      ...(http1 ? { requestHandler: new NodeHttpHandler() } : {}),
    });
    // No stream: nothing is sent, only the client is looked at.
    const p = new KinesisProducer({ client, logger });
    await vi.advanceTimersByTimeAsync(0);
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual(
      warned
        ? [
            "the client passed to the producer speaks HTTP/2 (the SDK's default for Kinesis) to the plain-HTTP endpoint http://127.0.0.1:4568: its requests will fail (ERR_HTTP2_ERROR) or be refused. Create it with `requestHandler: new NodeHttpHandler()` (from @smithy/node-http-handler), or pass `endpoint` to the producer instead of a client.",
          ]
        : [],
    );
    await p.close();
    client.destroy();
  });

  it.each([
    { requestTimeoutMs: 40_000, recordTtlMs: 30_000 },
    // Below the TTL, but not once the record has been buffered.
    { maxBufferedTimeMs: 100, requestTimeoutMs: 6_000, recordTtlMs: 6_050 },
  ])('warns once about a request timeout that leaves no time to retry: %j', (options) => {
    const { logger, lines } = memoryLogger();
    producer({ logger, ...options });
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
      'maxBufferedTimeMs + requestTimeoutMs is not below recordTtlMs: a record buffered that long whose first request times out has no time left to retry',
    ]);
  });
});
