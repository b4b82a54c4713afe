import type { KinesisClient } from '@aws-sdk/client-kinesis';
import pRetry from 'p-retry';
import { abortReason, ClientCall } from './client-call.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import {
  classifyRequestError,
  FailureKind,
  isUntrustedCertificate,
  type RequestFailure,
} from './retry-policy.js';
import { RequestTimeoutError } from './sender.js';
import type { StreamRef } from './stream-ref.js';

/**
 * Where a stream's metadata (ShardMap, StreamSummary) is read from: the client and stream, with the
 * producer's per-try timeout, logger and clock. One object per stream, shared by both readers.
 */
export interface MetadataSource {
  readonly client: KinesisClient;
  readonly stream: StreamRef;
  /** Timeout of one try of a call (`requestTimeoutMs`). */
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Aborted when the producer shuts down: calls in progress end, and no try follows. */
  readonly stopped: AbortSignal;
}

/**
 * Calls of one reader in a row that may outlive their try, with no call answering meanwhile, before
 * its tries stop calling the client: more than one, so that a call that hangs once (a provider of
 * your own that lost its connection) does not stop the reader, whose next call may well answer.
 */
export const MAX_OUTLIVED_CALLS = 3;

/** Then, one try calls the client after this long, each such call that hangs too twice as late. */
const FIRST_PROBE_AFTER_MS = 60_000;
const MAX_PROBE_AFTER_MS = 3 * 60 * 60_000;

/**
 * One reader's (a ShardMap's, a StreamSummary's) calls to the client that outlived their try. Once
 * {@link MAX_OUTLIVED_CALLS} did in a row, no call answering since, a try of that reader does not call
 * the client: it waits for one of them to settle (see {@link callWithRetries}), except one try after
 * a minute, then after twice as long each time that call outlives its try too (up to 3 hours). A
 * client whose calls never end (a credential provider stuck for good, whose promise the SDK
 * memoizes, so every request awaits it) then holds about 17 calls per reader after a day and 8 more
 * each day after, not one per try: over 800 an hour otherwise, each keeping its command, request
 * and handlers in memory for good. A call that answers (also with an error) ends the wait: the client works, whatever calls
 * still hang.
 *
 * The calls it follows reach it when they settle, so it holds nothing else: no reader, and only the
 * waiters of tries under way, which a try removes when it ends.
 */
export class OutlivedCalls {
  /** Calls that outlived their try since the last that answered within its own. */
  #inARow = 0;
  #lastOutlivedAt = 0;
  #probeAfterMs = FIRST_PROBE_AFTER_MS;
  readonly #waiters = new Set<() => void>();

  /** Whether a try starting at `now` may call the client (see the class). */
  mayCall(now: number): boolean {
    return this.#inARow < MAX_OUTLIVED_CALLS || now - this.#lastOutlivedAt >= this.#probeAfterMs;
  }

  /** Calls `waiter` once a call that outlived its try settles, unless {@link stopWaiting} first. */
  wait(waiter: () => void): void {
    this.#waiters.add(waiter);
  }

  /** Forgets `waiter`: its try ended. */
  stopWaiting(waiter: () => void): void {
    this.#waiters.delete(waiter);
  }

  /** A call answered within its try: the client works. */
  answered(): void {
    this.#inARow = 0;
    this.#probeAfterMs = FIRST_PROBE_AFTER_MS;
  }

  /** `call`'s try ended at `now` before the call settled. */
  add(call: ClientCall, now: number): void {
    if (call.settled) return;
    // A call made after the wait (a probe) hung too: the next one waits twice as long.
    if (this.#inARow >= MAX_OUTLIVED_CALLS) {
      this.#probeAfterMs = Math.min(this.#probeAfterMs * 2, MAX_PROBE_AFTER_MS);
    }
    this.#inARow++;
    this.#lastOutlivedAt = now;
    call.listen(() => this.#settled());
  }

  /** A call that outlived its try settled after all: the client works, slowly; the tries waiting call it. */
  #settled(): void {
    this.answered();
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter();
  }
}

