import { createHash } from 'node:crypto';
import {
  DescribeStreamSummaryCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  type KinesisClientConfig,
  ListShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  type PutRecordsRequestEntry,
  UpdateShardCountCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { describe, expect, inject, it, onTestFinished, vi } from 'vitest';
import { localClient, readStream, waitForActive } from '../scripts/local-kinesis.js';
import {
  type FaultFront,
  type FaultFrontConfig,
  type RequestFault,
  startFaultFront,
} from './support/fault-front.js';
import { testClient, testStream } from './support/streams.js';

/**
 * The fault front, driven through the real AWS SDK client against the suite's kinesis-local: what a
 * client sees (error names, statuses, per-entry results), what ends up in the stream, and the stats.
 * Records are small: kinesis-local is slow per byte and per record.
 */

const upstream = inject('kinesisEndpoint');
const direct = testClient();

async function startFront(config: Partial<FaultFrontConfig> = {}): Promise<FaultFront> {
  const front = await startFaultFront({ upstream, ...config });
  onTestFinished(() => front.close());
  return front;
}

/** A client of the front that does not retry, so each fault reaches the test as the client saw it. */
function clientOf(front: FaultFront, config: Partial<KinesisClientConfig> = {}): KinesisClient {
  const client = localClient(front.endpoint, { maxAttempts: 1, ...config });
  onTestFinished(() => client.destroy());
  return client;
}

function records(prefix: string, count: number, dataBytes = 8): PutRecordsRequestEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    PartitionKey: `${prefix}-${i}`,
    Data: Buffer.alloc(dataBytes, i),
  }));
}

/** The partition keys a consumer reads from the stream, shard by shard. */
async function storedKeys(streamName: string): Promise<string[]> {
  const shards = await readStream(direct, streamName);
  return shards.flatMap(({ records }) => records.map((record) => record.PartitionKey ?? ''));
}

const MiB = 1024 * 1024;

describe('forwarding', () => {
  it('passes every other operation through to upstream, errors included', async () => {
    const front = await startFront();
    const client = clientOf(front);
    // CreateStream, DescribeStreamSummary and ListShards, all through the front.
    const { streamName, shards } = await testStream(client, 2, 'ff-proxy');
    expect(shards.map((shard) => shard.ShardId)).toEqual(['shardId-000000000000', 'shardId-000000000001']);

    const put = await client.send(
      new PutRecordsCommand({ StreamName: streamName, Records: records('p', 10) }),
    );
    expect(put.FailedRecordCount).toBe(0);
    const viaFront = await readStream(client, streamName);
    expect(viaFront.flatMap((s) => s.records.map((r) => r.SequenceNumber))).toEqual(
      (await readStream(direct, streamName)).flatMap((s) => s.records.map((r) => r.SequenceNumber)),
    );
    expect(viaFront.flatMap((s) => s.records)).toHaveLength(10);

    await expect(
      client.send(new DescribeStreamSummaryCommand({ StreamName: 'no-such-stream' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } });
    // PutRecords to a missing stream fails on the front's own ListShards; the client gets upstream's answer.
    await expect(
      client.send(new PutRecordsCommand({ StreamName: 'no-such-stream', Records: records('p', 1) })),
    ).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      message: expect.stringContaining('no-such-stream'),
    });

    expect(front.stats().requests).toMatchObject({
      CreateStream: 1,
      ListShards: 2,
      PutRecords: 2,
      GetShardIterator: 2,
      DescribeStreamSummary: expect.any(Number),
      GetRecords: expect.any(Number),
    });
  });
});

