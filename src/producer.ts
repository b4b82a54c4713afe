import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { KinesisClient, type PutRecordsResultEntry } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { EventEmitter } from 'eventemitter3';
import { MAX_RECORD_BYTES_LIMIT } from './aggregator.js';
import { describeValue, InvalidRecordError, ProducerClosedError, RecordFailedError } from './errors.js';
import { PartitionKeyHashCache } from './hash-cache.js';
import type { Logger } from './logger.js';
import { type KinesisProducerOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { type OutboundRecord, PendingRecord, type Settler } from './pending-record.js';
import { type AttemptLog, type PutResult, toAttempts } from './result.js';
import { backoffDelay, classifyEntryError, classifyRequestError, FailureKind } from './retry-policy.js';
import { Sender, type SendOutcome } from './sender.js';
import { ShardMap } from './shard-map.js';
import { loadStreamInfo } from './stream-info.js';
import { type PipelineHost, StreamPipeline } from './stream-pipeline.js';
import { type StreamRef, streamRef } from './stream-ref.js';
import { newRecordFacts, type UserRecord, validateUserRecord } from './user-record.js';

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

  /** Bytes (partition keys + data) of the records accepted and not yet settled. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /**
   * Writes a record and resolves once it is stored, with its shard, sequence number and attempts.
   * Rejects with {@link RecordFailedError} (carrying the record, its code and every attempt) if it
   * cannot be written before `recordTtlMs`, or at once for errors that retrying cannot fix.
   * Invalid records reject at once with {@link InvalidRecordError}; after `close()`, with
   * {@link ProducerClosedError}.
   */
  put(record: ProducerRecord): Promise<PutResult> {
    let resolve!: (result: PutResult) => void;
    let reject!: (error: RecordFailedError) => void;
    const promise = new Promise<PutResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    try {
      this.#accept(record, { kind: 'promise', resolve, reject });
    } catch (error) {
      return Promise.reject(error);
    }
    return promise;
  }

  /**
   * Writes a record without a promise (fire and forget). `callback`, if given, is called exactly once
   * and always asynchronously, with the error or the result. Failures of records sent without a
   * callback are emitted as `'recordFailed'`.
   *
   * @throws {InvalidRecordError} synchronously for a record that can never be written.
   * @throws {ProducerClosedError} synchronously after `close()`.
   */
  send(record: ProducerRecord, callback?: SendCallback): void {
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidRecordError(
        'callback',
        `send() callback must be a function; received ${describeValue(callback)}.`,
      );
    }
    this.#accept(record, callback === undefined ? undefined : { kind: 'callback', callback });
  }

  /**
   * Sends everything buffered now without waiting for `maxBufferedTimeMs`, and resolves once every
   * record accepted before the call has settled (written, or failed). Never rejects: failures reach
   * each record's promise, callback or the `'recordFailed'` event.
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
   * Stops accepting records, sends everything buffered, waits for every record to settle, then
   * releases the client (if the producer created it) and its timers. Idempotent: every call returns
   * the same promise. Later `put`/`send` calls get {@link ProducerClosedError}.
   */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#closing = true;
    this.#closePromise = this.flush().then(() => this.#shutdown());
    return this.#closePromise;
  }

  /** `await using producer = new KinesisProducer(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(): void {
    if (this.#wakeTimer !== undefined) this.#options.clock.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    for (const pipeline of this.#pipelineList) pipeline.shardMap.close();
    if (this.#ownsClient) this.#client.destroy();
  }

  // ---- accepting records -------------------------------------------------------------------------

  #accept(record: ProducerRecord, settler: Settler | undefined): void {
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
    const facts = this.#facts;
    validateUserRecord(record, pipeline.info?.maxRecordBytes ?? MAX_RECORD_BYTES_LIMIT, facts);
    const partitionKey = record.partitionKey;
    const hashKey =
      facts.explicitHashKey === undefined ? this.#hashes.hash(partitionKey) : facts.explicitHashKeyValue;
    const now = this.#options.clock.now();
    const item = new PendingRecord(
      record,
      partitionKey,
      facts.partitionKeyBytes,
      record.data,
      facts.dataBytes,
      facts.explicitHashKey,
      hashKey,
      now,
      now + this.#options.recordTtlMs,
      this.#epoch,
      settler,
    );
    this.#outstanding++;
    this.#bufferedBytes += item.sizeBytes;
    this.#unsettledByEpoch.set(item.epoch, (this.#unsettledByEpoch.get(item.epoch) ?? 0) + 1);
    pipeline.accept(item);
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
    if (pipelines.length === 0) return;
    const now = this.#options.clock.now();
    let idle = 0;
    while (sender.hasCapacity && idle < pipelines.length) {
      const pipeline = pipelines[this.#nextPipeline % pipelines.length]!;
      this.#nextPipeline = (this.#nextPipeline + 1) % pipelines.length;
      if (!pipeline.isDue(now)) {
        idle++;
        continue;
      }
      idle = 0;
      const batch = pipeline.collect(now);
      if (batch.length === 0) continue;
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
    const { startedAt, endedAt } = outcome;
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
    if (!outcome.ok) {
      const failure = classifyRequestError(outcome.error);
      this.#logger.debug(
        { stream: pipeline.stream.label, records: batch.length, code: failure.code, kind: failure.kind },
        'PutRecords request failed',
      );
      for (const record of batch) {
        record.attempts.push({
          startedAt,
          endedAt,
          success: false,
          errorCode: failure.code,
          errorMessage: failure.message,
        });
        this.#afterFailure(pipeline, record, failure.kind, failure.code, failure.message, endedAt, backoff);
      }
    } else {
      const entries: readonly PutRecordsResultEntry[] = outcome.output.Records ?? [];
      for (let i = 0; i < batch.length; i++) {
        const record = batch[i]!;
        const entry = entries[i];
        if (
          entry === undefined ||
          (entry.ErrorCode === undefined &&
            (entry.ShardId === undefined || entry.SequenceNumber === undefined))
        ) {
          const message = 'PutRecords answered without a result for this record';
          record.attempts.push({
            startedAt,
            endedAt,
            success: false,
            errorCode: 'MissingResult',
            errorMessage: message,
          });
          this.#afterFailure(
            pipeline,
            record,
            FailureKind.Transient,
            'MissingResult',
            message,
            endedAt,
            backoff,
          );
        } else if (entry.ErrorCode !== undefined) {
          const message = entry.ErrorMessage ?? entry.ErrorCode;
          record.attempts.push({
            startedAt,
            endedAt,
            success: false,
            errorCode: entry.ErrorCode,
            errorMessage: message,
          });
          this.#afterFailure(
            pipeline,
            record,
            classifyEntryError(entry.ErrorCode),
            entry.ErrorCode,
            message,
            endedAt,
            backoff,
          );
        } else {
          this.#afterWrite(pipeline, record, entry.ShardId!, entry.SequenceNumber!, startedAt, endedAt);
        }
      }
    }
    this.#pump();
  }

  #afterFailure(
    pipeline: StreamPipeline,
    record: OutboundRecord,
    kind: FailureKind,
    code: string,
    message: string,
    now: number,
    backoff: (attempts: number) => number,
  ): void {
    if (kind === FailureKind.Fatal || (kind === FailureKind.Throttled && this.#options.failIfThrottled)) {
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
      this.#succeed(record, shardId, sequenceNumber);
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
      this.#succeed(record, shardId, sequenceNumber);
      pipeline.shardMap.refresh();
      return;
    }
    pipeline.shardMap.refreshThen(() => {
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
        this.#succeed(record, shardId, sequenceNumber);
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
      this.#pump();
    });
  }

  // ---- settling ------------------------------------------------------------------------------------

  #succeed(record: OutboundRecord, shardId: string, sequenceNumber: string): void {
    const aggregated = record.aggregated;
    const items = record.items;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.settled) continue;
      this.#settle(item);
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

  /** Bookkeeping shared by success and failure: counters and flush barriers. */
  #settle(item: PendingRecord): void {
    item.settled = true;
    this.#outstanding--;
    this.#bufferedBytes -= item.sizeBytes;
    const left = (this.#unsettledByEpoch.get(item.epoch) ?? 1) - 1;
    if (left === 0) {
      this.#unsettledByEpoch.delete(item.epoch);
      if (this.#flushWaiters.length > 0) this.#releaseFlushWaiters();
    } else {
      this.#unsettledByEpoch.set(item.epoch, left);
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