/**
 * Runs a control-plane call (ListShards, DescribeStreamSummary) with a timeout per try and a few
 * retries with exponential backoff; errors that cannot succeed on retry (denied, not found) end it at
 * once, and so does `source.stopped`. Its timers are unref'ed: a shard-map refresh never holds the
 * process open.
 *
 * A try ends at its timeout (or the stop) even if the client does not hear the abort signal: a
 * stage before the HTTP exchange (a credential provider that hangs) may not. Such a call is counted
 * in `outlived`, the reader's: after a few in a row, none answering since, a try calls the client
 * only once one settles, within the try's timeout (else the try times out as if its own call
 * had not answered), but for a try now and then (see {@link OutlivedCalls}). `onFailedTry`
 * hears every try that failed, the retried ones too.
 */
export async function callWithRetries<T>(
  call: (signal: AbortSignal) => Promise<T>,
  source: Pick<MetadataSource, 'timeoutMs' | 'clock' | 'stopped'>,
  outlived: OutlivedCalls,
  retries: number,
  onFailedTry?: (error: unknown) => void,
): Promise<T> {
  const { stopped } = source;
  return await pRetry(() => tryOnce(call, source, outlived), {
    retries,
    minTimeout: 100,
    maxTimeout: 2000,
    factor: 2,
    randomize: true,
    unref: true,
    signal: stopped,
    shouldRetry: ({ error }) => !stopped.aborted && classifyRequestError(error).kind !== FailureKind.Fatal,
    ...(onFailedTry === undefined ? {} : { onFailedAttempt: ({ error }) => onFailedTry(error) }),
  });
}

/**
 * One try of {@link callWithRetries}: the client's answer, or a {@link RequestTimeoutError} at
 * `timeoutMs`, or the stop's reason, whichever comes first.
 */
function tryOnce<T>(
  call: (signal: AbortSignal) => Promise<T>,
  source: Pick<MetadataSource, 'timeoutMs' | 'clock' | 'stopped'>,
  outlived: OutlivedCalls,
): Promise<T> {
  const { timeoutMs, clock, stopped } = source;
  return new Promise<T>((resolve, reject) => {
    const controller = new AbortController();
    let clientCall: ClientCall | undefined;
    let ended = false;
    const end = () => {
      ended = true;
      clock.clearTimeout(timer);
      stopped.removeEventListener('abort', onStop);
      outlived.stopWaiting(start);
      if (clientCall !== undefined) outlived.add(clientCall, clock.now());
    };
    const fail = (error: unknown) => {
      if (ended) return;
      end();
      controller.abort(abortReason(error));
      reject(error);
    };
    const onStop = () => fail(stopped.reason);
    const onAnswer = (ok: boolean, value: unknown) => {
      if (ended) return;
      end();
      outlived.answered();
      if (ok) resolve(value as T);
      else reject(value);
    };
    const start = () => {
      if (ended) return;
      let answer: Promise<T>;
      try {
        answer = call(controller.signal);
      } catch (error) {
        answer = Promise.reject(error);
      }
      try {
        clientCall = new ClientCall(answer, onAnswer);
      } catch (error) {
        // Not a promise (a stand-in client of the user's own): no call is left running to follow.
        fail(error);
      }
    };
    const timer = clock.setTimeout(
      () => fail(new RequestTimeoutError(timeoutMs, 'the call')),
      timeoutMs,
      false,
    );
    stopped.addEventListener('abort', onStop, { once: true });
    if (outlived.mayCall(clock.now())) start();
    else outlived.wait(start);
  });
}

/**
 * The first words of a failed metadata call's warning: the call and its error code, with what to
 * check when the code says the stream or the permission is missing.
 */
export function callFailed(call: 'ListShards' | 'DescribeStreamSummary', failure: RequestFailure): string {
  const { code } = failure;
  if (code === 'ResourceNotFoundException')
    return `${call} failed (${code}: check the stream's name and region)`;
  if (code === 'AccessDeniedException') return `${call} failed (${code}: allow kinesis:${call})`;
  if (code === 'RegionMissing') return `${call} failed (${code}: pass \`region\` or set AWS_REGION)`;
  if (isUntrustedCertificate(code))
    return `${call} failed (${code}: the endpoint's TLS certificate is not trusted)`;
  return `${call} failed (${code})`;
}
