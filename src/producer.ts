import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Writable } from 'node:stream';
import { KinesisClient, type PutRecordsResultEntry } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { EventEmitter } from 'eventemitter3';
import { MAX_RECORD_BYTES_LIMIT } from './aggregator.js';
import {
  AbortedError,
  BufferFullError,
  describeValue,
  ErrorCode,
  InvalidRecordError,
  ProducerClosedError,
  RecordFailedError,
} from './errors.js';
import { PartitionKeyHashCache } from './hash-cache.js';
import type { Logger } from './logger.js';
import { type MetricsSnapshot, ProducerMetrics } from './metrics.js';
import { checkInteger } from './option-checks.js';
import { type KinesisProducerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { type OutboundRecord, PendingRecord, type Settler } from './pending-record.js';
import { type AttemptLog, type PutResult, toAttempts } from './result.js';
import { backoffDelay, classifyEntryError, classifyRequestError, FailureKind } from './retry-policy.js';
import { Sender, type SendOutcome } from './sender.js';
import { ShardMap } from './shard-map.js';
import { loadStreamInfo } from './stream-info.js';
import { type PipelineHost, StreamPipeline } from './stream-pipeline.js';
import { type StreamRef, streamRef } from './stream-ref.js';
import { newRecordFacts, type RecordFacts, type UserRecord, validateUserRecord } from './user-record.js';
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

/** Callback of {@link KinesisProducer.send}: called once, asynchronously, with an error or a result. */
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
   * wait) and is now at most half full, like `Writable`'s `'drain'`.
   */
  drain: () => void;
}

/** Options of {@link KinesisProducer.put}. */
export interface PutOptions {
  /**
   * Ends the wait for room when the producer is full: the put rejects with {@link AbortedError} and
   * the record is not taken. A record already taken is not recalled.
   */
  readonly signal?: AbortSignal | undefined;
}

/** Options of {@link KinesisProducer.close}. */
export interface CloseOptions {
  /**
   * Longest to wait for records to settle; when it passes, the records still unsettled fail with
   * code `CloseTimeout` and the producer shuts down. Default: wait for every record (each ends by its
   * `recordTtlMs`).
   */
  readonly timeoutMs?: number | undefined;
  /** Like `timeoutMs`, on the signal's abort. */
  readonly signal?: AbortSignal | undefined;
}

/** A record validated and measured, waiting for room in the producer. */
interface Prepared {
  readonly record: ProducerRecord;
  readonly pipeline: StreamPipeline;
  readonly partitionKeyBytes: number;
  readonly dataBytes: number;
  readonly explicitHashKey: string | undefined;
  readonly hashKey: bigint;
}

interface RoomWaiter {
  readonly prepared: Prepared;
  readonly settler: Settler;
  readonly epoch: number;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

/** At most one "failed with nobody listening" warning per this interval, with a count. */
const UNHEARD_WARNING_INTERVAL_MS = 5000;

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
export class KinesisProducer extends EventEmitter<KinesisProducerEvents> {
  readonly #options: ResolvedOptions;
  readonly #logger: Logger;
  readonly #client: KinesisClient;
  readonly #ownsClient: boolean;
  readonly #sender: Sender;
  readonly #hashes = new PartitionKeyHashCache();
  readonly #facts = newRecordFacts();
  readonly #host: PipelineHost;
  readonly #pipelines = new Map<string, StreamPipeline>();
  #pipelineList: StreamPipeline[] = [];
  #nextPipeline = 0;
  readonly #defaultPipeline: StreamPipeline | undefined;

  #wakeTime = Number.POSITIVE_INFINITY;
  #wakeTimer: unknown;
  #inWake = false;

  #outstanding = 0;
  #bufferedBytes = 0;
  /** Unsettled records per flush epoch; keys only grow, so the first key is the oldest epoch. */
  readonly #unsettledByEpoch = new Map<number, number>();
  #epoch = 0;
  #flushWaiters: { epoch: number; resolve: () => void }[] = [];

  /** Puts waiting for room, in call order. */
  #roomWaiters: RoomWaiter[] = [];
  #needDrain = false;
  /** Requests in flight, so close() can fail their records when it times out. */
  readonly #inFlight = new Map<readonly OutboundRecord[], StreamPipeline>();
  /** Stored records waiting for a fresh shard map to tell whether they must be sent again. */
  readonly #verifying = new Map<OutboundRecord, StreamPipeline>();
  /** Set by shutdown: nothing is sent or settled after it. */
  #stopped = false;
  readonly #metrics: ProducerMetrics;

