/**
 * The null Kinesis sink, as a process of its own (started by `startNullKinesis` in null-kinesis.ts):
 * a plain HTTP/1.1 server that answers the Kinesis JSON 1.1 API just well enough for a producer to run
 * against it — ListShards, DescribeStreamSummary, PutRecords, PutRecord for any stream name — and
 * keeps nothing but counters. `GET /stats` returns them.
 *
 * It must cost little per byte, or a benchmark would measure it instead of the client. PutRecords
 * bodies (up to ~7 MB of base64 JSON) are therefore scanned, not parsed: a record's Data is skipped
 * with one memchr for its closing quote and counted from its length, and only the partition key and
 * explicit hash key are decoded. Measured on this code: a request of 500 x 10 KiB records (6.9 MB)
 * takes 0.65 ms to scan against 9-10 ms for `JSON.parse(body.toString())`; at 1 KiB, 0.5 ms against
 * 1.4 ms; at 100 B both cost ~1 µs a record, most of it routing and writing the reply.
 *
 * It also counts the user records inside KPL aggregates, so a benchmark can check that every user
 * record it sent arrived without trusting the sender's own count. That too avoids touching every
 * byte: base64 can be decoded at any offset, so it decodes only the protobuf field headers it walks.
 * One aggregate in every DIGEST_SAMPLE is decoded whole and its MD5 trailer checked: a sender that
 * skipped or botched the trailer (which a consumer would read as one corrupt record) is caught, for
 * a small share of the work of checking them all.
 *
 * argv: <shard count>. Prints `{"port":N}` on stdout once listening on 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { evenShardRanges, partitionKeyHashKey, shardIndexOf } from './hash-space.js';

const shardCount = Number(process.argv[2]);
if (!Number.isSafeInteger(shardCount) || shardCount < 1) {
  throw new Error(`null-kinesis-server: expected a shard count >= 1, got ${process.argv[2]}`);
}

const shardIds = Array.from({ length: shardCount }, (_, i) => `shardId-${String(i).padStart(12, '0')}`);
const shards = evenShardRanges(shardCount).map((range, i) => ({
  ShardId: shardIds[i]!,
  HashKeyRange: { StartingHashKey: range.start.toString(), EndingHashKey: range.end.toString() },
  SequenceNumberRange: { StartingSequenceNumber: sequenceNumber(0) },
}));
const createdSeconds = Math.floor(Date.now() / 1000);

/** What `GET /stats` returns: everything acknowledged since start. */
export interface NullKinesisStats {
  /** HTTP requests answered, stats requests excluded. */
  readonly requests: number;
  /** Kinesis records acknowledged (PutRecords entries and PutRecord calls). */
  readonly entries: number;
  /** Their data bytes (decoded, partition keys not counted). */
  readonly bytes: number;
  /** User records: one per record that is not a KPL aggregate, each one inside those that are. */
  readonly userRecords: number;
  /** Their data bytes. */
  readonly userBytes: number;
  /** Aggregates whose MD5 trailer was checked (one in DIGEST_SAMPLE), and those of them it did not match. */
  readonly digestsChecked: number;
  readonly badDigests: number;
  /** Kinesis records and their data bytes per shard, in shard order: what the shard limits count. */
  readonly shards: readonly { readonly entries: number; readonly bytes: number }[];
  /** CPU time this process has used (user + system), in microseconds. */
  readonly cpuMicros: number;
}

const counters = {
  requests: 0,
  entries: 0,
  bytes: 0,
  userRecords: 0,
  userBytes: 0,
  digestsChecked: 0,
  badDigests: 0,
  shards: shardIds.map(() => ({ entries: 0, bytes: 0 })),
};

let lastSequence = 0;

/** 56 decimal digits, like the service's, increasing across the whole stream. */
function sequenceNumber(n: number): string {
  return `49${String(n).padStart(54, '0')}`;
}

