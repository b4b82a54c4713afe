import { type KinesisClient, PutRecordsCommand, type PutRecordsCommandOutput } from '@aws-sdk/client-kinesis';
import { writeAggregateDigests } from './aggregator.js';
import { MAX_PUT_RECORDS_ANSWER_BYTES, withBoundedAnswer } from './bounded-answer.js';
import { abortReason, ClientCall } from './client-call.js';
import type { Clock } from './clock.js';
import type { OutboundRecord } from './pending-record.js';
import { speaksAwsJson11, withNativeBody } from './put-records-body.js';
import { type StreamRef, streamParams } from './stream-ref.js';

/** How one PutRecords request ended: with a response, or with an error for the whole request. */
export type SendOutcome =
  | {
      readonly ok: true;
      readonly output: PutRecordsCommandOutput;
      readonly startedAt: number;
      readonly endedAt: number;
    }
  | { readonly ok: false; readonly error: unknown; readonly startedAt: number; readonly endedAt: number };

/**
 * The error a request that outlived `requestTimeoutMs` ends with (PutRecords, or a try of a metadata
 * call). Retried like a network error.
 */
export class RequestTimeoutError extends Error {
  constructor(timeoutMs: number, call = 'PutRecords') {
    super(`${call} did not answer within ${timeoutMs} ms (requestTimeoutMs)`);
    this.name = 'RequestTimeout';
  }
}

/**
 * Sends PutRecords requests, at most `maxConnections` at once, each abandoned after
 * `requestTimeoutMs`. The producer pulls a request from its queues only when a slot is free, so
 * under load records keep filling fuller requests instead of queueing as small ones.
 */
export class Sender {
  readonly #client: KinesisClient;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  readonly #onSlotFreed: () => void;
  /** Whether the records go into the body by {@link withNativeBody}, or by the SDK's serializer. */
  readonly #nativeBody: boolean;
  #inFlight = 0;
  /** For each request in flight: aborts it and ends it. */
  readonly #abandon = new Set<() => void>();
  /** The client's calls not settled yet, ended or not: let go of when the sender stops (see abandonAll). */
  readonly #unsettled = new Set<ClientCall>();

  /**
   * `onSlotFreed`: a request that was ended at its timeout has now settled in the client too, and
   * its slot is free (see `send`).
   */
  constructor(
    client: KinesisClient,
    clock: Clock,
    options: { requestTimeoutMs: number; maxConnections: number },
    onSlotFreed: () => void,
  ) {
    this.#client = client;
    this.#clock = clock;
    this.#timeoutMs = options.requestTimeoutMs;
    this.#maxInFlight = options.maxConnections;
    this.#onSlotFreed = onSlotFreed;
    this.#nativeBody = speaksAwsJson11(client);
  }

  /** Whether another request may start. */
  get hasCapacity(): boolean {
    return this.#inFlight < this.#maxInFlight;
  }

  /**
   * Starts one PutRecords request; `done` is called exactly once, never synchronously, and at the
   * latest `requestTimeoutMs` after the start. The request keeps its slot until the client's call
   * settles, which for a call the client cannot abort may be later than `done`. Returns when the
   * request started, as its outcome will say.
   */
  send(stream: StreamRef, batch: readonly OutboundRecord[], done: (outcome: SendOutcome) => void): number {
    this.#inFlight++;
    // Before the clock starts: hashing is not the request's time (its RequestTime, its timeout).
    let unwritten: { readonly error: unknown } | undefined;
    try {
      writePendingDigests(batch);
    } catch (error) {
      unwritten = { error };
    }
    const startedAt = this.#clock.now();
    const controller = new AbortController();
    const entries = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!.record;
      entries[i] = {
        Data: record.data,
        PartitionKey: record.partitionKey,
        ExplicitHashKey: record.explicitHashKey,
      };
    }
    let finished = false;
    const finish = (outcome: SendOutcome) => {
      if (finished) return;
      finished = true;
      this.#clock.clearTimeout(timer);
      this.#abandon.delete(giveUp);
      done(outcome);
    };
    // The client's call settled: its slot is free (only then: a call the client still runs holds its
    // records' data and maybe a socket, and must not let more pile up behind it).
    const settle = (ok: boolean, value: unknown) => {
      this.#inFlight--;
      this.#unsettled.delete(call);
      if (finished) {
        this.#onSlotFreed();
        return;
      }
      const endedAt = this.#clock.now();
      if (ok) finish({ ok, output: value as PutRecordsCommandOutput, startedAt, endedAt });
      else {
        const error = controller.signal.aborted ? new RequestTimeoutError(this.#timeoutMs) : value;
        finish({ ok, error, startedAt, endedAt });
      }
    };
    // The abort stops the request where the SDK listens for it (the HTTP exchange), but a stage before
    // that may not (a credential provider that hangs, a user's middleware): the records get their
    // answer at the timeout either way, and whatever the call settles with later is ignored.
    const giveUp = () => {
      controller.abort(abortReason(new DOMException('This operation was aborted', 'AbortError')));
      const error = new RequestTimeoutError(this.#timeoutMs);
      queueMicrotask(() => finish({ ok: false, error, startedAt, endedAt: this.#clock.now() }));
    };
    const timer = this.#clock.setTimeout(giveUp, this.#timeoutMs, true);
    this.#abandon.add(giveUp);
    let request: Promise<PutRecordsCommandOutput>;
    try {
      if (unwritten !== undefined) throw unwritten.error;
      const command = withBoundedAnswer(
        new PutRecordsCommand({ ...streamParams(stream), Records: entries }),
        MAX_PUT_RECORDS_ANSWER_BYTES,
      );
      if (this.#nativeBody) withNativeBody(command);
      // A client of your own may return anything: a bare test double returns undefined (an answer
      // with no result, retried), and a thenable whose `then` throws becomes a rejection.
      request = Promise.resolve(this.#client.send(command, { abortSignal: controller.signal }));
    } catch (error) {
      request = Promise.reject(error);
    }
    const call = new ClientCall(request, settle);
    this.#unsettled.add(call);
    return startedAt;
  }

  /**
   * Aborts every request in flight and drops its timer: the producer gave up on their records (a
   * close that timed out or was aborted), or is shut down, and a request it will not wait for must
   * not keep Node running. Each ends at once through its `done`, as a `RequestTimeout`. No request
   * follows, so the calls the client has not settled are let go of: they free no slot when they
   * settle, and one that never does keeps nothing of the producer in memory.
   */
  abandonAll(): void {
    for (const call of this.#unsettled) call.listen(undefined);
    this.#unsettled.clear();
    for (const abandon of [...this.#abandon]) abandon();
  }
}

/** Writes the MD5 trailers the batch's aggregates do not have yet, all in one go. */
function writePendingDigests(batch: readonly OutboundRecord[]): void {
  const pending = batch.filter((outbound) => outbound.digestPending);
  if (pending.length === 0) return;
  writeAggregateDigests(pending.map((outbound) => outbound.record.data));
  for (const outbound of pending) outbound.digestPending = false;
}