  #closing = false;
  #closePromise: Promise<void> | undefined;
  #unheardFailures = 0;
  #lastUnheardWarning = Number.NEGATIVE_INFINITY;

  constructor(options: KinesisProducerOptions) {
    super();
    this.#options = resolveOptions(options);
    this.#logger = this.#options.logger;
    this.#ownsClient = options.client === undefined;
    this.#client = options.client ?? createClient(options, this.#options);
    this.#sender = new Sender(this.#client, this.#options.clock, this.#options);
    this.#metrics = new ProducerMetrics(this.#options.meter, () =>
      Array.from(this.#gauges(), ([stream, gauge]) => ({ stream, ...gauge })),
    );
    this.#host = {
      options: this.#options,
      fail: (stream, item, code, message, shardId, attempts) =>
        this.#fail(stream, item, code, message, shardId, attempts),
      wakeAt: (at) => this.#wakeAt(at),
      hashKeyDecimal: (item) => item.explicitHashKey ?? this.#hashes.decimal(item.partitionKey, item.hashKey),
    };
    const { streamName, streamARN } = this.#options;
    this.#defaultPipeline =
      streamName !== undefined || streamARN !== undefined ? this.#pipeline(streamName, streamARN) : undefined;
  }

  /** Records accepted and not yet settled. */
  get outstandingRecords(): number {
    return this.#outstanding;
  }

  /** Calls to `put` waiting for room (the producer is full). */
  get waitingPuts(): number {
    return this.#roomWaiters.length;
  }

