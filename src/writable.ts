import { Writable } from 'node:stream';
import {
  AbortedError,
  describeValue,
  InvalidOptionError,
  InvalidRecordError,
  type RecordFailedError,
} from './errors.js';
import {
  checkInteger,
  checkSignal,
  checkSignalOptions,
  checkStreamOptions,
  type OptionWarnings,
  optionNames,
  warnUnknownOptions,
} from './option-checks.js';
import type { KinesisProducer, ProducerRecord, SendCallback } from './producer.js';
import type { PutResult } from './result.js';
import { settlements } from './settlement.js';

/**
 * Options of {@link KinesisProducer.writable}. One it does not know is ignored, with a warning through
 * the producer's logger (once per name).
 */
export interface ProducerWritableOptions<T> {
  /** The field of each object holding its partition key, or a function returning it. */
  readonly partitionKey: (T extends object ? keyof T & string : never) | ((value: T) => string);
  /** Turns an object into the record's data. @default JSON.stringify */
  readonly serialize?: ((value: T) => Uint8Array | string) | undefined;
  /** Gives an object an explicit hash key. */
  readonly explicitHashKey?: ((value: T) => string | undefined) | undefined;
  /** Send to this stream instead of the producer's (required when the producer has none). */
  readonly streamName?: string | undefined;
  /** Send to the stream with this ARN instead of the producer's. */
  readonly streamARN?: string | undefined;
  /** Objects the Writable itself buffers before `write()` returns false. @default 1024 */
  readonly highWaterMark?: number | undefined;
}

/**
 * Options of {@link KinesisProducer.putAll}. One it does not know is ignored, with a warning through
 * the producer's logger (once per name).
 */
export interface PutAllOptions {
  /** Stops reading the source: `putAll` rejects with {@link AbortedError}; records taken still settle. */
  readonly signal?: AbortSignal | undefined;
}

/** The names of the options above, so that a misspelt one is pointed out (see warnUnknownOptions). */
const WRITABLE_NAMES = optionNames<ProducerWritableOptions<unknown>>()('writable', [
  'partitionKey',
  'serialize',
  'explicitHashKey',
  'streamName',
  'streamARN',
  'highWaterMark',
]);
const PUT_ALL_NAMES = optionNames<PutAllOptions>()('putAll', ['signal']);

/** What {@link KinesisProducer.putAll} resolves with. */
export interface PutAllResult {
  /** Records read from the source and written. */
  readonly records: number;
}

/**
 * Hands a record to the producer as soon as its shard's share of the room has room, and waits until
 * that share has room for another: undefined when there is nothing to wait for, else a promise that
 * fulfils when the waits are over (see KinesisProducer's `#sendWhenRoom`).
 */
export type SendWhenRoom = (
  record: ProducerRecord,
  callback: SendCallback,
  signal: AbortSignal | undefined,
  onTaken?: () => void,
) => Promise<void> | undefined;

/**
 * The records one writer (a `writable()` or a `putAll()`) handed to the producer that have not
 * settled, and a wait for none to be left: what the writer's end waits for. (A `flush()` would wait
 * for every record of the producer, another stream's stuck ones too, and send every buffer at once,
 * other callers' records too, which then lose their batching.)
 */
class OwnRecords {
  #pending = 0;
  #whenNone: (() => void)[] = [];

  /**
   * Hands `record` to the producer through `sendWhenRoom`, counted until its callback runs, or until
   * it turns out not to be taken (thrown at once, or the wait rejected: its callback never runs).
   */
  send(
    sendWhenRoom: SendWhenRoom,
    record: ProducerRecord,
    callback: SendCallback,
    signal: AbortSignal | undefined,
    onTaken?: () => void,
  ): Promise<void> | undefined {
    this.#pending++;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      if (--this.#pending > 0) return;
      const waiters = this.#whenNone.splice(0);
      for (const wake of waiters) wake();
    };
    let waiting: Promise<void> | undefined;
    try {
      waiting = sendWhenRoom(
        record,
        (error, result) => {
          done();
          callback(error, result as PutResult);
        },
        signal,
        onTaken,
      );
    } catch (error) {
      done();
      throw error;
    }
    return waiting?.catch((error: unknown) => {
      done();
      throw error;
    });
  }

  /** Fulfils once every record handed over so far has settled (at once if none is pending). */
  settled(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#whenNone.push(resolve));
  }
}

