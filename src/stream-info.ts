import { DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { MAX_RECORD_BYTES_LIMIT } from './aggregator.js';
import { MAX_METADATA_ANSWER_BYTES, withBoundedAnswer } from './bounded-answer.js';
import { callFailed, callWithRetries, type MetadataSource, OutlivedCalls } from './metadata-call.js';
import { RepeatedWarning } from './repeated-warning.js';
import { backoffDelay, classifyRequestError, FailureKind, type RequestFailure } from './retry-policy.js';
import { streamParams } from './stream-ref.js';
import { DEFAULT_MAX_RECORD_BYTES } from './user-record.js';

/** What the producer needs to know about a stream before it sends to it. */
export interface StreamInfo {
  /** The stream's maximum record size (partition key + data). */
  readonly maxRecordBytes: number;
  /**
   * False on streams with `RecordDistributionStrategy` AUTO: the service ignores partition keys there,
   * so records cannot be routed to a shard, and KCL drops KPL aggregates.
   */
  readonly userPartitioned: boolean;
  /** Whether `userPartitioned` was read from the stream, not assumed (the summary was denied). */
  readonly routingKnown: boolean;
  /**
   * False while the summary could not be read for a passing reason (throttling, 5xx, network) and
   * is read again in the background: the producer sends records unaggregated (safe on any stream)
   * and holds records above 1 MiB until it knows whether the stream takes them.
   */
  readonly final: boolean;
  /** The stream's open shards as the summary counts them, when it was read. */
  readonly openShards: number | undefined;
}

/** What applies when DescribeStreamSummary is denied: for good. */
export const DEFAULT_STREAM_INFO: StreamInfo = {
  maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
  userPartitioned: true,
  routingKnown: false,
  final: true,
  openShards: undefined,
};

/** What applies while DescribeStreamSummary keeps failing for a passing reason. */
export const PROVISIONAL_STREAM_INFO: StreamInfo = { ...DEFAULT_STREAM_INFO, final: false };

/** The least time between reads `recheck` asks for. */
const RECHECK_INTERVAL_MS = 10_000;

/** Backoff between background reads after a passing failure. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/**
 * Reads a stream's DescribeStreamSummary and reports what it learnt through `onRead`.
 *
 * A denied call is logged and the defaults apply for good (1 MiB records, partition-key routing):
 * the producer still works, only unaware of raised limits. A call that fails for a passing reason,
 * or finds no stream (it may be created later), reports provisional defaults and is tried again in
 * the background, with backoff, until it succeeds or is denied. Its timers never hold the process
 * open.
 */
export class StreamSummary {
  readonly #source: MetadataSource;
  /** Its calls of DescribeStreamSummary that outlived their try: after a few in a row, tries wait (see OutlivedCalls). */
  readonly #outlived = new OutlivedCalls();
  readonly #onRead: (info: StreamInfo) => void;
  #failures = 0;
  #timer: unknown;
  #closed = false;
  /** Failures of the call: each new one told at once, the others once a minute at most. */
  readonly #warning: RepeatedWarning;
  /** How the last try failed, until a read succeeds: what records waiting for the summary are told. */
  #lastFailedTry: RequestFailure | undefined;
  /** A read is under way. */
  #reading = false;
  /** The stream was found gone while a read was under way: its answer may be of the stream that went. */
  #stale = false;
  /** When a read last answered for good (see recheck). */
  #answeredAt = Number.NEGATIVE_INFINITY;
  /** When a recheck last started, whether it answered or not (see recheck). */
  #recheckedAt = Number.NEGATIVE_INFINITY;

  constructor(source: MetadataSource, onRead: (info: StreamInfo) => void) {
    this.#source = source;
    this.#onRead = onRead;
    this.#warning = new RepeatedWarning(source.logger, source.clock);
  }

  /**
   * Why records waiting for the summary still wait, for their error if they expire: no try has
   * answered yet, or how the last one failed.
   */
  get waitReason(): string {
    const failure = this.#lastFailedTry;
    return failure === undefined
      ? 'DescribeStreamSummary has not answered yet'
      : `DescribeStreamSummary has not answered; its last try failed with ${failure.code}: ${failure.message.replace(/\.$/, '')}`;
  }

  /**
   * Starts reading: at first, or again because the stream was found gone. A read under way then is
   * not taken (it may describe the stream that went): another follows it. A read waiting out its
   * backoff goes now.
   */
  read(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) this.#source.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#reading) {
      this.#stale = true;
      return;
    }
    void this.#read(false);
  }

  /**
   * Reads again if nothing is being read, and the last answer and the last recheck are at least 10 s
   * old: records landing where a map just listed does not send them may mean the stream was created
   * again as AUTO.
   */
  recheck(): void {
    if (this.#closed || this.#reading || this.#timer !== undefined) return;
    const now = this.#source.clock.now();
    // Also after a recheck that failed: not tried again at every landing.
    if (now - Math.max(this.#answeredAt, this.#recheckedAt) < RECHECK_INTERVAL_MS) return;
    this.#recheckedAt = now;
    void this.#read(true);
  }

  /** Stops reading in the background. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#source.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * `recheck`: a read of a summary already known, only to learn whether it changed. One that fails
   * takes nothing back: what the summary said stands, and no read is scheduled.
   */
  async #read(recheck: boolean): Promise<void> {
    this.#reading = true;
    let info: StreamInfo;
    try {
      info = await this.#load(recheck);
    } finally {
      this.#reading = false;
    }
    if (this.#closed) return;
    if (this.#stale) {
      this.#stale = false;
      void this.#read(false);
      return;
    }
    // A recheck is taken only if it answered: a failure, or a denial, takes nothing back.
    if (recheck && !(info.final && info.routingKnown)) return;
    this.#onRead(info);
    if (info.final) {
      // Read again from scratch if the stream is found gone later (see StreamPipeline).
      this.#failures = 0;
      this.#answeredAt = this.#source.clock.now();
      return;
    }
    this.#failures++;
    this.#timer = this.#source.clock.setTimeout(
      () => {
        this.#timer = undefined;
        if (!this.#closed) this.read();
      },
      RETRY_BASE_MS + backoffDelay(this.#failures, RETRY_BASE_MS, RETRY_MAX_MS),
      false,
    );
  }

  async #load(recheck: boolean): Promise<StreamInfo> {
    try {
      const output = await callWithRetries(
        (abortSignal) =>
          this.#source.client.send(
            withBoundedAnswer(
              new DescribeStreamSummaryCommand(streamParams(this.#source.stream)),
              MAX_METADATA_ANSWER_BYTES,
            ),
            { abortSignal },
          ),
        this.#source,
        this.#outlived,
        2,
        (error) => {
          this.#lastFailedTry = classifyRequestError(error);
        },
      );
      this.#lastFailedTry = undefined;
      const summary = output.StreamDescriptionSummary;
      const kib = summary?.MaxRecordSizeInKiB;
      const info: StreamInfo = {
        // At most what any stream takes (10 MiB): an endpoint that is not Kinesis may say anything.
        maxRecordBytes:
          typeof kib === 'number' && kib > 0
            ? Math.min(kib * 1024, MAX_RECORD_BYTES_LIMIT)
            : DEFAULT_MAX_RECORD_BYTES,
        userPartitioned: summary?.RecordDistributionStrategy !== 'AUTO',
        routingKnown: true,
        final: true,
        openShards:
          typeof summary?.OpenShardCount === 'number' && summary.OpenShardCount > 0
            ? summary.OpenShardCount
            : undefined,
      };
      this.#warning.clear();
      this.#source.logger.debug({ stream: this.#source.stream.label, ...info }, 'read stream summary');
      return info;
    } catch (error) {
      // Shut down: nothing to say, nobody to tell (#read checks too).
      if (this.#closed) return PROVISIONAL_STREAM_INFO;
      const failure = classifyRequestError(error);
      // A stream not found may be created any moment (a service that starts before the stream it
      // writes to): its summary is read again, as after a passing failure, rather than assumed for good.
      const notFound = failure.code === 'ResourceNotFoundException';
      if (failure.kind === FailureKind.Fatal && !notFound) {
        this.#warning.warn(
          // Told apart from a read's, which tells the fallback it takes.
          `${recheck ? 'recheck ' : ''}${failure.code} fatal`,
          { stream: this.#source.stream.label, code: failure.code, error: failure.message },
          recheck
            ? `${callFailed('DescribeStreamSummary', failure)}; keeping what it said before`
            : `${callFailed('DescribeStreamSummary', failure)}; assuming a 1 MiB record limit and partition-key routing`,
        );
        return DEFAULT_STREAM_INFO;
      }
      this.#warning.warn(
        `${recheck ? 'recheck ' : ''}${failure.code}`,
        {
          stream: this.#source.stream.label,
          code: failure.code,
          error: failure.message,
          failures: this.#failures + 1,
        },
        recheck
          ? `${callFailed('DescribeStreamSummary', failure)}; keeping what it said before`
          : `${callFailed('DescribeStreamSummary', failure)}; sending unaggregated and holding records over 1 MiB until it ${notFound ? 'is found (looked for again in the background)' : 'answers'}`,
      );
      return PROVISIONAL_STREAM_INFO;
    }
  }
}
