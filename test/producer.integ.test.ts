import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  UpdateShardCountCommand,
} from '@aws-sdk/client-kinesis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION, readStream, waitForActive } from '../scripts/local-kinesis.js';
import {
  type DeaggregatedRecord,
  deaggregate,
  KinesisProducer,
  type PutResult,
  type RecordFailedError,
} from '../src/index.js';
import { expectEachTryFailedWith } from './support/expired.js';
import { keysWhere } from './support/fake-kinesis.js';
import { startFaultFront } from './support/fault-front.js';
import { memoryLogger } from './support/memory-logger.js';
import { testClient, testStream } from './support/streams.js';

const client = testClient();
afterAll(() => client.destroy());

/** A producer talking to the suite's kinesis-local through a client it creates itself. */
function localProducer(
  streamName: string | undefined,
  options: Partial<ConstructorParameters<typeof KinesisProducer>[0]> = {},
) {
  return new KinesisProducer({
    streamName,
    endpoint: inject('kinesisEndpoint'),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    ...options,
  });
}

/** Records with 1,000+ partition keys; each data names its record so what comes back can be matched. */
function records(count: number, tag: string) {
  return Array.from({ length: count }, (_, i) => ({
    partitionKey: `customer-${(i * 7919) % 1_200}`,
    data: `${tag}:${i}:${'x'.repeat(i % 50)}`,
  }));
}

/** Every user record in the stream, read shard by shard and filtered by each shard's range, as KCL does. */
async function consume(streamName: string): Promise<(DeaggregatedRecord & { shardId: string })[]> {
  const out: (DeaggregatedRecord & { shardId: string })[] = [];
  for (const { shard, records: kinesisRecords } of await readStream(client, streamName)) {
    for (const record of kinesisRecords) {
      for (const user of deaggregate(record, { hashKeyRange: shard.HashKeyRange! }))
        out.push({ ...user, shardId: shard.ShardId! });
    }
  }
  return out;
}

