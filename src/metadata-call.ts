import type { KinesisClient } from '@aws-sdk/client-kinesis';
import pRetry from 'p-retry';
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
 * Runs a control-plane call (ListShards, DescribeStreamSummary) with a timeout per try and a few
 * retries with exponential backoff; errors that cannot succeed on retry (denied, not found) end it at
 * once, and so does `source.stopped`. Its timers are unref'ed: a shard-map refresh never holds the
 * process open.
 *
 * A try ends at its timeout (or the stop) even if the client does not hear the abort signal: a
 * stage before the HTTP exchange (a credential provider that hangs) may not. `onFailedTry` hears
 * every try that failed, the retried ones too.
 */
export async function callWithRetries<T>(
  call: (signal: AbortSignal) => Promise<T>,
  source: Pick<MetadataSource, 'timeoutMs' | 'clock' | 'stopped'>,
  retries: number,
  onFailedTry?: (error: unknown) => void,
): Promise<T> {
  const { timeoutMs, clock, stopped } = source;
  return await pRetry(
    () =>
      new Promise<T>((resolve, reject) => {
        const controller = new AbortController();
        const settle = () => {
          clock.clearTimeout(timer);
          stopped.removeEventListener('abort', onStop);
        };
        const end = (error: unknown) => {
          settle();
          controller.abort(error);
          reject(error);
        };
        const onStop = () => end(stopped.reason);
        const timer = clock.setTimeout(
          () => end(new RequestTimeoutError(timeoutMs, 'the call')),
          timeoutMs,
          false,
        );
        stopped.addEventListener('abort', onStop, { once: true });
        let answer: Promise<T>;
        try {
          answer = call(controller.signal);
        } catch (error) {
          answer = Promise.reject(error);
        }
        answer.then(
          (value) => {
            settle();
            resolve(value);
          },
          (error: unknown) => {
            settle();
            reject(error);
          },
        );
      }),
    {
      retries,
      minTimeout: 100,
      maxTimeout: 2000,
      factor: 2,
      randomize: true,
      unref: true,
      signal: stopped,
      shouldRetry: ({ error }) => !stopped.aborted && classifyRequestError(error).kind !== FailureKind.Fatal,
      ...(onFailedTry === undefined ? {} : { onFailedAttempt: ({ error }) => onFailedTry(error) }),
    },
  );
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