describe('routing', () => {
  it('predicts the shard kinesis-local stores each entry in, for 2,000 keys on 4 shards', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName, shards } = await testStream(direct, 4, 'ff-route');
    const predicted: string[] = [];
    front.script(({ entries }) => {
      predicted.push(...entries.map((entry) => entry.shardId));
      return undefined;
    });

    const actual: string[] = [];
    // Reproducible keys spread over the hash space, of varied lengths, some non-ASCII (hashed as UTF-8).
    const keys = Array.from({ length: 2000 }, (_, i) => {
      const key = createHash('sha256')
        .update(String(i))
        .digest('base64url')
        .slice(0, 4 + (i % 29));
      return i % 7 === 0 ? `${key}-ü€😀` : key;
    });
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500).map((key) => ({ PartitionKey: key, Data: Buffer.from('x') }));
      const out = await client.send(new PutRecordsCommand({ StreamName: streamName, Records: batch }));
      actual.push(...(out.Records ?? []).map((r) => r.ShardId ?? 'none'));
    }
    // Explicit hash keys at both ends of every shard's range.
    const edges = shards.flatMap((s) => [s.HashKeyRange?.StartingHashKey, s.HashKeyRange?.EndingHashKey]);
    const edgeEntries = edges.map((hashKey) => ({
      PartitionKey: 'edge',
      ExplicitHashKey: hashKey,
      Data: Buffer.from('x'),
    }));
    const out = await client.send(new PutRecordsCommand({ StreamName: streamName, Records: edgeEntries }));
    actual.push(...(out.Records ?? []).map((r) => r.ShardId ?? 'none'));
    const single = await client.send(
      new PutRecordCommand({ StreamName: streamName, PartitionKey: 'single', Data: Buffer.from('x') }),
    );
    actual.push(single.ShardId ?? 'none');

    expect(predicted).toHaveLength(2009);
    expect(predicted).toEqual(actual);
    expect(new Set(actual).size).toBe(4);
    const perShard = front.stats().shards[streamName] ?? {};
    for (const shard of shards) {
      const id = shard.ShardId ?? '';
      expect(perShard[id]?.records).toBe(actual.filter((shardId) => shardId === id).length);
    }
  });

  it('routes by a stream ARN like by its name', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 2, 'ff-arn');
    const summary = await direct.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    const streamArn = summary.StreamDescriptionSummary?.StreamARN;
    const seen: (string | undefined)[] = [];
    front.script(({ stream }) => {
      seen.push(stream);
      return undefined;
    });

    const out = await client.send(
      new PutRecordsCommand({ StreamARN: streamArn, Records: records('arn', 20) }),
    );

    expect(out.FailedRecordCount).toBe(0);
    expect(seen).toEqual([streamName]);
    const perShard = Object.values(front.stats().shards[streamName] ?? {});
    expect(perShard.reduce((sum, shard) => sum + shard.records, 0)).toBe(20);
  });

  it('asks upstream again once a record lands in a shard other than predicted', async () => {
    // A map that never ages: only the misprediction can refresh it.
    const front = await startFront({ shardMapMaxAgeMs: 3_600_000 });
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-reshard');
    const predicted: string[][] = [];
    front.script(({ entries }) => {
      predicted.push(entries.map((entry) => entry.shardId));
      return undefined;
    });
    const put = async (prefix: string) =>
      (await client.send(new PutRecordsCommand({ StreamName: streamName, Records: records(prefix, 40) })))
        .Records ?? [];

    await put('before');
    await direct.send(
      new UpdateShardCountCommand({
        StreamName: streamName,
        TargetShardCount: 2,
        ScalingType: 'UNIFORM_SCALING',
      }),
    );
    await waitForActive(direct, streamName);
    const stale = await put('stale');
    const fresh = await put('fresh');

    // The cached map still had the parent shard, now closed; kinesis-local stored in the children.
    expect(new Set(predicted[1])).toEqual(new Set(['shardId-000000000000']));
    expect(stale.every((r) => r.ShardId !== 'shardId-000000000000' && r.ErrorCode === undefined)).toBe(true);
    expect(predicted[2]).toEqual(fresh.map((r) => r.ShardId));
    expect(new Set(predicted[2])).toEqual(new Set(['shardId-000000000001', 'shardId-000000000002']));
  });
});