  /** Bytes (partition keys + data) of the records accepted and not yet settled. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /**
   * Writes a record and resolves once it is stored, with its shard, sequence number and attempts.
   * Rejects with {@link RecordFailedError} (carrying the record, its code and every attempt) if it
   * cannot be written before `recordTtlMs`, or at once for errors that retrying cannot fix.
   *
   * When the producer is full (`maxOutstandingRecords`, `maxBufferedBytes`) it waits for room — the
   * record's `recordTtlMs` starts once it is taken — or, with `onFull: 'reject'`, rejects with
   * {@link BufferFullError}. Invalid records reject at once with {@link InvalidRecordError}; after
   * `close()`, with {@link ProducerClosedError}.
   */
  put(record: ProducerRecord, options?: PutOptions): Promise<PutResult> {
    let prepared: Prepared;
    try {
      prepared = this.#prepare(record);
    } catch (error) {
      return Promise.reject(error);
    }
    let resolve!: (result: PutResult) => void;
    let reject!: (error: RecordFailedError) => void;
    const promise = new Promise<PutResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const settler: Settler = { kind: 'promise', resolve, reject };
    if (this.#hasRoom(prepared)) {
      this.#admit(prepared, settler, this.#epoch);
    } else if (this.#options.onFull === 'reject') {
      this.#needDrain = true;
      return Promise.reject(this.#fullError());
    } else {
      const signal = options?.signal;
      if (signal?.aborted) return Promise.reject(new AbortedError(signal.reason));
      this.#wait(prepared, settler, signal, reject as (error: unknown) => void);
    }
    return promise;
  }

  /**
   * Writes a record without a promise (fire and forget). `callback`, if given, is called exactly once
   * and always asynchronously, with the error or the result. Failures of records sent without a
   * callback are emitted as `'recordFailed'`.
   *
   * Returns false when the producer is full after taking this record, like `Writable.write`: wait for
   * `'drain'` before sending more.
   *
   * @throws {InvalidRecordError} synchronously for a record that can never be written.
   * @throws {BufferFullError} synchronously when the producer is already full: the record is not taken.
   * @throws {ProducerClosedError} synchronously after `close()`.
   */
  send(record: ProducerRecord, callback?: SendCallback): boolean {
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidRecordError(
        'callback',
        `send() callback must be a function; received ${describeValue(callback)}.`,
      );
    }
    const prepared = this.#prepare(record);
    if (!this.#hasRoom(prepared)) {
      this.#needDrain = true;
      throw this.#fullError();
    }
    this.#admit(prepared, callback === undefined ? undefined : { kind: 'callback', callback }, this.#epoch);
    if (this.#isFull()) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * An object-mode `Writable` that writes each object as a record, with the producer's backpressure:
   * a write completes once the producer has taken the record. Works with `stream.pipeline`; `final`
   * flushes the producer; the first record that fails destroys the stream with its error.
   *
   * @example
   * ```ts
   * await pipeline(source, producer.writable({ partitionKey: 'userId' }));
   * ```
   */
  writable<T>(options: ProducerWritableOptions<T>): Writable {
    return createProducerWritable(this, options);
  }

  /**
   * Writes every record of an (async) iterable with the producer's backpressure, and resolves once all
   * have settled. Stops reading at the first failure and rejects with it (after the records taken
   * have settled); `signal` stops it with {@link AbortedError}.
   */
  putAll(
    source: AsyncIterable<ProducerRecord> | Iterable<ProducerRecord>,
    options?: PutAllOptions,
  ): Promise<PutAllResult> {
    return putAll(this, source, options);
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
    const epoch = this.#epoch++;
    const now = this.#options.clock.now();
    for (const pipeline of this.#pipelineList) pipeline.flushAll(now);
    this.#pump();
    if (!this.#hasUnsettledUpTo(epoch)) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push({ epoch, resolve }));
  }

  /**
   * Stops taking records (later `put`/`send` get {@link ProducerClosedError}), sends everything
   * buffered, waits for every record — also those waiting for room — to settle, then releases the
   * client (if the producer created it) and its timers. With `timeoutMs` or `signal`, records still
   * unsettled when it passes fail with code `CloseTimeout`. Idempotent: every call returns the same
   * promise, which never rejects.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    const { timeoutMs, signal } = options;
    if (timeoutMs !== undefined) checkInteger('timeoutMs', timeoutMs, 0, 24 * 3_600_000);
    this.#closing = true;
    const clock = this.#options.clock;
    this.#closePromise = new Promise<void>((resolve) => {
      let timer: unknown;
      const finish = () => {
        if (timer !== undefined) clock.clearTimeout(timer);
        signal?.removeEventListener('abort', giveUp);
        this.#shutdown();
        resolve();
      };
      const giveUp = () => {
        this.#failEverything(
          ErrorCode.CloseTimeout,
          signal?.aborted
            ? 'close() was aborted before the record was written'
            : `close() gave up after ${timeoutMs} ms (timeoutMs) before the record was written`,
        );
      };
      if (signal?.aborted) giveUp();
      else signal?.addEventListener('abort', giveUp, { once: true });
      if (timeoutMs !== undefined) timer = clock.setTimeout(giveUp, timeoutMs, false);
      void this.flush().then(finish);
    });
    return this.#closePromise;
  }

  /** `await using producer = new KinesisProducer(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Per stream: records accepted and not settled, and the age of the oldest (scanned, not tracked). */
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
    for (const [records, pipeline] of [...this.#inFlight, ...this.#verifying]) {
      for (const record of Array.isArray(records) ? records : [records]) {
        for (const item of (record as OutboundRecord).items) note(pipeline.stream.label, item);
      }
    }
    return gauges;
  }

  #shutdown(): void {
    this.#stopped = true;
    if (this.#wakeTimer !== undefined) this.#options.clock.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wakeTime = Number.POSITIVE_INFINITY;
    for (const pipeline of this.#pipelineList) pipeline.shardMap.close();
    if (this.#ownsClient) this.#client.destroy();
  }

  /** Fails every record not yet settled: waiting for room, in the pipelines, in flight. */
  #failEverything(code: string, message: string): void {
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const waiter of waiters) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort!);
      const error = new RecordFailedError(code, message, {
        record: waiter.prepared.record,
        attempts: [],
        streamName: waiter.prepared.pipeline.stream.label,
        shardId: undefined,
      });
      this.#releaseEpoch(waiter.epoch);
      if (waiter.settler.kind === 'promise') waiter.settler.reject(error);
    }
    for (const pipeline of this.#pipelineList) {
      for (const item of pipeline.pendingItems())
        this.#fail(pipeline.stream, item, code, message, undefined, item.priorAttempts ?? []);
    }
    for (const [batch, pipeline] of this.#inFlight) {
      for (const record of batch) {
        for (const item of record.items) {
          this.#fail(pipeline.stream, item, code, message, record.predictedShardId, attemptsOf(item, record));
        }
      }
    }
    for (const [record, pipeline] of this.#verifying) {
      for (const item of record.items) {
        this.#fail(pipeline.stream, item, code, message, record.predictedShardId, attemptsOf(item, record));
      }
    }
  }

  // ---- accepting records -------------------------------------------------------------------------

  /** Validates a record and measures it; throws at the call for anything that can never be written. */
  #prepare(record: ProducerRecord): Prepared {
    if (this.#closing) throw new ProducerClosedError();
    if (typeof record !== 'object' || record === null) {
      throw new InvalidRecordError(
        'record',
        `A record must be an object { partitionKey, data, explicitHashKey? }; received ${describeValue(record)}.`,
      );
    }
    const pipeline =
      record.streamName === undefined && record.streamARN === undefined
        ? this.#defaultPipeline
        : this.#pipelineForRecord(record);
    if (pipeline === undefined) {
      throw new InvalidRecordError(
        'streamName',
        'The record names no stream and the producer has no default: pass streamName (or streamARN) to the producer or the record.',
      );
    }
    // Until DescribeStreamSummary answers, a record may be as large as any stream allows; the stream's
    // own limit is checked when the answer comes.
    const facts: RecordFacts = this.#facts;
    validateUserRecord(record, pipeline.info?.maxRecordBytes ?? MAX_RECORD_BYTES_LIMIT, facts);
    return {
      record,
      pipeline,
      partitionKeyBytes: facts.partitionKeyBytes,
      dataBytes: facts.dataBytes,
      explicitHashKey: facts.explicitHashKey,
      hashKey:
        facts.explicitHashKey === undefined
          ? this.#hashes.hash(record.partitionKey)
          : facts.explicitHashKeyValue,
    };
  }

  /**
   * Room for one more record: under both limits and nobody waiting before it. A record larger than
   * `maxBufferedBytes` is still taken when the producer holds nothing, or it could never be.
   */
  #hasRoom(prepared: Prepared): boolean {
    return this.#roomWaiters.length === 0 && this.#fits(prepared);
  }

  #fits(prepared: Prepared): boolean {
    return (
      this.#outstanding < this.#options.maxOutstandingRecords &&
      (this.#bufferedBytes === 0 ||
        this.#bufferedBytes + prepared.partitionKeyBytes + prepared.dataBytes <=
          this.#options.maxBufferedBytes)
    );
  }

  #isFull(): boolean {
    return (
      this.#outstanding >= this.#options.maxOutstandingRecords ||
      this.#bufferedBytes >= this.#options.maxBufferedBytes
    );
  }