// Routing needs an MD5 and BigInt division per record; with a benchmark's few thousand distinct keys a
// cache makes it a map lookup. Cleared when large, so an unbounded key space cannot grow it forever.
const ROUTE_CACHE_LIMIT = 100_000;
const shardByPartitionKey = new Map<string, number>();
const shardByHashKey = new Map<string, number>();

function route(partitionKey: string, explicitHashKey: string | undefined): number {
  const cache = explicitHashKey === undefined ? shardByPartitionKey : shardByHashKey;
  const key = explicitHashKey ?? partitionKey;
  let shard = cache.get(key);
  if (shard === undefined) {
    const hashKey =
      explicitHashKey === undefined ? partitionKeyHashKey(partitionKey) : BigInt(explicitHashKey);
    shard = shardIndexOf(hashKey, shardCount);
    if (cache.size >= ROUTE_CACHE_LIMIT) cache.clear();
    cache.set(key, shard);
  }
  return shard;
}

/** Counts one acknowledged record (its data is `payload`) and returns its result entry. */
function acknowledge(shard: number, payload: Base64Payload): string {
  const dataBytes = payload.length;
  counters.entries++;
  counters.bytes += dataBytes;
  countUserRecords(payload);
  const perShard = counters.shards[shard]!;
  perShard.entries++;
  perShard.bytes += dataBytes;
  return `{"SequenceNumber":"${sequenceNumber(++lastSequence)}","ShardId":"${shardIds[shard]}"}`;
}

const BASE64_VALUES = new Uint8Array(256);
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  BASE64_VALUES[c.charCodeAt(0)] = i;
}

/** The bytes a base64 string in `buf` stands for, readable at any offset without decoding the rest. */
class Base64Payload {
  buf: Buffer = Buffer.alloc(0);
  start = 0;
  /** Decoded length. */
  length = 0;

  /** Points at the base64 text in [start, end) of `buf` (padded, as JSON.stringify of the SDK writes it). */
  set(buf: Buffer, start: number, end: number): this {
    let padding = 0;
    if (buf[end - 1] === EQUALS) padding = buf[end - 2] === EQUALS ? 2 : 1;
    this.buf = buf;
    this.start = start;
    this.length = ((end - start) / 4) * 3 - padding;
    return this;
  }

  byteAt(i: number): number {
    const group = (i / 3) | 0;
    const p = this.start + group * 4;
    const buf = this.buf;
    const bits =
      (BASE64_VALUES[buf[p]!]! << 18) |
      (BASE64_VALUES[buf[p + 1]!]! << 12) |
      (BASE64_VALUES[buf[p + 2]!]! << 6) |
      BASE64_VALUES[buf[p + 3]!]!;
    return (bits >> (16 - 8 * (i - group * 3))) & 0xff;
  }
}

const MAGIC = [0xf3, 0x89, 0x9a, 0xc2];
const DIGEST_BYTES = 16;

/**
 * A protobuf reader over a Base64Payload. `varint()` returns -1 past `limit`, and every caller then
 * gives up: a malformed aggregate counts as one record, as KCL passes it through.
 */
