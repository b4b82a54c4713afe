import { getEventListeners } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeValue } from '../src/errors.js';
import {
  AbortedError,
  BufferFullError,
  InvalidOptionError,
  InvalidRecordError,
  type KinesisProducer,
  MAX_HASH_KEY,
  type ProducerRecord,
  type PutResult,
  RecordFailedError,
} from '../src/index.js';
import { FakeKinesis, keysOfHalves, serviceError } from './support/fake-kinesis.js';
import { memoryLogger } from './support/memory-logger.js';
import { producersOn } from './support/producers.js';
import { track } from './support/track.js';

let fake: FakeKinesis;
const producer = producersOn(() => fake, { aggregation: false });

/**
 * A producer for the rule on records held too long: past half its 10 s TTL (5 s), records close the
 * room; requests time out at 2 s, and nothing waits to be batched.
 */
function heldTooLongProducer(maxBufferedBytes: number) {
  return producer({ maxBufferedBytes, recordTtlMs: 10_000, requestTimeoutMs: 2000, maxBufferedTimeMs: 0 });
}

/** A producer full with one record, `1`, whose request the fake holds: any further put waits for room. */
function fullWithOneHeld() {
  fake.hold();
  const p = producer({ maxOutstandingRecords: 1 });
  const first = track(p.put({ partitionKey: 'k', data: '1' }));
  return { p, first };
}

/** Lets the held request go and closes the producer: the first record, and it alone, was stored. */
async function onlyTheFirstStored(p: KinesisProducer, first: ReturnType<typeof track>) {
  fake.release();
  await p.close();
  expect(first.status).toBe('fulfilled');
  expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1']);
}

/** How many failures `lines` warned about as sent without a callback and heard by nobody. */
function toldUnheard(lines: ReturnType<typeof memoryLogger>['lines']): number {
  return lines
    .filter((l) => l.level === 'warn')
    .map((l) => Number(/^(\d+) record\(s\) sent without a callback failed/.exec(l.message)?.[1] ?? 0))
    .reduce((sum, n) => sum + n, 0);
}

beforeEach(() => {
  vi.useFakeTimers();
  fake = new FakeKinesis(1);
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('limits', () => {
  it('put waits for room when maxOutstandingRecords is reached, and is not failed', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 3, maxBufferedTimeMs: 0 });
    const puts = [1, 2, 3, 4, 5].map((i) => track(p.put({ partitionKey: `k${i}`, data: String(i) })));
    await vi.advanceTimersByTimeAsync(10);
    expect(p.outstandingRecords).toBe(3);
    expect(fake.calls.flatMap((c) => c.entries)).toHaveLength(3);
    expect(puts.map((s) => s.status)).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect(puts.map((s) => s.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1', '2', '3', '4', '5']);
  });

  it('bounds buffered bytes with maxBufferedBytes, taking an oversized record only when empty', async () => {
    fake.hold();
    const p = producer({ maxBufferedBytes: 1000, maxBufferedTimeMs: 0 });
    const big = track(p.put({ partitionKey: 'k', data: Buffer.alloc(5000) }));
    const small = track(p.put({ partitionKey: 'k', data: Buffer.alloc(10) }));
    await vi.advanceTimersByTimeAsync(10);
    expect(p.bufferedBytes).toBe(5001);
    expect(p.outstandingRecords).toBe(1);
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect([big.status, small.status]).toEqual(['fulfilled', 'fulfilled']);
  });

  it("onFull: 'reject' rejects at once with BufferFullError, naming the limits", async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 1, onFull: 'reject' });
    const first = track(p.put({ partitionKey: 'k', data: '1' }));
    await expect(p.put({ partitionKey: 'k', data: '2' })).rejects.toThrow(BufferFullError);
    await expect(p.put({ partitionKey: 'k', data: '2' })).rejects.toThrow(
      /\(1 of 1 records, 2 of \d+ bytes allowed now/,
    );
    fake.release();
    await vi.advanceTimersByTimeAsync(200);
    expect(first.status).toBe('fulfilled');
  });

  it('an aborted signal rejects only the waiting put', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 1, maxBufferedTimeMs: 0 });
    const first = track(p.put({ partitionKey: 'k', data: '1' }));
    const controller = new AbortController();
    const aborted = track(p.put({ partitionKey: 'k', data: '2' }, { signal: controller.signal }));
    const third = track(p.put({ partitionKey: 'k', data: '3' }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(new Error('caller gave up'));
    await vi.advanceTimersByTimeAsync(0);
    expect(aborted.status).toBe('rejected');
    expect(aborted.error).toBeInstanceOf(AbortedError);
    expect((aborted.error as AbortedError).cause).toEqual(new Error('caller gave up'));
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect([first.status, third.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1', '3']);
    // With room, a put does not wait, so its signal does not matter.
    const fourth = track(p.put({ partitionKey: 'k', data: '4' }, { signal: AbortSignal.abort() }));
    await vi.advanceTimersByTimeAsync(10);
    expect(fourth.status).toBe('fulfilled');
  });

  it('puts sharing one signal share one listener: no leak warning, all leave on abort, none stays', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      fake.hold();
      const p = producer({ maxOutstandingRecords: 1, maxBufferedTimeMs: 0 });
      const first = track(p.put({ partitionKey: 'k', data: 'first' }));
      const shutdown = new AbortController();
      const other = new AbortController();
      // Waiting in this order: 30 with the shared signal, interleaved with 10 without one and 10
      // with a signal of their own.
      const shared: ReturnType<typeof track>[] = [];
      const kept: ReturnType<typeof track>[] = [];
      for (let i = 0; i < 30; i++) {
        shared.push(track(p.put({ partitionKey: 'k', data: `s${i}` }, { signal: shutdown.signal })));
        if (i % 3 === 0) kept.push(track(p.put({ partitionKey: 'k', data: `n${i}` })));
        if (i % 3 === 1)
          kept.push(track(p.put({ partitionKey: 'k', data: `o${i}` }, { signal: other.signal })));
      }
      expect(p.waitingPuts).toBe(50);
      expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
      expect(getEventListeners(other.signal, 'abort')).toHaveLength(1);

      shutdown.abort(new Error('shutting down'));
      await vi.advanceTimersByTimeAsync(0);
      expect(p.waitingPuts).toBe(20);
      expect(shared.every((s) => s.status === 'rejected' && s.error instanceof AbortedError)).toBe(true);
      expect(kept.every((s) => s.status === 'pending')).toBe(true);
      expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);

      fake.release();
      for (let i = 0; i < 50 && p.waitingPuts + p.outstandingRecords > 0; i++) {
        await vi.advanceTimersByTimeAsync(10);
      }
      expect([first, ...kept].map((s) => s.status)).toEqual(Array(21).fill('fulfilled'));
      // In call order, the aborted ones missing.
      const expected = ['first'];
      for (let i = 0; i < 30; i++) {
        if (i % 3 === 0) expected.push(`n${i}`);
        if (i % 3 === 1) expected.push(`o${i}`);
      }
      expect(fake.storedUserRecords().map((r) => r.data)).toEqual(expected);
      // The last waiter of a signal took its listener with it.
      expect(getEventListeners(other.signal, 'abort')).toHaveLength(0);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('an already aborted signal rejects a put that would have to wait', async () => {
    const { p } = fullWithOneHeld();
    await expect(p.put({ partitionKey: 'k', data: '2' }, { signal: AbortSignal.abort() })).rejects.toThrow(
      AbortedError,
    );
  });

  it('send returns false when it fills the producer, throws BufferFullError when full, and drain follows', async () => {
    fake.hold();
    // One record per request, so that the answers come one at a time.
    const p = producer({ maxOutstandingRecords: 4, maxBufferedTimeMs: 0, collectionMaxCount: 1 });
    const drains: number[] = [];
    p.on('drain', () => drains.push(p.outstandingRecords));
    expect([1, 2, 3, 4].map((i) => p.send({ partitionKey: 'k', data: String(i) }))).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(() => p.send({ partitionKey: 'k', data: '5' })).toThrow(BufferFullError);
    expect(p.outstandingRecords).toBe(4);
    for (let answered = 1; answered <= 4; answered++) {
      await vi.advanceTimersByTimeAsync(10);
      fake.release(1);
      await vi.advanceTimersByTimeAsync(10);
      // Not before the producer is half full at most: 2 of the 4 records.
      expect(drains).toEqual(answered < 2 ? [] : [2]);
    }
    expect(p.send({ partitionKey: 'k', data: '6' })).toBe(true);
  });

  it('drain waits until the bytes held are half the byte limit at most', async () => {
    fake.hold();
    const p = producer({ maxBufferedBytes: 4000, maxBufferedTimeMs: 0, collectionMaxCount: 1 });
    const drains: number[] = [];
    p.on('drain', () => drains.push(p.bufferedBytes));
    // 1,000 bytes each with their keys: the fourth fills the producer.
    const sent = [1, 2, 3, 4].map((i) => p.send({ partitionKey: `k${i}`, data: Buffer.alloc(998) }));
    expect(sent).toEqual([true, true, true, false]);
    for (let answered = 1; answered <= 4; answered++) {
      await vi.advanceTimersByTimeAsync(10);
      fake.release(1);
      await vi.advanceTimersByTimeAsync(10);
      expect(drains).toEqual(answered < 2 ? [] : [2000]);
    }
  });

  it('send() returning true promises the next send of a record that size is taken', () => {
    fake.hold();
    const p = producer({ maxBufferedBytes: 1000 });
    const record = { partitionKey: 'k', data: Buffer.alloc(299) }; // 300 bytes with its key
    const answers: boolean[] = [];
    for (let ok = true; ok; ) {
      ok = p.send(record);
      answers.push(ok);
    }
    expect(answers).toEqual([true, true, false]);
    expect(() => p.send(record)).toThrow(BufferFullError);
  });

  it('flush covers puts still waiting for room when it was called', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 1, maxBufferedTimeMs: 10_000 });
    const a = track(p.put({ partitionKey: 'k', data: '1' }));
    const b = track(p.put({ partitionKey: 'k', data: '2' }));
    const flushed = track(p.flush());
    await vi.advanceTimersByTimeAsync(10);
    expect(flushed.status).toBe('pending');
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect([a.status, b.status, flushed.status]).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
  });
});

