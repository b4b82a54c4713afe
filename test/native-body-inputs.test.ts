import { Readable } from 'node:stream';
import { KinesisClient, PutRecordsCommand, type PutRecordsInput } from '@aws-sdk/client-kinesis';
import { HttpResponse } from '@smithy/core/protocols';
import { describe, expect, it } from 'vitest';
import { withNativeBody } from '../src/put-records-body.js';

/** A client whose HTTP exchange keeps each request body and answers an empty PutRecords result. */
function capturingClient(bodies: string[]): KinesisClient {
  return new KinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
    requestHandler: {
      metadata: { handlerProtocol: 'http/1.1' },
      updateHttpClientConfig() {},
      httpHandlerConfigs: () => ({}),
      destroy() {},
      async handle(request: { body: Uint8Array | string }) {
        bodies.push(Buffer.from(request.body as Uint8Array).toString('utf8'));
        return {
          response: new HttpResponse({
            statusCode: 200,
            headers: { 'content-type': 'application/x-amz-json-1.1' },
            body: Readable.from([Buffer.from('{"Records":[]}')]),
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
