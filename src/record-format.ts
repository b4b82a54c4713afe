/*
 * The KPL aggregated record format (KPL aggregation-format.md, messages.proto):
 *
 *   F3 89 9A C2 | protobuf AggregatedRecord | MD5(protobuf bytes) (16 bytes)
 *
 *   message AggregatedRecord {
 *     repeated string partition_key_table     = 1;
 *     repeated string explicit_hash_key_table = 2;
 *     repeated Record records                 = 3;
 *   }
 *   message Record {
 *     required uint64 partition_key_index     = 1;
 *     optional uint64 explicit_hash_key_index = 2;
 *     required bytes  data                    = 3;
 *     repeated Tag    tags                    = 4;
 *   }
 *   message Tag { required string key = 1; optional string value = 2; }
 *
 * The encoder lives in `aggregator.ts`, which knows its exact size as it grows; this module holds the
 * wire primitives both directions share, and the decoder, written to accept what KCL's protobuf
 * parser accepts (unknown fields skipped, required fields enforced, 100 levels of nesting). Strings
 * that are not valid UTF-8 decode by the WHATWG rules, not Java's.
 */

// The module binding, not the global: global `Buffer` is an accessor, a getter call on every use.
import { Buffer } from 'node:buffer';

/** How deep messages and groups may nest, as protobuf-java (KCL's parser) allows by default. */
const MAX_NESTING = 100;

/** The four bytes every aggregated record starts with. */
export const MAGIC = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2);
/**
 * The four bytes every KPL aggregated record starts with: F3 89 9A C2. A copy of the library's own (a
 * typed array cannot be frozen): writing into it changes nothing the library reads or writes.
 */
export const AGGREGATED_RECORD_MAGIC = Uint8Array.from(MAGIC);
/** Length of the MD5 trailer. */
export const DIGEST_BYTES = 16;
/** Bytes an aggregate adds around its protobuf body: magic + MD5. */
export const AGGREGATE_OVERHEAD_BYTES = MAGIC.length + DIGEST_BYTES;
/** The outer partition key KPL gives an aggregate of two or more records. */
export const AGGREGATE_PARTITION_KEY = 'a';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

/** Field keys (field number << 3 | wire type) as single bytes, as the encoder writes them. */
export const TAG_PARTITION_KEY_TABLE = (1 << 3) | WIRE_LENGTH_DELIMITED; // 0x0a
export const TAG_EXPLICIT_HASH_KEY_TABLE = (2 << 3) | WIRE_LENGTH_DELIMITED; // 0x12
export const TAG_RECORDS = (3 << 3) | WIRE_LENGTH_DELIMITED; // 0x1a
export const TAG_PARTITION_KEY_INDEX = (1 << 3) | WIRE_VARINT; // 0x08
export const TAG_EXPLICIT_HASH_KEY_INDEX = (2 << 3) | WIRE_VARINT; // 0x10
export const TAG_DATA = (3 << 3) | WIRE_LENGTH_DELIMITED; // 0x1a

/** Bytes a non-negative integer below 2^35 takes as a protobuf varint. */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Bytes a length-delimited field takes: one tag byte, the length varint, the payload. */
export function lengthDelimitedSize(payloadBytes: number): number {
  return 1 + varintSize(payloadBytes) + payloadBytes;
}

/** Writes `value` (a uint32) as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  let v = value >>> 0;
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** True when `bytes` starts with the aggregated-record magic. */
export function hasMagic(bytes: Uint8Array): boolean {
  return (
    bytes.length >= MAGIC.length &&
    bytes[0] === MAGIC[0] &&
    bytes[1] === MAGIC[1] &&
    bytes[2] === MAGIC[2] &&
    bytes[3] === MAGIC[3]
  );
}

/** One user record inside a decoded aggregate; `data` is a view into the aggregate's bytes. */
export interface DecodedSubRecord {
  partitionKeyIndex: number;
  /** -1 when the record has no explicit hash key. */
  explicitHashKeyIndex: number;
  data: Uint8Array;
}

/** The protobuf body of an aggregate, decoded. */
export interface DecodedAggregate {
  partitionKeys: string[];
  explicitHashKeys: string[];
  records: DecodedSubRecord[];
}

/** Thrown inside the decoder; turned into pass-through or CorruptAggregateError by the caller. */
export class ProtobufParseError extends Error {}

/**
 * Decodes the protobuf body (between magic and MD5) of an aggregated record. Throws
 * {@link ProtobufParseError} with a reason for anything KCL's parser would reject, and, unless
 * `checkIndexes` is false, for key indexes outside their tables (which KCL would fail on while
 * deaggregating).
 */
