import { DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import type { Logger } from './logger.js';
import { callWithRetries } from './metadata-call.js';
import { classifyRequestError } from './retry-policy.js';
import { type StreamRef, streamParams } from './stream-ref.js';
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
}

/** Defaults used when DescribeStreamSummary is denied or fails. */
export const DEFAULT_STREAM_INFO: StreamInfo = {
  maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
  userPartitioned: true,
};

/**
 * Reads DescribeStreamSummary once. A denied or failing call is logged and the defaults are used
 * (1 MiB records, partition-key routing): the producer still works, only unaware of raised limits.
 */
export async function loadStreamInfo(
  client: KinesisClient,
  stream: StreamRef,
  timeoutMs: number,
  logger: Logger,
): Promise<StreamInfo> {
  try {
    const output = await callWithRetries(
      (abortSignal) => client.send(new DescribeStreamSummaryCommand(streamParams(stream)), { abortSignal }),
      { timeoutMs, retries: 2 },
    );
    const summary = output.StreamDescriptionSummary;
    const kib = summary?.MaxRecordSizeInKiB;
    const info: StreamInfo = {
      maxRecordBytes: typeof kib === 'number' && kib > 0 ? kib * 1024 : DEFAULT_MAX_RECORD_BYTES,
      userPartitioned: summary?.RecordDistributionStrategy !== 'AUTO',
    };
    logger.debug({ stream: stream.label, ...info }, 'read stream summary');
    return info;
  } catch (error) {
    const failure = classifyRequestError(error);
    logger.warn(
      { stream: stream.label, code: failure.code, error: failure.message },
      'DescribeStreamSummary failed; assuming a 1 MiB record limit and partition-key routing',
    );
    return DEFAULT_STREAM_INFO;
  }
}
