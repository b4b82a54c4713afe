/**
 * PutRecords and PutRecord as the front sees them: the entries with their sizes and hash keys, the
 * request limits the service enforces on them, and the body of the subset the front forwards.
 */
import { parseExplicitHashKey, partitionKeyHash } from '../../../src/hash-key.js';
import type { FaultFrontConfig } from './config.js';
import {
  type ErrorAnswer,
  recordCountAnswer,
  recordSizeAnswer,
  requestSizeAnswer,
} from './service-errors.js';
import { isObject, parseObject, type StreamRef, streamOf } from './wire.js';

export interface PutEntry {
  readonly partitionKey: string;
  readonly explicitHashKey: string | undefined;
  /** Base64, as the client sent it. */
  readonly data: string;
  /** Partition key UTF-8 bytes + data bytes: what the service's size limits count. */
  readonly bytes: number;
  readonly hashKey: bigint;
  /** The entry as the client sent it, forwarded as is. */
  readonly source: Readonly<Record<string, unknown>>;
}

export interface PutRequest {
  readonly operation: 'PutRecords' | 'PutRecord';
  readonly stream: StreamRef;
  /** One entry for PutRecord. */
  readonly entries: readonly PutEntry[];
  readonly body: Readonly<Record<string, unknown>>;
  readonly raw: Buffer;
}

/**
 * The request, or undefined when the front cannot read it (not JSON, no stream, an entry without a
 * string partition key and data, an explicit hash key that is not a valid one): such a request is
 * forwarded as is, so that upstream answers it with its own validation error.
 */
export function parsePutRequest(operation: 'PutRecords' | 'PutRecord', raw: Buffer): PutRequest | undefined {
  const body = parseObject(raw);
  const stream = body === undefined ? undefined : streamOf(body);
  if (body === undefined || stream === undefined) return undefined;
  const sources = operation === 'PutRecord' ? [body] : body.Records;
  if (!Array.isArray(sources)) return undefined;
  const entries: PutEntry[] = [];
  for (const source of sources) {
    const entry = parseEntry(source);
    if (entry === undefined) return undefined;
    entries.push(entry);
  }
  return { operation, stream, entries, body, raw };
}

function parseEntry(source: unknown): PutEntry | undefined {
  if (!isObject(source)) return undefined;
  const { PartitionKey: partitionKey, Data: data, ExplicitHashKey: explicitHashKey } = source;
  if (typeof partitionKey !== 'string' || typeof data !== 'string') return undefined;
  if (explicitHashKey !== undefined && typeof explicitHashKey !== 'string') return undefined;
  let hashKey: bigint;
  try {
    hashKey =
      explicitHashKey === undefined ? partitionKeyHash(partitionKey) : parseExplicitHashKey(explicitHashKey);
  } catch {
    return undefined;
  }
  const bytes = Buffer.byteLength(partitionKey, 'utf8') + Buffer.byteLength(data, 'base64');
  return { partitionKey, explicitHashKey, data, bytes, hashKey, source };
}

/** The error the service answers for a request over its limits, or undefined when it is within them. */
export function limitViolation(request: PutRequest, config: FaultFrontConfig): ErrorAnswer | undefined {
  const { maxRecordsPerRequest, maxRecordBytes, maxRequestBytes } = config;
  const count = request.entries.length;
  const batch = request.operation === 'PutRecords';
  if (batch && maxRecordsPerRequest !== false && (count === 0 || count > maxRecordsPerRequest)) {
    return recordCountAnswer(count, maxRecordsPerRequest);
  }
  let total = 0;
  for (const [i, entry] of request.entries.entries()) {
    if (maxRecordBytes !== false && entry.bytes > maxRecordBytes) {
      return recordSizeAnswer(batch ? `records.${i + 1}.member.data` : 'data', maxRecordBytes);
    }
    total += entry.bytes;
  }
  if (batch && maxRequestBytes !== false && total > maxRequestBytes)
    return requestSizeAnswer(maxRequestBytes);
  return undefined;
}

/** The body to forward for the entries at `indexes`: the client's own body for PutRecord. */
export function forwardBody(request: PutRequest, indexes: readonly number[]): Buffer {
  if (request.operation === 'PutRecord') return request.raw;
  const records = indexes.map((i) => request.entries[i]?.source);
  return Buffer.from(JSON.stringify({ ...request.body, Records: records }));
}
