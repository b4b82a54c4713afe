import type { KinesisClient } from '@aws-sdk/client-kinesis';
import pRetry from 'p-retry';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { classifyRequestError, FailureKind } from './retry-policy.js';
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
}

/**
 * Runs a control-plane call (ListShards, DescribeStreamSummary) with a timeout per try and a few
 * retries with exponential backoff; errors that cannot succeed on retry (denied, not found) end it at
 * once. Its timers are unref'ed: a shard-map refresh never holds the process open.
 */
export async function callWithRetries<T>(
  call: (signal: AbortSignal) => Promise<T>,
  options: { timeoutMs: number; retries: number },
): Promise<T> {
  return await pRetry(
    async () => {
      const signal = AbortSignal.timeout(options.timeoutMs);
      return await call(signal);
    },
    {
      retries: options.retries,
      minTimeout: 100,
      maxTimeout: 2000,
      factor: 2,
      randomize: true,
      unref: true,
      shouldRetry: ({ error }) => classifyRequestError(error).kind !== FailureKind.Fatal,
    },
  );
}
