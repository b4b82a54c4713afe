import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_METADATA_ANSWER_BYTES, withBoundedAnswer } from '../src/bounded-answer.js';
import { KinesisProducer, type KinesisProducerOptions, type RecordFailedError } from '../src/index.js';
import type { Logger } from '../src/logger.js';
import { expectEachTryFailedWith } from './support/expired.js';

/**
 * PutRecords answered by something that is not Kinesis (a proxy, a gateway, a wrong endpoint): an
 * HTTP status and a page, no Kinesis error. Through the SDK for real, so the errors have the shapes
 * the SDK gives them. The stream's metadata calls are answered as Kinesis would.
 */
let server: http.Server;
let endpoint: string;
let page: { status: number; type: string; body: string; endless?: boolean };
let puts = 0;
/** Bytes of the longest answer written, and the most any one may be (so a test without a bound ends). */
let longestAnswer = 0;
const ENDLESS_STOPS_AT = 512 * 1024 * 1024;
let endlessListShards = false;

/** Writes a body that never ends into `res`, as fast as the client reads it. */
function writeForever(res: http.ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, ' ');
  let written = 0;
  const more = () => {
    do {
      written += chunk.length;
      longestAnswer = Math.max(longestAnswer, written);
      if (written > ENDLESS_STOPS_AT) return void res.destroy();
    } while (res.write(chunk));
  };
  res.on('drain', more);
  more();
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target']);
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target.endsWith('.ListShards') && endlessListShards) {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        writeForever(res);
      } else if (target.endsWith('.ListShards')) {
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
      } else if (target.endsWith('.DescribeStreamSummary')) {
        res.end(
          JSON.stringify({
            StreamDescriptionSummary: {
              StreamName: 'pages',
              StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/pages',
              StreamStatus: 'ACTIVE',
              RetentionPeriodHours: 24,
              StreamCreationTimestamp: 0,
              EnhancedMonitoring: [],
              OpenShardCount: 1,
            },
          }),
        );
      } else {
        puts++;
        res.writeHead(page.status, { 'content-type': page.type });
        if (page.endless === true) {
          writeForever(res);
        } else {
          res.end(page.body);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The error a record gets when every PutRecords is answered with `answer`. */
async function failureFor(
  answer: typeof page,
  options: Partial<KinesisProducerOptions> = {},
): Promise<RecordFailedError> {
  page = answer;
  puts = 0;
  const producer = new KinesisProducer({
    streamName: 'pages',
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxBufferedTimeMs: 10,
    recordTtlMs: 1_500,
    requestTimeoutMs: 1_000,
    retryBaseDelayMs: 50,
    retryMaxDelayMs: 100,
    logger: quiet,
    ...options,
  });
  try {
    const settled = await producer.put({ partitionKey: 'k', data: 'x' }).then(
      () => undefined,
      (error: RecordFailedError) => error,
    );
    if (settled === undefined) throw new Error('the record was written');
    return settled;
  } finally {
    await producer.close();
  }
}

describe('PutRecords answered by something that is not Kinesis', () => {
  it('a 403 page fails the record at once, with the status in its code and message', async () => {
    const error = await failureFor({ status: 403, type: 'text/html', body: '<html>Forbidden</html>' });
    expect(error.code).toBe('Http403');
    expect(error.attempts.map((a) => a.errorCode)).toEqual(['Http403']);
    expect(error.message).toMatch(/^The endpoint answered HTTP 403 with no Kinesis error in its body/);
    expect(error.message).toContain('; its body starts: <html>Forbidden</html>');
    expect(puts).toBe(1);
  });

  it("quotes the start of a long page, not the JSON parser's complaint about it", async () => {
    const page = `<html>\n  <body>\n    <h1>403 Forbidden</h1>\n    <p>${'Request blocked by policy. '.repeat(20)}</p>`;
    const error = await failureFor({ status: 403, type: 'text/html', body: page });
    expect(error.message).toMatch(
      /^The endpoint answered HTTP 403 with no Kinesis error in its body \(a proxy or gateway, or an endpoint that is not Kinesis\?\); its body starts: <html> <body> <h1>403 Forbidden<\/h1> <p>Request blocked by policy\. .{40,}…$/,
    );
    expect(error.message).not.toMatch(/valid JSON/);
  });

  it('a 404 with an empty body fails at once, as Http404', async () => {
    const error = await failureFor({ status: 404, type: 'text/html', body: '' });
    expect(error.code).toBe('Http404');
    expect(error.message).toMatch(/^The endpoint answered HTTP 404 with no Kinesis error in its body/);
    expect(puts).toBe(1);
  });

  it.each([301, 307])(
    'a %i redirect fails at once: the SDK follows none, so no retry gets past it',
    async (status) => {
      const error = await failureFor({ status, type: 'text/html', body: '<html>Moved</html>' });
      expect(error.code).toBe(`Http${status}`);
      expect(error.retryable).toBe(false);
      expect(puts).toBe(1);
    },
  );

  it('a gateway 429 is throttling: with failIfThrottled it fails at once, retryable', async () => {
    const error = await failureFor(
      { status: 429, type: 'text/html', body: '<html>Too many requests</html>' },
      { failIfThrottled: true },
    );
    expect(error.code).toBe('Http429');
    // The same call may succeed later, as for any throttled record.
    expect(error.retryable).toBe(true);
    expect(puts).toBe(1);
  });

  it('an answer whose body never ends is abandoned past 1 MiB, and retried', async () => {
    longestAnswer = 0;
    const error = await failureFor({
      status: 200,
      type: 'application/x-amz-json-1.1',
      body: '',
      endless: true,
    });
    expect(error.code).toBe('Expired');
    expect(error.attempts.length).toBeGreaterThan(1);
    expectEachTryFailedWith(error, 'ResponseTooLarge');
    // What the client read, and the socket buffers: far below what a request timeout lets stream in.
    expect(longestAnswer).toBeLessThan(8 * 1024 * 1024);
  });

  it('a metadata answer that never ends is abandoned past its bound', async () => {
    longestAnswer = 0;
    endlessListShards = true;
    const client = new KinesisClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    });
    try {
      const call = client.send(
        withBoundedAnswer(new ListShardsCommand({ StreamName: 'pages' }), MAX_METADATA_ANSWER_BYTES),
      );
      await expect(call).rejects.toMatchObject({ code: 'ResponseTooLarge' });
      expect(longestAnswer).toBeLessThan(MAX_METADATA_ANSWER_BYTES + 8 * 1024 * 1024);
    } finally {
      endlessListShards = false;
      client.destroy();
    }
  });

  it('a 502 page is retried until the record expires, each try told as Http502', async () => {
    const error = await failureFor({ status: 502, type: 'text/html', body: '<html>Bad gateway</html>' });
    expect(error.code).toBe('Expired');
    expect(error.attempts.length).toBeGreaterThan(1);
    expectEachTryFailedWith(error, 'Http502');
    expect(error.message).toContain('the last failed with Http502');
  });
});
