import { type KinesisClient, PutRecordsCommand, type PutRecordsCommandOutput } from '@aws-sdk/client-kinesis';
import { AggregateDigests } from './aggregate-digests.js';
import type { Clock } from './clock.js';
import { HashWorker } from './hash-worker.js';
import type { Logger } from './logger.js';
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
 *
 * A request first gets the MD5 trailers of its aggregates written (see aggregate-digests.ts), then
 * goes to the client with its body written natively (see put-records-body.ts).
 */
export class Sender {
  readonly #client: KinesisClient;
  readonly #clock: Clock;
  /** The hashing thread, unless `hashOffThread` is false. */
  readonly #hasher: HashWorker | undefined;
  readonly #digests: AggregateDigests;
  readonly #timeoutMs: number;
  readonly #maxInFlight: number;
  #inFlight = 0;
  #stopped = false;

  constructor(
    client: KinesisClient,
    clock: Clock,
    options: { requestTimeoutMs: number; maxConnections: number; hashOffThread: boolean; logger: Logger },
  ) {
    this.#client = client;
    this.#clock = clock;
    this.#timeoutMs = options.requestTimeoutMs;
    this.#maxInFlight = options.maxConnections;
    this.#hasher = options.hashOffThread
      ? new HashWorker((error) =>
          options.logger.warn(
            { error: String(error) },
            'the hashing thread failed: aggregates are hashed on the event loop from now on',
          ),
        )
      : undefined;
    this.#digests = new AggregateDigests(this.#hasher);
  }

  /** A new aggregate was sealed: its MD5 trailer may be computed from now on (see aggregate-digests.ts). */
  sealed(record: OutboundRecord): void {
    this.#digests.sealed(record);
  }

  /** Whether another request may start. */
  get hasCapacity(): boolean {
    return this.#inFlight < this.#maxInFlight;
  }

  /** Starts one PutRecords request; `done` is called exactly once, never synchronously. */
  send(stream: StreamRef, batch: readonly OutboundRecord[], done: (outcome: SendOutcome) => void): void {
    this.#inFlight++;
    const startedAt = this.#clock.now();
    const controller = new AbortController();
    const timer = this.#clock.setTimeout(() => controller.abort(), this.#timeoutMs, true);
    const finish = (outcome: SendOutcome) => {
      this.#clock.clearTimeout(timer);
      this.#inFlight--;
      done(outcome);
    };
    const failed = (error: unknown) =>
      finish({
        ok: false,
        error: controller.signal.aborted ? new RequestTimeoutError(this.#timeoutMs) : error,
        startedAt,
        endedAt: this.#clock.now(),
      });
    const request = () => {
      let response: Promise<PutRecordsCommandOutput>;
      try {
        response = this.#request(stream, batch, controller.signal);
      } catch (error) {
        response = Promise.reject(error);
      }
      response.then((output) => finish({ ok: true, output, startedAt, endedAt: this.#clock.now() }), failed);
    };
    const digests = this.#digests.complete(batch);
    if (digests === undefined) request();
    else
      digests.then(() => {
        // Stopped while the worker hashed: nothing may be sent any more.
        if (this.#stopped)
          failed(new Error('kinesis-producer: the producer stopped before the request was sent'));
        else request();
      });
  }

  /** Sends no request from now on, and stops the hashing thread. */
  stop(): void {
    this.#stopped = true;
    void this.#hasher?.close();
  }

  #request(
    stream: StreamRef,
    batch: readonly OutboundRecord[],
    signal: AbortSignal,
  ): Promise<PutRecordsCommandOutput> {
    const entries = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!.record;
      entries[i] = {
        Data: record.data,
        PartitionKey: record.partitionKey,
        ExplicitHashKey: record.explicitHashKey,
      };
    }
    const command = new PutRecordsCommand({ ...streamParams(stream), Records: entries });
    return this.#client.send(withNativeBody(command), { abortSignal: signal });
  }
}
