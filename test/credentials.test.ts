import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, KinesisProducer, type KinesisProducerOptions } from '../src/index.js';

/** A loopback endpoint; the requests below never reach it (Node refuses their headers first). */
let server: http.Server;
let endpoint: string;
beforeAll(async () => {
  server = http.createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** How the first record ends, and how long it took. */
async function firstRecord(options: Partial<KinesisProducerOptions>) {
  const producer = new KinesisProducer({
    streamName: 's',
    endpoint,
    region: 'us-east-1',
    recordTtlMs: 3000,
    logger: quiet,
    ...options,
  });
  const started = Date.now();
  const error = (await producer.put({ partitionKey: 'k', data: 'x' }).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code: string; message: string; attempts: { errorCode?: string }[] } | undefined;
  await producer.close();
  return {
    tookMs: Date.now() - started,
    code: error?.code,
    message: error?.message,
    attempts: error?.attempts.length,
  };
}

// A key read from a file or a Windows .env keeps its line ending. Node then refuses the request's
// Authorization (or X-Amz-Security-Token) header, every time: no retry can get past it. README:
// credentials are "checked at once"; errors "retrying cannot fix fail at once", as for the region's
// trailing blank (RegionNotAccepted).
describe('credentials with a line ending', () => {
  it.each([
    ['accessKeyId', { accessKeyId: 'AKIDEXAMPLE\n', secretAccessKey: 'secret' }],
    ['sessionToken', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token\r\n' }],
  ])('in %s: refused by the constructor, or the record fails at once', async (_field, credentials) => {
    let outcome: unknown;
    try {
      outcome = await firstRecord({ credentials });
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionError);
      return;
    }
    expect(outcome).toMatchObject({ code: 'ERR_INVALID_CHAR', attempts: 1 });
  });

  it('from AWS_ACCESS_KEY_ID (a .env file written on Windows): the record fails at once', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE\r';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    try {
      const outcome = await firstRecord({});
      expect(outcome).toMatchObject({ code: 'ERR_INVALID_CHAR', attempts: 1 });
      expect(outcome.message).toContain('check the credentials');
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});

describe('a header of your own middleware with a line ending', () => {
  it('fails the record at once, with a message that names the header and not the credentials', async () => {
    const client = new KinesisClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      requestHandler: new NodeHttpHandler(),
    });
    client.middlewareStack.add(
      (next) => (args) => {
        (args.request as { headers: Record<string, string> }).headers['x-trace'] = 'a\r\nb';
        return next(args);
      },
      { step: 'build', name: 'traceHeader' },
    );
    const outcome = await firstRecord({ client, endpoint: undefined, region: undefined });
    client.destroy();
    expect(outcome).toMatchObject({ code: 'ERR_INVALID_CHAR', attempts: 1 });
    expect(outcome.message).toContain('["x-trace"]');
    expect(outcome.message).toContain('a middleware of your own');
    expect(outcome.message).not.toContain('credentials');
  });
});