/** Polls until DescribeStreamSummary no longer finds the stream. */
async function waitUntilGone(streamName: string): Promise<void> {
  for (;;) {
    try {
      await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const identity = (r: { shardId: string; sequenceNumber: string; subSequenceNumber: number }) =>
  `${r.shardId}/${r.sequenceNumber}/${r.subSequenceNumber}`;

describe('producer against kinesis-local', () => {
  it('await mode: 10,000 records on 4 shards are read back exactly once, where put said they are', async () => {
    const { streamName } = await testStream(client, 4, 'await');
    const producer = localProducer(streamName);
    const sent = records(10_000, 'await');
    const results: PutResult[] = await Promise.all(sent.map((r) => producer.put(r)));
    await producer.close();

    const consumed = await consume(streamName);
    expect(consumed).toHaveLength(sent.length);
    const byIdentity = new Map(consumed.map((c) => [identity(c), c]));
    expect(byIdentity.size).toBe(sent.length);
    for (const [i, result] of results.entries()) {
      const got = byIdentity.get(identity(result));
      expect(got, `record ${i} at ${identity(result)}`).toBeDefined();
      expect(got!.partitionKey).toBe(sent[i]!.partitionKey);
      expect(Buffer.from(got!.data).toString()).toBe(sent[i]!.data);
      expect(got!.aggregated).toBe(result.aggregated);
    }
    expect(new Set(results.map((r) => r.shardId)).size).toBe(4);
    expect(results.filter((r) => r.aggregated).length).toBeGreaterThan(9_000);
  });

  it('fire-and-forget mode: 10,000 records, callbacks report where each went, all read back once', async () => {
    const { streamName } = await testStream(client, 3, 'forget');
    const producer = localProducer(streamName);
    const sent = records(10_000, 'forget');
    const results: (PutResult | Error)[] = new Array(sent.length);
    for (const [i, r] of sent.entries()) producer.send(r, (error, result) => (results[i] = error ?? result!));
    await producer.flush();
    expect(results.filter((r) => r instanceof Error)).toEqual([]);
    await producer.close();

    const consumed = await consume(streamName);
    const byIdentity = new Map(consumed.map((c) => [identity(c), c]));
    expect(consumed).toHaveLength(sent.length);
    for (const [i, result] of results.entries()) {
      const got = byIdentity.get(identity(result as PutResult))!;
      expect([got.partitionKey, Buffer.from(got.data).toString()]).toEqual([
        sent[i]!.partitionKey,
        sent[i]!.data,
      ]);
    }
  });

  it('unaggregated: one Kinesis record per user record, same guarantees', async () => {
    const { streamName } = await testStream(client, 2, 'raw');
    const producer = localProducer(streamName, { aggregation: false });
    const sent = records(2_000, 'raw');
    const results = await Promise.all(sent.map((r) => producer.put(r)));
    await producer.close();
    const consumed = await consume(streamName);
    expect(consumed).toHaveLength(sent.length);
    expect(consumed.every((c) => !c.aggregated)).toBe(true);
    const byIdentity = new Map(consumed.map((c) => [identity(c), c]));
    for (const [i, result] of results.entries()) {
      expect(Buffer.from(byIdentity.get(identity(result))!.data).toString()).toBe(sent[i]!.data);
    }
  });

  it('writes to a stream named by its ARN, as the producer default and per record', async () => {
    const [a, b] = await Promise.all([testStream(client, 2, 'arn-a'), testStream(client, 1, 'arn-b')]);
    const arnOf = async (name: string) =>
      (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary!
        .StreamARN!;
    const [arnA, arnB] = await Promise.all([arnOf(a.streamName), arnOf(b.streamName)]);
    const producer = localProducer(undefined, { streamARN: arnA });
    const sentA = records(500, 'arn-a');
    const sentB = records(300, 'arn-b').map((r) => ({ ...r, streamARN: arnB }));
    const results = await Promise.all([...sentA, ...sentB].map((r) => producer.put(r)));
    await producer.close();
    // Aggregated: the shard map was read by ARN as well.
    expect(results.filter((r) => r.aggregated).length).toBeGreaterThan(700);
    const dataOf = async (name: string) =>
      (await consume(name)).map((u) => Buffer.from(u.data).toString()).sort();
    expect(await dataOf(a.streamName)).toEqual(sentA.map((r) => r.data).sort());
    expect(await dataOf(b.streamName)).toEqual(sentB.map((r) => r.data).sort());
  });

  it('fails records on time while the credential provider hangs, and flush and close still end', async () => {
    const { streamName } = await testStream(client, 1, 'stuck-credentials');
    let hang = false;
    const producer = localProducer(streamName, {
      requestTimeoutMs: 500,
      recordTtlMs: 2_000,
      // Fetched again for every request (they expire at once); then stuck, as a refresh from STS or
      // SSO can be on a black-holed connection. The SDK cannot abort it: it is before the HTTP call.
      credentials: async () => {
        if (hang) await new Promise(() => {});
        return { ...LOCAL_CREDENTIALS, expiration: new Date(Date.now() + 1) };
      },
    });
    await producer.put({ partitionKey: 'k', data: 'before' });
    hang = true;
    const start = Date.now();
    const failed = await producer.put({ partitionKey: 'k', data: 'during' }).catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'Expired' });
    expect(Date.now() - start).toBeLessThan(4_000);
    expectEachTryFailedWith(failed as RecordFailedError, 'RequestTimeout');
    await producer.flush();
    await producer.close();
    const stored = (await consume(streamName)).map((c) => Buffer.from(c.data).toString());
    expect(stored).toEqual(['before']);
  });

  it('fails records at once, naming the cause, at an HTTPS endpoint whose certificate Node does not trust', async () => {
    const { streamName } = await testStream(client, 1, 'untrusted-tls');
    const { logger, lines } = memoryLogger();
    // kinesis-local's own TLS port, with its self-signed certificate.
    const producer = localProducer(streamName, { endpoint: inject('kinesisTlsEndpoint'), logger });
    const start = Date.now();
    const failed = await producer.put({ partitionKey: 'k', data: 'x' }).catch((e: unknown) => e);
    // At once, not after recordTtlMs (30 s) of retries.
    expect(Date.now() - start).toBeLessThan(5_000);
    expect(failed).toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', retryable: false });
    expect((failed as Error).message).toContain("Node does not trust the endpoint's TLS certificate");
    expect(lines.map((l) => l.message)).toContainEqual(
      expect.stringMatching(
        /^(DescribeStreamSummary|ListShards) failed \(DEPTH_ZERO_SELF_SIGNED_CERT: the endpoint's TLS certificate is not trusted\)/,
      ),
    );
    await producer.close();
    expect(await consume(streamName)).toEqual([]);
  });

  it('fails records at once, saying to use http://, at an https:// endpoint that answers in plain HTTP', async () => {
    const { streamName } = await testStream(client, 1, 'https-to-http');
    // kinesis-local's plain-HTTP port, named with https://.
    const endpoint = inject('kinesisEndpoint').replace(/^http:/, 'https:');
    const producer = localProducer(streamName, { endpoint, logger: memoryLogger().logger });
    const start = Date.now();
    const failed = await producer.put({ partitionKey: 'k', data: 'x' }).catch((e: unknown) => e);
    expect(Date.now() - start).toBeLessThan(5_000);
    expect(failed).toMatchObject({ code: 'EPROTO', retryable: false });
    expect((failed as Error).message).toContain('use http:// in the endpoint');
    await producer.close();
    expect(await consume(streamName)).toEqual([]);
  });

  it('fails records at the second answer when a session token expired that can never renew (static credentials)', async () => {
    const { streamName } = await testStream(client, 1, 'expired-token');
    const front = await startFaultFront({ upstream: inject('kinesisEndpoint') });
    try {
      front.script(({ operation }) =>
        operation === 'PutRecords' ? { request: 'expired-token' } : undefined,
      );
      // Given as options, with a session token and no expiration: the SDK never fetches them again.
      const producer = localProducer(streamName, {
        endpoint: front.endpoint,
        credentials: { ...LOCAL_CREDENTIALS, sessionToken: 'expired' },
        recordTtlMs: 30_000,
        logger: memoryLogger().logger,
      });
      const start = Date.now();
      const failed = await producer.put({ partitionKey: 'k', data: 'x' }).catch((e: unknown) => e);
      // After one backoff, not after recordTtlMs (30 s) of retries.
      expect(Date.now() - start).toBeLessThan(5_000);
      expect(failed).toMatchObject({ code: 'ExpiredTokenException', retryable: false });
      expect((failed as RecordFailedError).attempts.map((a) => a.errorCode)).toEqual([
        'ExpiredTokenException',
        'ExpiredTokenException',
      ]);
      expect((failed as Error).message).toContain("The client's credentials carry no expiration");
      await producer.close();
    } finally {
      await front.close();
    }
    expect(await consume(streamName)).toEqual([]);
  });

  it('once PutRecords finds the stream gone, records put after it is created again with other shards are all read by KCL', async () => {
    const { streamName } = await testStream(client, 2, 'recreated');
    const producer = localProducer(streamName);
    // It knows the two shards: shard 0 owns the lower half of the hash keys.
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => producer.put({ partitionKey: `w${i}`, data: 'warm-up' })),
    );
    await client.send(new DeleteStreamCommand({ StreamName: streamName }));
    await waitUntilGone(streamName);
    await expect(producer.put({ partitionKey: 'k', data: 'gone' })).rejects.toMatchObject({
      code: 'ResourceNotFoundException',
    });
    // Four shards under the same name: ids 0 and 1 again, owning a quarter each.
    await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 4 }));
    await waitForActive(client, streamName);
    // Keys the old map put in shard 0, which the new stream splits between shards 0 and 1.
    const keys = keysWhere(400, (hashKey) => hashKey < 2n ** 127n);
    const results = await Promise.all(
      keys.map((partitionKey, i) => producer.put({ partitionKey, data: `r${i}` })),
    );
    await producer.close();
    const read = await consume(streamName);
    expect(read.map((u) => Buffer.from(u.data).toString()).sort()).toEqual(
      keys.map((_, i) => `r${i}`).sort(),
    );
    expect(new Set(read.map(identity))).toEqual(new Set(results.map(identity)));
    expect(new Set(results.map((r) => r.shardId))).toEqual(
      new Set(['shardId-000000000000', 'shardId-000000000001']),
    );
  });

  it('loses nothing under KCL filtering while the stream is resharded mid-run', async () => {
    const { streamName } = await testStream(client, 2, 'reshard');
    const producer = localProducer(streamName, { maxBufferedTimeMs: 50 });
    const sent = records(12_000, 'reshard');
    const puts: Promise<PutResult>[] = [];
    for (const [i, r] of sent.entries()) {
      puts.push(producer.put(r));
      if (i === 3_000) {
        await client.send(
          new UpdateShardCountCommand({
            StreamName: streamName,
            TargetShardCount: 4,
            ScalingType: 'UNIFORM_SCALING',
          }),
        );
      }
      // Spread the puts over time so that records are in flight while the shards change.
      if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 40));
    }
    const results = await Promise.allSettled(puts);
    await producer.close();
    await waitForActive(client, streamName);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

    const consumed = await consume(streamName);
    const seen = new Set(consumed.map((c) => `${c.partitionKey}|${Buffer.from(c.data).toString()}`));
    const missing = sent.filter((r) => !seen.has(`${r.partitionKey}|${r.data}`));
    expect(missing).toEqual([]);
    // Records landed on the new shards too.
    const shardIds = new Set((results as PromiseFulfilledResult<PutResult>[]).map((r) => r.value.shardId));
    expect(shardIds.size).toBeGreaterThan(2);
  });
});
