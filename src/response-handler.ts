import type { PutRecordsResultEntry } from '@aws-sdk/client-kinesis';
import type { CredentialRenewal } from './credential-renewal.js';
import { describeThrown, ErrorCode } from './errors.js';
import { thrownByApp } from './listeners.js';
import type { Logger } from './logger.js';
import type { ProducerMetrics } from './metrics.js';
import type { ResolvedOptions } from './options.js';
import { attemptCount, attemptsOf, type OutboundRecord } from './pending-record.js';
import { MISSING_RESULT } from './result.js';
import { backoffDelay, classifyEntryError, classifyRequestError, FailureKind } from './retry-policy.js';
import type { SendOutcome } from './sender.js';
import type { Settlement } from './settlement.js';
import type { StreamPipeline } from './stream-pipeline.js';

/** Consecutive failures of an aggregate's entry, not throttling, after which it is split in two. */
export const SPLIT_AFTER_FAILURES = 2;

/**
 * Classifies the answer to a PutRecords request, record by record, and decides each record's fate:
 * settled (stored), retried after backoff, split (an aggregate that keeps failing), sent again (an
 * aggregate that landed on a shard its records do not all belong to), or failed for good. Feeds the
 * shard rate limiters: throttling lowers a shard's rate, success lets it probe upward.
 */
export class ResponseHandler {
  readonly #options: ResolvedOptions;
  readonly #logger: Logger;
  readonly #metrics: ProducerMetrics;
  readonly #settlement: Settlement;
  readonly #pump: () => void;
  readonly #credentials: CredentialRenewal;

  constructor(
    options: ResolvedOptions,
    metrics: ProducerMetrics,
    settlement: Settlement,
    credentials: CredentialRenewal,
    pump: () => void,
  ) {
    this.#options = options;
    this.#logger = options.logger;
    this.#metrics = metrics;
    this.#settlement = settlement;
    this.#credentials = credentials;
    this.#pump = pump;
  }

  handle(pipeline: StreamPipeline, batch: readonly OutboundRecord[], outcome: SendOutcome): void {
    this.#settlement.beginPass();
    try {
      this.#handle(pipeline, batch, outcome);
    } catch (error) {
      this.#failUnhandled(pipeline, batch, error);
    }
    // Only now is anything sent: until here, each record of the batch is settled, held by the
    // pipeline again, or stranded (see #failUnhandled).
    try {
      this.#pump();
    } catch (pumpError) {
      this.#logger.error(thrownByApp(pumpError), 'kinesis-producer: sending failed to resume');
    }
  }

