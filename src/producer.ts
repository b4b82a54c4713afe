import { setMaxListeners } from 'node:events';
import type { Writable } from 'node:stream';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { EventEmitter } from 'eventemitter3';
import { MAX_RECORD_BYTES_LIMIT } from './aggregator.js';
import { createClient, warnIfHttp2ToPlainHttp } from './client.js';
import { ArrivalClock } from './clock.js';
import { CredentialRenewal } from './credential-renewal.js';
import { Dispatcher } from './dispatcher.js';
import {
  AbortedError,
  BufferFullError,
  describeValue,
  ErrorCode,
  InvalidOptionError,
  InvalidRecordError,
  ProducerClosedError,
  RecordFailedError,
} from './errors.js';
import { holdAtExit, releaseAtExit, type Unsettled } from './exit-warning.js';
import { FlushBarrier } from './flush-barrier.js';
import { decimalOf, hashOf, type KnownPartitionKey, PartitionKeyCache } from './key-cache.js';
import { SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND } from './limiter.js';
import { emitToEach, thrownByApp } from './listeners.js';
import type { Logger } from './logger.js';
import { type MetricsSnapshot, ProducerMetrics } from './metrics.js';
import {
  checkInteger,
  checkSignal,
  checkSignalOptions,
  type OptionWarnings,
  optionNames,
  warnUnknownOptions,
} from './option-checks.js';
import { type KinesisProducerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { PendingRecord, type Settler } from './pending-record.js';
import { ResponseHandler } from './response-handler.js';
import { type PutResult, unansweredAttempt } from './result.js';
import { Room, type RoomShare } from './room.js';
import { Sender } from './sender.js';
import { Settlement, settlements } from './settlement.js';
import { ShardMap } from './shard-map.js';
import { StreamSummary } from './stream-info.js';
import { type PipelineHost, StreamPipeline } from './stream-pipeline.js';
import { arnRegion, MAX_STREAM_ARN_LENGTH, streamIdExpected, streamRef } from './stream-ref.js';
import { assertRecordObject, newRecordFacts, type UserRecord, validateUserRecord } from './user-record.js';
import {
  createProducerWritable,
  type ProducerWritableOptions,
  type PutAllOptions,
  type PutAllResult,
  putAll,
} from './writable.js';

/** A record for the producer: a user record, optionally bound for a stream other than the default. */
export interface ProducerRecord extends UserRecord {
  /** Send this record to this stream instead of the producer's `streamName`/`streamARN`. */
  readonly streamName?: string | undefined;
  /** Send this record to the stream with this ARN instead of the producer's. */
  readonly streamARN?: string | undefined;
}

/**
 * Callback of {@link KinesisProducer.send}: called once, asynchronously, with an error or a result.
 * `result` is set exactly when `error` is null (a type cannot say so and still take callbacks of one
 * parameter: write `result!` once `error` is checked).
 */
export type SendCallback = (error: RecordFailedError | null, result?: PutResult) => void;

/** Events of {@link KinesisProducer}. */
export interface KinesisProducerEvents {
  /**
   * A record failed for good (also emitted for records whose promise or callback got the error).
   * When a record sent without a callback fails and nobody listens, the producer logs a warning.
   */
  recordFailed: (error: RecordFailedError) => void;
  /**
   * The producer was full (a `send` returned false or threw {@link BufferFullError}, or a `put` had to
   * wait) and is now at most half full, like `Writable`'s `'drain'` — and so is the share of the room
   * of every shard a `send` was refused for, with no `put` waiting for it, taking now a record as
   * large as the largest refused for it (up to half the producer's bytes and the share's part).
   */
  drain: () => void;
}

/**
 * Options of {@link KinesisProducer.put}. One it does not know is ignored, with a warning through the
 * producer's logger (once per name).
 */
export interface PutOptions {
  /**
   * Ends the wait for room when the producer is full: the put rejects with {@link AbortedError} and
   * the record is not taken. A record already taken is not recalled.
   */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options of {@link KinesisProducer.close}. One it does not know is ignored, with a warning through the
 * producer's logger (once per name).
 */
export interface CloseOptions {
  /**
   * Longest to wait for records to settle; when it passes, the records still unsettled fail with
   * code `CloseTimeout` and the producer shuts down. Default: wait for every record. Each ends by its
   * `recordTtlMs`, which for a `put` waiting for room starts only once it is taken: with many puts
   * waiting, close can take several TTLs, so a shutdown with a deadline should pass one.
   */
  readonly timeoutMs?: number | undefined;
  /** Like `timeoutMs`, on the signal's abort. */
  readonly signal?: AbortSignal | undefined;
}

/** The names of each method's options, so that a misspelt one is pointed out (see warnUnknownOptions). */
const PUT_NAMES = optionNames<PutOptions>()('put', ['signal']);
const CLOSE_NAMES = optionNames<CloseOptions>()('close', ['timeoutMs', 'signal']);

/** What validation measured of a record that waits for room: kept until it is taken. */
interface Prepared {
  readonly partitionKey: KnownPartitionKey;
  readonly data: Uint8Array | string;
  readonly dataBytes: number;
  readonly explicitHashKey: string | undefined;
  readonly hashKey: bigint;
}

/**
 * Writes records to Kinesis Data Streams the way the Kinesis Producer Library does — buffering,
 * KPL aggregation per predicted shard, PutRecords batching, per-record retries until a deadline —
 * in-process, with a precise answer for every record.
 *
 * @example
 * ```ts
 * const producer = new KinesisProducer({ streamName: 'orders', region: 'eu-west-1' });
 * const { shardId, sequenceNumber } = await producer.put({ partitionKey: 'user-1', data: '{"total":3}' });
 * producer.send({ partitionKey: 'user-2', data: payload }, (err, result) => { ... });
 * await producer.close();
 * ```
 */
// The stages live in their own modules: validation (`user-record.ts`), room (`room.ts`), the
// per-stream pipeline (`stream-pipeline.ts`: summary, shard map, aggregation, collection, rate
// limiting), sending (`dispatcher.ts`, `sender.ts`), classifying answers (`response-handler.ts`)
// and settling (`settlement.ts`). This class wires them and owns the lifecycle.
export class KinesisProducer extends EventEmitter<KinesisProducerEvents> {
  readonly #options: ResolvedOptions;
  readonly #logger: Logger;
  /** Unknown options of its methods told through its logger: each name once. */
  readonly #optionWarnings: OptionWarnings;
  readonly #client: KinesisClient;
  readonly #ownsClient: boolean;
  readonly #keys = new PartitionKeyCache();
  readonly #facts = newRecordFacts();
  /** The key and hash key of the record `#prepare` measured last (scratch, like `#facts`). */
  #partitionKey: KnownPartitionKey | undefined;
  #hashKey = 0n;
  readonly #room: Room;
  /** When records arrive: one clock reading per burst of puts and sends. */
  readonly #arrivals: ArrivalClock;
  readonly #barrier = new FlushBarrier();
  readonly #metrics: ProducerMetrics;
  readonly #settlement: Settlement;
  readonly #responses: ResponseHandler;
  readonly #dispatcher: Dispatcher;
  /** What the warning at exit reads, and whether it is held (see exit-warning.ts). */
  readonly #atExit: Unsettled;
  #heldAtExit = false;
  readonly #host: PipelineHost;
  readonly #pipelinesByName = new Map<string, StreamPipeline>();
  readonly #pipelinesByARN = new Map<string, StreamPipeline>();
  readonly #pipelineList: StreamPipeline[] = [];
  /** The pipeline `#prepare` just created for the record it measured (a stream new to the producer). */
  #created: StreamPipeline | undefined;
  /** Pipelines to flush once the waiters admitted in this turn are in (see #flushSoon). */
  readonly #toFlush = new Set<StreamPipeline>();
  readonly #defaultPipeline: StreamPipeline | undefined;
  #closing = false;
  /**
   * Aborted by shutdown: ends the streams' metadata calls in progress. Each call in progress listens
   * to it, two per stream at most, so Node's warning at ten listeners does not apply.
   */
  readonly #stopped = stopController();
  #closePromise: Promise<void> | undefined;
  /** close() has finished: records settled, producer shut down. */
  #closed = false;
  /** The earliest close() deadline's timer, and when it fires. */
  #closeTimer: unknown;
  #closeTimerAt = Number.POSITIVE_INFINITY;
  /** The signals close() was given while under way, each with its one listener. */
  readonly #closeSignals = new Map<AbortSignal, () => void>();

  /**
   * Creates a producer. With `streamName` or `streamARN`, it starts reading that stream's summary and
   * shard map (DescribeStreamSummary, ListShards) in the background at once; another stream's are read
   * from its first record on.
   *
   * @throws {InvalidOptionError} for an option that is wrong or contradicts another, naming it, what
   * it must be and the value received. Unknown options are ignored with a warning through `logger`.
   */
  constructor(options: KinesisProducerOptions) {
    super();
    const resolved = resolveOptions(options);
    this.#options = resolved;
    this.#logger = resolved.logger;
    this.#optionWarnings = { logger: this.#logger, told: new Set() };
    this.#ownsClient = resolved.client === undefined;
    this.#client = resolved.client ?? createClient(resolved);
    if (!this.#ownsClient) warnIfHttp2ToPlainHttp(this.#client, this.#logger);
    const clock = resolved.clock;
    this.#arrivals = new ArrivalClock(clock);
    this.#room = new Room(
      resolved,
      () => clock.now(),
      () => this.#emitSafely('drain'),
    );
    this.#metrics = new ProducerMetrics(resolved.meter, () =>
      Array.from(this.#gauges(), ([stream, gauge]) => ({ stream, ...gauge })),
    );
    this.#settlement = new Settlement(this, this.#logger, this.#metrics, clock, (item) =>
      this.#settled(item),
    );
    settlements.set(this, this.#settlement);
    this.#responses = new ResponseHandler(
      resolved,
      this.#metrics,
      this.#settlement,
      new CredentialRenewal(this.#client),
      () => this.#dispatcher.pump(),
    );
    const room = this.#room;
    this.#atExit = {
      logger: this.#logger,
      get records() {
        return room.records;
      },
      get waiting() {
        return room.waiting;
      },
    };
    this.#dispatcher = new Dispatcher(
      new Sender(this.#client, clock, resolved, () => this.#dispatcher.pump()),
      clock,
      () => this.#pipelineList,
      (pipeline, batch, outcome) => this.#responses.handle(pipeline, batch, outcome),
    );
    this.#host = {
      options: resolved,
      fail: (stream, item, code, message, shardId, attempts, cause) =>
        this.#settlement.fail(stream, item, code, message, shardId, attempts, cause),
      stored: (stream, record, shardId, sequenceNumber) =>
        this.#settlement.succeed(stream, record, shardId, sequenceNumber),
      attemptFailed: (stream, shardId, code, count, now) =>
        this.#metrics.errors(stream.label, shardId, code, count, now),
      storedUnread: (stream, record, shardId, now) =>
        this.#metrics.kinesisRecordStored(stream.label, shardId, record.sizeBytes, now),
      openShards: (stream, open, now) => this.#metrics.openShards(stream.label, open, now),
      now: () => clock.now(),
      wakeAt: (at) => this.#dispatcher.wakeAt(at),
      hashKeyDecimal: (item) => item.explicitHashKey ?? decimalOf(item.partitionKeyEntry),
      room: this.#room,
    };
    const { streamName, streamARN } = resolved;
    this.#defaultPipeline =
      streamName !== undefined || streamARN !== undefined
        ? this.#createPipeline(streamName, streamARN, true)
        : undefined;
  }

  /** Records accepted and not yet settled. */
  get outstandingRecords(): number {
    return this.#room.records;
  }

  /** Bytes (partition keys + data) of the records accepted and not yet settled. */
  get bufferedBytes(): number {
    return this.#room.bytes;
  }

  /**
   * Calls to `put` waiting for room (the producer, or their shard's share of it, is full), and
   * `writable()` and `putAll()` waiting for room for their next record.
   */
  get waitingPuts(): number {
    return this.#room.waiting;
  }

  /**
   * Writes a record and resolves once it is stored, with its shard, sequence number and attempts.
   * Rejects with {@link RecordFailedError} (carrying the record, its code and every attempt) if it
   * cannot be written before `recordTtlMs`, or at once for errors that retrying cannot fix.
   *
   * When the producer is full (`maxOutstandingRecords`, `maxBufferedBytes`), or the share of the room
   * of the record's shard is (what the shard writes in half of `recordTtlMs`; see the README), it
   * waits for room — behind earlier puts for the same shard, and behind the first put that waits for
   * the producer as a whole; the record's `recordTtlMs` starts once it is taken — or, with
   * `onFull: 'reject'`, rejects with
   * {@link BufferFullError}. Invalid records reject at once with {@link InvalidRecordError}; after
   * `close()`, with {@link ProducerClosedError}.
   */
  put(record: ProducerRecord, options?: PutOptions): Promise<PutResult> {
    let pipeline: StreamPipeline;
    // Read once, as the record is: a getter that answers differently later changes nothing.
    let signal: AbortSignal | undefined;
    try {
      // Before the record: a record for a new stream would start its metadata calls.
      if (options !== undefined && options !== null) {
        checkSignalOptions('options', options);
        signal = options.signal;
        checkSignal('signal', signal);
        warnUnknownOptions(options, PUT_NAMES, this.#optionWarnings);
      }
      pipeline = this.#prepare(record);
    } catch (error) {
      return Promise.reject(error);
    }
    const promise = new Promise<PutResult>(capturePromiseFunctions);
    const { resolve, reject } = captured;
    captured.resolve = captured.reject = noop;
    const facts = this.#facts;
    const bytes = facts.partitionKeyBytes + facts.dataBytes;
    const now = this.#arrivals.now();
    const share = pipeline.shareFor(this.#hashKey);
    if (this.#room.hasRoomFor(bytes, share, now)) {
      this.#takeMeasured(record, pipeline, share, resolve, reject, undefined, now);
      return promise;
    }
    if (this.#options.onFull === 'reject') {
      this.#room.owe(share, bytes);
      const full = this.#fullError(bytes, share);
      this.#dropIfCreated(pipeline);
      return Promise.reject(full);
    }
    if (signal?.aborted) {
      this.#dropIfCreated(pipeline);
      return Promise.reject(new AbortedError(signal.reason));
    }
    try {
      this.#waitForRoom(
        record,
        pipeline,
        bytes,
        share,
        { resolve, reject, callback: undefined },
        signal,
        noop,
        reject as (error: unknown) => void,
      );
    } catch (error) {
      // A signal that refused the room's listener: nothing waits.
      this.#dropIfCreated(pipeline);
      return Promise.reject(error);
    }
    return promise;
  }

  /**
   * Queues the record `#prepare` just measured in the room until `share` has room for its `bytes`,
   * then takes it (calling `admitted(true)`), answering through `settler`. An abort of `signal` first
   * ends the wait with {@link AbortedError} through `aborted`; a close that gives up on it fails it
   * through `settler`, and calls `admitted(false)`. Throws if `signal` refuses the listener.
   */
  #waitForRoom(
    record: ProducerRecord,
    pipeline: StreamPipeline,
    bytes: number,
    share: RoomShare,
    settler: Settler,
    signal: AbortSignal | undefined,
    admitted: (taken: boolean) => void,
    aborted: (error: AbortedError) => void,
  ): void {
    // What the shared validation scratch holds now, kept for when there is room.
    const facts = this.#facts;
    const prepared: Prepared = {
      partitionKey: this.#partitionKey!,
      data: facts.data,
      dataBytes: facts.dataBytes,
      explicitHashKey: facts.explicitHashKey,
      hashKey: this.#hashKey,
    };
    // It counts for flush() from now: a flush called while it waits covers it.
    const epoch = this.#barrier.count();
    try {
      this.#room.wait(
        bytes,
        share,
        {
          admit: (admittedTo, now) => {
            const { partitionKey, data, dataBytes, explicitHashKey, hashKey } = prepared;
            // The room read the clock just now: that reading serves, and later arrivals go on from it.
            const takenAt = this.#arrivals.observe(now);
            this.#take(
              record,
              pipeline,
              partitionKey,
              data,
              dataBytes,
              explicitHashKey,
              hashKey,
              takenAt,
              epoch,
              admittedTo,
              settler.resolve,
              settler.reject,
              settler.callback,
            );
            // A flush() was asked for while it waited: send it at once.
            if (epoch < this.#barrier.epoch) this.#flushSoon(pipeline);
            admitted(true);
          },
          share: () => pipeline.shareFor(prepared.hashKey),
          cancel: (why, reason) => {
            this.#barrier.release(epoch);
            this.#idleIfNothingPending();
            if (why === 'aborted') {
              aborted(new AbortedError(reason));
            } else {
              this.#settlement.deliver(settler, this.#closeTimeoutError(pipeline, record, reason as string));
              admitted(false);
            }
          },
        },
        signal,
      );
    } catch (error) {
      // A signal that refused the room's listener: nothing waits, and flush() does not wait for it.
      this.#barrier.release(epoch);
      throw error;
    }
  }

  /**
   * For `writable()` and `putAll()`: takes `record` (answering through `callback`) once its shard's
   * share of the room has room, waiting in line behind earlier puts for the same shard — not for the
   * whole producer's `'drain'`, which a stream stuck elsewhere would hold back. Like `send()`
   * returning false, it then also waits until that share has room for another record this size, so
   * that the caller builds its next record only once it would be taken. Undefined when nothing is to
   * wait for; else a promise that fulfils when the waits are over. An abort of `signal` before the
   * record is taken rejects it with {@link AbortedError}; after, it just ends the wait. Throws what
   * `send` throws for the record, except {@link BufferFullError}.
   */
  #sendWhenRoom(
    record: ProducerRecord,
    callback: SendCallback,
    signal: AbortSignal | undefined,
    onTaken?: () => void,
  ): Promise<void> | undefined {
    const pipeline = this.#prepare(record);
    const facts = this.#facts;
    const bytes = facts.partitionKeyBytes + facts.dataBytes;
    const hashKey = this.#hashKey;
    const now = this.#arrivals.now();
    const share = pipeline.shareFor(hashKey);
    const roomForNext = (): Promise<void> | undefined =>
      this.#room.hasRoomFor(bytes, pipeline.shareFor(hashKey), this.#options.clock.now())
        ? undefined
        : this.#roomFor(bytes, pipeline, hashKey, signal);
    if (this.#room.hasRoomFor(bytes, share, now)) {
      this.#takeMeasured(record, pipeline, share, undefined, undefined, callback, now);
      onTaken?.();
      return roomForNext();
    }
    if (signal?.aborted) {
      this.#dropIfCreated(pipeline);
      return Promise.reject(new AbortedError(signal.reason));
    }
    return new Promise<void>((resolve, reject) => {
      const settler = { resolve: undefined, reject: undefined, callback };
      this.#waitForRoom(
        record,
        pipeline,
        bytes,
        share,
        settler,
        signal,
        (taken) => {
          if (taken) onTaken?.();
          resolve(taken ? roomForNext() : undefined);
        },
        reject,
      );
    });
  }

  /**
   * Fulfils once the share of `hashKey` has room for a record of `bytes`, in line with the puts waiting
   * for it, taking nothing; also when `signal` aborts or a close gives up on the waits.
   */
  #roomFor(
    bytes: number,
    pipeline: StreamPipeline,
    hashKey: bigint,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        // It leaves the room's line without becoming a record: the last thing pending, maybe.
        this.#idleIfNothingPending();
        resolve();
      };
      try {
        this.#room.wait(
          bytes,
          pipeline.shareFor(hashKey),
          { admit: done, cancel: done, share: () => pipeline.shareFor(hashKey) },
          signal,
        );
      } catch {
        // A signal that refuses the listener: no wait.
        done();
      }
    });
  }

  /**
   * Writes a record without a promise (fire and forget). `callback`, if given, is called exactly once
   * and always asynchronously, with the error or the result. Failures of records sent without a
   * callback are emitted as `'recordFailed'`.
   *
   * Returns false when, after taking this record, the producer (or the share of the room of the
   * record's shard) has no room for another of its size, like `Writable.write`: wait for `'drain'`
   * before sending more. True means the next send of a record this size for the same shard will be
   * taken.
   *
   * @throws {InvalidRecordError} synchronously for a record that can never be written.
   * @throws {BufferFullError} synchronously when the producer, or the record's shard's share of it, is
   * already full: the record is not taken.
   * @throws {ProducerClosedError} synchronously after `close()`.
   */
  send(record: ProducerRecord, callback?: SendCallback): boolean {
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidOptionError('callback', 'a function', callback);
    }
    const pipeline = this.#prepare(record);
    const facts = this.#facts;
    const bytes = facts.partitionKeyBytes + facts.dataBytes;
    const now = this.#arrivals.now();
    const share = pipeline.shareFor(this.#hashKey);
    if (!this.#room.hasRoomFor(bytes, share, now)) {
      this.#room.owe(share, bytes);
      const full = this.#fullError(bytes, share);
      this.#dropIfCreated(pipeline);
      throw full;
    }
    this.#takeMeasured(record, pipeline, share, undefined, undefined, callback, now);
    // True promises that the next send of a record this size (for the same shard) is taken.
    if (this.#room.hasRoomFor(bytes, share, now)) return true;
    this.#room.owe(share, bytes);
    return false;
  }

  /**
   * An object-mode `Writable` that writes each object as a record, with the producer's backpressure:
   * a write completes once the producer has taken the record. Works with `stream.pipeline`; `final`
   * waits until every record it wrote has settled (sent with its batch, not flushed early: other
   * streams and callers are not waited for); the first record that fails destroys the stream with its
   * error.
   *
   * @example
   * ```ts
   * await pipeline(source, producer.writable({ partitionKey: 'userId' }));
   * ```
   */
  writable<T>(options: ProducerWritableOptions<T>): Writable {
    const named =
      typeof options !== 'object' ||
      options === null ||
      options.streamName !== undefined ||
      options.streamARN !== undefined;
    // Refused here, not at the first object written.
    if (!named && this.#defaultPipeline === undefined) {
      throw new InvalidOptionError(
        'streamName',
        'given (or streamARN): the producer was created without a stream',
        undefined,
      );
    }
    return createProducerWritable(this, options, this.#optionWarnings, (record, callback, signal, onTaken) =>
      this.#sendWhenRoom(record, callback, signal, onTaken),
    );
  }

  /**
   * Writes every record of an (async) iterable with the producer's backpressure, and resolves once all
   * have settled (sent with their batches, not flushed early: other streams and callers are not waited
   * for). Stops reading at the first failure, also while it waits for the source, and rejects with it
   * (after the records taken have settled); `signal` stops it with {@link AbortedError}.
   */
  putAll(
    source: AsyncIterable<ProducerRecord> | Iterable<ProducerRecord>,
    options?: PutAllOptions,
  ): Promise<PutAllResult> {
    return putAll(this, source, options, this.#optionWarnings, (record, callback, signal, onTaken) =>
      this.#sendWhenRoom(record, callback, signal, onTaken),
    );
  }

  /** A snapshot of the producer's metrics (KPL's names), per stream and per shard. */
  metrics(): MetricsSnapshot {
    return this.#metrics.snapshot(this.#options.clock.now(), this.#gauges());
  }

  /**
   * Sends everything buffered now without waiting for `maxBufferedTimeMs`, and resolves once every
   * record accepted before the call — or waiting for room at the time — has settled (written, or
   * failed). Never rejects: failures reach each record's promise, callback or `'recordFailed'`.
   */
  flush(): Promise<void> {
    const settled = this.#barrier.next();
    const now = this.#options.clock.now();
    for (const pipeline of this.#pipelineList) pipeline.flushAll(now);
    this.#dispatcher.pump();
    return settled;
  }

  /**
   * Stops taking records (later `put`/`send` get {@link ProducerClosedError}), sends everything
   * buffered, waits for every record — also those waiting for room — to settle, then releases the
   * client (if the producer created it) and its timers. With `timeoutMs` or `signal`, records still
   * unsettled when it passes fail with code `CloseTimeout`. Idempotent: every call returns the same
   * promise, which never rejects; a later call's `timeoutMs` or `signal` counts too (a deadline added
   * by a shutdown handler after an earlier `close()`), whichever comes first.
   *
   * @throws {InvalidOptionError} synchronously if `timeoutMs` is not an integer in [0, 86400000] or
   * `signal` is not an AbortSignal; the producer is then as it was (open, if this was the first call).
   */
  close(options: CloseOptions = {}): Promise<void> {
    checkSignalOptions('options', options);
    const { timeoutMs, signal } = options ?? {};
    if (timeoutMs !== undefined) checkInteger('timeoutMs', timeoutMs, 0, 24 * 3_600_000);
    checkSignal('signal', signal);
    if (options !== null) warnUnknownOptions(options, CLOSE_NAMES, this.#optionWarnings);
    this.#closing = true;
    if (this.#closePromise !== undefined) {
      if (!this.#closed) this.#addCloseDeadline(timeoutMs, signal);
      return this.#closePromise;
    }
    let resolve!: () => void;
    this.#closePromise = new Promise<void>((r) => {
      resolve = r;
    });
    // Before the flush: a signal already aborted fails everything before any of it is sent.
    this.#addCloseDeadline(timeoutMs, signal);
    void this.flush().then(() => {
      this.#closed = true;
      this.#dropCloseDeadlines();
      this.#shutdown();
      resolve();
    });
    return this.#closePromise;
  }

  /**
   * Gives up on the records unsettled at `timeoutMs` from now, or when `signal` aborts. Later calls
   * keep only the earliest timer and one listener per signal, however many times close() is called.
   */
  #addCloseDeadline(timeoutMs: number | undefined, signal: AbortSignal | undefined): void {
    const clock = this.#options.clock;
    if (signal !== undefined && !this.#closeSignals.has(signal)) {
      const giveUp = () => this.#failEverything(true, undefined);
      if (signal.aborted) {
        giveUp();
        return;
      }
      this.#closeSignals.set(signal, giveUp);
      signal.addEventListener('abort', giveUp, { once: true });
    }
    if (timeoutMs !== undefined) {
      const at = clock.now() + timeoutMs;
      if (at >= this.#closeTimerAt) return;
      if (this.#closeTimer !== undefined) clock.clearTimeout(this.#closeTimer);
      this.#closeTimerAt = at;
      this.#closeTimer = clock.setTimeout(() => this.#failEverything(false, timeoutMs), timeoutMs, false);
    }
  }

  /** The close finished: its deadlines' timer and listeners go. */
  #dropCloseDeadlines(): void {
    if (this.#closeTimer !== undefined) this.#options.clock.clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    for (const [signal, giveUp] of this.#closeSignals) signal.removeEventListener('abort', giveUp);
    this.#closeSignals.clear();
  }

  /** `await using producer = new KinesisProducer(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- taking records ----------------------------------------------------------------------------

  /**
   * Validates a record and measures it, into `#facts` and `#hashKey` (scratch space reused by every
   * call: no allocation per record); returns its stream's pipeline. Throws at the call for anything
   * that can never be written.
   */
  #prepare(record: ProducerRecord): StreamPipeline {
    if (this.#closing) throw new ProducerClosedError();
    assertRecordObject(record);
    // Read once: a getter that answers differently later changes nothing.
    const { streamName, streamARN } = record;
    const named = streamName !== undefined || streamARN !== undefined;
    // Undefined for a stream new to the producer: its pipeline is created below, once the record is
    // known to be valid, so a refused record starts no metadata calls and takes no part of the room.
    let pipeline = named ? this.#pipelineForRecord(streamName, streamARN) : this.#defaultPipeline;
    if (!named && pipeline === undefined) {
      throw new InvalidRecordError(
        'streamName',
        'The record names no stream and the producer has no default: pass streamName (or streamARN) to the producer or the record.',
      );
    }
    // Until DescribeStreamSummary answers, a record may be as large as any stream allows; the stream's
    // own limit is checked when the answer comes.
    const facts = this.#facts;
    // One lookup of the key serves validation (a known key is valid and measured), routing (its
    // hash) and the shard's aggregate encoder (its table entry).
    const known = this.#keys.get(record.partitionKey);
    validateUserRecord(
      record,
      pipeline?.maxRecordBytes ?? MAX_RECORD_BYTES_LIMIT,
      facts,
      known,
      pipeline ?? UNKNOWN_STREAM_LIMIT,
    );
    // Again: a getter of the record may have called close(), whose flush would not wait for it.
    if (this.#closing) throw new ProducerClosedError();
    this.#created = undefined;
    if (pipeline === undefined) {
      // Looked up again: a getter read by validation may have sent a record for this stream already.
      pipeline =
        streamARN === undefined
          ? this.#pipelinesByName.get(streamName!)
          : this.#pipelinesByARN.get(streamARN);
      if (pipeline === undefined) {
        pipeline = this.#createPipeline(streamName, streamARN, false);
        this.#created = pipeline;
      }
    }
    // From here the key is the one validation read (a getter may have answered differently).
    const key = facts.partitionKey;
    const partitionKey =
      known === undefined
        ? this.#keys.add(key, facts.partitionKeyBytes)
        : known.key === key
          ? known
          : (this.#keys.get(key) ?? this.#keys.add(key, facts.partitionKeyBytes));
    this.#partitionKey = partitionKey;
    this.#hashKey = facts.explicitHashKey === undefined ? hashOf(partitionKey) : facts.explicitHashKeyValue;
    return pipeline;
  }

  /** Takes the record `#prepare` just measured, counted in the current flush epoch. */
  #takeMeasured(
    record: ProducerRecord,
    pipeline: StreamPipeline,
    share: RoomShare,
    resolve: Settler['resolve'],
    reject: Settler['reject'],
    callback: Settler['callback'],
    now: number,
  ): void {
    const facts = this.#facts;
    this.#take(
      record,
      pipeline,
      this.#partitionKey!,
      facts.data,
      facts.dataBytes,
      facts.explicitHashKey,
      this.#hashKey,
      now,
      this.#barrier.count(),
      share,
      resolve,
      reject,
      callback,
    );
  }

  /**
   * Flushes `pipeline` once the waiters admitted in this turn are all in: one flush for all of them,
   * so they still share aggregates (sealing per waiter would send each as its own Kinesis record).
   */
  #flushSoon(pipeline: StreamPipeline): void {
    if (this.#toFlush.size === 0) {
      queueMicrotask(() => {
        const now = this.#options.clock.now();
        for (const waiting of this.#toFlush) waiting.flushAll(now);
        this.#toFlush.clear();
        this.#dispatcher.pump();
      });
    }
    this.#toFlush.add(pipeline);
  }

  /**
   * Takes a record: from here it will settle exactly once. `epoch` is the flush epoch it already
   * counts in (see FlushBarrier.count).
   */
  #take(
    record: ProducerRecord,
    pipeline: StreamPipeline,
    partitionKey: KnownPartitionKey,
    data: Uint8Array | string,
    dataBytes: number,
    explicitHashKey: string | undefined,
    hashKey: bigint,
    now: number,
    epoch: number,
    share: RoomShare,
    resolve: Settler['resolve'],
    reject: Settler['reject'],
    callback: Settler['callback'],
  ): void {
    const item = new PendingRecord(
      record,
      partitionKey,
      data,
      dataBytes,
      explicitHashKey,
      hashKey,
      now,
      now + this.#options.recordTtlMs,
      epoch,
      share,
      resolve,
      reject,
      callback,
    );
    this.#room.take(partitionKey.bytes + dataBytes, now, share);
    if (!this.#heldAtExit) {
      this.#heldAtExit = true;
      holdAtExit(this.#atExit);
    }
    this.#metrics.received(pipeline.stream.label, now);
    pipeline.accept(item);
  }

  /** Bookkeeping when a record settles: room (and waiting puts), flush barrier, idle timer. */
  #settled(item: PendingRecord): void {
    this.#room.free(item.sizeBytes, item.arrivedAt, item.share);
    this.#barrier.release(item.epoch);
    this.#idleIfNothingPending();
  }

  /**
   * With no record held and none waiting for room, the dispatcher's timer goes: an idle producer holds
   * the process for nothing. Checked when a record settles, and when a wait for room ends without a
   * record taken (the wait of writable() and putAll() for room for their next record, an abort).
   */
  #idleIfNothingPending(): void {
    if (this.#room.records !== 0 || this.#room.waiting !== 0) return;
    this.#dispatcher.idle();
    if (this.#heldAtExit) {
      this.#heldAtExit = false;
      releaseAtExit(this.#atExit);
    }
  }

  /** The error for a record of `bytes` that `share` had no room for: the producer's limits, or the share's. */
  #fullError(bytes: number, share: RoomShare): BufferFullError {
    const room = this.#room;
    if (room.fullFor(bytes) === 'producer') {
      return new BufferFullError(room.records, room.bytes, {
        records: room.maxRecords,
        bytes: room.maxBytes,
      });
    }
    return new BufferFullError(
      share.records,
      share.bytes,
      { records: share.maxRecords, bytes: Math.round(room.shareBytesAllowed(bytes, share)) },
      share.label,
    );
  }

  /**
   * The pipeline of the stream a record names, or undefined when the stream is new to the producer
   * (its name or ARN checked: the caller creates the pipeline).
   */
  #pipelineForRecord(
    streamName: string | undefined,
    streamARN: string | undefined,
  ): StreamPipeline | undefined {
    checkStreamField('streamName', streamName);
    checkStreamField('streamARN', streamARN);
    if (streamName !== undefined && streamARN !== undefined) {
      throw new InvalidRecordError(
        'streamARN',
        'A record names its stream by streamName or by streamARN, not both.',
      );
    }
    // Two maps rather than one key built per record: a record naming its stream allocates nothing.
    const byName = streamARN === undefined;
    const key = (byName ? streamName : streamARN)!;
    const existing = (byName ? this.#pipelinesByName : this.#pipelinesByARN).get(key);
    if (existing !== undefined) return existing;
    // A stream new to the producer: the options named theirs in a shape already checked.
    const field = byName ? 'streamName' : 'streamARN';
    const expected = streamIdExpected(field, key);
    if (expected !== undefined) {
      throw new InvalidRecordError(
        field,
        `${field} must be ${expected}; received ${describeValue(key, MAX_STREAM_ARN_LENGTH)}.`,
      );
    }
    const region = this.#options.knownRegion;
    const named = byName ? undefined : arnRegion(key);
    if (named !== undefined && region !== undefined && named !== region) {
      // The service takes an ARN only in its own region (as KCL says): refused here, not per request.
      throw new InvalidRecordError(
        'streamARN',
        `${key} names region ${named}, and the producer's client sends to ${region}: give records of that region a producer of their own, with region ${named}.`,
      );
    }
    return undefined;
  }

  /**
   * The pipeline of a stream new to the producer (the options' own, or one a valid record names),
   * with its summary and shard map requested: now, or (for a record's stream) a microtask later.
   */
  #createPipeline(
    streamName: string | undefined,
    streamARN: string | undefined,
    readNow: boolean,
  ): StreamPipeline {
    const byName = streamARN === undefined;
    const key = (byName ? streamName : streamARN)!;
    const ref = streamRef(streamName, streamARN);
    const clock = this.#options.clock;
    const source = {
      client: this.#client,
      stream: ref,
      timeoutMs: this.#options.requestTimeoutMs,
      logger: this.#logger,
      clock,
      stopped: this.#stopped.signal,
    };
    let routingWarned = false;
    const shardMap = new ShardMap(
      source,
      () => {
        pipeline.onShardMapChange(clock.now());
        this.#updateCapacity();
        this.#room.reshare(pipeline.sharesLeft(this.#inFlightItems(pipeline)));
        this.#dispatcher.pump();
      },
      () => {
        // Records land on shards a fresh map does not predict. After a reshard, a later map will; on a
        // stream that routes records itself (AUTO), none will, and consumers drop the aggregates.
        // Known to be partitioned: maybe no more (created again as AUTO). Read again to tell.
        pipeline.recheckSummary();
        // Only when it was denied (not while it is provisional, read again after the stream went).
        if (routingWarned || pipeline.info?.final !== true || pipeline.info.routingKnown) return;
        routingWarned = true;
        this.#logger.warn(
          { stream: ref.label },
          'records land on shards their hash keys do not map to, and ListShards returns the same shards: if this stream uses RecordDistributionStrategy AUTO, consumers drop its aggregates. DescribeStreamSummary was denied, so the producer assumed partition-key routing: allow kinesis:DescribeStreamSummary, or set aggregation: false',
        );
      },
      () => {
        pipeline.onListedAll(clock.now());
        this.#dispatcher.pump();
      },
    );
    const summary = new StreamSummary(source, (info) => {
      pipeline.open(info, clock.now());
      this.#updateCapacity();
      this.#room.reshare(pipeline.sharesLeft(this.#inFlightItems(pipeline)));
      this.#dispatcher.pump();
    });
    const pipeline = new StreamPipeline(ref, shardMap, summary, this.#host);
    (byName ? this.#pipelinesByName : this.#pipelinesByARN).set(key, pipeline);
    this.#pipelineList.push(pipeline);
    this.#updateCapacity();
    const read = () => {
      shardMap.refresh();
      summary.read();
    };
    // A record's stream is read a moment later: the record may yet be refused for room, and then
    // leaves no stream behind (see #dropIfCreated).
    if (readNow) read();
    else
      queueMicrotask(() => {
        if ((byName ? this.#pipelinesByName : this.#pipelinesByARN).get(key) === pipeline) read();
      });
    return pipeline;
  }

  /**
   * A record refused at the call (no room, its signal already aborted or refusing a listener) leaves
   * no stream behind: the pipeline `#prepare` created for it goes, unread, and its shards leave the
   * room.
   */
  #dropIfCreated(pipeline: StreamPipeline): void {
    if (this.#created !== pipeline) return;
    this.#created = undefined;
    const { streamName, streamARN } = pipeline.stream;
    if (streamARN === undefined) this.#pipelinesByName.delete(streamName!);
    else this.#pipelinesByARN.delete(streamARN);
    this.#pipelineList.splice(this.#pipelineList.indexOf(pipeline), 1);
    pipeline.close();
    this.#updateCapacity();
  }

  /**
   * Tells the room how many shards the streams have (what each share's part of the producer is
   * counted against: a stream whose shards are unknown counts as its share stands for), and what the
   * streams can take per second: each open shard 1 MiB and 1,000 records (the latter bounds user
   * records only when not aggregating) at `rateLimit`. That is unknown while any stream's shard map
   * is, or for streams the service routes itself (AUTO).
   */
  #updateCapacity(): void {
    let shardCount = 0;
    for (const pipeline of this.#pipelineList) shardCount += pipeline.roomShards;
    this.#room.setShards(shardCount);
    let bytes = 0;
    let records = 0;
    for (const pipeline of this.#pipelineList) {
      const info = pipeline.info;
      if (info === undefined || !info.userPartitioned || !pipeline.shardMap.ready) {
        this.#room.setCapacity(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
        return;
      }
      const shards = pipeline.shardMap.shards.length * (this.#options.rateLimit / 100);
      bytes += shards * SHARD_BYTES_PER_SECOND;
      records += pipeline.aggregating ? Number.POSITIVE_INFINITY : shards * SHARD_RECORDS_PER_SECOND;
    }
    this.#room.setCapacity(bytes, records);
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  #closeTimeoutError(pipeline: StreamPipeline, record: ProducerRecord, message: string): RecordFailedError {
    return new RecordFailedError(ErrorCode.CloseTimeout, message, {
      record,
      attempts: Object.freeze([]),
      streamName: pipeline.stream.label,
      shardId: undefined,
      retryable: true,
    });
  }

  /** close() gave up: every record not yet settled fails — waiting for room, in the pipelines, in flight. */
  #failEverything(aborted: boolean, timeoutMs: number | undefined): void {
    const gaveUp = aborted ? 'close() was aborted' : `close() gave up after ${timeoutMs} ms (timeoutMs)`;
    const message = `${gaveUp} before the record was written`;
    const code = ErrorCode.CloseTimeout;
    this.#room.evict(message);
    for (const pipeline of this.#pipelineList) pipeline.failPending(code, gaveUp);
    const now = this.#options.clock.now();
    const unheard = `${gaveUp} while the request carrying the record had not answered: it may have been written`;
    for (const [batch, { pipeline, startedAt }] of this.#dispatcher.inFlight) {
      const unanswered = unansweredAttempt(startedAt, now, 'close() gave up');
      for (const record of batch) {
        this.#settlement.failAll(pipeline.stream, record, code, unheard, false, unanswered);
      }
    }
    // Nothing failed here may still be sent (its caller was told it was not written), and the
    // answers of requests in flight no longer matter.
    this.#dispatcher.stop();
  }

  #shutdown(): void {
    this.#dispatcher.stop();
    this.#metrics.close();
    for (const pipeline of this.#pipelineList) pipeline.close();
    this.#stopped.abort(new Error('the producer was closed'));
    this.#settlement.close();
    if (this.#ownsClient) this.#client.destroy();
  }

  /** The user records of `pipeline`'s requests in flight. */
  *#inFlightItems(pipeline: StreamPipeline): Generator<PendingRecord> {
    for (const [batch, request] of this.#dispatcher.inFlight) {
      if (request.pipeline === pipeline) for (const record of batch) yield* record.items;
    }
  }

  /** Per stream: records taken and not settled, and the age of the oldest (scanned, not tracked). */
  #gauges(): Map<string, { pending: number; oldestAgeMs: number }> {
    const now = this.#options.clock.now();
    const gauges = new Map<string, { pending: number; oldestAgeMs: number }>();
    const note = (stream: string, item: PendingRecord) => {
      if (item.settled) return;
      const gauge = gauges.get(stream)!;
      gauge.pending++;
      gauge.oldestAgeMs = Math.max(gauge.oldestAgeMs, now - item.arrivedAt);
    };
    for (const pipeline of this.#pipelineList) {
      gauges.set(pipeline.stream.label, { pending: 0, oldestAgeMs: 0 });
      for (const item of pipeline.pendingItems()) note(pipeline.stream.label, item);
    }
    for (const [batch, { pipeline }] of this.#dispatcher.inFlight) {
      for (const record of batch) for (const item of record.items) note(pipeline.stream.label, item);
    }
    return gauges;
  }

  #emitSafely(event: 'drain'): void {
    emitToEach(this, event, [], (listenerError) => {
      this.#logger.error(thrownByApp(listenerError), `a '${event}' listener threw; the producer carries on`);
    });
  }
}

function noop(): void {}

/** The record size limit of a stream new to the producer, for the error of a record above it. */
const UNKNOWN_STREAM_LIMIT = { recordLimitName: 'the largest record size any stream takes' } as const;

/**
 * The resolving functions of the promise `put` is creating. `put` passes `capturePromiseFunctions`
 * as the executor and takes them right after (leaving `noop`, so no settled promise is kept here), so
 * a put allocates no executor closure, nor the scope it would capture, on top of the promise.
 */
const captured: {
  resolve: (result: PutResult) => void;
  reject: (error: RecordFailedError) => void;
} = { resolve: noop, reject: noop };

function capturePromiseFunctions(
  resolve: (result: PutResult) => void,
  reject: (error: RecordFailedError) => void,
): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/** @throws {InvalidRecordError} unless `value` (a record's stream field) is absent or a non-empty string. */
function checkStreamField(field: 'streamName' | 'streamARN', value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new InvalidRecordError(
      field,
      `${field} must be a non-empty string; received ${describeValue(value)}.`,
    );
  }
}

function stopController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
