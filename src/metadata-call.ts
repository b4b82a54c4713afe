import pRetry from 'p-retry';
import { classifyRequestError, FailureKind } from './retry-policy.js';

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
