import type { Clock } from './clock.js';
import { ErrorCode, RecordFailedError } from './errors.js';
import { emitToEach, type ListenerList, thrownByApp } from './listeners.js';
import type { Logger } from './logger.js';
import type { ProducerMetrics, WrittenFigures } from './metrics.js';
import { attemptsOf, type OutboundRecord, type PendingRecord, type Settler } from './pending-record.js';
import type { SendCallback } from './producer.js';
import {
  type Attempt,
  type AttemptLog,
  earlierUnanswered,
  type PutResult,
  toAttempts,
  unansweredCode,
} from './result.js';
import { classifyEntryError, FailureKind } from './retry-policy.js';
import type { StreamRef } from './stream-ref.js';

/**
 * Each producer's Settlement, for the package's own modules that feed a producer through its public
 * API (the Writable) and must report a failure nobody heard. Not exported from the package.
 */
export const settlements = new WeakMap<object, Settlement>();

/** At most one "failed with nobody listening" warning per this interval, with a count. */
const UNHEARD_WARNING_INTERVAL_MS = 5000;

/** The part of the producer's event emitter settling needs. */
export interface FailureEvents extends ListenerList<'recordFailed', [RecordFailedError]> {
  listenerCount(event: 'recordFailed'): number;
}

/**
 * The last stage: every record gets its one answer here — its promise settles, its callback runs, a
 * failure is emitted as 'recordFailed' (with a warning when nobody hears it) — and the metrics of
 * settled records are recorded. A callback or listener that throws is logged; it never reaches the
 * producer. `onSettled` does the producer's bookkeeping (room, flush barrier) first.
 */
export class Settlement {
  /**
   * Settlements holding failures for their next warning. The timer that tells them does not keep Node
   * running, so when the process runs out of work first ('beforeExit': the app did not call
   * `close()`), they are told then. One listener for all producers, there only while one holds any.
   */
  static readonly #holding = new Set<Settlement>();
  static readonly #tellBeforeExit = (): void => {
    for (const settlement of Settlement.#holding) settlement.#reportUnheard();
  };

