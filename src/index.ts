/**
 * kinesis-producer: a Kinesis Producer Library for Node.js.
 *
 * @packageDocumentation
 */

export type { KinesisRecord, RecordAggregatorOptions } from './aggregator.js';
export {
  aggregateAll,
  DEFAULT_AGGREGATION_MAX_BYTES,
  DEFAULT_AGGREGATION_MAX_COUNT,
  MAX_RECORD_BYTES_LIMIT,
  RecordAggregator,
} from './aggregator.js';
export type {
  DeaggregatedRecord,
  DeaggregateInput,
  DeaggregateOptions,
  HashKeyRange,
  LambdaKinesisRecord,
  PlainKinesisRecord,
  SdkKinesisRecord,
} from './deaggregator.js';
export { deaggregate, deaggregateAll } from './deaggregator.js';
export {
  AbortedError,
  BufferFullError,
  CorruptAggregateError,
  ErrorCode,
  InvalidOptionError,
  InvalidRecordError,
  KinesisProducerError,
  ProducerClosedError,
  RecordFailedError,
} from './errors.js';
export {
  MAX_HASH_KEY,
  MAX_PARTITION_KEY_LENGTH,
  parseExplicitHashKey,
  partitionKeyHash,
} from './hash-key.js';
export type { Logger } from './logger.js';
export type {
  MeterLike,
  MetricSnapshot,
  MetricsSnapshot,
  ShardMetricsSnapshot,
  StatSnapshot,
  StreamMetricsSnapshot,
} from './metrics.js';
export type { KinesisProducerOptions } from './options.js';
export type {
  CloseOptions,
  KinesisProducerEvents,
  ProducerRecord,
  PutOptions,
  SendCallback,
} from './producer.js';
export { KinesisProducer } from './producer.js';
export { AGGREGATED_RECORD_MAGIC } from './record-format.js';
export type { Attempt, PutResult } from './result.js';
export type { UserRecord } from './user-record.js';
export { DEFAULT_MAX_RECORD_BYTES } from './user-record.js';
export type { ProducerWritableOptions, PutAllOptions, PutAllResult } from './writable.js';