describe('request limits', () => {
  it('refuses requests over the service limits with the service errors, storing nothing', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-limits');
    const put = (entries: PutRecordsRequestEntry[]) =>
      client.send(new PutRecordsCommand({ StreamName: streamName, Records: entries }));

    await expect(put(records('many', 501))).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining(
        "at 'records' failed to satisfy constraint: Member must have length less than or equal to 500",
      ),
      $metadata: { httpStatusCode: 400 },
    });
    await expect(put([])).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('greater than or equal to 1'),
    });
    // 11 records of 1,000,000 bytes: each under 1 MiB, together over 10 MiB.
    await expect(put(records('big', 11, 1_000_000))).rejects.toMatchObject({
      name: 'InvalidArgumentException',
      message: 'Records size exceeds 10 MB limit',
      $metadata: { httpStatusCode: 400 },
    });
    // Partition key + data: 1 + 1 MiB.
    await expect(
      put([...records('ok', 2), { PartitionKey: 'k', Data: Buffer.alloc(MiB) }]),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining("Value at 'records.3.member.data' failed to satisfy constraint"),
    });
    await expect(
      client.send(
        new PutRecordCommand({ StreamName: streamName, PartitionKey: 'k', Data: Buffer.alloc(MiB) }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining("Value at 'data'"),
    });

    expect(front.stats()).toMatchObject({ limitRejections: 5, entriesForwarded: 0 });
    expect(await storedKeys(streamName)).toEqual([]);
  });

  it('applies configured limits, and none that are switched off', async () => {
    const front = await startFront({ maxRecordBytes: 100, maxRequestBytes: 1000 });
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-limits-off');
    const put = (entries: PutRecordsRequestEntry[]) =>
      client.send(new PutRecordsCommand({ StreamName: streamName, Records: entries }));

    // 'r-0' + 98 bytes = 101 bytes.
    await expect(put(records('r', 1, 98))).rejects.toMatchObject({ name: 'ValidationException' });
    // 11 × ('r-N' + 90 bytes) = 1023 bytes.
    await expect(put(records('r', 11, 90))).rejects.toMatchObject({
      name: 'InvalidArgumentException',
      message: 'Records size exceeds 1000 bytes limit',
    });

    front.configure({ maxRecordsPerRequest: false, maxRecordBytes: false, maxRequestBytes: false });
    const many = await put(records('many', 501));
    const big = await put(records('big', 11, 98));

    expect([many.FailedRecordCount, big.FailedRecordCount]).toEqual([0, 0]);
    expect(await storedKeys(streamName)).toHaveLength(512);
  });
});