/** What a `writable()` option function threw, as an error the stream can end with (`done(undefined)` is success). */
function thrownError(thrown: unknown): unknown {
  return thrown
    ? thrown
    : new Error(`writable(): turning an object into a record threw ${describeValue(thrown)}`, {
        cause: thrown,
      });
}

/**
 * The partition key in the field `field` of an object written to the Writable. Refused here, where the
 * field is known: the producer's own error would name only `partitionKey`.
 */
function keyField(value: unknown, field: string): string {
  const key: unknown =
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[field] : undefined;
  if (typeof key !== 'string') {
    throw new InvalidRecordError(
      'partitionKey',
      `The Writable takes each object's partition key from its field \`${field}\`, which must be a string; received ${describeValue(key)}.`,
    );
  }
  return key;
}

/** Read through a call, so that TypeScript does not narrow it across an await. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/**
 * An object-mode Writable feeding the producer: each object becomes a record. It honours the
 * producer's backpressure (a write completes once the producer has taken the record), works with
 * `stream.pipeline`, waits for its own records to settle in `final`, and fails with the first record
 * that fails.
 */
export function createProducerWritable<T>(
  producer: KinesisProducer,
  options: ProducerWritableOptions<T>,
  warnings: OptionWarnings,
  sendWhenRoom: SendWhenRoom,
): Writable {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', 'an object with at least partitionKey', options);
  }
  const {
    partitionKey,
    serialize = JSON.stringify as (value: T) => string,
    explicitHashKey,
    streamName,
    streamARN,
  } = options;
  if (typeof partitionKey !== 'string' && typeof partitionKey !== 'function') {
    throw new InvalidOptionError('partitionKey', 'a field name or a function', partitionKey);
  }
  if (typeof serialize !== 'function') throw new InvalidOptionError('serialize', 'a function', serialize);
  if (explicitHashKey !== undefined && typeof explicitHashKey !== 'function') {
    throw new InvalidOptionError('explicitHashKey', 'a function', explicitHashKey);
  }
  checkStreamOptions(streamName, streamARN);
  if (options.highWaterMark !== undefined) {
    checkInteger('highWaterMark', options.highWaterMark, 0, Number.MAX_SAFE_INTEGER);
  }
  warnUnknownOptions(options, WRITABLE_NAMES, warnings);
  const keyOf =
    typeof partitionKey === 'function' ? partitionKey : (value: T) => keyField(value, partitionKey);
  let failure: RecordFailedError | undefined;
  let aborter: AbortController | undefined;
  const own = new OwnRecords();

  const toRecord = (value: T): ProducerRecord => ({
    partitionKey: keyOf(value),
    data: serialize(value),
    ...(explicitHashKey === undefined ? {} : { explicitHashKey: explicitHashKey(value) }),
    ...(streamName === undefined ? {} : { streamName }),
    ...(streamARN === undefined ? {} : { streamARN }),
  });

  const writable: Writable = new Writable({
    objectMode: true,
    highWaterMark: options.highWaterMark ?? 1024,
    write(value: T, _encoding, done) {
      const onSettled: SendCallback = (error) => {
        if (error === null) return;
        if (failure === undefined && !writable.destroyed) {
          failure = error;
          writable.destroy(error);
        } else {
          // The stream already ended in an error (an earlier record's, the source's, or a destroy()
          // of its own): nobody hears of this one through it.
          settlements.get(producer)?.unheard(error);
        }
      };
      let waiting: Promise<void> | undefined;
      try {
        aborter ??= new AbortController();
        waiting = own.send(sendWhenRoom, toRecord(value), onSettled, aborter.signal);
      } catch (error) {
        done(thrownError(error) as Error);
        return;
      }
      if (waiting === undefined) done();
      else
        waiting.then(
          () => done(),
          (error: Error) => done(error),
        );
    },
    final(done) {
      // Its own records, sent with their batches; callbacks run first, so `failure` is set by then.
      void own.settled().then(() => done(failure));
    },
    destroy(error, done) {
      // Stop waiting for room on behalf of a stream that is gone.
      aborter?.abort(error ?? new Error('stream destroyed'));
      done(error);
    },
  });
  return writable;
}

