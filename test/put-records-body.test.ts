import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { KinesisClient, PutRecordsCommand, type PutRecordsInput } from '@aws-sdk/client-kinesis';
import { cbor, SmithyRpcV2CborProtocol } from '@smithy/core/cbor';
import { type HttpRequest, HttpResponse } from '@smithy/core/protocols';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deaggregate, KinesisProducer, MAX_HASH_KEY } from '../src/index.js';
import { putRecordsBody, withNativeBody } from '../src/put-records-body.js';

/** A loopback HTTP server that keeps every request it gets and answers like PutRecords. */
let server: http.Server;
let client: KinesisClient;
const received: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      res.end(
        JSON.stringify({ FailedRecordCount: 0, Records: [{ SequenceNumber: '7', ShardId: 'shardId-0' }] }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = new KinesisClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestHandler: new NodeHttpHandler(),
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await new Promise((resolve) => server.close(resolve));
});

/** What the server got for one send of `command`. */
async function wire(command: PutRecordsCommand) {
  received.length = 0;
  const output = await client.send(command);
  expect(received).toHaveLength(1);
  return { ...received[0]!, output };
}

const entry = fc.record(
  {
    // Any UTF-16 code unit too: control characters, quotes, backslashes, lone surrogates.
    PartitionKey: fc.string({
      unit: fc.oneof(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
        fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      ),
      minLength: 1,
      maxLength: 256,
    }),
    Data: fc.oneof(
      fc.uint8Array({ maxLength: 2000 }),
      // A view into a larger buffer, as aggregates and user records often are.
      fc
        .tuple(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.nat())
        .map(([bytes, a, b]) => bytes.subarray(Math.min(a, b) % bytes.length, Math.max(a, b) % bytes.length)),
    ),
    ExplicitHashKey: fc.bigInt({ min: 0n, max: MAX_HASH_KEY }).map(String),
  },
  // The SDK leaves out a member that is undefined, Data included.
  { requiredKeys: ['PartitionKey'] },
);