describe('shard limits', () => {
  it('admits a burst of 1,000 records to a shard limited to 1,000 per second, and throttles the rest', async () => {
    const front = await startFront({
      maxRecordsPerRequest: false,
      shardLimits: { recordsPerSecond: 1000, bytesPerSecond: MiB },
    });
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-burst');

    // The front admits a whole request at one instant: a full bucket holds exactly one second's worth.
    const out = await client.send(
      new PutRecordsCommand({ StreamName: streamName, Records: records('b', 1200, 4) }),
    );

    const results = out.Records ?? [];
    expect(out.FailedRecordCount).toBe(200);
    expect(results.slice(0, 1000).every((r) => r.ShardId === 'shardId-000000000000')).toBe(true);
    expect(results.slice(1000)).toEqual(
      Array(200).fill({
        ErrorCode: 'ProvisionedThroughputExceededException',
        ErrorMessage: `Rate exceeded for shard shardId-000000000000 in stream ${streamName} under account 000000000000.`,
      }),
    );
    expect(await storedKeys(streamName)).toEqual(records('b', 1000).map((r) => r.PartitionKey));
    expect(front.stats()).toMatchObject({
      entriesForwarded: 1000,
      entriesStored: 1000,
      entriesThrottled: 200,
    });
  });

  it('limits bytes per shard too, and PutRecord answers a throttled record with the error', async () => {
    // 10-byte records ('t-N' + 7 bytes, N < 10): 1,000 bytes per second is 100 records.
    const front = await startFront({ shardLimits: { recordsPerSecond: 1000, bytesPerSecond: 1000 } });
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-bytes');
    const entries = Array.from({ length: 150 }, (_, i) => ({
      PartitionKey: `t-${i % 10}`,
      Data: Buffer.alloc(7),
    }));

    const out = await client.send(new PutRecordsCommand({ StreamName: streamName, Records: entries }));
    expect(out.FailedRecordCount).toBe(50);
    expect((out.Records ?? []).findIndex((r) => r.ErrorCode !== undefined)).toBe(100);

    front.configure({ shardLimits: { recordsPerSecond: 1, bytesPerSecond: MiB } });
    const send = () =>
      client.send(
        new PutRecordCommand({ StreamName: streamName, PartitionKey: 'one', Data: Buffer.from('x') }),
      );
    await send();
    await expect(send()).rejects.toMatchObject({
      name: 'ProvisionedThroughputExceededException',
      message: `Rate exceeded for shard shardId-000000000000 in stream ${streamName} under account 000000000000.`,
      $metadata: { httpStatusCode: 400 },
    });
    expect(front.stats()).toMatchObject({ entriesStored: 101, entriesThrottled: 51 });
  });

  it('holds each shard to its rate under sustained load from several clients', async () => {
    // kinesis-local stores only several hundred to a thousand small records a second on a 2-core machine
    // (fewer while its JIT warms up), so the admitted load stays well under that while the offered load
    // stays far over the limits: shard 0 is bound by records (200/s of 10 bytes), shard 1 by bytes
    // (10 kB/s of 250-byte records = 40/s).
    const limits = { recordsPerSecond: 200, bytesPerSecond: 10_000, burstSeconds: 0.5 };
    const front = await startFront({ shardLimits: limits });
    const { streamName, shards } = await testStream(direct, 2, 'ff-rate');
    const [small, large] = shards.map((s) => s.HashKeyRange?.StartingHashKey);
    const clients = [clientOf(front), clientOf(front), clientOf(front)];
    const batch = [
      ...Array.from({ length: 100 }, () => ({
        PartitionKey: 'p-00',
        ExplicitHashKey: small,
        Data: Buffer.alloc(6),
      })),
      ...Array.from({ length: 20 }, () => ({
        PartitionKey: 'p-01',
        ExplicitHashKey: large,
        Data: Buffer.alloc(246),
      })),
    ];

    const deadline = performance.now() + 2500;
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          await client.send(new PutRecordsCommand({ StreamName: streamName, Records: batch }));
        }
      }),
    );

    const perShard = front.stats().shards[streamName] ?? {};
    const byRecords = perShard['shardId-000000000000'];
    const byBytes = perShard['shardId-000000000001'];
    if (byRecords === undefined || byBytes === undefined) throw new Error('no records stored');
    // Admitted over [first, last]: at most a full bucket plus the refill, and, as long as the clients
    // keep asking for more, at least most of the refill.
    const seconds = (s: { firstAcceptedAtMs: number; lastAcceptedAtMs: number }) =>
      (s.lastAcceptedAtMs - s.firstAcceptedAtMs) / 1000;
    const recordBucket = limits.recordsPerSecond * limits.burstSeconds;
    const byteBucket = limits.bytesPerSecond * limits.burstSeconds;
    expect(seconds(byRecords)).toBeGreaterThan(2);
    expect(byRecords.records).toBeLessThanOrEqual(
      recordBucket + limits.recordsPerSecond * seconds(byRecords) + 1,
    );
    expect(byRecords.records).toBeGreaterThanOrEqual(
      recordBucket + 0.8 * limits.recordsPerSecond * seconds(byRecords),
    );
    expect(seconds(byBytes)).toBeGreaterThan(2);
    expect(byBytes.bytes).toBeLessThanOrEqual(byteBucket + limits.bytesPerSecond * seconds(byBytes));
    expect(byBytes.bytes).toBeGreaterThanOrEqual(byteBucket + 0.8 * limits.bytesPerSecond * seconds(byBytes));
    expect(front.stats().entriesThrottled).toBeGreaterThan(0);
  });
});

