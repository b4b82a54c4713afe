/** One try at writing a record, as KPL reports it. */
export interface Attempt {
  /**
   * When the PutRecords request carrying the record started, in ms since the epoch by the producer's
   * clock: the wall-clock time the process started plus the monotonic time since (it does not
   * follow wall-clock steps, and falls behind by the time the machine was suspended).
   */
  readonly startedAt: number;
  /** How long the request took. */
  readonly durationMs: number;
  /**
   * Time between the record's arrival (first attempt) or the end of the previous attempt and the
   * start of this one: buffering, queueing and backoff.
   */
  readonly delayMs: number;
  readonly success: boolean;
  /**
   * The service's error code (per record or per request), or a network error's code; `Unanswered`
   * for a request that had not answered when the record had to settle (its TTL passed, or close()
   * gave up): it may still have stored the record. For an aggregate the service stored whose records
   * were sent again: `WrongShard`, `StreamGone`, `UnlistedShard` or `StoredInAutoStream` (README).
   */
  readonly errorCode?: string;
  readonly errorMessage?: string;
}

/** What `put` resolves with (and `send` passes to its callback) once a record is written. */
export interface PutResult {
  /** The shard that stored the record. */
  readonly shardId: string;
  /** Sequence number of the Kinesis record that carried it (shared by an aggregate's records). */
  readonly sequenceNumber: string;
  /** Index of the record inside its aggregate; 0 when it was sent on its own. */
  readonly subSequenceNumber: number;
  /** Whether it travelled inside a KPL aggregate. */
  readonly aggregated: boolean;
  /**
   * Every attempt, the last one successful. Frozen; records of one Kinesis record with the same
   * arrival time may share one list.
   */
  readonly attempts: readonly Attempt[];
}

/** @internal An attempt as recorded once per Kinesis record; turned into per-record Attempts on settle. */
export interface AttemptLog {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly success: boolean;
  readonly errorCode: string | undefined;
  readonly errorMessage: string | undefined;
  /**
   * The failure was this Kinesis record's own entry in the response, not the whole request's (nor a
   * landing on the wrong shard): what tells a record that keeps failing from a bad connection.
   */
  readonly byEntry: boolean;
}

/** The error code of an attempt whose request had not answered when its records had to settle. */
const UNANSWERED = 'Unanswered';

/**
 * Codes of attempts that ended without an answer the producer could read once the request may have
 * reached the service: the producer stopped waiting (`RequestTimeout`, `Unanswered`), the client's
 * own handler did (`TimeoutError`, `ETIMEDOUT`), the connection or the HTTP/2 stream broke under it,
 * an answer larger than any PutRecords answer (`ResponseTooLarge`), a 200 that could not be read
 * (`Http200`: cut short, or a page of a proxy's). Not a 408: the server did not get the whole request.
 * Such a request may have stored the record all the same. So may one answered with a 5xx (see
 * serverFault), and a record a 200 gave no result for (`MissingResult`, though logged as its entry's).
 */
const NO_ANSWER = new Set([
  'RequestTimeout',
  'Unanswered',
  'TimeoutError',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_STREAM_CANCEL',
  'ERR_HTTP2_SESSION_ERROR',
  'ResponseTooLarge',
  'Http200',
]);

/**
 * Whether `code` is a whole request's server fault, after which the service may have stored the
 * record: Kinesis's `InternalFailure` (500) and `ServiceUnavailable` (503), and a 5xx page with no
 * Kinesis error in it (`Http500`, a gateway's `Http502`/`Http504`, ...). An entry's own
 * `InternalFailure` in a PutRecords answer is not one: that entry was not stored.
 */
function serverFault(code: string): boolean {
  return (
    code === 'InternalFailure' ||
    code === 'InternalFailureException' ||
    code === 'ServiceUnavailable' ||
    code === 'ServiceUnavailableException' ||
    /^Http5\d\d$/.test(code)
  );
}

/**
 * The code of the first of `attempts` whose request ended without an answer (see NO_ANSWER), so
 * that a failure does not say the record was not written; undefined when every one was answered.
 */
export function unansweredCode(attempts: readonly AttemptLog[]): string | undefined {
  for (const attempt of attempts) {
    const code = attempt.errorCode;
    if (code === undefined) continue;
    if (code === MISSING_RESULT || code === UNLISTED_SHARD) return code;
    if (!attempt.byEntry && (NO_ANSWER.has(code) || serverFault(code))) return code;
  }
  return undefined;
}

/** What a failure says of an earlier attempt whose request ended without an answer (`code`). */
export function earlierUnanswered(code: string): string {
  if (code === UNLISTED_SHARD) {
    return `an earlier request stored it in an aggregate on a shard no listing showed (${code}), where consumers may read it`;
  }
  const ended =
    code === MISSING_RESULT
      ? 'was answered without a result for it'
      : serverFault(code)
        ? 'ended with a server fault'
        : 'ended without an answer';
  return `an earlier request carrying it ${ended} (${code}), and may have stored it`;
}

/** The code of a record a PutRecords answer (a 200) gave no result for. */
export const MISSING_RESULT = 'MissingResult';

/**
 * The code of an attempt that stored its aggregate on a shard no listing showed for a few seconds:
 * sent again, but consumers may read it where it is.
 */
export const UNLISTED_SHARD = 'UnlistedShard';

/**
 * @internal The attempt of a request still under way when its records had to settle (`why`: their
 * TTL passed, or close() gave up): it may yet store them, and its answer is then ignored for them.
 */
export function unansweredAttempt(startedAt: number, endedAt: number, why: string): AttemptLog {
  return {
    startedAt,
    endedAt,
    success: false,
    errorCode: UNANSWERED,
    errorMessage: `the request was still under way after ${endedAt - startedAt} ms when ${why}: the service may still have stored the record`,
    byEntry: false,
  };
}

/**
 * @internal Per-record attempts from the shared log: each delay is measured from the record's own
 * arrival or from the end of the attempt before. Frozen, array and attempts: records written together
 * may share them (see Settlement.succeed).
 */
export function toAttempts(arrivedAt: number, log: readonly AttemptLog[]): readonly Attempt[] {
  const out: Attempt[] = new Array(log.length);
  let previousEnd = arrivedAt;
  for (let i = 0; i < log.length; i++) {
    const a = log[i]!;
    const attempt: { -readonly [K in keyof Attempt]: Attempt[K] } = {
      startedAt: a.startedAt,
      durationMs: a.endedAt - a.startedAt,
      delayMs: Math.max(0, a.startedAt - previousEnd),
      success: a.success,
    };
    if (a.errorCode !== undefined) attempt.errorCode = a.errorCode;
    if (a.errorMessage !== undefined) attempt.errorMessage = a.errorMessage;
    out[i] = Object.freeze(attempt);
    previousEnd = a.endedAt;
  }
  return Object.freeze(out);
}