  #fullError(): BufferFullError {
    return new BufferFullError(this.#outstanding, this.#bufferedBytes, this.#options);
  }

  /**
   * Takes a record: from here it will settle exactly once. `counted` when it already counts in its
   * flush epoch (a put that waited for room).
   */
  #admit(prepared: Prepared, settler: Settler | undefined, epoch: number, counted = false): void {
    const now = this.#options.clock.now();
    const record = prepared.record;
    const item = new PendingRecord(
      record,
      record.partitionKey,
      prepared.partitionKeyBytes,
      record.data,
      prepared.dataBytes,
      prepared.explicitHashKey,
      prepared.hashKey,
      now,
      now + this.#options.recordTtlMs,
      epoch,
      settler,
    );
    this.#outstanding++;
    this.#bufferedBytes += item.sizeBytes;
    if (!counted) this.#countEpoch(epoch);
    this.#metrics.received(prepared.pipeline.stream.label, now);
    prepared.pipeline.accept(item);
  }

  #countEpoch(epoch: number): void {
    this.#unsettledByEpoch.set(epoch, (this.#unsettledByEpoch.get(epoch) ?? 0) + 1);
  }

  /** Queues a put until there is room; it counts for flush() from now, and can be aborted. */
  #wait(
    prepared: Prepared,
    settler: Settler,
    signal: AbortSignal | undefined,
    reject: (error: unknown) => void,
  ): void {
    this.#needDrain = true;
    const epoch = this.#epoch;
    this.#countEpoch(epoch);
    let waiter: RoomWaiter;
    const onAbort =
      signal === undefined
        ? undefined
        : () => {
            const index = this.#roomWaiters.indexOf(waiter);
            if (index < 0) return;
            this.#roomWaiters.splice(index, 1);
            this.#releaseEpoch(epoch);
            reject(new AbortedError(signal.reason));
            // The head may fit now that the waiter before it left.
            this.#admitWaiters();
          };
    waiter = { prepared, settler, epoch, signal, onAbort };
    signal?.addEventListener('abort', onAbort!, { once: true });
    this.#roomWaiters.push(waiter);
  }

  /** Takes waiting puts, in order, while they fit. */
  #admitWaiters(): void {
    let flushNow = false;
    while (this.#roomWaiters.length > 0 && this.#fits(this.#roomWaiters[0]!.prepared)) {
      const waiter = this.#roomWaiters.shift()!;
      waiter.signal?.removeEventListener('abort', waiter.onAbort!);
      this.#admit(waiter.prepared, waiter.settler, waiter.epoch, true);
      if (waiter.epoch < this.#epoch) flushNow = true;
    }
    // A flush() was asked for after these started waiting: it covers them, so send them at once.
    if (flushNow) {
      const now = this.#options.clock.now();
      for (const pipeline of this.#pipelineList) pipeline.flushAll(now);
      this.#pump();
    }
  }

  #pipelineForRecord(record: ProducerRecord): StreamPipeline {
    const { streamName, streamARN } = record;
    for (const [field, value] of [
      ['streamName', streamName],
      ['streamARN', streamARN],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
        throw new InvalidRecordError(
          field,
          `${field} must be a non-empty string; received ${describeValue(value)}.`,
        );
      }
    }
    if (streamName !== undefined && streamARN !== undefined) {
      throw new InvalidRecordError(
        'streamARN',
        'A record names its stream by streamName or by streamARN, not both.',
      );
    }
    return this.#pipeline(streamName, streamARN);
  }

  /** The pipeline of a stream, created (and its summary and shard map requested) on first use. */
  #pipeline(streamName: string | undefined, streamARN: string | undefined): StreamPipeline {
    const key = streamARN === undefined ? `name:${streamName}` : `arn:${streamARN}`;
    const existing = this.#pipelines.get(key);
    if (existing !== undefined) return existing;
    const ref = streamRef(streamName, streamARN);
    const clock = this.#options.clock;
    const shardMap = new ShardMap(this.#client, ref, {
      timeoutMs: this.#options.requestTimeoutMs,
      logger: this.#logger,
      clock,
      onChange: () => {
        pipeline.onShardMapChange(clock.now());
        this.#pump();
      },
    });
    const pipeline = new StreamPipeline(ref, shardMap, this.#host);
    this.#pipelines.set(key, pipeline);
    this.#pipelineList = [...this.#pipelines.values()];
    shardMap.refresh();
    void loadStreamInfo(this.#client, ref, this.#options.requestTimeoutMs, this.#logger).then((info) => {
      pipeline.open(info, clock.now());
      this.#pump();
    });
    return pipeline;
  }

  // ---- timing and sending ------------------------------------------------------------------------

  /** Makes sure the producer wakes up at `at` (or at once) to seal, expire, retry and send. */
  #wakeAt(at: number): void {
    if (at >= this.#wakeTime) return;
    const clock = this.#options.clock;
    const now = clock.now();
    // Inside a wake the pump runs right after the ticks: nothing due now needs another timer.
    if (this.#inWake && at <= now) return;
    if (this.#wakeTimer !== undefined) clock.clearTimeout(this.#wakeTimer);
    this.#wakeTime = at;
    this.#wakeTimer = clock.setTimeout(() => this.#onWake(), Math.max(0, at - now), true);
  }

  #onWake(): void {
    this.#wakeTimer = undefined;
    this.#wakeTime = Number.POSITIVE_INFINITY;
    this.#inWake = true;
    let next = Number.POSITIVE_INFINITY;
    try {
      const now = this.#options.clock.now();
      for (const pipeline of this.#pipelineList) next = Math.min(next, pipeline.tick(now));
      this.#pump();
    } finally {
      this.#inWake = false;
    }
    if (next !== Number.POSITIVE_INFINITY) this.#wakeAt(next);
  }

  /** Starts PutRecords requests while a connection is free and some stream has a request due. */
  #pump(): void {
    const sender = this.#sender;
    const pipelines = this.#pipelineList;
    if (pipelines.length === 0 || this.#stopped) return;
    const now = this.#options.clock.now();
    let idle = 0;
    while (sender.hasCapacity && idle < pipelines.length) {
      const pipeline = pipelines[this.#nextPipeline % pipelines.length]!;
      this.#nextPipeline = (this.#nextPipeline + 1) % pipelines.length;
      if (!pipeline.isDue(now)) {
        idle++;
        continue;
      }
      const batch = pipeline.collect(now);
      // Nothing could go (rate-limited shards, records in backoff): the pipeline asked for a wake-up.
      if (batch.length === 0) {
        idle++;
        continue;
      }
      idle = 0;
      this.#inFlight.set(batch, pipeline);
      sender.send(pipeline.stream, batch, (outcome) => this.#onOutcome(pipeline, batch, outcome));
    }
    // What is left waits for its buffering time (or for a free connection, which calls pump again).
    for (const pipeline of pipelines) {
      const sendBy = pipeline.nextSendBy;
      if (sendBy > now && sendBy !== Number.POSITIVE_INFINITY) this.#wakeAt(sendBy);
    }
  }

  // ---- classifying results: settle or retry ------------------------------------------------------

  #onOutcome(pipeline: StreamPipeline, batch: readonly OutboundRecord[], outcome: SendOutcome): void {
    this.#inFlight.delete(batch);
    if (this.#stopped) return;
    const { startedAt, endedAt } = outcome;
    const stream = pipeline.stream.label;
    let userRecords = 0;
    for (const record of batch) userRecords += record.items.length;
    this.#metrics.request(stream, batch.length, userRecords, endedAt - startedAt, endedAt);
    // One backoff draw per attempt count per response, so the failed entries of a request go out
    // again together, in one request, instead of scattered by their own jitter.
    const delays = new Map<number, number>();
    const backoff = (attempts: number) => {
      let delay = delays.get(attempts);
      if (delay === undefined) {
        delay = backoffDelay(attempts, this.#options.retryBaseDelayMs, this.#options.retryMaxDelayMs);
        delays.set(attempts, delay);
      }
      return delay;
    };
    const failed = (
      record: OutboundRecord,
      kind: FailureKind,
      code: string,
      message: string,
      perEntry: boolean,
    ) => {
      record.attempts.push({ startedAt, endedAt, success: false, errorCode: code, errorMessage: message });
      if (kind === FailureKind.Throttled) pipeline.onThrottled(record.predictedShardId, endedAt);
      this.#afterFailure(pipeline, record, kind, code, message, perEntry, endedAt, backoff);
    };
    if (!outcome.ok) {
      const failure = classifyRequestError(outcome.error);
      this.#logger.debug(
        { stream: pipeline.stream.label, records: batch.length, code: failure.code, kind: failure.kind },
        'PutRecords request failed',
      );
      for (const record of batch) failed(record, failure.kind, failure.code, failure.message, false);
    } else {
      const entries: readonly PutRecordsResultEntry[] = outcome.output.Records ?? [];
      for (let i = 0; i < batch.length; i++) {
        const record = batch[i]!;
        const entry = entries[i];
        const errorCode = entry?.ErrorCode;
        if (typeof errorCode === 'string') {
          failed(record, classifyEntryError(errorCode), errorCode, entry?.ErrorMessage ?? errorCode, true);
        } else if (typeof entry?.ShardId === 'string' && typeof entry.SequenceNumber === 'string') {
          pipeline.onAccepted(record.predictedShardId, endedAt);
          this.#afterWrite(pipeline, record, entry.ShardId, entry.SequenceNumber, startedAt, endedAt);
        } else {
          failed(
            record,
            FailureKind.Transient,
            'MissingResult',
            'PutRecords answered without a result for this record',
            true,
          );
        }
      }
    }
    // With ordering, a shard may send again once its record's answer is handled (a record waiting for
    // a fresh shard map keeps its shard until then).
    for (const record of batch) if (!this.#verifying.has(record)) pipeline.release(record);
    this.#pump();
  }

  /**
   * A failed attempt: fail the records at once if retrying cannot help, else retry after backoff. An
   * aggregate whose entry keeps failing (or fails for good) is split in two, and again, so that one
   * record that can never be written fails alone while the others get through.
   */
  #afterFailure(
    pipeline: StreamPipeline,
    record: OutboundRecord,
    kind: FailureKind,
    code: string,
    message: string,
    perEntry: boolean,
    now: number,
    backoff: (attempts: number) => number,
  ): void {
    this.#metrics.errors(pipeline.stream.label, record.predictedShardId, code, record.items.length, now);
    const throttled = kind === FailureKind.Throttled;
    if (
      perEntry &&
      record.aggregated &&
      !throttled &&
      (kind === FailureKind.Fatal || failureStreak(record) >= SPLIT_AFTER_FAILURES)
    ) {
      const retryAt = kind === FailureKind.Fatal ? now : now + backoff(record.attempts.length);
      pipeline.requeue(record.items, record.attempts, now, retryAt, true);
      return;
    }
    if (kind === FailureKind.Fatal || (throttled && this.#options.failIfThrottled)) {
      for (const item of record.items) {
        this.#fail(pipeline.stream, item, code, message, record.predictedShardId, attemptsOf(item, record));
      }
      return;
    }
    pipeline.retryLater(record, now + backoff(record.attempts.length));
  }

  /**
   * The service stored the Kinesis record. If it landed on another shard than predicted, the shard map
   * is stale (a reshard): KCL drops an aggregate holding any record outside the shard it is read
   * from, so once the map is fresh, an aggregate whose records are not all inside the shard that
   * took it is sent again (as KPL does); otherwise it stands.
   */
  #afterWrite(
    pipeline: StreamPipeline,
    record: OutboundRecord,
    shardId: string,
    sequenceNumber: string,
    startedAt: number,
    endedAt: number,
  ): void {
    const predicted = record.predictedShardId;
    if (predicted === undefined || predicted === shardId || !pipeline.info?.userPartitioned) {
      record.attempts.push({
        startedAt,
        endedAt,
        success: true,
        errorCode: undefined,
        errorMessage: undefined,
      });
      this.#succeed(pipeline, record, shardId, sequenceNumber);
      return;
    }
    this.#logger.debug(
      { stream: pipeline.stream.label, predicted, actual: shardId },
      'record landed on another shard than predicted',
    );
    if (!record.aggregated) {
      record.attempts.push({
        startedAt,
        endedAt,
        success: true,
        errorCode: undefined,
        errorMessage: undefined,
      });
      this.#succeed(pipeline, record, shardId, sequenceNumber);
      pipeline.shardMap.refresh();
      return;
    }
    this.#verifying.set(record, pipeline);
    pipeline.shardMap.refreshThen(() => {
      this.#verifying.delete(record);
      if (this.#stopped) return;
      const range = pipeline.shardMap.range(shardId);
      const inside =
        range !== undefined &&
        record.items.every((item) => item.hashKey >= range.start && item.hashKey <= range.end);
      if (inside) {
        record.attempts.push({
          startedAt,
          endedAt,
          success: true,
          errorCode: undefined,
          errorMessage: undefined,
        });
        this.#succeed(pipeline, record, shardId, sequenceNumber);
      } else {
        const message = `Aggregate landed on ${shardId}, not ${predicted} as predicted, and holds records of other shards, which consumers would drop; its records are sent again`;
        record.attempts.push({
          startedAt,
          endedAt,
          success: false,
          errorCode: 'WrongShard',
          errorMessage: message,
        });
        const now = this.#options.clock.now();
        pipeline.requeue(record.items, record.attempts, now, now);
      }
      pipeline.release(record);
      this.#pump();
    });
  }

  // ---- settling ------------------------------------------------------------------------------------

  #succeed(pipeline: StreamPipeline, record: OutboundRecord, shardId: string, sequenceNumber: string): void {
    const aggregated = record.aggregated;
    const items = record.items;
    const stream = pipeline.stream.label;
    const now = this.#options.clock.now();
    let userRecords = 0;
    let userBytes = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.settled) continue;
      userRecords++;
      userBytes += item.sizeBytes;
      this.#settle(item);
      const prior = item.priorAttempts;
      const first = prior?.[0] ?? record.attempts[0]!;
      this.#metrics.settled(
        stream,
        shardId,
        (prior?.length ?? 0) + record.attempts.length,
        first.startedAt - item.arrivedAt,
        now,
      );
      const settler = item.settler;
      if (settler === undefined) continue;
      const result: PutResult = {
        shardId,
        sequenceNumber,
        subSequenceNumber: aggregated ? i : 0,
        aggregated,
        attempts: toAttempts(item.arrivedAt, attemptsOf(item, record)),
      };
      if (settler.kind === 'promise') settler.resolve(result);
      else this.#callBack(settler.callback, null, result);
    }
    this.#metrics.kinesisRecordPut(stream, shardId, userRecords, userBytes, record.sizeBytes, now);
  }

  #fail(
    stream: StreamRef,
    item: PendingRecord,
    code: string,
    message: string,
    shardId: string | undefined,
    attempts: readonly AttemptLog[],
  ): void {
    if (item.settled) return;
    this.#settle(item);
    const now = this.#options.clock.now();
    this.#metrics.settled(
      stream.label,
      shardId,
      attempts.length,
      attempts.length > 0 ? attempts[0]!.startedAt - item.arrivedAt : undefined,
      now,
    );
    if (code === ErrorCode.Expired) this.#metrics.expired(stream.label, shardId, now);
    const error = new RecordFailedError(code, message, {
      record: item.original,
      attempts: toAttempts(item.arrivedAt, attempts),
      streamName: stream.label,
      shardId,
    });
    const settler = item.settler;
    if (settler?.kind === 'promise') settler.reject(error);
    else if (settler?.kind === 'callback') this.#callBack(settler.callback, error, undefined);
    const heard = this.listenerCount('recordFailed') > 0;
    if (heard) {
      try {
        this.emit('recordFailed', error);
      } catch (listenerError) {
        this.#logger.error(
          { error: String(listenerError) },
          "a 'recordFailed' listener threw; the producer carries on",
        );
      }
    } else if (settler === undefined) {
      this.#warnUnheard(error);
    }
  }

  /**
   * Bookkeeping shared by success and failure: counters, flush barriers, room for waiting puts,
   * 'drain', and the wake timer once nothing is left (an idle producer holds no timer).
   */
  #settle(item: PendingRecord): void {
    item.settled = true;
    this.#outstanding--;
    this.#bufferedBytes -= item.sizeBytes;
    this.#releaseEpoch(item.epoch);
    if (this.#roomWaiters.length > 0) this.#admitWaiters();
    if (this.#needDrain && this.#roomWaiters.length === 0 && this.#belowHalf()) {
      this.#needDrain = false;
      try {
        this.emit('drain');
      } catch (listenerError) {
        this.#logger.error(
          { error: String(listenerError) },
          "a 'drain' listener threw; the producer carries on",
        );
      }
    }
    if (this.#outstanding === 0 && this.#roomWaiters.length === 0 && this.#wakeTimer !== undefined) {
      this.#options.clock.clearTimeout(this.#wakeTimer);
      this.#wakeTimer = undefined;
      this.#wakeTime = Number.POSITIVE_INFINITY;
    }
  }

  #belowHalf(): boolean {
    return (
      this.#outstanding <= this.#options.maxOutstandingRecords / 2 &&
      this.#bufferedBytes <= this.#options.maxBufferedBytes / 2
    );
  }

  #releaseEpoch(epoch: number): void {
    const left = (this.#unsettledByEpoch.get(epoch) ?? 1) - 1;
    if (left === 0) {
      this.#unsettledByEpoch.delete(epoch);
      if (this.#flushWaiters.length > 0) this.#releaseFlushWaiters();
    } else {
      this.#unsettledByEpoch.set(epoch, left);
    }
  }

  #hasUnsettledUpTo(epoch: number): boolean {
    for (const e of this.#unsettledByEpoch.keys()) return e <= epoch;
    return false;
  }

  #releaseFlushWaiters(): void {
    const still: { epoch: number; resolve: () => void }[] = [];
    for (const waiter of this.#flushWaiters) {
      if (this.#hasUnsettledUpTo(waiter.epoch)) still.push(waiter);
      else waiter.resolve();
    }
    this.#flushWaiters = still;
  }

  #callBack(callback: SendCallback, error: RecordFailedError | null, result: PutResult | undefined): void {
    try {
      if (error === null) callback(null, result);
      else callback(error);
    } catch (callbackError) {
      this.#logger.error(
        { error: String(callbackError) },
        'a send() callback threw; the producer carries on',
      );
    }
  }

  #warnUnheard(error: RecordFailedError): void {
    this.#unheardFailures++;
    const now = this.#options.clock.now();
    if (now - this.#lastUnheardWarning < UNHEARD_WARNING_INTERVAL_MS) return;
    this.#lastUnheardWarning = now;
    const count = this.#unheardFailures;
    this.#unheardFailures = 0;
    this.#logger.warn(
      { stream: error.streamName, code: error.code, failedRecords: count },
      `${count} record(s) sent without a callback failed and no 'recordFailed' listener is attached; last: ${error.code}: ${error.message}`,
    );
  }
}