describe('whole-request faults', () => {
  const cases: { fault: RequestFault; name: string; status: number }[] = [
    { fault: 'internal-failure', name: 'InternalFailure', status: 500 },
    { fault: 'service-unavailable', name: 'ServiceUnavailable', status: 503 },
    { fault: 'throttle', name: 'ProvisionedThroughputExceededException', status: 400 },
    { fault: 'resource-not-found', name: 'ResourceNotFoundException', status: 400 },
    { fault: 'access-denied', name: 'AccessDeniedException', status: 400 },
    { fault: 'expired-token', name: 'ExpiredTokenException', status: 400 },
    {
      fault: { error: 'KMSThrottlingException', status: 400, message: 'KMS is busy.' },
      name: 'KMSThrottlingException',
      status: 400,
    },
  ];

  it.each(cases)(
    'answers PutRecords with $name (HTTP $status), forwarding nothing',
    async ({ fault, name, status }) => {
      const front = await startFront();
      const client = clientOf(front);
      const { streamName } = await testStream(direct, 1, 'ff-request-fault');
      front.script(() => ({ request: fault }));

      await expect(
        client.send(new PutRecordsCommand({ StreamName: streamName, Records: records('f', 3) })),
      ).rejects.toMatchObject({
        name,
        $fault: status >= 500 ? 'server' : 'client',
        $metadata: { httpStatusCode: status },
      });
      expect(front.stats()).toMatchObject({ entriesReceived: 3, entriesForwarded: 0 });
      expect(front.stats().requestFaults).toEqual({ [typeof fault === 'object' ? fault.error : fault]: 1 });
    },
  );

  it('words errors like the service, naming the stream', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-messages');
    const put = () =>
      client.send(new PutRecordsCommand({ StreamName: streamName, Records: records('m', 1) }));

    front.script(() => ({ request: 'throttle' }));
    await expect(put()).rejects.toThrow(`Rate exceeded for stream ${streamName} under account 000000000000.`);
    front.script(() => ({ request: 'resource-not-found' }));
    await expect(put()).rejects.toThrow(`Stream ${streamName} under account 000000000000 not found.`);
    front.script(() => ({ request: 'access-denied' }));
    await expect(put()).rejects.toThrow(
      `is not authorized to perform: kinesis:PutRecords on resource: arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
    );
  });

  it('fails any operation a script picks: the third PutRecords, ListShards, DescribeStreamSummary', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-script');
    const put = () =>
      client.send(new PutRecordsCommand({ StreamName: streamName, Records: records('s', 2) }));
    // Indexes count from the script's installation: this request is not one of them.
    await put();
    const operations: string[] = [];
    front.script(({ operation, index }) => {
      operations.push(`${operation}#${index}`);
      if (operation === 'PutRecords' && index === 2) return { request: 'service-unavailable' };
      if (operation === 'ListShards') return { request: 'access-denied' };
      if (operation === 'DescribeStreamSummary') return { request: 'throttle' };
      if (operation === 'GetShardIterator') {
        return { request: { error: 'InternalFailure', status: 500 }, latencyMs: 50 };
      }
      return undefined;
    });

    await put();
    await put();
    await expect(put()).rejects.toMatchObject({
      name: 'ServiceUnavailable',
      $metadata: { httpStatusCode: 503 },
    });
    await put();
    await expect(client.send(new ListShardsCommand({ StreamName: streamName }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      client.send(new DescribeStreamSummaryCommand({ StreamName: streamName })),
    ).rejects.toMatchObject({
      name: 'LimitExceededException',
      message: `Rate exceeded for stream ${streamName} under account 000000000000.`,
    });
    const started = performance.now();
    await expect(
      client.send(
        new GetShardIteratorCommand({
          StreamName: streamName,
          ShardId: 'shardId-000000000000',
          ShardIteratorType: 'LATEST',
        }),
      ),
    ).rejects.toMatchObject({ name: 'InternalFailure', message: 'Injected InternalFailure.' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);

    expect(operations).toEqual([
      'PutRecords#0',
      'PutRecords#1',
      'PutRecords#2',
      'PutRecords#3',
      'ListShards#0',
      'DescribeStreamSummary#0',
      'GetShardIterator#0',
    ]);
    expect(await storedKeys(streamName)).toHaveLength(8);
    expect(front.stats().requestFaults).toEqual({
      'service-unavailable': 1,
      'access-denied': 1,
      throttle: 1,
      InternalFailure: 1,
    });
  });
});

describe('per-entry faults', () => {
  it('fails chosen entries, forwards the rest, and merges the results back in request order', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-entries');
    front.script(({ entries }) => ({
      entries: entries.map((entry) => {
        if (entry.partitionKey.startsWith('poison')) return 'internal-failure';
        return entry.partitionKey.startsWith('hot') ? 'throttle' : undefined;
      }),
    }));
    const keys = ['a0', 'poison1', 'a2', 'hot3', 'a4', 'poison5', 'a6', 'a7', 'hot8', 'a9'];

    const out = await client.send(
      new PutRecordsCommand({
        StreamName: streamName,
        Records: keys.map((key) => ({ PartitionKey: key, Data: Buffer.from(key) })),
      }),
    );

    const internal = { ErrorCode: 'InternalFailure', ErrorMessage: 'Internal service failure.' };
    const throttled = {
      ErrorCode: 'ProvisionedThroughputExceededException',
      ErrorMessage: `Rate exceeded for shard shardId-000000000000 in stream ${streamName} under account 000000000000.`,
    };
    // Each stored entry's result carries the sequence number a consumer reads for that entry.
    const shards = await readStream(direct, streamName);
    const sequenceOf = new Map(
      shards.flatMap((s) => s.records.map((r) => [r.PartitionKey, r.SequenceNumber])),
    );
    expect([...sequenceOf.keys()]).toEqual(['a0', 'a2', 'a4', 'a6', 'a7', 'a9']);
    expect(out.FailedRecordCount).toBe(4);
    expect(out.Records).toEqual(
      keys.map((key) => {
        if (key.startsWith('poison')) return internal;
        if (key.startsWith('hot')) return throttled;
        return expect.objectContaining({
          ShardId: 'shardId-000000000000',
          SequenceNumber: sequenceOf.get(key),
        });
      }),
    );
    expect(front.stats()).toMatchObject({
      entriesReceived: 10,
      entriesForwarded: 6,
      entriesStored: 6,
      entriesThrottled: 0,
      entryFaults: { 'internal-failure': 2, throttle: 2 },
    });
  });

  it('answers a PutRecord whose entry fails with InternalFailure', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-entry-single');
    front.script(() => ({ entries: ['internal-failure'] }));

    await expect(
      client.send(
        new PutRecordCommand({ StreamName: streamName, PartitionKey: 'k', Data: Buffer.from('x') }),
      ),
    ).rejects.toMatchObject({ name: 'InternalFailure', $metadata: { httpStatusCode: 500 } });
    expect(await storedKeys(streamName)).toEqual([]);
  });
});