/**
 * Writes every record of an iterable with the producer's backpressure and resolves once all have
 * settled. Rejects, once the records taken have settled, with what stopped it first: a record that
 * failed, a record that could not be taken (`InvalidRecordError`), or the source throwing.
 *
 * The source is read one record at a time, only once the last one was taken: after the first failure
 * no further record is read, nor written if its read was under way or it waits for room (those
 * waits end at the failure). (One waiting for room may be let in by the room the failed record frees:
 * the failure is told a moment after.) When `signal` aborts, a wait for the source or for room ends at
 * once (the record it was for is not written) and it rejects. Either way the source is then closed: a Node
 * stream is destroyed, anything else gets `return()` (a generator waiting on something of its own
 * runs its `finally` only once that wait ends).
 */
export async function putAll(
  producer: KinesisProducer,
  source: AsyncIterable<ProducerRecord> | Iterable<ProducerRecord>,
  options: PutAllOptions | undefined,
  warnings: OptionWarnings,
  sendWhenRoom: SendWhenRoom,
): Promise<PutAllResult> {
  checkSignalOptions('options', options);
  const { signal } = options ?? {};
  checkSignal('signal', signal);
  if (!isIterable(source)) {
    throw new InvalidOptionError('source', 'an iterable or async iterable of records', source);
  }
  if (options !== undefined && options !== null) warnUnknownOptions(options, PUT_ALL_NAMES, warnings);
  // Records taken by the producer, and records read from the source (the index of the next one).
  let taken = 0;
  let readCount = 0;
  const countTaken = () => {
    taken++;
  };
  const own = new OwnRecords();
  // Ends a wait for the source, or for room (the record it is for is then not taken), at once: the
  // first failure, or an abort of `signal`.
  const interrupt = new AbortController();
  // The first record to fail. It is what putAll rejects with, unless something else stopped it
  // first; any other failure is told as unheard (warned about unless 'recordFailed' has listeners).
  let failure: RecordFailedError | undefined;
  let answered = false;
  const unheard = (error: RecordFailedError) => settlements.get(producer)?.unheard(error);
  const onSettled: SendCallback = (error) => {
    if (error === null) return;
    if (failure === undefined && !answered) {
      failure = error;
      // Also while the source has nothing to give: a live feed may not yield for a long time.
      interrupt.abort();
    } else {
      unheard(error);
    }
  };
  /** Ends putAll with `error`; the first failure, if it is not that error, is nobody's to hear. */
  const rejectWith = (error: unknown): never => {
    answered = true;
    if (failure !== undefined && failure !== error) unheard(failure);
    throw error;
  };
  // As `for await` chooses: the async iterator if there is one, else the sync one.
  const sync = typeof (source as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function';
  const iterator = sync
    ? (source as Iterable<ProducerRecord>)[Symbol.iterator]()
    : (source as AsyncIterable<ProducerRecord>)[Symbol.asyncIterator]();
  // Only once the source gave an iterator (its getter may throw): removed in the `finally` below.
  const stopListening = signal === undefined ? undefined : onAbort(signal, () => interrupt.abort());
  // Done with: read to its end, or its next() threw (as `for await`, it is then not closed).
  let finished = false;
  // What stopped the loop other than a record's failure or the signal: a record that could not be
  // taken (invalid), or the source throwing; with the failure, if any, that came before it.
  let stopped: { error: unknown; failedBefore: RecordFailedError | undefined } | undefined;
  try {
    while (failure === undefined && signal?.aborted !== true) {
      let read: Promise<IteratorResult<ProducerRecord>> | undefined;
      let next: IteratorResult<ProducerRecord> | undefined;
      try {
        read = Promise.resolve(iterator.next());
        next = await unlessAborted(read, interrupt.signal);
      } catch (error) {
        finished = true;
        throw error;
      }
      if (next === undefined) {
        // Not waited for: a promise it gives as the value (a sync iterable's) must not go unhandled.
        if (sync)
          read.then(
            (late) => void Promise.resolve(late.value).catch(() => {}),
            () => {},
          );
        break;
      }
      if (next.done === true) {
        finished = true;
        break;
      }
      // As `for await` does, a sync iterable's values may be promises (waited for unless aborted).
      let record = next.value;
      if (sync) {
        record = (await unlessAborted(Promise.resolve(next.value), interrupt.signal)) as ProducerRecord;
        if (isAborted(interrupt.signal)) break;
      }
      // A record that failed while this one was read: none goes after it (they may be in order).
      if (failure !== undefined) break;
      let waiting: Promise<void> | undefined;
      try {
        waiting = own.send(sendWhenRoom, record, onSettled, interrupt.signal, countTaken);
      } catch (error) {
        // Which record of the source, as aggregateAll says (its index, from 0).
        if (!(error instanceof InvalidRecordError)) throw error;
        throw new InvalidRecordError(error.field, `Record ${readCount} of the source: ${error.message}`, {
          cause: error,
        });
      }
      readCount++;
      // The first failure (or an abort) ends the wait: a record still waiting for room is not taken,
      // and a wait for room for the next one leaves the line.
      if (waiting !== undefined) await unlessAborted(waiting, interrupt.signal);
    }
  } catch (error) {
    if (!(error instanceof AbortedError && signal?.aborted === true)) {
      stopped = { error, failedBefore: failure };
    }
  } finally {
    stopListening?.();
    if (!finished) close(source, iterator);
  }
  if (signal?.aborted) rejectWith(new AbortedError(signal.reason, abortedAfter(taken)));
  // Callbacks run before this wait ends: every record taken has settled by then. An abort ends this
  // wait too.
  await unlessAborted(own.settled(), signal);
  if (signal?.aborted) rejectWith(new AbortedError(signal.reason, abortedAfter(taken)));
  if (stopped !== undefined) rejectWith(stopped.failedBefore ?? stopped.error);
  if (failure !== undefined) rejectWith(failure);
  return { records: taken };
}

/**
 * Closes a source putAll stopped reading early, without waiting for it. A Node stream is destroyed:
 * the `return()` of its iterator waits behind a read under way, which an idle source (a socket, a
 * queue) may not answer for a long time. Anything else gets `return()`; what its cleanup throws (a
 * generator's `finally`), at once or later, is not what stopped putAll.
 */
function close(source: object, iterator: Iterator<unknown> | AsyncIterator<unknown>): void {
  try {
    const stream = source as { destroy?: unknown; read?: unknown; pipe?: unknown };
    if (
      typeof stream.destroy === 'function' &&
      typeof stream.read === 'function' &&
      typeof stream.pipe === 'function'
    ) {
      (stream.destroy as () => void).call(source);
      return;
    }
    Promise.resolve(iterator.return?.()).catch(() => {});
  } catch {}
}

/** What `promise` fulfils with, or undefined as soon as `signal` aborts (whichever comes first). */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    // Not waited for: a rejection of it must not go unhandled.
    promise.catch(() => {});
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const stopListening = onAbort(signal, () => resolve(undefined));
    promise.then(
      (value) => {
        stopListening();
        resolve(value);
      },
      (error: unknown) => {
        stopListening();
        reject(error);
      },
    );
  });
}

