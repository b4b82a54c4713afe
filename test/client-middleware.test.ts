import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  KinesisClient,
  PutRecordsCommand,
  type PutRecordsInput,
  type PutRecordsOutput,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KinesisProducer } from '../src/index.js';

/** A loopback Kinesis: answers the metadata calls, stores every PutRecords entry it gets. */
let server: http.Server;
let endpoint: string;
let stored = 0;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target']);
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target.endsWith('.ListShards')) {
        res.end(
          JSON.stringify({
            Shards: [
              {
                ShardId: 'shardId-000000000000',
                HashKeyRange: { StartingHashKey: '0', EndingHashKey: (2n ** 128n - 1n).toString() },
                SequenceNumberRange: { StartingSequenceNumber: '0' },
              },
            ],
          }),
        );
        return;
      }
      if (target.endsWith('.DescribeStreamSummary')) {
        res.end(
          JSON.stringify({
            StreamDescriptionSummary: { StreamName: 's', StreamStatus: 'ACTIVE', OpenShardCount: 1 },
          }),
        );
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { Records: unknown[] };
      stored += body.Records.length;
      res.end(
        JSON.stringify({
          FailedRecordCount: 0,
          Records: body.Records.map((_, i) => ({
            ShardId: 'shardId-000000000000',
            SequenceNumber: String(stored * 10 + i),
          })),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function userClient(): KinesisClient {
  return new KinesisClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    requestHandler: new NodeHttpHandler(),
    maxAttempts: 1,
  });
}

describe("the user's client middleware and the records", () => {
  it('a build/finalizeRequest/deserialize-step middleware sees the records, as with the SDK alone', async () => {
    const seen: Record<string, number | undefined> = {};
    const client = userClient();
    for (const step of ['initialize', 'serialize', 'build', 'finalizeRequest', 'deserialize'] as const) {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'PutRecordsCommand')
            seen[step] = (args.input as PutRecordsInput).Records?.length;
          return next(args);
        },
        // One overload per step in the SDK's types; any step is taken the same at run time.
        { step: step as 'initialize', name: `probe-${step}` },
      );
    }
    await client.send(
      new PutRecordsCommand({ StreamName: 's', Records: [{ PartitionKey: 'k', Data: new Uint8Array([1]) }] }),
    );
    expect(seen).toEqual({ initialize: 1, serialize: 1, build: 1, finalizeRequest: 1, deserialize: 1 });

    const producer = new KinesisProducer({
      streamName: 's',
      client,
      aggregation: false,
      maxBufferedTimeMs: 10,
    });
    await producer.put({ partitionKey: 'k', data: 'x' });
    await producer.close();
    client.destroy();
    expect(seen).toEqual({ initialize: 1, serialize: 1, build: 1, finalizeRequest: 1, deserialize: 1 });
  });

  it('a middleware that logs failed entries by their input does not turn a stored record into a retried one', async () => {
    const client = userClient();
    // A common pattern: after the answer, tell each entry's fate by its partition key.
    const fates: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'PutRecordsCommand') {
          const input = args.input as PutRecordsInput;
          (result.output as PutRecordsOutput).Records?.forEach((entry, i) => {
            fates.push(`${input.Records![i]!.PartitionKey}: ${entry.ErrorCode ?? 'stored'}`);
          });
        }
        return result;
      },
      { step: 'build', name: 'failedEntryLogger' },
    );
    // With the SDK alone the middleware works.
    await client.send(
      new PutRecordsCommand({ StreamName: 's', Records: [{ PartitionKey: 'k', Data: new Uint8Array([1]) }] }),
    );
    expect(fates).toEqual(['k: stored']);
    stored = 0;
    const producer = new KinesisProducer({
      streamName: 's',
      client,
      aggregation: false,
      maxBufferedTimeMs: 10,
      recordTtlMs: 1500,
    });
    const outcome = await producer.put({ partitionKey: 'k', data: 'x' }).then(
      (r) => `written, attempts ${r.attempts.length}`,
      (e: { code: string; attempts: { errorCode?: string; errorMessage?: string }[] }) =>
        `${e.code}: ${e.attempts.length} attempts, first failed with ${e.attempts[0]?.errorCode}: ${e.attempts[0]?.errorMessage}`,
    );
    await producer.close();
    client.destroy();
    expect({ outcome, storedByServer: stored }).toEqual({
      outcome: 'written, attempts 1',
      storedByServer: 1,
    });
  });
});