describe('random faults', () => {
  it('draws the same faults from the same seed', async () => {
    const front = await startFront({
      seed: 7,
      requestFaultRates: { 'internal-failure': 0.15, 'service-unavailable': 0.15, throttle: 0.15 },
      entryFailureRate: 0.2,
    });
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-seed');
    /** What the client saw for each of 16 requests: an error name, or each entry's outcome. */
    const run = async (): Promise<string[]> => {
      const seen: string[] = [];
      for (let i = 0; i < 16; i++) {
        try {
          const out = await client.send(
            new PutRecordsCommand({ StreamName: streamName, Records: records('r', 5) }),
          );
          seen.push((out.Records ?? []).map((r) => r.ErrorCode ?? 'ok').join(' '));
        } catch (error) {
          seen.push((error as Error).name);
        }
      }
      return seen;
    };

    const first = await run();
    const firstStats = front.stats();
    front.configure({ seed: 7 });
    front.resetStats();
    const replay = await run();
    const replayStats = front.stats();
    front.configure({ seed: 8 });
    const other = await run();

    expect(replay).toEqual(first);
    expect([replayStats.requestFaults, replayStats.entryFaults]).toEqual([
      firstStats.requestFaults,
      firstStats.entryFaults,
    ]);
    expect(other).not.toEqual(first);
    // Every configured fault occurs in the sequence of seed 7.
    expect(first).toEqual(
      expect.arrayContaining([
        'InternalFailure',
        'ServiceUnavailable',
        'ProvisionedThroughputExceededException',
      ]),
    );
    expect(first.some((outcome) => outcome.includes('InternalFailure '))).toBe(true);
    expect(Object.keys(firstStats.requestFaults).sort()).toEqual([
      'internal-failure',
      'service-unavailable',
      'throttle',
    ]);
  });

  it('adds the configured latency', async () => {
    const front = await startFront({ latencyMs: 150 });
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-latency');
    const timed = async () => {
      const started = performance.now();
      await client.send(new PutRecordsCommand({ StreamName: streamName, Records: records('l', 1) }));
      return performance.now() - started;
    };

    expect(await timed()).toBeGreaterThanOrEqual(150);
    front.configure({ latencyMs: { minMs: 80, maxMs: 120 } });
    expect(await timed()).toBeGreaterThanOrEqual(80);
  });
});

