import { ErrorCode, RecordFailedError } from './errors.js';
import type { Logger } from './logger.js';
import type { ProducerMetrics } from './metrics.js';
import { attemptsOf, type OutboundRecord, type PendingRecord, type Settler } from './pending-record.js';
import { type AttemptLog, type PutResult, toAttempts } from './result.js';
import type { StreamRef } from './stream-ref.js';

/** At most one "failed with nobody listening" warning per this interval, with a count. */
const UNHEARD_WARNING_INTERVAL_MS = 5000;

/** The part of the producer's event emitter settling needs. */
export interface FailureEvents {
  listenerCount(event: 'recordFailed'): number;
  emit(event: 'recordFailed', error: RecordFailedError): boolean;
}

/**
 * The last stage: every record gets its one answer here — its promise settles, its callback runs, a
 * failure is emitted as 'recordFailed' (with a warning when nobody hears it) — and the metrics of
 * settled records are recorded. A callback or listener that throws is logged; it never reaches the
 * producer. `onSettled` does the producer's bookkeeping (room, flush barrier) first.
 */
export class Settlement {
  readonly #events: FailureEvents;
  readonly #logger: Logger;
  readonly #metrics: ProducerMetrics;
  readonly #now: () => number;
  readonly #onSettled: (item: PendingRecord) => void;
  readonly #onWritten: (records: number, bytes: number, now: number) => void;
  #unheardFailures = 0;
  #lastUnheardWarning = Number.NEGATIVE_INFINITY;

  constructor(
    events: FailureEvents,
    logger: Logger,
    metrics: ProducerMetrics,
    now: () => number,
    onSettled: (item: PendingRecord) => void,
    onWritten: (records: number, bytes: number, now: number) => void,
  ) {
    this.#events = events;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#now = now;
    this.#onSettled = onSettled;
    this.#onWritten = onWritten;
  }

  /** The service stored `record` in `shardId`: each user record inside resolves, with its index. */
  succeed(stream: StreamRef, record: OutboundRecord, shardId: string, sequenceNumber: string): void {
    const aggregated = record.aggregated;
    const items = record.items;
    const now = this.#now();
    let userRecords = 0;
    let userBytes = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.settled) continue;
      userRecords++;
      userBytes += item.sizeBytes;
      item.settled = true;
      this.#onSettled(item);
      const prior = item.priorAttempts;
      const first = prior?.[0] ?? record.attempts[0]!;
      this.#metrics.settled(
        stream.label,
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
      else this.#callBack(settler, null, result);
    }
    this.#onWritten(userRecords, userBytes, now);
    this.#metrics.kinesisRecordPut(stream.label, shardId, userRecords, userBytes, record.sizeBytes, now);
  }

  /** `item` failed for good with `code`, after `attempts`. */
  fail(
    stream: StreamRef,
    item: PendingRecord,
    code: string,
    message: string,
    shardId: string | undefined,
    attempts: readonly AttemptLog[],
  ): void {
    if (item.settled) return;
    item.settled = true;
    this.#onSettled(item);
    const now = this.#now();
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
    });
    this.deliver(item.settler, error);
  }

  /**
   * Hands a failure to its caller — promise, callback — and to 'recordFailed'; warns (rate-limited)
   * when a record sent without a callback fails and nobody listens.
   */
  deliver(settler: Settler | undefined, error: RecordFailedError): void {
    if (settler?.kind === 'promise') settler.reject(error);
    else if (settler?.kind === 'callback') this.#callBack(settler, error, undefined);
    if (this.#events.listenerCount('recordFailed') > 0) {
      try {
        this.#events.emit('recordFailed', error);
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

  #callBack(
    settler: Settler & { kind: 'callback' },
    error: RecordFailedError | null,
    result: PutResult | undefined,
  ): void {
    try {
      if (error === null) settler.callback(null, result);
      else settler.callback(error);
    } catch (callbackError) {
      this.#logger.error(
        { error: String(callbackError) },
        'a send() callback threw; the producer carries on',
      );
    }
  }

  #warnUnheard(error: RecordFailedError): void {
    this.#unheardFailures++;
    const now = this.#now();
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