  readonly #events: FailureEvents;
  readonly #logger: Logger;
  readonly #metrics: ProducerMetrics;
  readonly #clock: Clock;
  readonly #onSettled: (item: PendingRecord) => void;
  /** Reused for every Kinesis record settled: no allocation per record. */
  readonly #figures: WrittenFigures = {
    userRecords: 0,
    userBytes: 0,
    kinesisBytes: 0,
    retriesSum: 0,
    retriesMin: 0,
    retriesMax: 0,
    bufferingSum: 0,
    bufferingMin: 0,
    bufferingMax: 0,
  };
  /** Failures nobody heard since the last warning about them, and the last of them. */
  #unheardFailures = 0;
  #lastUnheard: RecordFailedError | undefined;
  #lastUnheardWarning = Number.NEGATIVE_INFINITY;
  /** Tells the failures counted within an interval at its end. */
  #unheardTimer: unknown;
  /** The outbox: callbacks to call (with their error or result) and failures to emit. */
  #callbacks: SendCallback[] = [];
  #callbackErrors: (RecordFailedError | null)[] = [];
  #callbackResults: (PutResult | undefined)[] = [];
  #failures: RecordFailedError[] = [];
  /** Whether each failure's caller was answered (a promise or a callback): if not, nobody may hear it. */
  #failuresAnswered: boolean[] = [];
  #flushScheduled = false;
  /** Counts outbox microtasks: only the last one queued empties the outbox. */
  #outboxTurn = 0;
  /** A put has been rejected since the outbox was last emptied. */
  #putRejected = false;

  constructor(
    events: FailureEvents,
    logger: Logger,
    metrics: ProducerMetrics,
    clock: Clock,
    onSettled: (item: PendingRecord) => void,
  ) {
    this.#events = events;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#clock = clock;
    this.#onSettled = onSettled;
  }

  /** The service stored `record` in `shardId`: each user record inside resolves, with its index. */
  succeed(stream: StreamRef, record: OutboundRecord, shardId: string, sequenceNumber: string): void {
    const aggregated = record.aggregated;
    const items = record.items;
    const now = this.#clock.now();
    const perRecord = this.#metrics.perRecord;
    const figures = this.#figures;
    figures.userRecords = 0;
    figures.userBytes = 0;
    figures.kinesisBytes = record.sizeBytes;
    figures.retriesSum = 0;
    figures.retriesMin = Number.POSITIVE_INFINITY;
    figures.retriesMax = 0;
    figures.bufferingSum = 0;
    figures.bufferingMin = Number.POSITIVE_INFINITY;
    figures.bufferingMax = 0;
    const ownAttempts = record.attempts.length;
    const firstOwnStart = record.attempts[0]!.startedAt;
    // Records with the same arrival time (records taken one after the other share a clock reading:
    // see ArrivalClock) that made no attempts in earlier Kinesis records have the same attempts: one
    // frozen array serves them all, instead of an array and its attempts per awaited record.
    let shared: readonly Attempt[] | undefined;
    let sharedArrival = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.settled) continue;
      item.settled = true;
      this.#onSettled(item);
      // Retries and buffering time, gathered here and recorded once for the Kinesis record.
      const prior = item.priorAttempts;
      const retries = (prior === undefined ? 0 : prior.length) + ownAttempts - 1;
      const buffering = (prior === undefined ? firstOwnStart : prior[0]!.startedAt) - item.arrivedAt;
      figures.userRecords++;
      figures.userBytes += item.sizeBytes;
      figures.retriesSum += retries;
      if (retries < figures.retriesMin) figures.retriesMin = retries;
      if (retries > figures.retriesMax) figures.retriesMax = retries;
      figures.bufferingSum += buffering;
      if (buffering < figures.bufferingMin) figures.bufferingMin = buffering;
      if (buffering > figures.bufferingMax) figures.bufferingMax = buffering;
      if (perRecord) this.#metrics.settled(stream.label, shardId, retries + 1, buffering, now, true);
      if (item.resolve === undefined && item.callback === undefined) continue;
      let attempts: readonly Attempt[];
      if (prior !== undefined) {
        attempts = toAttempts(item.arrivedAt, attemptsOf(item, record));
      } else {
        if (shared === undefined || item.arrivedAt !== sharedArrival) {
          sharedArrival = item.arrivedAt;
          shared = toAttempts(sharedArrival, record.attempts);
        }
        attempts = shared;
      }
      const result: PutResult = {
        shardId,
        sequenceNumber,
        subSequenceNumber: aggregated ? i : 0,
        aggregated,
        attempts,
      };
      if (item.resolve !== undefined) item.resolve(result);
      else this.#callBack(item.callback!, null, result);
    }
    // Every user record inside had settled already (it expired meanwhile): the Kinesis record was
    // still stored.
    if (figures.userRecords === 0)
      this.#metrics.kinesisRecordStored(stream.label, shardId, record.sizeBytes, now);
    else this.#metrics.written(stream.label, shardId, figures, now);
  }

  /** `item` failed for good with `code`, after `attempts`; `cause`: the error behind it, if not the service's answer. */
  fail(
    stream: StreamRef,
    item: PendingRecord,
    code: string,
    message: string,
    shardId: string | undefined,
    attempts: readonly AttemptLog[],
    cause?: unknown,
    throttled = false,
  ): void {
    if (item.settled) return;
    item.settled = true;
    const now = this.#clock.now();
    this.#onSettled(item);
    const first = attempts[0];
    this.#metrics.settled(
      stream.label,
      shardId,
      attempts.length,
      first === undefined ? undefined : first.startedAt - item.arrivedAt,
      now,
    );
    if (code === ErrorCode.Expired) this.#metrics.expired(stream.label, shardId, now);
    const error = new RecordFailedError(code, message, {
      record: item.original,
      attempts: toAttempts(item.arrivedAt, attempts),
      streamName: stream.label,
      shardId,
      retryable:
        throttled ||
        code === ErrorCode.Expired ||
        code === ErrorCode.CloseTimeout ||
        classifyEntryError(code) === FailureKind.Throttled,
      cause,
    });
    this.deliver(item, error);
  }

  /**
   * Every user record of `record` failed for good with `code`, each with its attempts and then `last`,
   * if given (an attempt not in the record's log: one still under way); `throttled` when it was
   * refused for throttling (with `failIfThrottled`), whatever its code.
   */
  failAll(
    stream: StreamRef,
    record: OutboundRecord,
    code: string,
    message: string,
    throttled = false,
    last?: AttemptLog,
  ): void {
    for (const item of record.items) {
      const attempts = attemptsOf(item, record);
      // Refused now, but an earlier request that ended without an answer may have stored it: the
      // message must not let the caller take it for unwritten. (`last`: the message says so already.)
      const noAnswer = last === undefined ? unansweredCode(attempts) : undefined;
      this.fail(
        stream,
        item,
        code,
        noAnswer === undefined ? message : `${message.replace(/\.$/, '')}; ${earlierUnanswered(noAnswer)}.`,
        record.predictedShardId,
        last === undefined ? attempts : [...attempts, last],
        undefined,
        throttled,
      );
    }
  }

  /**
   * Settling of one answer (or one pass of timers) begins: its first rejected put's catch comes before
   * the outbox, even if an earlier answer's outbox is still queued.
   */
  beginPass(): void {
    this.#putRejected = false;
  }

  /**
   * Hands a failure to its caller — promise, callback — and to 'recordFailed'; warns (rate-limited)
   * when a record sent without a callback fails and nobody listens.
   */
  deliver(settler: Settler, error: RecordFailedError): void {
    const { reject, callback } = settler;
    if (reject !== undefined) {
      reject(error);
      // The outbox goes after the first put's catch, as the README says: one queued before it (by a
      // callback's record settled first) gives way to one queued now, behind that catch.
      if (!this.#putRejected) {
        this.#putRejected = true;
        this.#flushScheduled = false;
      }
    } else if (callback !== undefined) this.#callBack(callback, error, undefined);
    this.#failures.push(error);
    this.#failuresAnswered.push(reject !== undefined || callback !== undefined);
    this.#flushSoon();
  }

  /**
   * A failure handed to a callback that did not take it (the producer's own Writable, once it has
   * failed with an earlier record): warned about as one sent without a callback, unless
   * 'recordFailed' has listeners, which hear every failure.
   */
  unheard(error: RecordFailedError): void {
    if (this.#events.listenerCount('recordFailed') === 0) this.#warnUnheard(error);
  }

  /**
   * Callbacks and 'recordFailed' listeners run from the outbox, a microtask later: never inside the
   * pipeline work that settled the record, which they could otherwise re-enter (a callback that sends
   * again is common). Promises need no outbox: their reactions run later anyway.
   */
  #callBack(callback: SendCallback, error: RecordFailedError | null, result: PutResult | undefined): void {
    this.#callbacks.push(callback);
    this.#callbackErrors.push(error);
    this.#callbackResults.push(result);
    this.#flushSoon();
  }

  #flushSoon(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const turn = ++this.#outboxTurn;
    queueMicrotask(() => {
      if (turn === this.#outboxTurn) this.#flushOutbox();
    });
  }

  #flushOutbox(): void {
    this.#flushScheduled = false;
    this.#putRejected = false;
    const callbacks = this.#callbacks;
    const errors = this.#callbackErrors;
    const results = this.#callbackResults;
    const failures = this.#failures;
    const answered = this.#failuresAnswered;
    this.#callbacks = [];
    this.#callbackErrors = [];
    this.#callbackResults = [];
    this.#failures = [];
    this.#failuresAnswered = [];
    for (let i = 0; i < callbacks.length; i++) {
      try {
        const error = errors[i]!;
        if (error === null) callbacks[i]!(null, results[i]);
        else callbacks[i]!(error);
      } catch (callbackError) {
        this.#logger.error(thrownByApp(callbackError), 'a send() callback threw; the producer carries on');
      }
    }
    const onThrow = (listenerError: unknown) => {
      this.#logger.error(
        thrownByApp(listenerError),
        "a 'recordFailed' listener threw; the producer carries on",
      );
    };
    // Who hears a failure is known only now: callbacks above, or listeners of earlier failures
    // (`once`), may have removed the listeners there were when it settled.
    for (let i = 0; i < failures.length; i++) {
      const error = failures[i]!;
      if (this.#events.listenerCount('recordFailed') > 0) {
        emitToEach(this.#events, 'recordFailed', [error], onThrow);
      } else if (!answered[i]) {
        this.#warnUnheard(error);
      }
    }
  }

  /**
   * Counts a failure nobody hears and warns about it: at once if the last warning is an interval
   * old, else at the end of the interval (or at close, or when the process runs out of work), with
   * every failure counted since.
   */
  #warnUnheard(error: RecordFailedError): void {
    this.#unheardFailures++;
    this.#lastUnheard = error;
    const wait = this.#lastUnheardWarning + UNHEARD_WARNING_INTERVAL_MS - this.#clock.now();
    if (wait <= 0) {
      this.#reportUnheard();
    } else {
      this.#hold();
      this.#unheardTimer ??= this.#clock.setTimeout(
        () => {
          this.#unheardTimer = undefined;
          this.#reportUnheard();
        },
        wait,
        false,
      );
    }
  }

  #hold(): void {
    const holding = Settlement.#holding;
    if (holding.has(this)) return;
    if (holding.size === 0) process.on('beforeExit', Settlement.#tellBeforeExit);
    holding.add(this);
  }

  #reportUnheard(): void {
    const holding = Settlement.#holding;
    if (holding.delete(this) && holding.size === 0) process.off('beforeExit', Settlement.#tellBeforeExit);
    const error = this.#lastUnheard;
    const count = this.#unheardFailures;
    if (error === undefined || count === 0) return;
    this.#unheardFailures = 0;
    this.#lastUnheard = undefined;
    this.#lastUnheardWarning = this.#clock.now();
    this.#logger.warn(
      { stream: error.streamName, code: error.code, failedRecords: count },
      `${count} record(s) sent without a callback failed and no 'recordFailed' listener is attached; last: ${error.code}: ${error.message}`,
    );
  }

  /** The producer shut down: failures not yet told in a warning are told now. */
  close(): void {
    if (this.#unheardTimer !== undefined) this.#clock.clearTimeout(this.#unheardTimer);
    this.#unheardTimer = undefined;
    this.#reportUnheard();
  }
}
