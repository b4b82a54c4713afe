import protobuf from 'protobufjs';

/**
 * KPL's messages.proto, loaded by protobufjs: an independent encoder/decoder of the aggregated format,
 * used only by tests as an oracle for our hand-written codec.
 */
const schema = `
syntax = "proto2";
message AggregatedRecord {
  repeated string partition_key_table = 1;
  repeated string explicit_hash_key_table = 2;
  repeated Record records = 3;
}
message Tag {
  required string key = 1;
  optional string value = 2;
}
message Record {
  required uint64 partition_key_index = 1;
  optional uint64 explicit_hash_key_index = 2;
  required bytes data = 3;
  repeated Tag tags = 4;
}
`;

const root = protobuf.parse(schema, { keepCase: true }).root;
export const AggregatedRecordType = root.lookupType('AggregatedRecord');

export interface OracleRecord {
  partition_key_index: number;
  explicit_hash_key_index?: number;
  data: Uint8Array;
  tags?: { key?: string; value?: string }[];
}

export interface OracleAggregate {
  partition_key_table: string[];
  explicit_hash_key_table: string[];
  records: OracleRecord[];
}

/** Encodes an AggregatedRecord body with protobufjs. */
export function oracleEncode(message: Partial<OracleAggregate>): Uint8Array {
  return AggregatedRecordType.encode(AggregatedRecordType.fromObject(message)).finish();
}

/** Decodes an AggregatedRecord body with protobufjs. */
export function oracleDecode(body: Uint8Array): OracleAggregate {
  const decoded = AggregatedRecordType.decode(body);
  return AggregatedRecordType.toObject(decoded, {
    longs: Number,
    defaults: true,
    arrays: true,
  }) as OracleAggregate;
}
