import { createHash, createHmac, randomBytes, webcrypto } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient } from '../src/client.js';
import { resolveOptions } from '../src/options.js';
import { THREAD_POOL_MIN_BYTES, ThreadPoolSha256 } from '../src/payload-hash.js';
import { withNativeBody } from '../src/put-records-body.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

async function digestOf(chunks: (string | ArrayBuffer | ArrayBufferView)[], secret?: string | Uint8Array) {
  const hash = new ThreadPoolSha256(secret);
  for (const chunk of chunks) hash.update(chunk);
  return hex(await hash.digest());
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('ThreadPoolSha256', () => {
  it.each([0, 1, 55, 64, THREAD_POOL_MIN_BYTES - 1, THREAD_POOL_MIN_BYTES, 5 * 1024 * 1024 + 3])(
    'gives the SHA-256 of %i bytes',
    async (size) => {
      const data = randomBytes(size);
      expect(await digestOf([data])).toBe(createHash('sha256').update(data).digest('hex'));
    },
  );

  it('hashes chunks of every kind as one message, across the thread-pool threshold', async () => {
    const big = randomBytes(THREAD_POOL_MIN_BYTES);
    const view = new DataView(big.buffer, big.byteOffset + 10, 100);
    const owned = Uint8Array.from(big.subarray(0, 50)).buffer;
    const expected = createHash('sha256')
      .update('héllo')
      .update(Buffer.from(owned))
      .update(Buffer.from(view.buffer, view.byteOffset, view.byteLength))
      .update(big)
      .digest('hex');
    expect(await digestOf(['héllo', owned, view, big])).toBe(expected);
  });

  it('hashes a large body on the thread pool and a small one at once', async () => {
    const digest = vi.spyOn(webcrypto.subtle, 'digest');
    await digestOf([randomBytes(THREAD_POOL_MIN_BYTES - 1)]);
    expect(digest).not.toHaveBeenCalled();
    const hash = new ThreadPoolSha256();
    hash.update(randomBytes(THREAD_POOL_MIN_BYTES));
    const pending = hash.digest();
    expect(digest).toHaveBeenCalledTimes(1);
    expect(digest.mock.calls[0]![0]).toBe('SHA-256');
    expect((await pending).byteLength).toBe(32);
  });

  it('gives the HMAC-SHA-256 with a secret, at any size', async () => {
    const key = randomBytes(32);
    const big = randomBytes(THREAD_POOL_MIN_BYTES * 2);
    expect(await digestOf(['AWS4' + 'secret', 'x'], 'k')).toBe(
      createHmac('sha256', 'k').update('AWS4secretx').digest('hex'),
    );
    expect(await digestOf([big], key)).toBe(createHmac('sha256', key).update(big).digest('hex'));
  });

  it('starts over after reset()', async () => {
    const hash = new ThreadPoolSha256();
    hash.update('discarded');
    hash.reset();
    hash.update('kept');
    expect(hex(await hash.digest())).toBe(createHash('sha256').update('kept').digest('hex'));
  });
});

describe('signing with ThreadPoolSha256', () => {
  /** A loopback server that keeps the headers of every request and accepts every record. */
  let server: http.Server;
  let endpoint: string;
  const received: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        res.end(
          JSON.stringify({ FailedRecordCount: 0, Records: [{ SequenceNumber: '1', ShardId: 'shardId-0' }] }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('signs a large PutRecords exactly as the SDK’s own hash does', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 27, 8, 0, 0), toFake: ['Date'] });
    try {
      const data = randomBytes(1024 * 1024);
      const signed: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
      for (const sha256 of [undefined, ThreadPoolSha256]) {
        const client = new KinesisClient({
          endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
          requestHandler: new NodeHttpHandler(),
          maxAttempts: 1,
          ...(sha256 === undefined ? {} : { sha256 }),
        });
        // The one header that differs from request to request, made the same so signatures compare.
        type Args = { request: { headers: Record<string, string> } };
        const sameInvocationId = (next: (args: Args) => Promise<unknown>) => (args: Args) => {
          args.request.headers['amz-sdk-invocation-id'] = '00000000-0000-4000-8000-000000000000';
          return next(args);
        };
        client.middlewareStack.addRelativeTo(
          sameInvocationId as unknown as Parameters<typeof client.middlewareStack.addRelativeTo>[0],
          { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'sameInvocationId' },
        );
        const digest = vi.spyOn(webcrypto.subtle, 'digest');
        received.length = 0;
        await client.send(
          withNativeBody(
            new PutRecordsCommand({ StreamName: 's', Records: [{ PartitionKey: 'k', Data: data }] }),
          ),
        );
        // The body (1.33 MiB of base64) went to the thread pool only with ThreadPoolSha256.
        expect(digest).toHaveBeenCalledTimes(sha256 === undefined ? 0 : 1);
        digest.mockRestore();
        client.destroy();
        signed.push(received[0]!);
      }
      const [sdk, ours] = signed as [(typeof signed)[0], (typeof signed)[0]];
      expect(ours.body.equals(sdk.body)).toBe(true);
      // The SDK sends the payload hash it signed: the body's.
      expect(ours.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(ours.body).digest('hex'));
      expect(ours.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
      for (const name of ['authorization', 'x-amz-date', 'x-amz-content-sha256', 'amz-sdk-invocation-id']) {
        expect(ours.headers[name], name).toBe(sdk.headers[name]);
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it('is the hash of the client the producer creates', () => {
    const client = createClient(
      { region: 'us-east-1' },
      resolveOptions({ streamName: 's', region: 'us-east-1' }),
    );
    try {
      expect(client.config.sha256).toBe(ThreadPoolSha256);
    } finally {
      client.destroy();
    }
  });
});