describe('PutRecords body written with native base64', () => {
  it('sends exactly the bytes the SDK would, and the SDK reads the answer as usual', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entry, { minLength: 1, maxLength: 40 }),
        fc.oneof(
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map((StreamName) => ({ StreamName })),
          fc.constant({ StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/orders' }),
          // Members our producer never sets: whatever the SDK writes besides the records stays its own.
          fc.record({
            StreamName: fc.constant('s'),
            StreamId: fc.string({ maxLength: 20 }),
            DryRun: fc.boolean(),
          }),
        ),
        async (Records, stream) => {
          const input: PutRecordsInput = {
            ...stream,
            Records: Records.map((r) => ({ Data: undefined, ...r })),
          };
          const sdk = await wire(new PutRecordsCommand(input));
          const ours = await wire(withNativeBody(new PutRecordsCommand(input)));
          expect(ours.body.equals(sdk.body)).toBe(true);
          expect(ours.headers['content-length']).toBe(String(sdk.body.length));
          // The signature covers the body: the same body, the same payload hash.
          expect(ours.headers['x-amz-content-sha256']).toBe(sdk.headers['x-amz-content-sha256']);
          expect(ours.output.Records).toEqual([{ SequenceNumber: '7', ShardId: 'shardId-0' }]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('leaves the command input untouched, for middleware and test doubles that read it', async () => {
    const input = { StreamName: 's', Records: [{ PartitionKey: 'k', Data: new Uint8Array([1, 2, 3]) }] };
    const command = withNativeBody(new PutRecordsCommand(input));
    const { body } = await wire(command);
    expect(command.input.Records).toEqual(input.Records);
    expect(JSON.parse(body.toString())).toEqual({
      Records: [{ Data: 'AQID', PartitionKey: 'k' }],
      StreamName: 's',
    });
  });

  it('writes the records that reach the serializer, after the middleware before it', async () => {
    const command = withNativeBody(
      new PutRecordsCommand({ StreamName: 's', Records: [{ PartitionKey: 'k', Data: new Uint8Array([1]) }] }),
    );
    command.middlewareStack.add(
      (next) => (args) => {
        const input = args.input as PutRecordsInput;
        return next({
          ...args,
          input: {
            ...input,
            Records: [...(input.Records ?? []), { PartitionKey: 'added', Data: new Uint8Array([2]) }],
          },
        });
      },
      { step: 'initialize' },
    );
    const { body } = await wire(command);
    expect(JSON.parse(body.toString())).toEqual({
      Records: [
        { Data: 'AQ==', PartitionKey: 'k' },
        { Data: 'Ag==', PartitionKey: 'added' },
      ],
      StreamName: 's',
    });
  });
});

describe('the SDK document around the records', () => {
  const records = [{ PartitionKey: 'k', Data: new Uint8Array([1, 2, 3]), ExplicitHashKey: '5' }];

  it('keeps every member the SDK wrote, wherever it put the empty Records list', () => {
    const sdkBody = Buffer.from('{"StreamName":"orders","StreamARN":"arn:x","Records":[]}');
    expect(JSON.parse(putRecordsBody(records, sdkBody).toString())).toEqual({
      StreamName: 'orders',
      StreamARN: 'arn:x',
      Records: [{ Data: 'AQID', ExplicitHashKey: '5', PartitionKey: 'k' }],
    });
    expect(putRecordsBody(records, Buffer.from('{"Records":[]}')).toString()).toBe(
      '{"Records":[{"Data":"AQID","ExplicitHashKey":"5","PartitionKey":"k"}]}',
    );
  });

  it('refuses a body it could not write the records into, and names what it got', () => {
    for (const sdkBody of ['{"StreamName":"s"}', '{"Records":[{}]}', '[]', '\xa1\x67Records\x80']) {
      expect(() => putRecordsBody(records, Buffer.from(sdkBody, 'latin1')), sdkBody).toThrow(
        /expected the SDK's PutRecords body to be a JSON object with an empty Records list, got /,
      );
    }
  });
});

describe('a client configured with another protocol', () => {
  it('has its records serialized by the SDK, and the producer reads the answers as usual', async () => {
    const puts: { contentType: string | undefined; input: PutRecordsInput }[] = [];
    const answer = (body: unknown) => ({
      response: new HttpResponse({
        statusCode: 200,
        headers: { 'content-type': 'application/cbor', 'smithy-protocol': 'rpc-v2-cbor' },
        body: Readable.from([cbor.serialize(body)]),
      }),
    });
    // The HTTP exchange itself, answered in Smithy RPC v2 CBOR as the client expects.
    const requestHandler = {
      metadata: { handlerProtocol: 'http/1.1' },
      updateHttpClientConfig() {},
      httpHandlerConfigs: () => ({}),
      destroy() {},
      async handle(request: HttpRequest) {
        const operation = request.path.split('/').pop();
        if (operation === 'ListShards') {
          return answer({
            Shards: [
              {
                ShardId: 'shardId-000000000000',
                HashKeyRange: { StartingHashKey: '0', EndingHashKey: MAX_HASH_KEY.toString() },
                SequenceNumberRange: { StartingSequenceNumber: '0' },
              },
            ],
          });
        }
        if (operation === 'DescribeStreamSummary') {
          return answer({
            StreamDescriptionSummary: { StreamName: 's', StreamStatus: 'ACTIVE', OpenShardCount: 1 },
          });
        }
        const input = cbor.deserialize(request.body as Uint8Array) as PutRecordsInput;
        puts.push({ contentType: request.headers['content-type'], input });
        return answer({
          FailedRecordCount: 0,
          Records: input.Records!.map((_, i) => ({
            SequenceNumber: `${100 + i}`,
            ShardId: 'shardId-000000000000',
          })),
        });
      },
    };
    const cborClient = new KinesisClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      requestHandler,
      protocol: new SmithyRpcV2CborProtocol({ defaultNamespace: 'com.amazonaws.kinesis' }),
    });
    const producer = new KinesisProducer({ streamName: 's', client: cborClient, maxBufferedTimeMs: 10 });
    try {
      const results = await Promise.all([
        producer.put({ partitionKey: 'a', data: 'one' }),
        producer.put({ partitionKey: 'b', data: 'two' }),
      ]);
      expect(results).toMatchObject([
        { shardId: 'shardId-000000000000', sequenceNumber: '100', subSequenceNumber: 0, aggregated: true },
        { shardId: 'shardId-000000000000', sequenceNumber: '100', subSequenceNumber: 1, aggregated: true },
      ]);
      expect(puts).toHaveLength(1);
      expect(puts[0]!.contentType).toBe('application/cbor');
      expect(puts[0]!.input.StreamName).toBe('s');
      const [record] = puts[0]!.input.Records!;
      const users = deaggregate({
        partitionKey: record!.PartitionKey!,
        data: record!.Data!,
        sequenceNumber: '100',
      });
      expect(users.map((u) => [u.partitionKey, Buffer.from(u.data).toString()])).toEqual([
        ['a', 'one'],
        ['b', 'two'],
      ]);
    } finally {
      await producer.close();
      cborClient.destroy();
    }
  });
});