const reader = {
  payload: new Base64Payload(),
  pos: 0,
  varint(limit: number): number {
    let value = 0;
    for (let scale = 1; scale < 2 ** 56; scale *= 128) {
      if (this.pos >= limit) return -1;
      const b = this.payload.byteAt(this.pos++);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
    return -1;
  },
};

/** The data length of the user record in [pos, end) of the aggregate, or -1 if it is malformed. */
function subRecordDataBytes(end: number): number {
  let dataBytes = -1;
  while (reader.pos < end) {
    const tag = reader.varint(end);
    if (tag < 0) return -1;
    if ((tag & 7) === 0) {
      if (reader.varint(end) < 0) return -1;
    } else if ((tag & 7) === 2) {
      const length = reader.varint(end);
      if (length < 0 || reader.pos + length > end) return -1;
      if (tag >>> 3 === 3) dataBytes = length;
      reader.pos += length;
    } else {
      return -1;
    }
  }
  return dataBytes;
}

/** Checks the MD5 trailer of one aggregate in this many. */
const DIGEST_SAMPLE = 16;
let aggregatesSeen = 0;

function checkDigest(payload: Base64Payload): void {
  // Padded base64: four characters for every three bytes or part of them.
  const end = payload.start + Math.ceil(payload.length / 3) * 4;
  const bytes = Buffer.from(payload.buf.toString('latin1', payload.start, end), 'base64');
  const trailer = bytes.subarray(bytes.length - DIGEST_BYTES);
  const body = bytes.subarray(MAGIC.length, bytes.length - DIGEST_BYTES);
  counters.digestsChecked++;
  if (!createHash('md5').update(body).digest().equals(trailer)) counters.badDigests++;
}

/** Adds the user records `payload` holds to the counters: its sub-records if it is a KPL aggregate. */
function countUserRecords(payload: Base64Payload): void {
  const length = payload.length;
  let aggregated = length > MAGIC.length + DIGEST_BYTES;
  for (let i = 0; aggregated && i < MAGIC.length; i++) aggregated = payload.byteAt(i) === MAGIC[i];
  let records = 0;
  let bytes = 0;
  if (aggregated) {
    reader.payload = payload;
    reader.pos = MAGIC.length;
    const end = length - DIGEST_BYTES;
    // Top-level fields are all length-delimited: the key tables (1, 2) and the records (3).
    while (aggregated && reader.pos < end) {
      const tag = reader.varint(end);
      const fieldBytes = (tag & 7) === 2 ? reader.varint(end) : -1;
      const fieldEnd = reader.pos + fieldBytes;
      if (tag < 0 || fieldBytes < 0 || fieldEnd > end) {
        aggregated = false;
      } else if (tag >>> 3 === 3) {
        const dataBytes = subRecordDataBytes(fieldEnd);
        aggregated = dataBytes >= 0;
        records++;
        bytes += dataBytes;
      }
      reader.pos = fieldEnd;
    }
    aggregated &&= records > 0;
    if (aggregated && ++aggregatesSeen % DIGEST_SAMPLE === 0) checkDigest(payload);
  }
  if (!aggregated) {
    records = 1;
    bytes = length;
  }
  counters.userRecords += records;
  counters.userBytes += bytes;
}

class BadRequest extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const EQUALS = 0x3d;

const KEY_RECORDS = Buffer.from('Records');
const KEY_DATA = Buffer.from('Data');
const KEY_PARTITION_KEY = Buffer.from('PartitionKey');
const KEY_EXPLICIT_HASH_KEY = Buffer.from('ExplicitHashKey');

/**
 * A forward-only JSON reader over a Buffer that can skip a string without looking at its contents.
 * After `string()`, the string's raw (still escaped) bytes are [start, end).
 */
class JsonScanner {
  readonly #buf: Buffer;
  #pos = 0;
  start = 0;
  end = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  #skipSpace(): void {
    const buf = this.#buf;
    let pos = this.#pos;
    for (;;) {
      const c = buf[pos];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
    this.#pos = pos;
  }

  #fail(expected: string): never {
    throw new BadRequest(
      'SerializationException',
      `malformed JSON: expected ${expected} at byte ${this.#pos}`,
    );
  }

  /** Consumes `byte` (after any white space). */
  expect(byte: number): void {
    this.#skipSpace();
    if (this.#buf[this.#pos] !== byte) this.#fail(String.fromCharCode(byte));
    this.#pos++;
  }

  /** Consumes a string; leaves its raw bytes in [start, end). */
  string(): void {
    this.expect(QUOTE);
    const buf = this.#buf;
    const start = this.#pos;
    // Keys and partition keys are short: a loop beats the native call of indexOf, which wins on data.
    let end = start;
    const shortEnd = Math.min(buf.length, start + 64);
    while (end < shortEnd && buf[end] !== QUOTE) end++;
    if (end === shortEnd) end = buf.indexOf(QUOTE, end);
    for (;;) {
      if (end < 0) this.#fail('a closing quote');
      let backslashes = 0;
      while (buf[end - 1 - backslashes] === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
      end = buf.indexOf(QUOTE, end + 1);
    }
    this.start = start;
    this.end = end;
    this.#pos = end + 1;
  }

  /** Consumes a string and decodes it (only short strings are decoded: keys, not data). */
  decodedString(): string {
    this.string();
    const buf = this.#buf;
    for (let i = this.start; i < this.end; i++) {
      if (buf[i] === BACKSLASH)
        return JSON.parse(buf.toString('utf8', this.start - 1, this.end + 1)) as string;
    }
    return buf.toString('utf8', this.start, this.end);
  }

  /** Whether the last string read is exactly `key` (plain ASCII). */
  is(key: Buffer): boolean {
    const length = this.end - this.start;
    if (length !== key.length) return false;
    const buf = this.#buf;
    for (let i = 0; i < length; i++) if (buf[this.start + i] !== key[i]) return false;
    return true;
  }

  /** The last string read, taken as base64. */
  payload(into: Base64Payload): Base64Payload {
    return into.set(this.#buf, this.start, this.end);
  }

  /**
   * Steps to the next member of the object being read (just after `{`, pass first = true) and reads
   * its key; returns false at the closing `}`, which it consumes.
   */
  member(first: boolean): boolean {
    if (!this.#more(first, CLOSE_BRACE)) return false;
    this.string();
    this.expect(COLON);
    return true;
  }

  /** Steps to the next element of the array being read; returns false at the closing `]`. */
  element(first: boolean): boolean {
    return this.#more(first, CLOSE_BRACKET);
  }

  #more(first: boolean, close: number): boolean {
    this.#skipSpace();
    const c = this.#buf[this.#pos];
    if (c === close) {
      this.#pos++;
      return false;
    }
    if (!first) {
      if (c !== COMMA) this.#fail(`, or ${String.fromCharCode(close)}`);
      this.#pos++;
    }
    return true;
  }

  /** Consumes any value. */
  skipValue(): void {
    this.#skipSpace();
    const buf = this.#buf;
    const c = buf[this.#pos];
    if (c === QUOTE) {
      this.string();
    } else if (c === OPEN_BRACE) {
      this.#pos++;
      for (let first = true; this.member(first); first = false) this.skipValue();
    } else if (c === OPEN_BRACKET) {
      this.#pos++;
      for (let first = true; this.element(first); first = false) this.skipValue();
    } else {
      // A number, true, false or null: runs to the next delimiter.
      const start = this.#pos;
      let pos = start;
      for (;;) {
        const d = buf[pos];
        if (d === undefined || d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || d <= 0x20) break;
        pos++;
      }
      if (pos === start) this.#fail('a value');
      this.#pos = pos;
    }
  }
}

const entryPayload = new Base64Payload();

function putRecords(body: Buffer): string {
  const json = new JsonScanner(body);
  const results: string[] = [];
  json.expect(OPEN_BRACE);
  for (let first = true; json.member(first); first = false) {
    if (!json.is(KEY_RECORDS)) {
      json.skipValue();
      continue;
    }
    json.expect(OPEN_BRACKET);
    for (let firstEntry = true; json.element(firstEntry); firstEntry = false) {
      let partitionKey: string | undefined;
      let explicitHashKey: string | undefined;
      let data: Base64Payload | undefined;
      json.expect(OPEN_BRACE);
      for (let firstField = true; json.member(firstField); firstField = false) {
        if (json.is(KEY_DATA)) {
          // The SDK's JSON.stringify never escapes base64 characters, so the raw length is the length.
          json.string();
          data = json.payload(entryPayload);
        } else if (json.is(KEY_PARTITION_KEY)) {
          partitionKey = json.decodedString();
        } else if (json.is(KEY_EXPLICIT_HASH_KEY)) {
          explicitHashKey = json.decodedString();
        } else {
          json.skipValue();
        }
      }
      if (partitionKey === undefined || data === undefined) {
        throw new BadRequest('ValidationException', 'every record needs Data and PartitionKey');
      }
      results.push(acknowledge(route(partitionKey, explicitHashKey), data));
    }
  }
  return `{"FailedRecordCount":0,"Records":[${results.join(',')}]}`;
}

function putRecord(body: Buffer): string {
  const request = JSON.parse(body.toString('utf8')) as {
    Data?: string;
    PartitionKey?: string;
    ExplicitHashKey?: string;
  };
  if (typeof request.Data !== 'string' || typeof request.PartitionKey !== 'string') {
    throw new BadRequest('ValidationException', 'PutRecord needs Data and PartitionKey');
  }
  const data = Buffer.from(request.Data);
  return acknowledge(
    route(request.PartitionKey, request.ExplicitHashKey),
    entryPayload.set(data, 0, data.length),
  );
}

/**
 * Every shard, MaxResults at a time; the NextToken is the index of the next shard. ShardFilter is
 * accepted and ignored: every shard is open, so every filter selects them all.
 */
function listShards(body: Buffer): string {
  const request = JSON.parse(body.toString('utf8')) as {
    MaxResults?: number;
    NextToken?: string;
    ExclusiveStartShardId?: string;
  };
  const from =
    request.NextToken !== undefined
      ? Number(request.NextToken)
      : request.ExclusiveStartShardId !== undefined
        ? shardIds.indexOf(request.ExclusiveStartShardId) + 1
        : 0;
  const to = Math.min(shards.length, from + (request.MaxResults ?? 1000));
  const page: { Shards: typeof shards; NextToken?: string } = { Shards: shards.slice(from, to) };
  if (to < shards.length) page.NextToken = String(to);
  return JSON.stringify(page);
}

function describeStreamSummary(body: Buffer): string {
  const request = JSON.parse(body.toString('utf8')) as { StreamName?: string; StreamARN?: string };
  const name = request.StreamName ?? request.StreamARN?.split('/').pop() ?? 'stream';
  return JSON.stringify({
    StreamDescriptionSummary: {
      StreamName: name,
      StreamARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${name}`,
      StreamStatus: 'ACTIVE',
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      RetentionPeriodHours: 24,
      StreamCreationTimestamp: createdSeconds,
      EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
      EncryptionType: 'NONE',
      OpenShardCount: shardCount,
      ConsumerCount: 0,
      MaxRecordSizeInKiB: 1024,
      RecordDistributionStrategy: 'USER_PARTITION_KEY',
    },
  });
}

const operations: Record<string, (body: Buffer) => string> = {
  'Kinesis_20131202.PutRecords': putRecords,
  'Kinesis_20131202.PutRecord': putRecord,
  'Kinesis_20131202.ListShards': listShards,
  'Kinesis_20131202.DescribeStreamSummary': describeStreamSummary,
};

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': String(counters.requests),
  });
  res.end(body);
}

function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  if (req.method === 'GET' && req.url === '/stats') {
    const cpu = process.cpuUsage();
    const stats: NullKinesisStats = { ...counters, cpuMicros: cpu.user + cpu.system };
    reply(res, 200, JSON.stringify(stats));
    return;
  }
  counters.requests++;
  const target = req.headers['x-amz-target'];
  const operation = typeof target === 'string' ? operations[target] : undefined;
  if (operation === undefined) {
    reply(res, 400, JSON.stringify({ __type: 'UnknownOperationException', message: String(target) }));
    return;
  }
  try {
    reply(res, 200, operation(body));
  } catch (error) {
    const type = error instanceof BadRequest ? error.type : 'SerializationException';
    reply(res, 400, JSON.stringify({ __type: type, message: String(error) }));
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => handle(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
});
// Outlive the client's idle keep-alive sockets: a server closing one just as the client reuses it
// would fail a request, and the benchmark's clients do not retry.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
