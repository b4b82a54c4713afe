import { Readable } from 'node:stream';
import { KinesisClient, PutRecordsCommand, type PutRecordsInput } from '@aws-sdk/client-kinesis';
import { HttpResponse } from '@smithy/core/protocols';
import { describe, expect, it } from 'vitest';
import { withNativeBody } from '../src/put-records-body.js';

/**
 * A client whose HTTP exchange keeps each request body and answers an empty PutRecords result, or
 * each status of `statuses` in turn (a 5xx with an error body), with the SDK's `maxAttempts`.
 */
function capturingClient(bodies: string[], statuses: number[] = [], maxAttempts = 1): KinesisClient {
  return new KinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts,
    requestHandler: {
      metadata: { handlerProtocol: 'http/1.1' },
      updateHttpClientConfig() {},
      httpHandlerConfigs: () => ({}),
      destroy() {},
      async handle(request: { body: Uint8Array | string }) {
        bodies.push(Buffer.from(request.body as Uint8Array).toString('utf8'));
        const statusCode = statuses.shift() ?? 200;
        return {
          response: new HttpResponse({
            statusCode,
            headers: { 'content-type': 'application/x-amz-json-1.1' },
            body: Readable.from([
              Buffer.from(statusCode === 200 ? '{"Records":[]}' : '{"__type":"InternalFailureException"}'),
            ]),
          }),
        };
      },
    } as never,
  });
}

/** What goes on the wire for `input`, by the SDK alone and with the producer's native body. */
async function wire(input: PutRecordsInput): Promise<{ sdk: string; ours: string }> {
  const out: string[] = [];
  for (const native of [false, true]) {
    const bodies: string[] = [];
    const command = new PutRecordsCommand(input);
    if (native) withNativeBody(command);
    try {
      await capturingClient(bodies).send(command);
      out.push(bodies[0]!);
    } catch (error) {
      out.push(`threw ${String(error)}`);
    }
  }
  return { sdk: out[0]!, ours: out[1]! };
}

// Records as a user's own middleware (initialize step, before serialization) may leave them: README
// "your own client middleware still sees (and may change) the records before serialization" and
// "the same bytes the SDK would write".
describe('records changed by client middleware are written as the SDK writes them', () => {
  it.each([
    ['Data as a string', { PartitionKey: 'k', Data: 'abc' }],
    ['Data null (dropped)', { PartitionKey: 'k', Data: null }],
    [
      'ExplicitHashKey null (routing left to the key)',
      { PartitionKey: 'k', Data: new Uint8Array([1]), ExplicitHashKey: null },
    ],
  ])('%s', async (_name, entry) => {
    const { sdk, ours } = await wire({ StreamName: 's', Records: [entry as never] });
    expect(ours).toBe(sdk);
  });
});

describe('records left out, and sends the SDK repeats', () => {
  it('an undefined entry left by a middleware is left out, as the SDK leaves it out (as null is)', async () => {
    const { sdk, ours } = await wire({
      StreamName: 's',
      Records: [{ PartitionKey: 'k', Data: new Uint8Array([1]) }, undefined as never],
    });
    expect(ours).toBe(sdk);
  });

  it('the SDK retry middleware (maxAttempts 3) sends the same records each attempt', async () => {
    const bodies: string[] = [];
    const command = withNativeBody(
      new PutRecordsCommand({
        StreamName: 's',
        Records: [{ PartitionKey: 'k', Data: new Uint8Array([1, 2]) }],
      }),
    );
    await capturingClient(bodies, [500, 500], 3).send(command);
    expect(bodies.length).toBe(3);
    expect(new Set(bodies).size).toBe(1);
    expect(bodies[0]).toContain('"Data":"AQI="');
  });
});

describe('one command sent twice at once', () => {
  it('each send writes the records its own client middleware left, as the SDK does', async () => {
    const run = async (native: boolean) => {
      const bodies: string[][] = [[], []];
      const clients = [0, 1].map((i) => {
        const client = capturingClient(bodies[i]!);
        // A user's middleware of each client, before serialization, tags the records it sends.
        client.middlewareStack.add(
          (next) => async (args) => {
            const input = args.input as PutRecordsInput;
            return next({
              ...args,
              input: { ...input, Records: input.Records!.map((r) => ({ ...r, PartitionKey: `c${i}` })) },
            });
          },
          { step: 'initialize', name: `tag${i}` },
        );
        return client;
      });
      const command = new PutRecordsCommand({
        StreamName: 's',
        Records: [{ PartitionKey: 'k', Data: new Uint8Array([1]) }],
      });
      if (native) withNativeBody(command);
      await Promise.all(clients.map((c) => c.send(command)));
      return bodies.map((b) => b[0]);
    };
    const sdk = await run(false);
    const ours = await run(true);
    expect(sdk[0]).toContain('"PartitionKey":"c0"');
    expect(ours).toEqual(sdk);
  });
});