/** Consecutive failures of an aggregate's entry that were not throttling, before it is split. */
const SPLIT_AFTER_FAILURES = 2;

function failureStreak(record: OutboundRecord): number {
  let streak = 0;
  for (let i = record.attempts.length - 1; i >= 0; i--) {
    const attempt = record.attempts[i]!;
    if (
      attempt.success ||
      attempt.errorCode === undefined ||
      classifyEntryError(attempt.errorCode) === FailureKind.Throttled
    )
      break;
    streak++;
  }
  return streak;
}

/** Every attempt made for `item`: those of earlier Kinesis records it travelled in, then this one's. */
function attemptsOf(item: PendingRecord, record: OutboundRecord): readonly AttemptLog[] {
  return item.priorAttempts === undefined ? record.attempts : [...item.priorAttempts, ...record.attempts];
}

/**
 * The client the producer creates when none is given: HTTP/1.1 with keep-alive and `maxConnections`
 * sockets (plain-HTTP endpoints need HTTP/1.1; for HTTPS it also keeps connections warm instead of one
 * HTTP/2 session per request), and the SDK's retries off — the producer retries per record itself.
 */
function createClient(options: KinesisProducerOptions, resolved: ResolvedOptions): KinesisClient {
  const agentOptions = { keepAlive: true, maxSockets: resolved.maxConnections };
  return new KinesisClient({
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: Math.min(resolved.requestTimeoutMs, 10_000),
    }),
  });
}