describe('lost answers', () => {
  /** A client that gives up on a request after 300 ms. */
  function impatientClient(front: FaultFront): KinesisClient {
    return clientOf(front, {
      requestHandler: new NodeHttpHandler({ requestTimeout: 300, throwOnRequestTimeout: true }),
    });
  }

  it('holds a request until the client times out; stored-then-hang stores the records first', async () => {
    const front = await startFront();
    const client = impatientClient(front);
    const { streamName } = await testStream(direct, 1, 'ff-hang');
    front.script(({ operation, index }) => {
      if (operation !== 'PutRecords') return undefined;
      return { request: index === 0 ? 'hang' : 'stored-then-hang' };
    });
    const put = (key: string) =>
      client.send(
        new PutRecordsCommand({
          StreamName: streamName,
          Records: [{ PartitionKey: key, Data: Buffer.from(key) }],
        }),
      );

    await expect(put('lost')).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(put('stored')).rejects.toMatchObject({ name: 'TimeoutError' });
    // The client gave up on its own clock; the front counts the fault once upstream has answered it.
    await vi.waitFor(() => expect(front.stats().requestFaults['stored-then-hang']).toBe(1));

    expect(await storedKeys(streamName)).toEqual(['stored']);
    expect(front.stats()).toMatchObject({
      entriesForwarded: 1,
      entriesStored: 1,
      requestFaults: { hang: 1, 'stored-then-hang': 1 },
    });
  });

  it('resets the connection; stored-then-reset stores the records first', async () => {
    const front = await startFront();
    const client = clientOf(front);
    const { streamName } = await testStream(direct, 1, 'ff-reset');
    front.script(({ operation, index }) => {
      if (operation !== 'PutRecords') return undefined;
      return { request: index === 0 ? 'reset' : 'stored-then-reset' };
    });
    const put = (key: string) =>
      client.send(
        new PutRecordsCommand({
          StreamName: streamName,
          Records: [{ PartitionKey: key, Data: Buffer.from(key) }],
        }),
      );

    await expect(put('lost')).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(put('stored')).rejects.toMatchObject({ code: 'ECONNRESET' });

    expect(await storedKeys(streamName)).toEqual(['stored']);
    expect(front.stats().requestFaults).toEqual({ reset: 1, 'stored-then-reset': 1 });
  });
});

describe('lifecycle', () => {
  it('close() ends held requests, stops listening, and returns the same promise every time', async () => {
    const front = await startFront();
    const client = clientOf(front);
    front.script(() => ({ request: 'hang' }));
    const held = client.send(new DescribeStreamSummaryCommand({ StreamName: 'held' })).then(
      () => undefined,
      (error: unknown) => error,
    );
    await vi.waitFor(() => expect(front.stats().requestFaults).toEqual({ hang: 1 }));

    const closing = front.close();
    expect(front.close()).toBe(closing);
    await closing;

    expect(await held).toMatchObject({ code: 'ECONNRESET' });
    const afterClose = client.send(new DescribeStreamSummaryCommand({ StreamName: 'held' }));
    await expect(afterClose).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects invalid settings, naming the option', async () => {
    const front = await startFront();

    expect(() => front.configure({ entryFailureRate: 1.5 })).toThrow(
      new RangeError('fault front: entryFailureRate must be a number in [0, 1]; received 1.5.'),
    );
    expect(() => front.configure({ requestFaultRates: { hang: 0.6, reset: 0.6 } })).toThrow(
      /requestFaultRates must be rates summing to at most 1/,
    );
    expect(() => front.configure({ shardLimits: { recordsPerSecond: 0, bytesPerSecond: 1 } })).toThrow(
      /shardLimits.recordsPerSecond must be a number > 0/,
    );
    await expect(startFaultFront({ upstream, maxRecordsPerRequest: 0 })).rejects.toThrow(
      /maxRecordsPerRequest must be a positive integer or false/,
    );
  });
});