  /**
   * The answer could not be handled: a defect of the producer. The batch has left the dispatcher, so
   * without this the records the handling did not reach would never settle and `close()` would wait
   * for them for good. They fail with `Internal`, and their shards go on. The others keep the fate the
   * handling gave them: settled, or held by the pipeline again (set to retry, split, waiting for a
   * newer map) — failing those too would tell Internal of a record that is then written.
   */
  #failUnhandled(pipeline: StreamPipeline, batch: readonly OutboundRecord[], error: unknown): void {
    const reason = describeThrown(error);
    const held = new Set(pipeline.pendingItems());
    for (const record of batch) {
      if (!pipeline.isLanded(record)) pipeline.release(record);
      for (const item of record.items) {
        if (held.has(item)) continue;
        this.#settlement.fail(
          pipeline.stream,
          item,
          ErrorCode.Internal,
          `kinesis-producer failed while handling the answer to the PutRecords request holding this record (${reason}), so it cannot tell whether the record was written. This is a defect of kinesis-producer: please report it.`,
          record.predictedShardId,
          attemptsOf(item, record),
          error,
        );
      }
    }
  }

  #handle(pipeline: StreamPipeline, batch: readonly OutboundRecord[], outcome: SendOutcome): void {
    const { startedAt, endedAt } = outcome;
    let userRecords = 0;
    for (const record of batch) userRecords += record.items.length;
    this.#metrics.request(pipeline.stream.label, batch.length, userRecords, endedAt - startedAt, endedAt);
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
      record.attempts.push({
        startedAt,
        endedAt,
        success: false,
        errorCode: code,
        errorMessage: message,
        byEntry: perEntry,
      });
      if (kind === FailureKind.Throttled) pipeline.onThrottled(record.predictedShardId, endedAt);
      this.#afterFailure(pipeline, record, kind, code, message, endedAt, backoff);
    };
    if (!outcome.ok) {
      let failure = classifyRequestError(outcome.error);
      if (failure.code === 'ExpiredTokenException') failure = this.#credentials.judge(failure);
      this.#logger.debug(
        { stream: pipeline.stream.label, records: batch.length, code: failure.code, kind: failure.kind },
        'PutRecords request failed',
      );
      for (const record of batch) failed(record, failure.kind, failure.code, failure.message, false);
      // The stream is gone, maybe to be created again with other shards under the same ids. (Not for
      // a request sent under an older map: a late answer from while it was gone.)
      const map = pipeline.shardMap;
      if (failure.code === 'ResourceNotFoundException' && batch.some((r) => r.mapVersion === map.version)) {
        map.forget();
        // A stream that routes records itself has no map to drop: its summary is read again here.
        if (pipeline.routesItself) pipeline.readSummaryAgain(endedAt);
      }
    } else {
      // A client of the user's own may answer with anything (a test double that returns nothing):
      // records without a result are retried as `MissingResult`.
      const answered: unknown = (outcome.output as { Records?: unknown } | null | undefined)?.Records;
      const entries: readonly (PutRecordsResultEntry | null | undefined)[] = Array.isArray(answered)
        ? answered
        : [];
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
            MISSING_RESULT,
            'PutRecords answered without a result for this record',
            true,
          );
        }
      }
    }
    // With ordering, a shard may send again once its record's answer is handled (a record waiting for
    // a newer shard map keeps its shard until then: the pipeline releases it).
    for (const record of batch) if (!pipeline.isLanded(record)) pipeline.release(record);
  }

  /**
   * A failed attempt, the last one logged for `record`: fail the records at once if retrying cannot
   * help, else retry after backoff. An aggregate whose entry keeps failing (or fails for good) is
   * split in two, and again, so that one record that can never be written fails alone while the
   * others get through.
   */
  #afterFailure(
    pipeline: StreamPipeline,
    record: OutboundRecord,
    kind: FailureKind,
    code: string,
    message: string,
    now: number,
    backoff: (attempts: number) => number,
  ): void {
    // Records that expired while the request was under way made no attempt that counts now.
    let pending = 0;
    for (const item of record.items) if (!item.settled) pending++;
    if (pending > 0) this.#metrics.errors(pipeline.stream.label, record.predictedShardId, code, pending, now);
    const throttled = kind === FailureKind.Throttled;
    if (
      record.attempts[record.attempts.length - 1]!.byEntry &&
      record.aggregated &&
      !throttled &&
      (kind === FailureKind.Fatal || failureStreak(record) >= SPLIT_AFTER_FAILURES)
    ) {
      const retryAt = kind === FailureKind.Fatal ? now : now + backoff(attemptCount(record));
      pipeline.requeue(record.items, record.attempts, now, retryAt, 'halves');
      return;
    }
    if (kind === FailureKind.Fatal || (throttled && this.#options.failIfThrottled)) {
      this.#settlement.failAll(pipeline.stream, record, code, message, throttled);
      return;
    }
    pipeline.retryLater(record, now + backoff(attemptCount(record)));
  }

  /**
   * The service stored the Kinesis record. If it landed on another shard than predicted, the shard map
   * is stale (a reshard): KCL drops an aggregate holding any record outside the shard it is read
   * from, so once a listing of the stream's shards tells, an aggregate whose records are not all
   * inside the shard that took it is sent again (as KPL does); otherwise it stands (see
   * StreamPipeline.landedElsewhere).
   */
  #afterWrite(
    pipeline: StreamPipeline,
    record: OutboundRecord,
    shardId: string,
    sequenceNumber: string,
    startedAt: number,
    endedAt: number,
  ): void {
    // The attempt is logged as stored; if an aggregate must be sent again, the pipeline says so.
    record.attempts.push({
      startedAt,
      endedAt,
      success: true,
      errorCode: undefined,
      errorMessage: undefined,
      byEntry: true,
    });
    if (record.aggregated && pipeline.routesItself) {
      pipeline.storedInAutoStream(record, shardId, endedAt);
      return;
    }
    const predicted = record.predictedShardId;
    // A prediction from before the shard ids were reset may name an id that owns other keys now.
    const trusted = predicted === shardId && record.mapVersion >= pipeline.shardMap.resetVersion;
    if (predicted === undefined || trusted || !pipeline.info?.userPartitioned) {
      this.#settlement.succeed(pipeline.stream, record, shardId, sequenceNumber);
      return;
    }
    this.#logger.debug(
      { stream: pipeline.stream.label, predicted, actual: shardId },
      'record landed on another shard than predicted',
    );
    if (!record.aggregated) {
      // A single record is never filtered by consumers: it stands wherever it landed.
      this.#settlement.succeed(pipeline.stream, record, shardId, sequenceNumber);
      pipeline.shardMap.refresh();
      return;
    }
    pipeline.landedElsewhere(record, shardId, sequenceNumber);
  }
}

/**
 * Failures of the entry in a row, not throttling, that end the attempts of `record`'s records — also
 * those made in the aggregate it was split from, so that once a split started, every further failure
 * splits again (a record that can never be written is alone after log2(n) more attempts). Failures of
 * a whole request say nothing about the records in it: they neither count nor break the streak.
 */
function failureStreak(record: OutboundRecord): number {
  let streak = 0;
  for (const attempts of [record.attempts, record.items[0]?.priorAttempts ?? []]) {
    for (let i = attempts.length - 1; i >= 0; i--) {
      const attempt = attempts[i]!;
      if (
        attempt.success ||
        attempt.errorCode === undefined ||
        classifyEntryError(attempt.errorCode) === FailureKind.Throttled
      )
        return streak;
      if (attempt.byEntry) streak++;
    }
  }
  return streak;
}