export function decodeAggregatedRecord(body: Uint8Array, checkIndexes = true): DecodedAggregate {
  const reader = new Reader(body, 0, body.length);
  const partitionKeys: string[] = [];
  const explicitHashKeys: string[] = [];
  const records: DecodedSubRecord[] = [];
  while (reader.pos < reader.end) {
    const key = reader.varint32();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) {
      partitionKeys.push(reader.string());
    } else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) {
      explicitHashKeys.push(reader.string());
    } else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) {
      const length = reader.varint32();
      const end = reader.take(length);
      records.push(decodeRecord(new Reader(body, end - length, end)));
    } else {
      reader.skip(field, wire, 0);
    }
  }
  for (let i = 0; checkIndexes && i < records.length; i++) {
    const r = records[i]!;
    if (r.partitionKeyIndex >= partitionKeys.length) {
      throw new ProtobufParseError(
        `record ${i} has partition_key_index ${r.partitionKeyIndex} but the table has ${partitionKeys.length} keys`,
      );
    }
    if (r.explicitHashKeyIndex >= explicitHashKeys.length) {
      throw new ProtobufParseError(
        `record ${i} has explicit_hash_key_index ${r.explicitHashKeyIndex} but the table has ${explicitHashKeys.length} keys`,
      );
    }
  }
  return { partitionKeys, explicitHashKeys, records };
}

function decodeRecord(reader: Reader): DecodedSubRecord {
  let partitionKeyIndex = -1;
  let explicitHashKeyIndex = -1;
  let data: Uint8Array | undefined;
  while (reader.pos < reader.end) {
    const key = reader.varint32();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === WIRE_VARINT) {
      partitionKeyIndex = reader.varint();
    } else if (field === 2 && wire === WIRE_VARINT) {
      explicitHashKeyIndex = reader.varint();
    } else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) {
      data = reader.bytes();
    } else if (field === 4 && wire === WIRE_LENGTH_DELIMITED) {
      const length = reader.varint32();
      const end = reader.take(length);
      checkTag(new Reader(reader.buf, end - length, end));
    } else {
      reader.skip(field, wire, 1);
    }
  }
  if (partitionKeyIndex < 0) throw new ProtobufParseError('a record lacks required partition_key_index');
  if (data === undefined) throw new ProtobufParseError('a record lacks required data');
  return { partitionKeyIndex, explicitHashKeyIndex, data };
}

/** Tags carry nothing consumers use, but a tag without its required key makes the message invalid. */
function checkTag(reader: Reader): void {
  let hasKey = false;
  while (reader.pos < reader.end) {
    const key = reader.varint32();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) {
      reader.string();
      hasKey = true;
    } else {
      reader.skip(field, wire, 2);
    }
  }
  if (!hasKey) throw new ProtobufParseError('a tag lacks required key');
}

class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /**
   * Reads a varint of up to 10 bytes, for values (table indexes, skipped varint fields). Values above
   * 2^53 lose precision but stay huge, which is all the callers need: any such index is out of range.
   */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufParseError(`truncated varint at offset ${this.pos}`);
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
    throw new ProtobufParseError(`varint longer than 10 bytes at offset ${this.pos}`);
  }

  /**
   * Reads a field's key (field number and wire type) or a length, as protobuf-java's readRawVarint32
   * does: a varint of up to 10 bytes of which only the low 32 bits count. (Read as a plain varint, a
   * value padded past 2^32 would keep its high bits, and past 2^53 lose its low ones, where KCL's
   * parser keeps the low 32.) A length of 2^31 or more, negative to Java, overruns any message here.
   */
  varint32(): number {
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufParseError(`truncated varint at offset ${this.pos}`);
      const byte = this.buf[this.pos++]!;
      // Shifts are 32-bit: from the fifth byte on, the bits past 32 fall away.
      if (i < 5) result |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) return result >>> 0;
    }
    throw new ProtobufParseError(`varint longer than 10 bytes at offset ${this.pos}`);
  }

  /** Advances past `length` bytes and returns the position after them. */
  take(length: number): number {
    if (length > this.end - this.pos) {
      throw new ProtobufParseError(`field of ${length} bytes overruns the message at offset ${this.pos}`);
    }
    this.pos += length;
    return this.pos;
  }

  bytes(): Uint8Array {
    const length = this.varint32();
    const end = this.take(length);
    return this.buf.subarray(end - length, end);
  }

  string(): string {
    const length = this.varint32();
    const end = this.take(length);
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + end - length, length).toString('utf8');
  }

  /** Skips a field of no interest; `depth` is how deep in messages and groups it sits. */
  skip(field: number, wire: number, depth: number): void {
    if (field === 0) throw new ProtobufParseError(`invalid field number 0 at offset ${this.pos}`);
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.take(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.take(this.varint32());
        return;
      case WIRE_FIXED32:
        this.take(4);
        return;
      case WIRE_START_GROUP: {
        // protobuf-java's limit (KCL's parser): 100 levels of messages and groups in all.
        if (depth >= MAX_NESTING) throw new ProtobufParseError('groups nested too deeply');
        for (;;) {
          const key = this.varint32();
          const innerField = key >>> 3;
          const innerWire = key & 7;
          if (innerWire === WIRE_END_GROUP) {
            if (innerField !== field) throw new ProtobufParseError('mismatched end of group');
            return;
          }
          this.skip(innerField, innerWire, depth + 1);
        }
      }
      default:
        throw new ProtobufParseError(`invalid wire type ${wire} at offset ${this.pos}`);
    }
  }
}
