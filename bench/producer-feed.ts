/**
 * How the benchmarks drive `KinesisProducer`: one way to create it against a local endpoint, feeds that
 * keep it busy (fire and forget, or a promise per record), and its own count of what it wrote.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { BufferFullError, KinesisProducer, type KinesisProducerOptions } from '../src/index.js';
import { BENCH_STREAM } from './sdk-client.js';
import type { BenchRecord } from './workload.js';

/**
 * `rateLimit` for a stream without shard limits (the null sink): high enough that the producer's
 * per-shard pacing, at 1 MiB/s and 1,000 records/s a shard by default, never binds.
 */
export const UNPACED_RATE_LIMIT = 100_000;

/**
 * Records `sendUntil` sends between turns of the event loop while the producer has room: the
 * producer's timers and sockets run only between them. 1,000 sends take 1-3 ms.
 */
const SLICE = 1000;

/** A producer of `BENCH_STREAM` at a local plain-HTTP endpoint; its own client, otherwise `options`. */
export function benchProducer(
  endpoint: string,
  options: Omit<KinesisProducerOptions, 'streamName' | 'endpoint' | 'region' | 'credentials'> = {},
): KinesisProducer {
  return new KinesisProducer({
    ...options,
    streamName: BENCH_STREAM,
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
}

/** Cycles over a workload, so a feed can go on as long as it is asked to. */
export class RecordCycle {
  readonly #records: readonly BenchRecord[];
  #next = 0;

  constructor(records: readonly BenchRecord[]) {
    this.#records = records;
  }

  /** The record `next()` returns, without moving on. */
  peek(): BenchRecord {
    return this.#records[this.#next]!;
  }

  next(): BenchRecord {
    const record = this.peek();
    this.#next = (this.#next + 1) % this.#records.length;
    return record;
  }
}

/**
 * Feeds `producer` with `send()` and no callback until `until` (a performance.now() value) or until
 * `stop` aborts, as a fire-and-forget application would: in slices while `send` returns true, and
 * after `'drain'` once it returns false (or throws BufferFullError). Returns without waiting for the
 * records to settle.
 */
export function sendUntil(
  producer: KinesisProducer,
  records: RecordCycle,
  until: number,
  stop?: AbortSignal,
): Promise<void> {
  const take = () => {
    try {
      const room = producer.send(records.peek());
      records.next();
      return room;
    } catch (error) {
      // send() can throw BufferFullError right after it returned true: "full" means at a limit, but
      // a record fits only if all of its bytes do. The record was not taken: it goes after 'drain'.
      if (error instanceof BufferFullError) return false;
      throw error;
    }
  };
  return feedUntil(producer, take, until, stop);
}

/**
 * Like `sendUntil`, with `put()` and nobody awaiting it (a promise per record, as each caller of an
 * application awaiting its own put would have): in slices while no put has to wait for room, and
 * after `'drain'` once one does. Failures go to `onFailure`.
 */
export function putUntil(
  producer: KinesisProducer,
  records: RecordCycle,
  until: number,
  onFailure: (error: unknown) => void,
): Promise<void> {
  return feedUntil(
    producer,
    () => {
      producer.put(records.next()).catch(onFailure);
      return producer.waitingPuts === 0;
    },
    until,
  );
}

/** Calls `take` (which feeds one record and says whether the producer has room left) until `until`. */
async function feedUntil(
  producer: KinesisProducer,
  take: () => boolean,
  until: number,
  stop?: AbortSignal,
): Promise<void> {
  while (performance.now() < until && stop?.aborted !== true) {
    let room = true;
    for (let n = 0; n < SLICE && room; n++) room = take();
    if (room) await yieldToEventLoop();
    else await drained(producer, stop);
  }
}

/** Resolves on the producer's next 'drain', or when `stop` aborts. */
function drained(producer: KinesisProducer, stop: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      producer.off('drain', done);
      stop?.removeEventListener('abort', done);
      resolve();
    };
    producer.on('drain', done);
    stop?.addEventListener('abort', done);
  });
}

/**
 * Runs `feed`, then flushes, so that every record it fed has reached the stream: the user records the
 * producer wrote meanwhile (by its own count, `UserRecordsPut`).
 */
export async function writtenDuring(producer: KinesisProducer, feed: () => Promise<void>): Promise<number> {
  const before = recordsWritten(producer);
  await feed();
  await producer.flush();
  return recordsWritten(producer) - before;
}

/** User records the producer has written (its `UserRecordsPut` metric), over every stream. */
export function recordsWritten(producer: KinesisProducer): number {
  let records = 0;
  for (const stream of Object.values(producer.metrics().streams)) records += stream.UserRecordsPut.total.sum;
  return records;
}
