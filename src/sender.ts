import { type KinesisClient, PutRecordsCommand, type PutRecordsCommandOutput } from '@aws-sdk/client-kinesis';
import type { Clock } from './clock.js';
import type { OutboundRecord } from './pending-record.js';
import { withNativeBody } from './put-records-body.js';
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

/** The error a request that outlived `requestTimeoutMs` ends with. Retried like a network error. */
export class RequestTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`PutRecords did not answer within ${timeoutMs} ms (requestTimeoutMs)`);
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
  #inFlight = 0;
  /** For each request in flight: aborts it and ends it. */
  readonly #abandon = new Set<() => void>();

  constructor(
    client: KinesisClient,
    clock: Clock,
    options: { requestTimeoutMs: number; maxConnections: number },
  ) {
    this.#client = client;
    this.#clock = clock;
    this.#timeoutMs = options.requestTimeoutMs;
    this.#maxInFlight = options.maxConnections;
  }

  /** Whether another request may start. */
  get hasCapacity(): boolean {
    return this.#inFlight < this.#maxInFlight;
  }

  /**
   * Starts one PutRecords request; `done` is called exactly once, never synchronously, and at the
   * latest `requestTimeoutMs` after the start.
   */
  send(stream: StreamRef, batch: readonly OutboundRecord[], done: (outcome: SendOutcome) => void): void {
    this.#inFlight++;
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
      this.#inFlight--;
      done(outcome);
    };
    // The abort stops the request where the SDK listens for it (the HTTP exchange), but a stage before
    // that may not (a credential provider that hangs, a user's middleware): the request ends here
    // either way, and whatever it settles with later is ignored.
    const giveUp = () => {
      controller.abort();
      const error = new RequestTimeoutError(this.#timeoutMs);
      queueMicrotask(() => finish({ ok: false, error, startedAt, endedAt: this.#clock.now() }));
    };
    const timer = this.#clock.setTimeout(giveUp, this.#timeoutMs, true);
    this.#abandon.add(giveUp);
    let request: Promise<PutRecordsCommandOutput>;
    try {
      const command = withNativeBody(new PutRecordsCommand({ ...streamParams(stream), Records: entries }));
      request = this.#client.send(command, { abortSignal: controller.signal });
    } catch (error) {
      request = Promise.reject(error);
    }
    request.then(
      (output) => finish({ ok: true, output, startedAt, endedAt: this.#clock.now() }),
      (error: unknown) =>
        finish({
          ok: false,
          error: controller.signal.aborted ? new RequestTimeoutError(this.#timeoutMs) : error,
          startedAt,
          endedAt: this.#clock.now(),
        }),
    );
  }

  /**
   * Aborts every request in flight and drops its timer: the producer gave up on their records (a
   * close that timed out or was aborted), and a request it will not wait for must not keep Node
   * running. Each ends at once through its `done`, as a `RequestTimeout`.
   */
  abandonAll(): void {
    for (const abandon of [...this.#abandon]) abandon();
  }
}
