/**
 * What sending costs without our producer: the plain SDK, aws-kinesis-agg + SDK, the raw ceiling (the
 * SDK alone sending aggregates built before timing), and our codec and body writer with nothing around
 * them, all against the null sink.
 */
import type { PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import {
  type AggregatableRecord,
  AggregateBuilder,
  type PartitionKeyEntry,
  writeAggregateDigests,
} from '../src/aggregator.js';
import {
  DEFAULT_AGGREGATION_MAX_BYTES,
  DEFAULT_AGGREGATION_MAX_COUNT,
  type KinesisRecord,
  RecordAggregator,
} from '../src/index.js';
import { DEFAULT_MAX_RECORD_BYTES, newRecordFacts, validateUserRecord } from '../src/user-record.js';
import type { Case, Metrics, RunSettings } from './case.js';
import { partitionKeyHashKey, shardIndexOf } from './hash-space.js';
import { kinesisAggAggregate } from './kinesis-agg.js';
import { keepInFlight, type Tally } from './measure.js';
import { putRecords } from './sdk-client.js';
import {
  IN_FLIGHT,
  measureAgainstSink,
  SENDING_DATA_BYTES,
  SENDING_PEERS,
  SHARDS,
  sendingSection as section,
} from './sending.js';
import {
  type BenchRecord,
  PARTITION_KEYS,
  PUT_RECORDS_MAX_BYTES,
  packRequests,
  RECORD_SIZES,
  userRecords,
} from './workload.js';

/**
 * User data aggregated at a time by the cases that time aggregation with the sends (see sendInChunks):
 * with aws-kinesis-agg, ~4 MiB aggregates to ~4 full 1 MiB aggregates and a partial one, which fit one
 * 5 MiB PutRecords request. (RecordAggregator's 51,200 B aggregates of 100 B records carry a key table
 * each, about a quarter more bytes: their chunk goes out as one full request and one of 1-2
 * aggregates.) A larger chunk would hold back sending while it aggregates; a smaller one would leave
 * more partial aggregates.
 */
const CHUNK_BYTES = PUT_RECORDS_MAX_BYTES - 1024 * 1024;

function dataBytes(records: readonly { readonly data: Uint8Array }[]): number {
  let bytes = 0;
  for (const record of records) bytes += record.data.byteLength;
  return bytes;
}

interface PeerParams {
  readonly recordBytes: number;
}

function workload(params: PeerParams): BenchRecord[] {
  return userRecords({
    recordBytes: params.recordBytes,
    totalBytes: SENDING_DATA_BYTES,
    keyCount: PARTITION_KEYS,
  });
}

/** (a) The plain SDK: unaggregated user records, 500 to a request. */
function plainSdk(params: PeerParams, settings: RunSettings): Promise<Metrics> {
  return measureAgainstSink(settings, () => {
    const requests = packRequests(workload(params)).map((records) => ({
      records,
      bytes: dataBytes(records),
    }));
    let next = 0;
    return async ({ client }, until): Promise<Tally> => {
      const tally = { records: 0, bytes: 0 };
      await keepInFlight(IN_FLIGHT, until, async () => {
        const request = requests[next++ % requests.length]!;
        await putRecords(
          client,
          request.records.map((r) => ({ Data: r.data, PartitionKey: r.partitionKey })),
        );
        tally.records += request.records.length;
        tally.bytes += request.bytes;
      });
      return tally;
    };
  });
}

/** An aggregate as the chunked cases send it. */
interface ChunkAggregate {
  readonly partitionKey: string;
  readonly data: Uint8Array;
  readonly explicitHashKey: string | undefined;
}

/**
 * Sends the workload ~`CHUNK_BYTES` of user data at a time, `IN_FLIGHT` chunks at once:
 * `aggregate` turns a chunk into aggregates, sent in PutRecords-sized requests (written by the SDK, or
 * with `nativeBody` as KinesisProducer writes them). The aggregation is timed with the sends.
 */
function sendInChunks(
  params: PeerParams,
  settings: RunSettings,
  aggregate: (records: readonly BenchRecord[]) => ChunkAggregate[] | Promise<ChunkAggregate[]>,
  nativeBody: boolean,
): Promise<Metrics> {
  return measureAgainstSink(settings, () => {
    const records = workload(params);
    // Chunks of equal size (at most CHUNK_BYTES of data), not full ones and a small remainder: a chunk
    // of one record would send a request of one record.
    const chunkCount = Math.ceil(records.length / Math.max(1, Math.floor(CHUNK_BYTES / params.recordBytes)));
    const perChunk = Math.ceil(records.length / chunkCount);
    const chunks: { records: BenchRecord[]; bytes: number }[] = [];
    for (let i = 0; i < records.length; i += perChunk) {
      const chunk = records.slice(i, i + perChunk);
      chunks.push({ records: chunk, bytes: dataBytes(chunk) });
    }
    let next = 0;
    return async ({ client }, until): Promise<Tally> => {
      const tally = { records: 0, bytes: 0 };
      await keepInFlight(IN_FLIGHT, until, async () => {
        const chunk = chunks[next++ % chunks.length]!;
        for (const request of packRequests(await aggregate(chunk.records))) {
          await putRecords(
            client,
            request.map((a) => ({
              Data: a.data,
              PartitionKey: a.partitionKey,
              ExplicitHashKey: a.explicitHashKey,
            })),
            nativeBody,
          );
        }
        tally.records += chunk.records.length;
        tally.bytes += chunk.bytes;
      });
      return tally;
    };
  });
}

/** (b) aws-kinesis-agg's aggregates, sent with the SDK; aggregation is timed too. */
function kinesisAggSdk(params: PeerParams, settings: RunSettings): Promise<Metrics> {
  return sendInChunks(
    params,
    settings,
    async (records) =>
      (await kinesisAggAggregate(records)).map((a) => ({
        partitionKey: a.partitionKey,
        data: a.data,
        explicitHashKey: a.ExplicitHashKey,
      })),
    false,
  );
}

/** One aggregate built before timing, with what it holds. */
interface PrebuiltAggregate {
  readonly partitionKey: string;
  readonly data: Uint8Array;
  readonly entry: PutRecordsRequestEntry;
  readonly userRecords: number;
  readonly userBytes: number;
}

/**
 * The aggregates the producer would send for `records`: one RecordAggregator per predicted shard, at
 * the KPL default size, each aggregate shipped when full.
 */
function shardAggregates(records: readonly BenchRecord[]): PrebuiltAggregate[] {
  const shards = Array.from({ length: SHARDS }, () => ({
    aggregator: new RecordAggregator({ maxBytes: DEFAULT_AGGREGATION_MAX_BYTES }),
    userBytes: 0,
  }));
  const out: PrebuiltAggregate[] = [];
  const ship = (shard: (typeof shards)[number]) => {
    const userRecords = shard.aggregator.count;
    const { partitionKey, data, explicitHashKey } = shard.aggregator.build();
    const entry = { Data: data, PartitionKey: partitionKey, ExplicitHashKey: explicitHashKey };
    out.push({ partitionKey, data, entry, userRecords, userBytes: shard.userBytes });
    shard.userBytes = 0;
  };
  for (const record of records) {
    const shard = shards[shardIndexOf(partitionKeyHashKey(record.partitionKey), SHARDS)]!;
    if (!shard.aggregator.add(record)) {
      ship(shard);
      shard.aggregator.add(record);
    }
    shard.userBytes += record.data.byteLength;
  }
  for (const shard of shards) if (shard.aggregator.count > 0) ship(shard);
  return out;
}

/** (c) The raw ceiling: the SDK alone, sending aggregates built before timing. */
function rawCeiling(params: PeerParams, settings: RunSettings): Promise<Metrics> {
  return measureAgainstSink(settings, () => {
    const requests = packRequests(shardAggregates(workload(params))).map((aggregates) => ({
      entries: aggregates.map((a) => a.entry),
      userRecords: aggregates.reduce((sum, a) => sum + a.userRecords, 0),
      userBytes: aggregates.reduce((sum, a) => sum + a.userBytes, 0),
    }));
    let next = 0;
    return async ({ client }, until): Promise<Tally> => {
      const tally = { records: 0, bytes: 0 };
      await keepInFlight(IN_FLIGHT, until, async () => {
        const request = requests[next++ % requests.length]!;
        await putRecords(client, request.entries);
        tally.records += request.userRecords;
        tally.bytes += request.userBytes;
      });
      return tally;
    };
  });
}

/** What aggregate + send alone keeps per partition key: its table entry and predicted shard. */
interface KeyEntry extends PartitionKeyEntry {
  readonly shard: number;
}

/** A record as aggregate + send alone hands it to its builder: as validation read it. */
class FloorRecord implements AggregatableRecord {
  constructor(
    readonly partitionKeyEntry: KeyEntry,
    readonly data: Uint8Array | string,
    readonly dataBytes: number,
    readonly explicitHashKey: string | undefined,
  ) {}
}

/**
 * (d) Aggregate + send alone: what any producer on our codec and body writer must do for a record sent
 * and forgotten, done with KinesisProducer's own parts and nothing around them. Each record is
 * validated (the producer's check), its key looked up once (table entry and predicted shard, kept per
 * key as the producer keeps them) and added to its shard's AggregateBuilder (the producer's builder)
 * as an object of its own. A chunk's aggregates get their MD5 trailers together, as a request's do in
 * the producer, and go out in the producer's native body. Timed with the sends on ~4 MiB of user
 * records at a time, as (b) is (see sendInChunks). Without the producer's room, settlement, metrics,
 * timers and retries, on one thread its rate is an approximate limit on `send()`'s: approximate
 * because the two batch requests differently (this case sends fewer requests than the producer at
 * 10 KiB, more at 100 B).
 */
function aggregateAndSend(params: PeerParams, settings: RunSettings): Promise<Metrics> {
  const builders = Array.from(
    { length: SHARDS },
    () =>
      new AggregateBuilder<FloorRecord>(
        DEFAULT_AGGREGATION_MAX_BYTES,
        DEFAULT_AGGREGATION_MAX_COUNT,
        () => '0',
      ),
  );
  const keys = new Map<string, KeyEntry>();
  const facts = newRecordFacts();
  // Synchronous: the chunks in flight never share an open aggregate.
  const aggregate = (records: readonly BenchRecord[]): KinesisRecord[] => {
    const built: KinesisRecord[] = [];
    const aggregates: Uint8Array[] = [];
    const build = (builder: AggregateBuilder<FloorRecord>) => {
      const aggregated = builder.count > 1;
      const record = builder.build();
      built.push(record);
      if (aggregated) aggregates.push(record.data);
    };
    for (const record of records) {
      let key = keys.get(record.partitionKey);
      validateUserRecord(record, DEFAULT_MAX_RECORD_BYTES, facts, key);
      if (key === undefined) {
        key = {
          key: facts.partitionKey,
          bytes: facts.partitionKeyBytes,
          index: 0,
          aggregate: 0,
          stampedBy: undefined,
          utf8: undefined,
          writes: 0,
          shard: shardIndexOf(partitionKeyHashKey(facts.partitionKey), SHARDS),
        };
        keys.set(facts.partitionKey, key);
      }
      const item = new FloorRecord(key, facts.data, facts.dataBytes, facts.explicitHashKey);
      const builder = builders[key.shard]!;
      if (!builder.tryAdd(item)) {
        build(builder);
        builder.tryAdd(item);
      }
    }
    for (const builder of builders) if (builder.count > 0) build(builder);
    writeAggregateDigests(aggregates);
    return built;
  };
  return sendInChunks(params, settings, aggregate, true);
}

export const sdkPeerCases: readonly Case<PeerParams>[] = RECORD_SIZES.flatMap(({ bytes, label }) => [
  {
    name: `sdk/plain/${bytes}`,
    section,
    group: label,
    label: 'plain SDK, unaggregated',
    reference: SENDING_PEERS.plainSdk,
    params: { recordBytes: bytes },
    run: plainSdk,
  },
  {
    name: `sdk/aws-kinesis-agg/${bytes}`,
    section,
    group: label,
    label: 'aws-kinesis-agg + SDK',
    reference: SENDING_PEERS.kinesisAgg,
    params: { recordBytes: bytes },
    run: kinesisAggSdk,
  },
  {
    name: `sdk/raw-ceiling/${bytes}`,
    section,
    group: label,
    label: 'raw ceiling: SDK sending pre-built aggregates',
    reference: SENDING_PEERS.ceiling,
    params: { recordBytes: bytes },
    run: rawCeiling,
  },
  {
    name: `sdk/aggregate-and-send/${bytes}`,
    section,
    group: label,
    label: "aggregate + send alone: the producer's builder, trailers and body, no producer",
    params: { recordBytes: bytes },
    run: aggregateAndSend,
  },
]);