/** The waits on each signal, behind the one 'abort' listener they share. */
const abortWaits = new WeakMap<AbortSignal, { waits: Set<() => void>; listener: () => void }>();

/**
 * Calls `wait` once `signal` aborts, and returns what stops that. One listener per signal however
 * many waits share it: concurrent putAll calls given one shutdown signal would otherwise pass Node's
 * limit of 10 and have it warn of a leak.
 */
function onAbort(signal: AbortSignal, wait: () => void): () => void {
  let entry = abortWaits.get(signal);
  if (entry === undefined) {
    const waits = new Set<() => void>();
    const listener = () => {
      abortWaits.delete(signal);
      for (const each of waits) each();
    };
    signal.addEventListener('abort', listener, { once: true });
    entry = { waits, listener };
    abortWaits.set(signal, entry);
  }
  const { waits, listener } = entry;
  // A function of its own per wait: the same `wait` passed twice is two waits.
  const own = () => wait();
  waits.add(own);
  return () => {
    if (!waits.delete(own) || waits.size > 0 || abortWaits.get(signal)?.waits !== waits) return;
    abortWaits.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}

function isIterable(value: unknown): value is Iterable<unknown> | AsyncIterable<unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const iterable = value as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
  return (
    typeof iterable[Symbol.iterator] === 'function' || typeof iterable[Symbol.asyncIterator] === 'function'
  );
}

/** The message of putAll's AbortedError: which records are in the air. */
function abortedAfter(taken: number): string {
  return `putAll() was aborted after taking ${taken} record(s): those are not awaited, and still settle (written or failed) through the producer.`;
}