describe('close', () => {
  it('settles every record in flight, then resolves', async () => {
    fake.hold();
    const p = producer({ maxBufferedTimeMs: 0 });
    const puts = [1, 2, 3].map((i) => track(p.put({ partitionKey: 'k', data: String(i) })));
    await vi.advanceTimersByTimeAsync(10);
    const closed = track(p.close());
    await vi.advanceTimersByTimeAsync(10);
    expect(closed.status).toBe('pending');
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect([...puts.map((s) => s.status), closed.status]).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
  });

  it('with timeoutMs, fails what is left with CloseTimeout, resolves, and hangs on nothing', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 2, maxBufferedTimeMs: 0 });
    const inFlight = track(p.put({ partitionKey: 'k', data: '1' }));
    const buffered = track(p.put({ partitionKey: 'k', data: '2' }));
    const waiting = track(p.put({ partitionKey: 'k', data: '3' }));
    await vi.advanceTimersByTimeAsync(10);
    const closed = track(p.close({ timeoutMs: 1000 }));
    expect(p.close()).toBe(p.close());
    await vi.advanceTimersByTimeAsync(999);
    expect(closed.status).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(closed.status).toBe('fulfilled');
    for (const state of [inFlight, buffered, waiting]) {
      expect(state.status).toBe('rejected');
      expect(state.error).toBeInstanceOf(RecordFailedError);
      expect(state.error).toMatchObject({ code: 'CloseTimeout', retryable: true });
    }
    expect((waiting.error as RecordFailedError).record).toEqual({ partitionKey: 'k', data: '3' });
    // No attempt, in a frozen list as every result's and error's (README: "The list and its attempts
    // are frozen").
    expect((waiting.error as RecordFailedError).attempts).toEqual([]);
    expect(Object.isFrozen((waiting.error as RecordFailedError).attempts)).toBe(true);
    // Each says why close() gave up; those in flight (both sent at once), that they may have been
    // written all the same.
    expect((waiting.error as RecordFailedError).message).toBe(
      'close() gave up after 1000 ms (timeoutMs) before the record was written',
    );
    expect(fake.heldCalls).toBe(1);
    for (const state of [inFlight, buffered]) {
      expect((state.error as RecordFailedError).message).toBe(
        'close() gave up after 1000 ms (timeoutMs) while the request carrying the record had not answered: it may have been written',
      );
    }
    // A late answer for the abandoned request changes nothing.
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect(inFlight.status).toBe('rejected');
  });

  it('gives up at the deadline of a later close() too, and at the earliest of them', async () => {
    fake.hold();
    const p = producer({ maxBufferedTimeMs: 0 });
    const put = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    // A close() without a deadline, then a shutdown handler's with one: the same promise, bounded.
    const closed = track(p.close());
    expect(p.close({ timeoutMs: 5_000 })).toBe(p.close({ timeoutMs: 1_000 }));
    expect(() => p.close({ timeoutMs: -1 })).toThrow(InvalidOptionError);
    await vi.advanceTimersByTimeAsync(999);
    expect([put.status, closed.status]).toEqual(['pending', 'pending']);
    await vi.advanceTimersByTimeAsync(1);
    expect([put.status, closed.status]).toEqual(['rejected', 'fulfilled']);
    expect((put.error as RecordFailedError).message).toBe(
      'close() gave up after 1000 ms (timeoutMs) while the request carrying the record had not answered: it may have been written',
    );
    // The other deadline's timer went with the close: nothing is left to keep Node running.
    expect(vi.getTimerCount()).toBe(0);
    // After it finished, a close() with a deadline just returns the same promise.
    expect(p.close({ timeoutMs: 1 })).toBe(p.close());
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps one timer and one listener per signal however often close() is called', async () => {
    fake.hold();
    const p = producer({ maxBufferedTimeMs: 0 });
    const put = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    const controller = new AbortController();
    p.close({ signal: controller.signal, timeoutMs: 60_000 });
    const timers = vi.getTimerCount();
    for (let i = 0; i < 20; i++) p.close({ signal: controller.signal, timeoutMs: 60_000 + i });
    expect(vi.getTimerCount()).toBe(timers);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(put.status).toBe('rejected');
    expect((put.error as RecordFailedError).message).toBe(
      'close() was aborted while the request carrying the record had not answered: it may have been written',
    );
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('throws InvalidOptionError for a bad timeoutMs and stays open', async () => {
    const p = producer({ maxBufferedTimeMs: 0 });
    expect(() => p.close({ timeoutMs: -5 })).toThrow(InvalidOptionError);
    expect(() => p.close({ timeoutMs: -5 })).toThrow(/timeoutMs` must be an integer in \[0, 86400000\]/);
    const put = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    expect(put.status).toBe('fulfilled');
    await p.close();
  });

  it('with an aborted signal, fails what is left at once', async () => {
    fake.hold();
    const p = producer({ maxBufferedTimeMs: 0 });
    const put = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    const controller = new AbortController();
    const closed = track(p.close({ signal: controller.signal }));
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect([put.status, closed.status]).toEqual(['rejected', 'fulfilled']);
    expect((put.error as RecordFailedError).message).toMatch(/close\(\) was aborted/);
  });
});

describe('drain', () => {
  it("comes once a send of the size refused for that shard is taken, as after a Writable's drain", async () => {
    fake = new FakeKinesis(2);
    const [k0, k1] = keysOfHalves();
    // Aggregated: shard 0's record waits in its open aggregate while shard 1's is sent.
    const p = producer({ aggregation: true, maxBufferedBytes: 1000, maxBufferedTimeMs: 100 });
    await vi.advanceTimersByTimeAsync(0); // one share per shard: 500 bytes each past half the producer
    const start = Date.now();
    p.send({ partitionKey: k1!, data: 'y'.repeat(298) }); // shard 1: 300 bytes, due at 100 ms
    await vi.advanceTimersByTimeAsync(50);
    expect(p.send({ partitionKey: k0!, data: 'x'.repeat(238) })).toBe(true); // shard 0: 240 bytes, due at 150 ms
    const next = { partitionKey: k0!, data: 'z'.repeat(298) }; // 300 bytes: 540 of shard 0's 500
    expect(() => p.send(next)).toThrow(BufferFullError);
    const inDrain: string[] = [];
    p.on('drain', () => {
      try {
        p.send(next);
        inDrain.push(`taken at ${Date.now()}`);
      } catch (error) {
        inDrain.push((error as Error).name);
      }
    });
    // At 100 ms shard 1's record is written: shard 0 is under half its part, but 240 + 300 bytes
    // would not fit it. At 150 ms shard 0's goes too, and then the refused size fits.
    await vi.advanceTimersByTimeAsync(60);
    expect(inDrain).toEqual([]);
    await vi.advanceTimersByTimeAsync(50);
    expect(inDrain).toEqual([`taken at ${start + 150}`]);
  });

  it('comes after a refused send larger than the producer holds beside others, while other callers keep records in flight', async () => {
    fake = new FakeKinesis(2);
    const [k0, k1] = keysOfHalves();
    // Each request answers 100 ms after it goes.
    const slow = {
      async send(command: unknown, options?: unknown) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return await fake.client.send(command as never, options as never);
      },
      destroy() {},
    } as unknown as KinesisClient;
    const p = producer({ client: slow, aggregation: true, maxBufferedBytes: 100_000, maxBufferedTimeMs: 10 });
    await vi.advanceTimersByTimeAsync(200);
    // Another part of the app keeps three 100-byte put()s to shard 1 in flight at all times.
    let stop = false;
    const background = (): void => {
      if (stop) return;
      p.put({ partitionKey: k1!, data: 'b'.repeat(98) }).then(background, background);
    };
    for (let i = 0; i < 3; i++) {
      background();
      await vi.advanceTimersByTimeAsync(40);
    }
    // A send of a record as large as the producer is refused (it holds 300 bytes), and dropped.
    expect(() => p.send({ partitionKey: k0!, data: 'x'.repeat(99_900) })).toThrow(BufferFullError);
    // A send() loop of 1 KB records to shard 0 then fills its part, and waits for 'drain'.
    let sent = 0;
    while (p.send({ partitionKey: k0!, data: 'y'.repeat(998) })) sent++;
    expect(sent).toBeGreaterThan(10);
    let drained = false;
    p.once('drain', () => {
      drained = true;
    });
    await vi.advanceTimersByTimeAsync(5_000);
    stop = true;
    expect(p.bufferedBytes).toBeLessThanOrEqual(400);
    expect(drained).toBe(true);
    const closed = p.close();
    await vi.runAllTimersAsync();
    await closed;
  });

  it('is not emitted while records held too long still close the room', async () => {
    const start = Date.now();
    fake.onPut = (call) => ({
      errorCodes: call.entries.map((e) =>
        e.PartitionKey === 'stuck' || (e.PartitionKey === 'late' && Date.now() - start < 5200)
          ? 'ProvisionedThroughputExceededException'
          : undefined,
      ),
    });
    // Records held over half of recordTtlMs (5 s) and over an eighth of the bytes close the room.
    const p = heldTooLongProducer(1000);
    await vi.advanceTimersByTimeAsync(0);
    // Two stuck records: one alone never closes its shard.
    p.send({ partitionKey: 'stuck', data: 'x'.repeat(100) }, () => {});
    p.send({ partitionKey: 'stuck', data: 'x'.repeat(100) }, () => {});
    p.send({ partitionKey: 'late', data: 'y' }, () => {});
    await vi.advanceTimersByTimeAsync(5100);
    expect(() => p.send({ partitionKey: 'k', data: 'z' })).toThrow(BufferFullError);
    const inDrain: { at: number; taken: boolean | string }[] = [];
    p.on('drain', () => {
      let taken: boolean | string;
      try {
        taken = p.send({ partitionKey: 'k', data: 'z' });
      } catch (error) {
        taken = (error as Error).name;
      }
      inDrain.push({ at: Date.now() - start, taken });
    });
    await vi.advanceTimersByTimeAsync(8000);
    // 'late' settled near 5.2 s while 'stuck' still closed the room; drain waited for 'stuck' to
    // expire (10 s), and a send in it was taken.
    expect(inDrain).toHaveLength(1);
    expect(inDrain[0]!.taken).toBe(true);
    expect(inDrain[0]!.at).toBeGreaterThanOrEqual(10_000);
  });

  it('still reaches the Writable and later listeners when a listener before them throws', async () => {
    const { logger, lines } = memoryLogger();
    const p = producer({ maxOutstandingRecords: 8, logger });
    // The app's own 'drain' listener, added first, has a bug.
    p.on('drain', () => {
      throw new Error('drain listener boom');
    });
    let drains = 0;
    p.on('drain', () => drains++);
    const objects = Array.from({ length: 200 }, (_, i) => ({ id: `k${i}` }));
    const done = track(pipeline(Readable.from(objects), p.writable<{ id: string }>({ partitionKey: 'id' })));
    for (let i = 0; i < 300 && done.status === 'pending'; i++) await vi.advanceTimersByTimeAsync(200);
    // The Writable waits for 'drain' 24 times or more (200 records, 8 at a time): it heard every one.
    expect(done.status).toBe('fulfilled');
    expect(fake.storedUserRecords()).toHaveLength(200);
    expect(drains).toBeGreaterThanOrEqual(24);
    // Each throw logged, once per 'drain'.
    expect(lines.filter((l) => l.level === 'error').map((l) => l.message)).toEqual(
      Array(drains).fill("a 'drain' listener threw; the producer carries on"),
    );
  });
});

describe('the wall clock', () => {
  it('stepping back or forward moves no deadline: records go out on time, none expires, room is freed', async () => {
    fake.hold();
    const p = producer({ maxBufferedBytes: 8000 });
    await vi.advanceTimersByTimeAsync(0);
    const record = (bytes: number) => ({ partitionKey: 'k', data: 'x'.repeat(bytes) });
    const before = track(p.put(record(2000)));
    // Back ten minutes (NTP, a resumed VM): buffering still ends 100 ms after the put.
    vi.setSystemTime(Date.now() - 600_000);
    await vi.advanceTimersByTimeAsync(150);
    expect(fake.calls).toHaveLength(1);
    // Forward an hour, with the record in flight: its 30 s TTL has not run out.
    vi.setSystemTime(Date.now() + 3_600_000);
    const after = track(p.put(record(10)));
    fake.release();
    await vi.advanceTimersByTimeAsync(150);
    expect([before.status, after.status]).toEqual(['fulfilled', 'fulfilled']);
    expect((before.value as PutResult).attempts).toHaveLength(1);
    expect(p.outstandingRecords).toBe(0);
    // Long after, with nothing held, there is room: no bytes were left counted as held too long.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(p.send(record(10))).toBe(true);
  });
});

describe('close gives up', () => {
  it('with an already aborted signal: sends nothing of what it failed', async () => {
    const p = producer({ maxBufferedTimeMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0); // the stream's summary is known
    const puts = [1, 2, 3].map((i) => track(p.put({ partitionKey: `k${i}`, data: String(i) })));
    const closed = track(p.close({ signal: AbortSignal.abort() }));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(closed.status).toBe('fulfilled');
    expect(puts.map((s) => (s.error as RecordFailedError).code)).toEqual([
      'CloseTimeout',
      'CloseTimeout',
      'CloseTimeout',
    ]);
    // Their callers were told they were not written: nothing of them may reach the stream.
    expect(fake.calls).toHaveLength(0);
  });

  it('aborts the requests still in flight: nothing of the producer keeps Node running', async () => {
    fake.script.push('hang');
    const p = producer({ maxBufferedTimeMs: 0 });
    const put = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    expect(fake.calls).toHaveLength(1);
    const closed = track(p.close({ timeoutMs: 100 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(closed.status).toBe('fulfilled');
    expect(put.error).toMatchObject({ code: 'CloseTimeout', shardId: fake.shards[0]!.id });
    // The request was sent: it may have stored the record, and its attempt says so.
    expect((put.error as RecordFailedError).attempts).toEqual([
      {
        startedAt: expect.any(Number),
        durationMs: 110,
        delayMs: expect.any(Number),
        success: false,
        errorCode: 'Unanswered',
        errorMessage:
          'the request was still under way after 110 ms when close() gave up: the service may still have stored the record',
      },
    ]);
    // The client is the caller's, so the producer does not destroy it: it aborts its own request.
    expect(fake.calls[0]!.signal?.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a record waiting out a backoff fails with the attempts it made', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99); // a backoff of 99 ms
    fake.onPut = (call) => ({ errorCodes: call.entries.map(() => 'InternalFailure') });
    const p = producer({ maxBufferedTimeMs: 0 });
    const put = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    expect(fake.calls).toHaveLength(1);
    track(p.close({ timeoutMs: 0 }));
    await vi.advanceTimersByTimeAsync(1);
    const error = put.error as RecordFailedError;
    expect(error.code).toBe('CloseTimeout');
    expect(error.attempts.map((a) => [a.success, a.errorCode])).toEqual([[false, 'InternalFailure']]);
    // The shard it was sent to and will be sent to again, as an expiry there would say.
    expect(error.shardId).toBe(fake.shards[0]!.id);
  });

  it('puts admitted after a flush still share aggregates', async () => {
    fake.hold();
    const p = producer({ aggregation: true, maxOutstandingRecords: 5, maxBufferedTimeMs: 10_000 });
    await vi.advanceTimersByTimeAsync(0);
    const puts = Array.from({ length: 25 }, (_, i) =>
      track(p.put({ partitionKey: `k${i}`, data: String(i) })),
    );
    const flushed = track(p.flush());
    while (flushed.status === 'pending') {
      await vi.advanceTimersByTimeAsync(1);
      fake.release(1);
    }
    expect(puts.every((s) => s.status === 'fulfilled')).toBe(true);
    // Five at a time: each group admitted together goes out as one aggregate of five.
    expect(fake.calls.map((c) => c.entries.length)).toEqual([1, 1, 1, 1, 1]);
    expect(fake.storedUserRecords()).toHaveLength(25);
  });
});

describe('streams', () => {
  it('pipeline(source, producer.writable()) writes every object, with backpressure', async () => {
    const p = producer({ maxOutstandingRecords: 10, aggregation: true });
    let read = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) {
          read++;
          yield { userId: `u${i % 37}`, n: i };
        }
      })(),
    );
    const done = track(
      pipeline(
        source,
        p.writable<{ userId: string; n: number }>({ partitionKey: 'userId', highWaterMark: 4 }),
      ),
    );
    await vi.advanceTimersByTimeAsync(1);
    // The producer holds at most 10 records; the Writable buffers 4; the source was paused.
    expect(p.outstandingRecords).toBeLessThanOrEqual(10);
    expect(read).toBeLessThan(100);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(done.status).toBe('fulfilled');
    const stored = fake.storedUserRecords();
    expect(stored).toHaveLength(1000);
    expect(stored.map((r) => JSON.parse(r.data).n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    );
    expect(stored[0]).toMatchObject({ partitionKey: 'u0' });
  });

  it('once send() says the producer is full, the Writable waits for drain before building the next record', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 10, maxBufferedTimeMs: 0 });
    let built = 0;
    const source = Readable.from(Array.from({ length: 30 }, (_, i) => ({ k: `k${i}` })));
    const done = track(
      pipeline(
        source,
        p.writable<{ k: string }>({
          partitionKey: 'k',
          serialize: (o) => {
            built++;
            return o.k;
          },
        }),
      ),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(p.outstandingRecords).toBe(10);
    // The tenth send() returned false: nothing more was built to be refused.
    expect(built).toBe(10);
    fake.release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(done.status).toBe('fulfilled');
    expect(built).toBe(30);
    expect(fake.storedUserRecords()).toHaveLength(30);
  });

  it('a record that fails destroys the stream with its error', async () => {
    fake.onPut = (call) =>
      call.index === 1 ? { throw: serviceError('AccessDeniedException', 400) } : undefined;
    const p = producer({ collectionMaxCount: 1, maxBufferedTimeMs: 0 });
    const source = Readable.from(Array.from({ length: 20 }, (_, i) => ({ k: `k${i}` })));
    const done = track(
      pipeline(source, p.writable<{ k: string }>({ partitionKey: (o) => o.k, serialize: (o) => `v-${o.k}` })),
    );
    await vi.advanceTimersByTimeAsync(1000);
    expect(done.status).toBe('rejected');
    expect(done.error).toMatchObject({ code: 'AccessDeniedException' });
  });

  it('an invalid object fails the stream with InvalidRecordError', async () => {
    const p = producer();
    const done = track(
      pipeline(Readable.from([{ k: '' }]), p.writable<{ k: string }>({ partitionKey: 'k' })),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(done.error).toMatchObject({ code: 'InvalidRecord', field: 'partitionKey' });
  });

  it('an object without the key field fails the stream with an error naming that field', async () => {
    const p = producer();
    const objects = [
      { userId: 'u1', n: 1 },
      { user: 'u2', n: 2 },
    ];
    const done = track(
      pipeline(
        Readable.from(objects),
        p.writable<{ userId?: string; n: number }>({ partitionKey: 'userId' }),
      ),
    );
    await vi.advanceTimersByTimeAsync(1000);
    expect(done.error).toBeInstanceOf(InvalidRecordError);
    expect(done.error).toMatchObject({ code: 'InvalidRecord', field: 'partitionKey' });
    expect((done.error as Error).message).toBe(
      "The Writable takes each object's partition key from its field `userId`, which must be a string; received undefined.",
    );
    // The object before it was taken and written.
    expect(fake.storedUserRecords().map((r) => r.partitionKey)).toEqual(['u1']);
  });

  it('putAll writes an async iterable with the same backpressure and resolves once all settled', async () => {
    const p = producer({ maxOutstandingRecords: 5 });
    async function* records() {
      for (let i = 0; i < 200; i++) yield { partitionKey: `k${i % 7}`, data: String(i) };
    }
    const done = track(p.putAll(records()));
    await vi.advanceTimersByTimeAsync(1);
    expect(p.outstandingRecords).toBeLessThanOrEqual(5);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(done).toMatchObject({ status: 'fulfilled', value: { records: 200 } });
    expect(fake.storedUserRecords()).toHaveLength(200);
  });

  it('putAll rejects with the first failure and reads no record after it: each one read was written', async () => {
    fake.script.push({ throw: serviceError('ResourceNotFoundException', 400) });
    const p = producer({ maxOutstandingRecords: 1, maxBufferedTimeMs: 0 });
    let read = 0;
    function* records() {
      for (let i = 0; i < 10; i++) {
        read++;
        yield { partitionKey: 'k', data: String(i) };
      }
    }
    const done = track(p.putAll(records()));
    await vi.advanceTimersByTimeAsync(1000);
    expect(done.status).toBe('rejected');
    expect(done.error).toMatchObject({ code: 'ResourceNotFoundException' });
    // The first record filled the producer; it failed while putAll waited for room.
    expect(read).toBe(1);
    expect(fake.calls.flatMap((c) => c.entries)).toHaveLength(1);
  });

  it('putAll closes its source when a failure stops it (a generator runs its finally)', async () => {
    fake.script.push({ throw: serviceError('AccessDeniedException', 400) });
    const p = producer({ maxBufferedTimeMs: 0 });
    let closed = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) {
          yield { partitionKey: `k${i}`, data: 'x' };
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      } finally {
        closed = true;
      }
    }
    const done = track(p.putAll(source()));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done).toMatchObject({ status: 'rejected', error: { code: 'AccessDeniedException' } });
    expect(closed).toBe(true);
  });

  /**
   * A producer whose first request is refused, and a source that gives it one record, then, `ms` later
   * (after that record failed), what `then` gives: a record, or a throw.
   */
  function firstRecordRefused(ms: number, then: () => ProducerRecord) {
    fake.script.push({ throw: serviceError('AccessDeniedException', 400) });
    const p = producer({ maxBufferedTimeMs: 0 });
    async function* source() {
      yield { partitionKey: 'order-1', data: 'created' };
      await new Promise((resolve) => setTimeout(resolve, ms));
      yield then();
    }
    return { p, source: source() };
  }

  it('putAll rejects with the record failure that stopped it, not with a later error of its source', async () => {
    const { p, source } = firstRecordRefused(500, () => {
      throw new Error('source broke');
    });
    const done = track(p.putAll(source));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done).toMatchObject({ status: 'rejected', error: { code: 'AccessDeniedException' } });
  });

  it("putAll rejects with what stopped it, once the records taken settled, though the source's cleanup throws", async () => {
    fake.hold();
    const p = producer();
    function* source() {
      try {
        yield { partitionKey: 'a', data: 'one' };
        yield { partitionKey: 'b', data: 'two' };
        yield { partitionKey: '', data: 'invalid' };
        yield { partitionKey: 'c', data: 'never read' };
      } finally {
        // biome-ignore lint/correctness/noUnsafeFinally: the source under test throws as it closes.
        throw new Error('cleanup failed');
      }
    }
    const all = track(p.putAll(source()));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(all.status).toBe('pending');
    fake.release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(all.error).toBeInstanceOf(InvalidRecordError);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['one', 'two']);
  });

  it('putAll stops on its signal even while the source has nothing to give', async () => {
    const p = producer({ maxBufferedTimeMs: 0 });
    const controller = new AbortController();
    async function* liveFeed() {
      yield { partitionKey: 'k', data: '1' };
      await new Promise(() => {}); // nothing new, for ever
    }
    const done = track(p.putAll(liveFeed(), { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(done.status).toBe('pending');
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(done.error).toBeInstanceOf(AbortedError);
    expect(fake.storedUserRecords()).toHaveLength(1);
  });

  it.each([
    ['an invalid record', () => ({ partitionKey: '', data: 'x' }), InvalidRecordError],
    [
      'the source throwing',
      () => {
        throw new Error('source broke');
      },
      Error,
    ],
  ])(
    'putAll stopped by %s rejects with it only once the records taken have settled',
    async (_, third, kind) => {
      fake.hold();
      const p = producer({ maxBufferedTimeMs: 0 });
      function* records() {
        yield { partitionKey: 'k', data: '1' };
        yield { partitionKey: 'k', data: '2' };
        yield third();
      }
      const done = track(p.putAll(records()));
      await vi.advanceTimersByTimeAsync(10);
      expect(p.outstandingRecords).toBe(2);
      expect(done.status).toBe('pending');
      fake.release();
      await vi.advanceTimersByTimeAsync(10);
      expect(done.status).toBe('rejected');
      expect(done.error).toBeInstanceOf(kind);
      expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1', '2']);
      // A record it refused is named by its place in the source, as aggregateAll names it.
      if (kind === InvalidRecordError) {
        expect(done.error).toMatchObject({ field: 'partitionKey' });
        expect((done.error as Error).message).toMatch(/^Record 2 of the source: partitionKey must be /);
      }
    },
  );

  it('rejects a signal that is not an AbortSignal at the call, and leaves the producer as it was', async () => {
    const { p, first } = fullWithOneHeld();
    const notASignal = new AbortController() as unknown as AbortSignal;
    await expect(p.put({ partitionKey: 'k', data: '2' }, { signal: notASignal })).rejects.toMatchObject({
      name: 'InvalidOptionError',
      option: 'signal',
    });
    expect(p.waitingPuts).toBe(0);
    await expect(p.putAll([{ partitionKey: 'k', data: '3' }], { signal: notASignal })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    expect(() => p.close({ signal: notASignal })).toThrow(/Option `signal` must be an AbortSignal/);
    // A put for another stream with a bad signal does not start that stream's metadata calls.
    const commands = fake.commands.length;
    await expect(
      p.put({ partitionKey: 'k', data: 'x', streamName: 'elsewhere' }, { signal: notASignal }),
    ).rejects.toBeInstanceOf(InvalidOptionError);
    expect(fake.commands.length).toBe(commands);
    // Still open: it takes records and closes cleanly.
    fake.release();
    const second = track(p.put({ partitionKey: 'k', data: '4' }));
    await vi.advanceTimersByTimeAsync(200);
    await p.close();
    expect([first.status, second.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1', '4']);
  });

  it('rejects arguments of the wrong kind with InvalidOptionError naming them, and takes nothing', async () => {
    const p = producer();
    const record = { partitionKey: 'k', data: 'x' };
    await expect(p.put(record, 'fast' as never)).rejects.toThrow(
      'Option `options` must be an object; received "fast".',
    );
    await expect(p.putAll(5 as never)).rejects.toThrow(
      'Option `source` must be an iterable or async iterable of records; received number 5.',
    );
    await expect(p.putAll('records' as never)).rejects.toMatchObject({
      name: 'InvalidOptionError',
      option: 'source',
    });
    await expect(p.putAll([record], 5 as never)).rejects.toMatchObject({
      name: 'InvalidOptionError',
      option: 'options',
    });
    expect(() => p.writable(undefined as never)).toThrow(
      'Option `options` must be an object with at least partitionKey; received undefined.',
    );
    expect(p.outstandingRecords).toBe(0);
    await p.close();
    expect(fake.calls).toHaveLength(0);
  });

  it('reads the signal of put() once: a getter that answers otherwise later changes nothing', async () => {
    const { p, first } = fullWithOneHeld();
    const controller = new AbortController();
    let reads = 0;
    const options = {
      get signal() {
        reads++;
        return reads === 1 ? controller.signal : ({} as AbortSignal);
      },
    };
    const waiting = track(p.put({ partitionKey: 'k', data: '2' }, options));
    expect(reads).toBe(1);
    expect(p.waitingPuts).toBe(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.error).toBeInstanceOf(AbortedError);
    await onlyTheFirstStored(p, first);
  });

  it('rejects a put whose signal refuses the listener, and leaves nothing waiting for it', async () => {
    const { p, first } = fullWithOneHeld();
    const refusing = {
      aborted: false,
      reason: undefined,
      addEventListener() {
        throw new Error('no listeners here');
      },
      removeEventListener() {},
    } as unknown as AbortSignal;
    const refused = track(p.put({ partitionKey: 'k', data: '2' }, { signal: refusing }));
    await vi.advanceTimersByTimeAsync(0);
    expect(refused.error).toMatchObject({ message: 'no listeners here' });
    expect(p.waitingPuts).toBe(0);
    // flush() waits for the first record only: it would wait for ever for one counted and never taken.
    const flushed = track(p.flush());
    fake.release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect([first.status, flushed.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1']);
  });

  it('refuses a bare signal where the options go: the call would not have been abortable', async () => {
    const { p, first } = fullWithOneHeld();
    const controller = new AbortController();
    const signal = controller.signal;
    // This put would wait for room; read as options, the signal would have left it waiting on abort.
    await expect(p.put({ partitionKey: 'k', data: '2' }, signal as never)).rejects.toThrow(
      'Option `options` must be an object of options, the signal in it as `{ signal }`; received an object (AbortSignal).',
    );
    await expect(p.putAll([{ partitionKey: 'k', data: '3' }], signal as never)).rejects.toMatchObject({
      name: 'InvalidOptionError',
      option: 'options',
    });
    expect(() => p.close(signal as never)).toThrow(InvalidOptionError);
    expect(p.waitingPuts).toBe(0);
    // Refused at the call and nothing else: still open, and the signal given rightly works.
    const waiting = track(p.put({ partitionKey: 'k', data: '4' }, { signal }));
    expect(p.waitingPuts).toBe(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.error).toBeInstanceOf(AbortedError);
    await onlyTheFirstStored(p, first);
  });

  it('takes null options as none, as JavaScript callers pass them', async () => {
    const p = producer();
    const record = { partitionKey: 'k', data: 'x' };
    const put = track(p.put(record, null as never));
    const all = track(p.putAll([record], null as never));
    await vi.advanceTimersByTimeAsync(200);
    expect([put.status, all.status]).toEqual(['fulfilled', 'fulfilled']);
    await p.close(null as never);
    expect(fake.storedUserRecords()).toHaveLength(2);
  });

  it('a record taken before a destroy() is not reported as not taken', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 3, maxBufferedTimeMs: 0 });
    const writable = p.writable<{ k: string }>({ partitionKey: 'k' });
    const callbacks: (string | null)[] = [];
    for (let i = 0; i < 6; i++) {
      writable.write({ k: `k${i}` }, (error) =>
        callbacks.push(error === null || error === undefined ? null : error.name),
      );
    }
    await vi.advanceTimersByTimeAsync(10);
    // The third was taken and filled the producer: its write waits for room for the next.
    expect(p.outstandingRecords).toBe(3);
    writable.destroy();
    await vi.advanceTimersByTimeAsync(10);
    expect(writable.errored).toBeNull();
    expect(callbacks.slice(0, 3)).toEqual([null, null, null]);
    fake.release();
    await p.close();
    expect(fake.storedUserRecords().map((r) => r.partitionKey)).toEqual(['k0', 'k1', 'k2']);
  });

  it('warns about records that fail after their Writable ended in an error, when nobody listens', async () => {
    fake.onPut = (call) => ({ errorCodes: call.entries.map(() => 'AccessDeniedException') });
    const { logger, lines } = memoryLogger();
    const p = producer({ logger, maxBufferedTimeMs: 50 });
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 5; i++) yield { k: `k${i}` };
        throw new Error('source broke');
      })(),
    );
    const done = track(pipeline(source, p.writable<{ k: string }>({ partitionKey: 'k' })));
    await vi.advanceTimersByTimeAsync(6_000);
    expect((done.error as Error).message).toBe('source broke');
    expect(p.outstandingRecords).toBe(0);
    expect(toldUnheard(lines)).toBe(5);
    await p.close();
  });

  it.each([
    ['a record failure', 'AccessDeniedException', 5, 4],
    ['its source throwing', 'source broke', 2, 2],
    ['its signal', 'Aborted', 5, 5],
  ])(
    'putAll stopped by %s warns about the failures it does not reject with, when nobody listens',
    async (_, rejectedWith, records, told) => {
      fake.hold();
      fake.onPut = (call) => ({ errorCodes: call.entries.map(() => 'AccessDeniedException') });
      const { logger, lines } = memoryLogger();
      const p = producer({ logger, maxBufferedTimeMs: 0 });
      const controller = new AbortController();
      function* source() {
        for (let i = 0; i < records; i++) yield { partitionKey: `k${i}`, data: 'x' };
        if (rejectedWith === 'source broke') throw new Error('source broke');
      }
      const done = track(p.putAll(source(), { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(10);
      if (rejectedWith === 'Aborted') controller.abort();
      fake.release();
      await vi.advanceTimersByTimeAsync(6_000);
      const error = done.error as Error & { code?: string };
      expect(error.code ?? error.message).toBe(rejectedWith);
      expect(p.outstandingRecords).toBe(0);
      expect(toldUnheard(lines)).toBe(told);
      await p.close();
    },
  );

  it('putAll writes no record whose read ended after a record before it failed', async () => {
    const { p, source } = firstRecordRefused(200, () => ({ partitionKey: 'order-1', data: 'shipped' }));
    const done = track(p.putAll(source));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(done).toMatchObject({ status: 'rejected', error: { code: 'AccessDeniedException' } });
    expect(fake.calls.flatMap((c) => c.entries)).toHaveLength(1);
    await p.close();
  });

  it('putAll calls sharing one signal listen to it once between them', async () => {
    fake.hold();
    const p = producer({ maxBufferedTimeMs: 0 });
    const { signal } = new AbortController();
    const all = Array.from({ length: 20 }, (_, i) =>
      track(p.putAll([{ partitionKey: `k${i}`, data: 'x' }], { signal })),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(all.every((one) => one.status === 'pending')).toBe(true);
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect(all.every((one) => one.status === 'fulfilled')).toBe(true);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    await p.close();
  });

  it('rejects writable() options of the wrong kind at the call', () => {
    const p = producer();
    expect(() => p.writable({ partitionKey: 'k', highWaterMark: -1 })).toThrow(
      'Option `highWaterMark` must be an integer in [0, 9007199254740991]; received number -1.',
    );
    expect(() => p.writable({ partitionKey: 'k', explicitHashKey: 'abc' as never })).toThrow(
      'Option `explicitHashKey` must be a function; received "abc".',
    );
    expect(() => p.writable({ partitionKey: 'k', streamName: 'orders eu' })).toThrow(
      /^Option `streamName` must be a stream name of 1\.\.128 characters/,
    );
    expect(() => p.writable({ partitionKey: 'k', streamARN: 'orders' })).toThrow(
      /^Option `streamARN` must be a Kinesis stream ARN/,
    );
    expect(() =>
      p.writable({
        partitionKey: 'k',
        streamName: 'orders',
        streamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/orders',
      }),
    ).toThrow(
      'Option `streamARN` must be omitted when `streamName` is given (name one stream once); received "arn:aws:kinesis:us-east-1:123456789012:stream/orders".',
    );
    // A producer without a stream: the Writable must name one, or every object would fail.
    const bare = producer({ streamName: undefined });
    expect(() => bare.writable({ partitionKey: 'k' })).toThrow(
      new InvalidOptionError(
        'streamName',
        'given (or streamARN): the producer was created without a stream',
        undefined,
      ),
    );
    expect(bare.writable({ partitionKey: 'k', streamName: 'orders' }).writable).toBe(true);
  });

  it('putAll: an abort says how many records it took, and those are still written', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 3, maxBufferedTimeMs: 0 });
    const controller = new AbortController();
    const records = Array.from({ length: 10 }, (_, i) => ({ partitionKey: `k${i}`, data: String(i) }));
    const done = track(p.putAll(records, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(done.error).toBeInstanceOf(AbortedError);
    expect((done.error as Error).message).toBe(
      'putAll() was aborted after taking 3 record(s): those are not awaited, and still settle (written or failed) through the producer.',
    );
    fake.release();
    await p.close();
    expect(fake.storedUserRecords()).toHaveLength(3);
  });

  it('putAll: an abort ends a wait for a promised record, and the wait for the last to settle', async () => {
    const p = producer();
    const early = new AbortController();
    const waitingForRecord = track(
      p.putAll([new Promise<never>(() => {})] as never, { signal: early.signal }),
    );
    await vi.advanceTimersByTimeAsync(10);
    early.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(waitingForRecord.error).toBeInstanceOf(AbortedError);
    fake.hold();
    const late = new AbortController();
    const waitingForFlush = track(p.putAll([{ partitionKey: 'k', data: 'x' }], { signal: late.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(waitingForFlush.status).toBe('pending');
    late.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(waitingForFlush.error).toBeInstanceOf(AbortedError);
    fake.release();
    await p.close();
    expect(fake.storedUserRecords()).toHaveLength(1);
  });

  it('putAll: a rejected record promise met by an abort does not go unhandled', async () => {
    const p = producer();
    const controller = new AbortController();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const source = (function* () {
        // The abort lands in the microtasks between this value being handed over and putAll reading it.
        void Promise.resolve()
          .then(() => {})
          .then(() => controller.abort());
        yield Promise.reject(new Error('bad record')) as never;
      })();
      const done = track(p.putAll(source, { signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(10);
      expect(done.error).toBeInstanceOf(AbortedError);
      await vi.advanceTimersByTimeAsync(10);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('putAll stops with AbortedError on its signal', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 2 });
    const controller = new AbortController();
    const done = track(
      p.putAll(
        (function* () {
          for (let i = 0; ; i++) yield { partitionKey: 'k', data: String(i) };
        })(),
        { signal: controller.signal },
      ),
    );
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(10);
    expect(done.error).toBeInstanceOf(AbortedError);
    expect(p.outstandingRecords).toBe(2);
  });
});

describe('putAll and writable() wait for their own records', () => {
  /** A source that gives one record, then nothing for `idleMs` (a live feed), then one more. */
  async function* feed(idleMs: number) {
    yield { partitionKey: 'k', data: '1' };
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    yield { partitionKey: 'k', data: '2' };
  }

  it('putAll rejects when a record fails, not when its idle source next yields', async () => {
    fake.script.push({ throw: serviceError('AccessDeniedException', 400) });
    const p = producer({ maxBufferedTimeMs: 0 });
    const all = track(p.putAll(feed(60_000)));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(all).toMatchObject({ status: 'rejected', error: { code: 'AccessDeniedException' } });
    // The read under way is not written when it comes.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fake.calls.flatMap((c) => c.entries.map((e) => Buffer.from(e.Data!).toString()))).toEqual(['1']);
  });

  it("putAll and writable() do not wait for another stream's stuck record", async () => {
    fake.onPut = (call) => (call.streamName === 'slow' ? 'hang' : undefined);
    const p = producer({ requestTimeoutMs: 1_000 });
    p.on('recordFailed', () => {});
    p.send({ partitionKey: 'k', data: 'stuck', streamName: 'slow' });
    const all = track(p.putAll([{ partitionKey: 'a', data: '1' }]));
    const piped = track(
      pipeline(Readable.from([{ k: 'b' }]), p.writable<{ k: string }>({ partitionKey: 'k' })),
    );
    // Sent with their batch, within maxBufferedTimeMs (100 ms); the stuck one expires at 30 s.
    await vi.advanceTimersByTimeAsync(200);
    expect(
      fake
        .storedUserRecords()
        .map((r) => r.partitionKey)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(all.status).toBe('fulfilled');
    expect(piped.status).toBe('fulfilled');
  });

  it('many small putAll calls are batched as the same records put one by one', async () => {
    const p = producer({ aggregation: true });
    await vi.advanceTimersByTimeAsync(10);
    const calls: Promise<unknown>[] = [];
    for (let c = 0; c < 100; c++) {
      const records = Array.from({ length: 5 }, (_, i) => ({
        partitionKey: `k${c}-${i}`,
        data: 'x'.repeat(100),
      }));
      calls.push(p.putAll(records));
      await vi.advanceTimersByTimeAsync(5);
    }
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(calls);
    expect(fake.storedUserRecords()).toHaveLength(500);
    // 500 ms of puts, each request due 100 ms after its first record: about 5 (100, without batching).
    expect(fake.calls.length).toBeLessThanOrEqual(10);
  });

  it('putAll aborted while a Node stream source has nothing to give destroys the source', async () => {
    const p = producer();
    const source = new PassThrough({ objectMode: true });
    source.write({ partitionKey: 'k', data: 'x' });
    const controller = new AbortController();
    const all = track(p.putAll(source, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(50);
    controller.abort();
    await vi.advanceTimersByTimeAsync(50);
    expect(all.error).toBeInstanceOf(AbortedError);
    expect(source.destroyed).toBe(true);
  });

  it('putAll whose source throws from Symbol.iterator leaves no abort listener on the signal', async () => {
    const p = producer();
    const controller = new AbortController();
    const source = {
      [Symbol.iterator]() {
        throw new Error('cannot iterate');
      },
    };
    await expect(p.putAll(source as never, { signal: controller.signal })).rejects.toThrow('cannot iterate');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('putAll aborted while its only record waits for room says it took none', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 1 });
    const first = track(p.put({ partitionKey: 'k', data: '1' }));
    await vi.advanceTimersByTimeAsync(10);
    const controller = new AbortController();
    const all = track(p.putAll([{ partitionKey: 'k', data: '2' }], { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(10);
    expect(all.error).toBeInstanceOf(AbortedError);
    expect((all.error as Error).message).toContain('after taking 0 record(s)');
    expect(p.waitingPuts).toBe(0);
    fake.release();
    await vi.advanceTimersByTimeAsync(200);
    expect(first.status).toBe('fulfilled');
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1']);
  });

  it.each([undefined, null, 0, '', Number.NaN, 0n])(
    'writable() whose serialize throws %s fails the stream instead of dropping the object',
    async (thrown) => {
      const p = producer();
      const writable = p.writable<{ k: string }>({
        partitionKey: 'k',
        serialize: (o) => {
          if (o.k === 'b') throw thrown;
          return o.k;
        },
      });
      const done = track(pipeline(Readable.from([{ k: 'a' }, { k: 'b' }, { k: 'c' }]), writable));
      await vi.advanceTimersByTimeAsync(1_000);
      expect(done.status).toBe('rejected');
      expect((done.error as Error).message).toBe(
        `writable(): turning an object into a record threw ${describeValue(thrown)}`,
      );
      expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['a']);
    },
  );

  it('putAll does not call return() on an iterator whose next() threw, as for await does not', async () => {
    const p = producer();
    let returns = 0;
    const source = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          throw new Error('source broke');
        },
        return: async () => {
          returns++;
          return { done: true as const, value: undefined };
        },
      }),
    };
    await expect(p.putAll(source as never)).rejects.toThrow('source broke');
    expect(returns).toBe(0);
  });

  it('putAll takes a sync iterable whose Symbol.asyncIterator is undefined, as for await does', async () => {
    const p = producer();
    const records = [{ partitionKey: 'k', data: 'x' }];
    const source = { [Symbol.asyncIterator]: undefined, [Symbol.iterator]: () => records[Symbol.iterator]() };
    const all = track(p.putAll(source as never));
    await vi.advanceTimersByTimeAsync(200);
    expect(all).toMatchObject({ status: 'fulfilled', value: { records: 1 } });
  });
});

describe('a stream stuck beside a healthy one', () => {
  it.each(['writable', 'putAll'] as const)(
    "does not stop %s() for the healthy one: it waits for its own shard's room, not for 'drain'",
    async (how) => {
      // Stream 'slow' never answers: its records are retried until their TTL, and close the room
      // of its shard. Stream 'test' answers at once, at its shard's 1,000 records/s.
      fake.onPut = (call) => (call.streamName === 'slow' ? 'hang' : undefined);
      const p = producer({
        maxBufferedBytes: 20_000,
        recordTtlMs: 10_000,
        requestTimeoutMs: 1_000,
        maxBufferedTimeMs: 10,
      });
      p.on('recordFailed', () => {});
      const records = (stream: string) =>
        Readable.from(
          (function* () {
            for (let i = 0; i < 100_000; i++) {
              yield { partitionKey: `${stream}${i}`, data: 'x'.repeat(200), streamName: stream };
            }
          })(),
        );
      const stop = new AbortController();
      const writable = (stream: string) =>
        p.writable<{ partitionKey: string }>({ partitionKey: 'partitionKey', streamName: stream });
      if (how === 'writable')
        pipeline(records('test'), writable('test'), { signal: stop.signal }).catch(() => {});
      else p.putAll(records('test'), { signal: stop.signal }).catch(() => {});
      pipeline(records('slow'), writable('slow'), { signal: stop.signal }).catch(() => {});
      const written = () =>
        fake.calls.filter((c) => c.streamName === 'test').reduce((n, c) => n + c.entries.length, 0);
      await vi.advanceTimersByTimeAsync(1_000);
      const perSecond: number[] = [];
      for (let second = 0; second < 12; second++) {
        const before = written();
        await vi.advanceTimersByTimeAsync(1_000);
        perSecond.push(written() - before);
      }
      // Every second, about what its shard takes; not nothing until the stuck records expire.
      expect(perSecond.filter((n) => n < 500)).toEqual([]);
      stop.abort();
    },
    30_000,
  );
});

describe('results', () => {
  it('put results still carry shard and attempts when records waited for room', async () => {
    const p = producer({ maxOutstandingRecords: 1, maxBufferedTimeMs: 0 });
    const results: Promise<PutResult>[] = [1, 2, 3].map((i) => p.put({ partitionKey: 'k', data: String(i) }));
    await vi.advanceTimersByTimeAsync(100);
    for (const r of await Promise.all(results)) expect(r.attempts).toHaveLength(1);
  });

  it('a put that waited for room writes the record as it was when put() was called', async () => {
    fake.hold();
    const p = producer({ maxOutstandingRecords: 1, maxBufferedTimeMs: 0, aggregation: true });
    const first = p.put({ partitionKey: 'k', data: 'first' });
    const waiting = { partitionKey: 'w', data: 'as called' };
    const second = track(p.put(waiting));
    await vi.advanceTimersByTimeAsync(10);
    expect(second.status).toBe('pending');
    // The caller reuses its object while the put waits: the put was already validated and measured.
    waiting.partitionKey = 'x'.repeat(100);
    waiting.data = 'something much longer than what put() was called with';
    fake.release();
    await first;
    await vi.advanceTimersByTimeAsync(10);
    expect(second.status).toBe('fulfilled');
    expect(fake.storedUserRecords().map((r) => [r.partitionKey, r.data])).toEqual([
      ['k', 'first'],
      ['w', 'as called'],
    ]);
  });
});

describe('room that follows the stream', () => {
  /**
   * How many records of `dataBytes` `send` takes, the stream holding every request, until it says
   * full (the record it says so for is taken too). One shard and a TTL of 2 s: the room is what the
   * shard writes in 1 s.
   */
  async function takenUntilFull(options: Parameters<typeof producer>[0], dataBytes: number): Promise<number> {
    fake.hold();
    const p = producer({ recordTtlMs: 2_000, maxOutstandingRecords: 5_000, ...options });
    await vi.advanceTimersByTimeAsync(10); // the shard map is known
    let taken = 1;
    while (taken < 5_000 && p.send({ partitionKey: `k${taken}`, data: Buffer.alloc(dataBytes) })) taken++;
    return taken;
  }

  it('unaggregated, it holds no more records than the shard writes in half the TTL', async () => {
    // 1,000 records/s: 1,000 records, not maxOutstandingRecords' 5,000 (their bytes are far below 1 MiB).
    expect(await takenUntilFull({ aggregation: false }, 1)).toBe(1_000);
  });

  it('rateLimit lowers the room with the pace it sets', async () => {
    // Aggregated, bytes bound it: 1 MiB/s for 1 s is about 1,048 records of 1,000 bytes with their
    // keys; at rateLimit 50, half of that.
    const full = await takenUntilFull({ aggregation: true }, 996);
    const half = await takenUntilFull({ aggregation: true, rateLimit: 50 }, 996);
    expect(full).toBeGreaterThan(1_000);
    expect(half / full).toBeCloseTo(0.5, 1);
  });

  it('callers wait instead of records expiring when the stream is slower than the feed', async () => {
    // One shard: the producer paces itself at 1 MiB/s. 20 MB of records with a 10 s TTL could never
    // all be written in time if the producer took them all at once.
    const p = producer({ aggregation: true, recordTtlMs: 10_000, maxBufferedTimeMs: 100 });
    await vi.advanceTimersByTimeAsync(0);
    // 2,000 callers at once, one record each: far more than the stream writes in the TTL.
    const callers = Array.from({ length: 2000 }, (_, i) =>
      p.put({ partitionKey: `k${i}`, data: Buffer.alloc(10_000, i % 251) }).then(
        () => 'ok',
        (e: { code: string }) => e.code,
      ),
    );
    let peakBytes = 0;
    const start = Date.now();
    while (p.outstandingRecords > 0 || p.waitingPuts > 0 || Date.now() - start < 1000) {
      await vi.advanceTimersByTimeAsync(100);
      peakBytes = Math.max(peakBytes, p.bufferedBytes);
      if (Date.now() - start > 60_000) break;
    }
    const outcomes = await Promise.all(callers);
    expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
    expect(outcomes).toHaveLength(2000);
    // What it held was about what the stream writes in half the TTL (5 s at 1 MiB/s, plus the
    // shard's first burst in the measured rate), not the 20 MB it was offered.
    expect(peakBytes).toBeLessThanOrEqual(8 * 1024 * 1024);
  });
});

describe('shares of the room', () => {
  /** A hash key on the first of four even shards, and one on the last. */
  const HOT = '0';
  const COLD = String(MAX_HASH_KEY);
  /** `count` puts of 10,000 B for the first shard at once, each ending in 'ok' or its error code. */
  const hotBurst = (p: KinesisProducer, count: number) =>
    Array.from({ length: count }, (_, i) =>
      p.put({ partitionKey: `k${i}`, explicitHashKey: HOT, data: Buffer.alloc(10_000, i % 251) }).then(
        () => 'ok',
        (e: { code: string }) => e.code,
      ),
    );
  /**
   * Runs the timers in steps of 100 ms until nothing is held or waiting (30 s at most), calling
   * `step` after each; returns the most bytes the producer held meanwhile.
   */
  const runUntilSettled = async (p: KinesisProducer, step: (elapsedMs: number) => void = () => {}) => {
    let peakBytes = 0;
    for (let t = 0; t < 30_000 && (p.outstandingRecords > 0 || p.waitingPuts > 0); t += 100) {
      await vi.advanceTimersByTimeAsync(100);
      step(t);
      peakBytes = Math.max(peakBytes, p.bufferedBytes);
    }
    return peakBytes;
  };
  /** The fake throttles every entry of stream `test`, and takes those of any other. */
  const throttleStreamTest = () => {
    fake.onPut = (call) => ({
      errorCodes: call.entries.map(() =>
        call.streamName === 'test' ? 'ProvisionedThroughputExceededException' : undefined,
      ),
    });
  };

  it("a hot shard's callers wait instead of its records expiring, and a put for another shard passes them", async () => {
    fake = new FakeKinesis(4);
    // The producer paces each shard at 1 MiB/s (rateLimit 100): a shard's share holds what it writes
    // in half the 4 s TTL, 2 MiB. The producer as a whole would take 8 MiB, 8 s of the hot shard.
    const p = producer({ aggregation: true, recordTtlMs: 4_000, maxBufferedTimeMs: 100 });
    await vi.advanceTimersByTimeAsync(10); // summary and shard map known
    const hot = hotBurst(p, 1_500);
    await vi.advanceTimersByTimeAsync(10);
    const cold = track(p.put({ partitionKey: 'cold', explicitHashKey: COLD, data: 'x' }));
    await vi.advanceTimersByTimeAsync(300);
    expect(cold.status).toBe('fulfilled');
    expect(p.waitingPuts).toBeGreaterThan(1_000);
    // A send for the hot shard is refused, naming the shard; one for the cold shard is taken.
    expect(() => p.send({ partitionKey: 'h', explicitHashKey: HOT, data: 'y' })).toThrow(
      /room for shard shardId-000000000000 of stream test is full/,
    );
    expect(p.send({ partitionKey: 'c', explicitHashKey: COLD, data: 'y' })).toBe(true);
    const peakBytes = await runUntilSettled(p);
    const outcomes = await Promise.all(hot);
    expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
    // The hot shard's share, 2 MiB, and the two small cold records.
    expect(peakBytes).toBeLessThanOrEqual(2 * 1024 * 1024 + 100);
  });

  it('a burst put before the shard map is known counts as one shard, then in the shard it goes to', async () => {
    fake = new FakeKinesis(4);
    const p = producer({ aggregation: true, recordTtlMs: 4_000, maxBufferedTimeMs: 100 });
    // At once: no summary, no shard map. The stream counts as one shard until its shards are known.
    const hot = hotBurst(p, 1_500);
    expect(p.bufferedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(p.waitingPuts).toBeGreaterThan(1_000);
    await vi.advanceTimersByTimeAsync(10); // summary and shard map known
    const cold = track(p.put({ partitionKey: 'cold', explicitHashKey: COLD, data: 'x' }));
    const peakBytes = await runUntilSettled(p, (t) => {
      if (t === 200) expect(cold.status).toBe('fulfilled');
    });
    const outcomes = await Promise.all(hot);
    expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
    // The records taken first now count in the hot shard's share: it takes no more until they go.
    expect(peakBytes).toBeLessThanOrEqual(2 * 1024 * 1024 + 100);
  });

  it('the rule on records held too long adds up over the shards to an eighth of the producer', async () => {
    fake = new FakeKinesis(8);
    fake.onPut = (call) => ({ errorCodes: call.entries.map(() => 'ProvisionedThroughputExceededException') });
    const p = heldTooLongProducer(16_000);
    await vi.advanceTimersByTimeAsync(0);
    const onShard = (i: number) => String(((MAX_HASH_KEY + 1n) / 8n) * BigInt(i));
    for (let i = 0; i < 16; i++) {
      p.send({ partitionKey: `s${i % 10}`, explicitHashKey: onShard(i % 8), data: 'x'.repeat(498) });
    }
    await vi.advanceTimersByTimeAsync(5_200);
    // Every shard's two records, 1,000 bytes, have waited past half the TTL: 8,000 in all, four times
    // an eighth of the producer. Each shard's part of the producer is 2,000 bytes, an eighth of it 250.
    expect(p.bufferedBytes).toBe(8_000);
    for (let i = 0; i < 8; i++) {
      expect(() => p.send({ partitionKey: `n${i}`, explicitHashKey: onShard(i), data: 'y' })).toThrow(
        BufferFullError,
      );
    }
  });

  it('past half the producer, a hot shard takes no more than its part of the records either', async () => {
    fake = new FakeKinesis(4);
    fake.hold();
    const p = producer({ aggregation: true, maxOutstandingRecords: 100, maxBufferedTimeMs: 0 });
    await vi.advanceTimersByTimeAsync(10);
    const hot = Array.from({ length: 300 }, (_, i) =>
      track(p.put({ partitionKey: `h${i}`, explicitHashKey: HOT, data: 'x' })),
    );
    await vi.advanceTimersByTimeAsync(10);
    // Half the producer (50 records) is anyone's; past it, the hot shard's part is a quarter, 25.
    expect(p.outstandingRecords).toBe(50);
    const cold = track(p.put({ partitionKey: 'c', explicitHashKey: COLD, data: 'y' }));
    await vi.advanceTimersByTimeAsync(10);
    expect(p.outstandingRecords).toBe(51);
    fake.release();
    await runUntilSettled(p);
    expect([...hot, cold].filter((s) => s.status !== 'fulfilled')).toEqual([]);
  });

  it.each([
    ['their shards known', false],
    ['their shards unknown (ListShards denied), each stream counting as one shard', true],
  ])(
    'a slow stream takes no more than its part of the producer once it is over half full: %s',
    async (_, denied) => {
      if (denied) fake.listShardsError = serviceError('AccessDeniedException', 400);
      throttleStreamTest();
      const p = producer({ maxBufferedBytes: 10_000, recordTtlMs: 10_000, maxBufferedTimeMs: 0 });
      await p.put({ streamName: 'other', partitionKey: 'k', data: 'first' }); // both streams in use
      // One shard each: half the producer is the slow stream's, and it takes no more once it is over half.
      const slow = Array.from({ length: 5 }, (_, i) =>
        track(p.put({ partitionKey: `slow${i}`, data: 'x'.repeat(2_000) })),
      );
      await vi.advanceTimersByTimeAsync(100);
      expect(p.waitingPuts).toBe(3);
      const other = track(p.put({ streamName: 'other', partitionKey: 'k', data: 'z'.repeat(3_000) }));
      await vi.advanceTimersByTimeAsync(100);
      expect(other.status).toBe('fulfilled');
      expect(slow.map((s) => s.status)).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);
    },
  );

  it('records taken before a late shard map count in their shard once it is known', async () => {
    fake = new FakeKinesis(4);
    fake.listShardsDelayMs = 50; // the summary comes first
    fake.hold();
    const p = producer({ aggregation: true, recordTtlMs: 4_000, maxBufferedTimeMs: 100 });
    const hot = hotBurst(p, 1_500);
    await vi.advanceTimersByTimeAsync(10);
    expect(fake.commands).toContain('DescribeStreamSummary');
    expect(p.bufferedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    await vi.advanceTimersByTimeAsync(100); // the shard map is known
    // The records taken into the stream's share now fill the hot shard's: it takes no more.
    expect(p.bufferedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    fake.release();
    await runUntilSettled(p);
    expect((await Promise.all(hot)).filter((o) => o !== 'ok')).toEqual([]);
  });

  it('before its summary answers, a stream counts bytes, not records: a burst of small records is taken', () => {
    const p = producer({ aggregation: true, maxOutstandingRecords: 50_000 });
    // At once, before any answer: a shard's records/s would allow 15,000 in half the 30 s TTL, but
    // aggregated (as they will be) their count does not bind.
    let taken = 1;
    while (taken < 20_000 && p.send({ partitionKey: `k${taken}`, data: 'x' })) taken++;
    expect(taken).toBe(20_000);
  });

  it('a stream that routes records itself has the room of its open shards', async () => {
    fake = new FakeKinesis(8);
    fake.summary = { RecordDistributionStrategy: 'AUTO' };
    fake.hold();
    // Unaggregated (AUTO), 1,000 records/s a shard: 8,000 records in half the 2 s TTL.
    const p = producer({ recordTtlMs: 2_000, maxOutstandingRecords: 20_000 });
    await vi.advanceTimersByTimeAsync(10);
    let taken = 1;
    while (taken < 20_000 && p.send({ partitionKey: `k${taken}`, data: 'x' })) taken++;
    expect(taken).toBe(8_000);
  });

  it('a stream whose records are held too long does not close the room for another stream', async () => {
    throttleStreamTest();
    // Records held over half of recordTtlMs (5 s) and over an eighth of the bytes close a share.
    const p = heldTooLongProducer(10_000);
    await vi.advanceTimersByTimeAsync(0); // the shard map is known
    const throttled = [1, 2].map(() => track(p.put({ partitionKey: 'slow', data: 'x'.repeat(1_000) })));
    await vi.advanceTimersByTimeAsync(5_100);
    expect(() => p.send({ partitionKey: 'k', data: 'z' })).toThrow(BufferFullError);
    const other = track(p.put({ streamName: 'other', partitionKey: 'k', data: 'z' }));
    await vi.advanceTimersByTimeAsync(100);
    expect(other.status).toBe('fulfilled');
    expect(p.send({ streamName: 'other', partitionKey: 'k', data: 'z' })).toBe(true);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(throttled).toMatchObject([1, 2].map(() => ({ status: 'rejected', error: { code: 'Expired' } })));
  });
});

describe('room and stuck records', () => {
  it('a record in a request that is slow but within requestTimeoutMs does not close the room', async () => {
    fake.hold();
    // Half the TTL is 4 s, less than a record may normally wait here (buffering + one request, 5 s).
    const p = producer({
      recordTtlMs: 8_000,
      requestTimeoutMs: 5_000,
      maxBufferedBytes: 10_000,
      maxBufferedTimeMs: 0,
    });
    await vi.advanceTimersByTimeAsync(0);
    p.send({ partitionKey: 'k', data: Buffer.alloc(2_000) });
    await vi.advanceTimersByTimeAsync(4_500);
    expect(fake.calls).toHaveLength(1); // still unanswered
    expect(p.send({ partitionKey: 'k2', data: 'x' })).toBe(true);
  });

  it('one record stuck in retries does not close the room for the others', async () => {
    fake = new FakeKinesis(4);
    fake.onPut = (call) => ({
      errorCodes: call.entries.map((e) => (e.PartitionKey === 'poison' ? 'InternalFailure' : undefined)),
    });
    const p = producer({
      recordTtlMs: 4000,
      maxBufferedTimeMs: 10,
      requestTimeoutMs: 500,
      retryMaxDelayMs: 200,
    });
    const poison = track(p.put({ partitionKey: 'poison', data: 'x' }));
    const refused: number[] = [];
    for (let i = 0; i < 40; i++) {
      await vi.advanceTimersByTimeAsync(100);
      try {
        p.send({ partitionKey: `healthy-${i}`, data: 'y' });
      } catch {
        refused.push(i);
      }
    }
    await vi.advanceTimersByTimeAsync(1000);
    expect(refused).toEqual([]);
    expect(poison).toMatchObject({ status: 'rejected', error: { code: 'Expired' } });
  });
});
