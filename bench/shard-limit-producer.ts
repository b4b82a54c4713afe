/**
 * One producer of the shard-limit case (shard-limit.ts), forked so that two of them can share a shard
 * as two application processes would. A producer with default options is fed fire and forget, as fast
 * as it takes records, until the case says stop; then it closes with `timeoutMs: 0`, failing what it
 * still holds, and reports what it wrote.
 *
 * argv: <endpoint> <ShardLimitProducerParams as JSON>
 */
import { ErrorCode, type RecordFailedError } from '../src/index.js';
import { runForked } from './forked.js';
import { benchProducer, RecordCycle, recordsWritten, sendUntil } from './producer-feed.js';
import { SENDING_DATA_BYTES } from './sending.js';
import { PARTITION_KEYS, userRecords } from './workload.js';

export interface ShardLimitProducerParams {
  readonly recordBytes: number;
}

export interface ShardLimitProducerResult {
  /** User records written before the stop. */
  readonly written: number;
}

runForked(async (stop): Promise<ShardLimitProducerResult> => {
  const [endpoint, json] = process.argv.slice(2);
  if (endpoint === undefined || json === undefined) throw new Error('usage: <endpoint> <params>');
  const params = JSON.parse(json) as ShardLimitProducerParams;
  const records = new RecordCycle(
    userRecords({
      recordBytes: params.recordBytes,
      totalBytes: SENDING_DATA_BYTES,
      keyCount: PARTITION_KEYS,
    }),
  );
  const producer = benchProducer(endpoint);
  let failure: RecordFailedError | undefined;
  let closing = false;
  // Throttled records are retried, well within their 30 s deadline: any failure before the stop is a
  // bug; after it, close() fails what is left on purpose.
  producer.on('recordFailed', (error) => {
    if (!(closing && error.code === ErrorCode.CloseTimeout)) failure ??= error;
  });
  await sendUntil(producer, records, Number.POSITIVE_INFINITY, stop);
  const written = recordsWritten(producer);
  closing = true;
  await producer.close({ timeoutMs: 0 });
  if (failure !== undefined) throw failure;
  return { written };
});
