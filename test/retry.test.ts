import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KinesisProducer, type ProducerRecord, type RecordFailedError } from '../src/index.js';
import { StreamPipeline } from '../src/stream-pipeline.js';
import { FakeKinesis, networkError, type PutAnswer, serviceError } from './support/fake-kinesis.js';
import { memoryLogger } from './support/memory-logger.js';
import { producersOn } from './support/producers.js';
import { track } from './support/track.js';

let fake: FakeKinesis;
const producer = producersOn(() => fake);

/** Puts `record` and notes when it settles: `settledAfter()` is 0 until then, then the ms it took. */
function timedPut(p: KinesisProducer, record: ProducerRecord) {
  const start = Date.now();
  let settledAfter = 0;
  const result = outcome(
    p.put(record).finally(() => {
      settledAfter = Date.now() - start;
    }),
  );
  return { result, settledAfter: () => settledAfter };
}

/** Settles a promise under fake timers and returns how it ended. */
async function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: RecordFailedError }> {
  return await promise.then(
    (value) => ({ value }),
    (error: RecordFailedError) => ({ error }),
  );
}

beforeEach(() => {
  vi.useFakeTimers();
  fake = new FakeKinesis(1);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const text = (data: Uint8Array | undefined) => Buffer.from(data!).toString();

describe('only failed entries are retried', () => {
  it('sends exactly the failed entries again, byte for byte, and none of the good ones', async () => {
    fake.script.push({
      errorCodes: [
        undefined,
        'ProvisionedThroughputExceededException',
        undefined,
        'InternalFailure',
        undefined,
      ],
    });
    const p = producer({ aggregation: false });
    const puts = ['r0', 'r1', 'r2', 'r3', 'r4'].map((data) => p.put({ partitionKey: data, data }));
    await vi.advanceTimersByTimeAsync(100 + 1000);
    const results = await Promise.all(puts);
    expect(fake.calls).toHaveLength(2);
    expect(fake.calls[0]!.entries.map((e) => text(e.Data))).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(fake.calls[1]!.entries.map((e) => text(e.Data))).toEqual(['r1', 'r3']);
    expect(fake.calls[1]!.entries).toEqual([fake.calls[0]!.entries[1], fake.calls[0]!.entries[3]]);
    expect(results.map((r) => r.attempts.map((a) => a.errorCode ?? 'ok'))).toEqual([
      ['ok'],
      ['ProvisionedThroughputExceededException', 'ok'],
      ['ok'],
      ['InternalFailure', 'ok'],
      ['ok'],
    ]);
  });

  it('retries an aggregate as one entry, and every record in it gets the answer', async () => {
    fake.script.push({ errorCodes: ['InternalFailure'] });
    const p = producer();
    const puts = Array.from({ length: 50 }, (_, i) => p.put({ partitionKey: `k${i}`, data: `d${i}` }));
    await vi.advanceTimersByTimeAsync(1000);
    const results = await Promise.all(puts);
    expect(fake.calls.map((c) => c.entries.length)).toEqual([1, 1]);
    expect(fake.calls[1]!.entries[0]).toEqual(fake.calls[0]!.entries[0]);
    expect(results.map((r) => r.subSequenceNumber)).toEqual(results.map((_, i) => i));
    expect(new Set(results.map((r) => r.attempts.length))).toEqual(new Set([2]));
  });
});

describe('backoff', () => {
  it('grows exponentially up to retryMaxDelayMs, each wait random below its cap (full jitter)', async () => {
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    fake.onPut = () => ({ errorCodes: ['InternalFailure'] });
    const p = producer({ recordTtlMs: 20_000, maxBufferedTimeMs: 0 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(25_000);
    const { error } = await result;
    const waits = error!.attempts.slice(1).map((a) => a.delayMs);
    // Caps: 100, 200, 400, ... up to 5000; random() = 0.999 waits just under each cap.
    const caps = waits.map((_, i) => Math.min(5000, 100 * 2 ** i));
    expect(waits).toEqual(caps.map((cap) => Math.floor(0.999 * cap)));
    expect(waits.length).toBeGreaterThanOrEqual(8);

    random.mockReturnValue(0.25);
    fake.calls.length = 0;
    const again = outcome(p.put({ partitionKey: 'k', data: 'y' }));
    await vi.advanceTimersByTimeAsync(25_000);
    const jittered = (await again).error!.attempts.slice(1, 5).map((a) => a.delayMs);
    expect(jittered).toEqual([25, 50, 100, 200]);
  });

  it('splits an aggregate after its entry failed twice in a row, not counting failed requests', async () => {
    const answers: PutAnswer[] = [
      { throw: networkError() },
      { errorCodes: ['InternalFailure'] },
      { errorCodes: ['InternalFailure'] },
    ];
    fake.onPut = () => answers.shift();
    const p = producer({ maxBufferedTimeMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    const puts = [0, 1, 2, 3].map((i) => p.put({ partitionKey: 'k', data: String(i) }));
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(puts);
    // The request failed, then the entry once: still one aggregate. Its entry failed again: halves.
    expect(fake.calls.map((c) => c.entries.length)).toEqual([1, 1, 1, 2]);
  });

  it('keeps growing when an aggregate that keeps failing is split into new Kinesis records', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    fake.onPut = (call) => ({ errorCodes: call.entries.map(() => 'InternalFailure') });
    const p = producer({ recordTtlMs: 20_000, maxBufferedTimeMs: 0 });
    const results = ['a', 'b', 'c', 'd'].map((k) => outcome(p.put({ partitionKey: k, data: k })));
    await vi.advanceTimersByTimeAsync(25_000);
    for (const { error } of await Promise.all(results)) {
      const waits = error!.attempts.slice(1).map((a) => a.delayMs);
      const caps = waits.map((_, i) => Math.min(5000, 100 * 2 ** i));
      expect(waits).toEqual(caps.map((cap) => Math.floor(0.999 * cap)));
    }
    // It was split (more Kinesis records than the one aggregate it started as).
    expect(Math.max(...fake.calls.map((c) => c.entries.length))).toBeGreaterThan(1);
  });

  it('honours retryBaseDelayMs and retryMaxDelayMs', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    fake.onPut = () => ({ errorCodes: ['InternalFailure'] });
    const p = producer({
      recordTtlMs: 5_000,
      maxBufferedTimeMs: 0,
      retryBaseDelayMs: 400,
      retryMaxDelayMs: 1000,
    });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(6_000);
    const waits = (await result).error!.attempts.slice(1).map((a) => a.delayMs);
    expect(waits.slice(0, 4)).toEqual([200, 400, 500, 500]);
  });
});

describe('expiry', () => {
  it('fails with Expired and every attempt once recordTtlMs has passed, not before', async () => {
    fake.onPut = () => ({ errorCodes: ['ProvisionedThroughputExceededException'] });
    const p = producer({ recordTtlMs: 3_000 });
    const { result, settledAfter } = timedPut(p, { partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(2_990);
    expect(settledAfter()).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    const { error } = await result;
    expect(settledAfter()).toBe(3_000);
    expect(error).toMatchObject({ code: 'Expired', name: 'RecordFailedError' });
    // The message alone says what kept failing.
    expect(error!.message).toBe(
      `Record expired after 3000 ms (recordTtlMs) without being written; ${fake.calls.length} attempt(s) made; the last failed with ProvisionedThroughputExceededException: ProvisionedThroughputExceededException for entry 0.`,
    );
    expect(error!.attempts.length).toBe(fake.calls.length);
    expect(
      error!.attempts.every((a) => a.errorCode === 'ProvisionedThroughputExceededException' && !a.success),
    ).toBe(true);
  });

  it('quotes at most 200 characters of the last failure in an expiry message', async () => {
    fake.onPut = () => ({ throw: serviceError('InternalFailure', 500, `<html>${'x'.repeat(1_000)}</html>`) });
    const p = producer({ recordTtlMs: 1_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(1_100);
    const { error } = await result;
    // (A 500 may have stored it: the message ends saying so.)
    expect(error!.message).toMatch(
      /attempt\(s\) made; the last failed with InternalFailure: <html>x{194}…; an earlier request carrying it ended with a server fault \(InternalFailure\), and may have stored it\.$/,
    );
  });

  it('fails only the expired records of an aggregate and sends the others again without them', async () => {
    let call = 0;
    fake.onPut = () => (call++ === 0 ? { errorCodes: ['InternalFailure'] } : undefined);
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const p = producer({ recordTtlMs: 1_000, maxBufferedTimeMs: 900, retryBaseDelayMs: 500 });
    const old = outcome(p.put({ partitionKey: 'k', data: 'old' }));
    await vi.advanceTimersByTimeAsync(800);
    const young = outcome(p.put({ partitionKey: 'k', data: 'young' }));
    // First request at 900 ms fails; the retry (~500 ms later) comes after the old record's TTL.
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await old).error).toMatchObject({ code: 'Expired', retryable: true });
    expect((await young).value?.attempts.map((a) => a.success)).toEqual([false, true]);
    expect(fake.calls.map((c) => c.entries.length)).toEqual([1, 1]);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['young']);
  });
});

describe('a record whose earlier request ended without an answer', () => {
  it('is not said to be unwritten when it then expires: that request may have stored it', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    // The first request never answers (it may still be stored); every try after it is throttled.
    fake.onPut = (call) =>
      call.index === 0 ? 'hang' : { errorCodes: ['ProvisionedThroughputExceededException'] };
    const p = producer({ requestTimeoutMs: 1_000, recordTtlMs: 5_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(10_000);
    const { error } = await result;
    expect(error?.attempts[0]?.errorCode).toBe('RequestTimeout');
    expect(error?.message).toMatch(
      /^Record expired after 5000 ms \(recordTtlMs\) without being known to be written; \d+ attempt\(s\) made; the last failed with ProvisionedThroughputExceededException: .*; an earlier request carrying it ended without an answer \(RequestTimeout\), and may have stored it\.$/,
    );
  });

  it('is not said to be unwritten when close() gives up on it in backoff', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    fake.onPut = () => 'hang';
    const p = producer({ requestTimeoutMs: 1_000, retryBaseDelayMs: 5_000, retryMaxDelayMs: 5_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    // Sent at 100 ms, timed out at 1,100 ms: in backoff until ~6 s.
    await vi.advanceTimersByTimeAsync(1_500);
    const closed = p.close({ timeoutMs: 100 });
    await vi.advanceTimersByTimeAsync(200);
    await closed;
    expect((await result).error?.message).toBe(
      'close() gave up after 100 ms (timeoutMs) before the record was known to be written: an earlier request carrying it ended without an answer (RequestTimeout), and may have stored it',
    );
  });
});

describe('expiry of part of an aggregate in backoff', () => {
  it.each(['none', 'per-partition-key'] as const)(
    'sends the records left only once the backoff ends (ordering %s)',
    async (ordering) => {
      vi.spyOn(Math, 'random').mockReturnValue(0.999);
      fake.onPut = (call) => (call.index === 0 ? { errorCodes: ['InternalFailure'] } : undefined);
      const p = producer({
        ordering,
        maxBufferedTimeMs: 1_000,
        recordTtlMs: 4_000,
        retryBaseDelayMs: 3_500,
        retryMaxDelayMs: 3_500,
      });
      const start = Date.now();
      const first = outcome(p.put({ partitionKey: 'k', data: 'first' }));
      await vi.advanceTimersByTimeAsync(900);
      const second = outcome(p.put({ partitionKey: 'k', data: 'second' }));
      // Sent at 1,000 ms, failed; backoff 3,496 ms, to ~4,496 ms. 'first' expires at 4,000 ms meanwhile.
      await vi.advanceTimersByTimeAsync(6_000);
      expect((await first).error).toMatchObject({ code: 'Expired' });
      expect((await second).value?.attempts.map((a) => a.success)).toEqual([false, true]);
      expect(fake.calls.map((c) => c.at - start)[1]).toBeGreaterThanOrEqual(4_490);
    },
  );
});

describe('expiry of a record whose request has not answered', () => {
  it('fails at its TTL, its last attempt Unanswered, and the late answer changes nothing', async () => {
    fake.hold();
    const p = producer({ recordTtlMs: 1_000, requestTimeoutMs: 5_000 });
    const { result, settledAfter } = timedPut(p, { partitionKey: 'k', data: 'x' });
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.heldCalls).toBe(1);
    expect(settledAfter()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    const { error } = await result;
    expect(settledAfter()).toBe(1_000);
    expect(error).toMatchObject({ code: 'Expired', retryable: true, shardId: fake.shards[0]!.id });
    expect(error!.attempts.map((a) => [a.success, a.errorCode, a.durationMs])).toEqual([
      [false, 'Unanswered', 900],
    ]);
    expect(error!.message).toBe(
      'Record expired after 1000 ms (recordTtlMs) without being known to be written; 1 attempt(s) made; the request carrying it had not answered after 900 ms, and may still store it.',
    );
    expect(p.outstandingRecords).toBe(0);
    // The request stores it after all: nothing settles twice, nothing is sent again.
    fake.release();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['x']);
    expect(fake.calls).toHaveLength(1);
    const next = outcome(p.put({ partitionKey: 'k', data: 'y' }));
    await vi.advanceTimersByTimeAsync(200);
    expect((await next).value?.attempts.map((a) => a.success)).toEqual([true]);
    expect(fake.calls).toHaveLength(2);
  });

  it('fails only the records past their TTL; the others of the aggregate take the answer', async () => {
    let call = 0;
    fake.onPut = () => (call++ === 0 ? { errorCodes: ['InternalFailure'] } : undefined);
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const p = producer({
      recordTtlMs: 2_000,
      maxBufferedTimeMs: 900,
      retryBaseDelayMs: 200,
      requestTimeoutMs: 5_000,
    });
    const old = outcome(p.put({ partitionKey: 'k', data: 'old' }));
    await vi.advanceTimersByTimeAsync(800);
    const young = outcome(p.put({ partitionKey: 'k', data: 'young' }));
    // The first request, at 900 ms, fails; the retry goes at ~1,100 ms and is held past old's TTL.
    await vi.advanceTimersByTimeAsync(250);
    fake.hold();
    await vi.advanceTimersByTimeAsync(950);
    expect(fake.heldCalls).toBe(1);
    const { error } = await old;
    expect(error).toMatchObject({ code: 'Expired' });
    expect(error!.attempts.map((a) => a.errorCode)).toEqual(['InternalFailure', 'Unanswered']);
    expect(error!.attempts[1]!.errorMessage).toBe(
      'the request was still under way after 901 ms when the record expired: the service may still have stored the record',
    );
    // The message says how the last answered attempt failed, as a wrong endpoint would be told.
    expect(error!.message).toBe(
      'Record expired after 2000 ms (recordTtlMs) without being known to be written; 2 attempt(s) made; the last failed with InternalFailure: InternalFailure for entry 0; the request carrying it had not answered after 901 ms, and may still store it.',
    );
    fake.release();
    await vi.advanceTimersByTimeAsync(10);
    expect((await young).value?.attempts.map((a) => a.success)).toEqual([false, true]);
    // Both were in the aggregate the service stored; only young was reported written.
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['old', 'young']);
    const m = p.metrics().streams.test!;
    expect(m.UserRecordsPut.total.sum).toBe(1);
    expect(m.KinesisRecordsPut.total.sum).toBe(1);
    expect(m.ErrorsByCode.InternalFailure!.total.sum).toBe(2);
  });
});

describe('errors that retrying cannot fix fail at once', () => {
  it.each([
    ['ResourceNotFoundException', 400],
    ['AccessDeniedException', 400],
    ['KMSDisabledException', 400],
    ['KMSAccessDeniedException', 400],
    ['KMSNotFoundException', 400],
    ['ValidationException', 400],
    ['InvalidArgumentException', 400],
  ])('%s fails the records after one attempt, without waiting for the TTL', async (name, status) => {
    fake.script.push({ throw: serviceError(name, status) });
    const p = producer();
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(101);
    const { error } = await result;
    expect(error).toMatchObject({ code: name, retryable: false });
    expect(error!.attempts).toHaveLength(1);
    expect(fake.calls).toHaveLength(1);
  });

  it('says what to check when the stream is not found', async () => {
    fake.script.push({
      throw: serviceError(
        'ResourceNotFoundException',
        400,
        'Stream arn:aws:kinesis:us-east-1:000000000000:stream/test under account 000000000000 not found.',
      ),
    });
    const result = outcome(producer().put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(101);
    expect((await result).error?.message).toBe(
      "Stream arn:aws:kinesis:us-east-1:000000000000:stream/test under account 000000000000 not found: check the stream's name and region.",
    );
  });

  it.each<[string, Error, string]>([
    ['no region configured', new Error('Region is missing'), 'RegionMissing'],
    // What the SDK throws for AWS_REGION="eu-west-1 " (a .env file's trailing blank).
    [
      'a region the SDK does not accept',
      new Error('Region not accepted: region="eu-west-1 " is not a valid hostname component.'),
      'RegionNotAccepted',
    ],
    // For AWS_USE_FIPS_ENDPOINT=true with AWS_ENDPOINT_URL_KINESIS.
    [
      'endpoint settings the SDK cannot combine',
      Object.assign(new Error('Invalid Configuration: FIPS and custom endpoint are not supported'), {
        name: 'EndpointError',
      }),
      'EndpointError',
    ],
    [
      'an endpoint that is not a URL (a client of your own)',
      Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' }),
      'ERR_INVALID_URL',
    ],
    // Node's error for https:// to a plain-HTTP port (OpenSSL's wording on Node 20; 24 says the same).
    [
      'an https:// endpoint that answers in plain HTTP',
      Object.assign(
        new Error(
          'write EPROTO 801C70B1127F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n',
        ),
        { code: 'EPROTO' },
      ),
      'EPROTO',
    ],
    ...['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID'].map(
      (code) =>
        [
          `a TLS certificate Node does not trust (${code})`,
          Object.assign(new Error('untrusted'), { code }),
          code,
        ] as [string, Error, string],
    ),
  ])('%s fails the records after one attempt, with its own code', async (_, thrown, code) => {
    fake.script.push({ throw: thrown });
    const p = producer();
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(101);
    const { error } = await result;
    expect(error).toMatchObject({ code, retryable: false });
    expect(error!.attempts).toHaveLength(1);
  });

  it.each<[string, Record<string, string>, string]>([
    ['AWS_REGION with a trailing blank', { AWS_REGION: 'eu-west-1 ' }, 'RegionNotAccepted'],
    [
      'AWS_USE_FIPS_ENDPOINT with an endpoint of your own',
      {
        AWS_REGION: 'us-east-1',
        AWS_USE_FIPS_ENDPOINT: 'true',
        AWS_ENDPOINT_URL_KINESIS: 'http://127.0.0.1:9',
      },
      'EndpointError',
    ],
  ])('the SDK refusing its configuration (%s) fails the record at once', async (_, env, code) => {
    vi.useRealTimers();
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    // The producer's own client, configured from the environment: the SDK throws before any request.
    const p = new KinesisProducer({
      streamName: 's',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      logger: memoryLogger().logger,
    });
    try {
      const error = await p.put({ partitionKey: 'k', data: 'x' }).then(
        () => undefined,
        (e: RecordFailedError) => e,
      );
      expect(error).toMatchObject({ code, retryable: false });
      expect(error!.attempts).toHaveLength(1);
    } finally {
      vi.unstubAllEnvs();
      await p.close();
    }
  });

  it('says where credentials come from when no provider found them, also in the expiry it ends in', async () => {
    const hint =
      'Could not load credentials from any providers: pass `credentials`, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values do for a local Kinesis), or name an AWS profile.';
    const noCredentials = () => ({
      throw: Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
    });
    fake.script.push(noCredentials());
    const p = producer();
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(5_000);
    const { value } = await result;
    expect(value?.attempts[0]?.errorMessage).toBe(hint);
    // Never found: the whole hint is in the message of the record's expiry, not cut short.
    fake.onPut = noCredentials;
    const expired = outcome(producer({ recordTtlMs: 2_000 }).put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(3_000);
    expect((await expired).error?.message).toMatch(
      /; the last failed with CredentialsProviderError: Could not load credentials from any providers: pass `credentials`, .*, or name an AWS profile\.$/,
    );
  });

  it('says to use http:// when an https:// endpoint answers in plain HTTP', async () => {
    fake.script.push({
      throw: Object.assign(new Error('write EPROTO ...:SSL routines::wrong version number:...\n'), {
        code: 'EPROTO',
      }),
    });
    const p = producer();
    const { error } = await (async () => {
      const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
      await vi.advanceTimersByTimeAsync(101);
      return result;
    })();
    expect(error!.message).toMatch(
      /wrong version number:\.\.\.: the endpoint answered in plain HTTP, not TLS\. For a local Kinesis's plain-HTTP port, use http:\/\/ in the endpoint\.$/,
    );
  });

  it('a missing region says where a region comes from, in the record and in the warnings', async () => {
    fake.describeError = new Error('Region is missing');
    fake.listShardsError = new Error('Region is missing');
    fake.script.push({ throw: new Error('Region is missing') });
    const { logger, lines } = memoryLogger();
    const p = producer({ logger });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(101);
    const { error } = await result;
    expect(error!.message).toBe(
      'Region is missing: pass `region` to the producer (or to the client you give it), set AWS_REGION, or name a region in the AWS config profile.',
    );
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
      'DescribeStreamSummary failed (RegionMissing: pass `region` or set AWS_REGION); assuming a 1 MiB record limit and partition-key routing',
      'ListShards failed (RegionMissing: pass `region` or set AWS_REGION); aggregating only records with the same hash key until a shard map is known',
    ]);
  });

  it('with failIfThrottled, a throttled record fails at once', async () => {
    fake.script.push({ errorCodes: ['ProvisionedThroughputExceededException', undefined] });
    const p = producer({ failIfThrottled: true, aggregation: false });
    const a = outcome(p.put({ partitionKey: 'a', data: '1' }));
    const b = outcome(p.put({ partitionKey: 'b', data: '2' }));
    await vi.advanceTimersByTimeAsync(101);
    // Throttled: the caller may well put it again later.
    expect((await a).error).toMatchObject({
      code: 'ProvisionedThroughputExceededException',
      retryable: true,
    });
    expect((await b).value).toBeDefined();
    expect(fake.calls).toHaveLength(1);
  });
});

describe('ExpiredTokenException', () => {
  /** The fake as a client whose SDK credential provider resolves `identity`. */
  const withCredentials = (identity: object) =>
    Object.assign(fake.client, { config: { credentials: async () => identity } }) as KinesisClient;
  const keys = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' };

  it('fails at the next answer once the credentials are known to carry no expiration', async () => {
    fake.onPut = () => ({ throw: serviceError('ExpiredTokenException', 400) });
    const p = producer({ client: withCredentials(keys), recordTtlMs: 30_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(2_000);
    const { error } = await result;
    expect(error).toMatchObject({ code: 'ExpiredTokenException', retryable: false });
    expect(error?.message).toContain("The client's credentials carry no expiration");
    expect(error?.attempts.map((a) => a.errorCode)).toEqual([
      'ExpiredTokenException',
      'ExpiredTokenException',
    ]);
  });

  it('is retried while the credentials carry an expiration (the SDK fetches them again)', async () => {
    fake.script.push(
      { throw: serviceError('ExpiredTokenException', 400) },
      { throw: serviceError('ExpiredTokenException', 400) },
    );
    const expiration = new Date(Date.now() + 3_600_000);
    const p = producer({ client: withCredentials({ ...keys, expiration }) });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(5_000);
    expect((await result).value?.attempts.map((a) => a.errorCode ?? 'ok')).toEqual([
      'ExpiredTokenException',
      'ExpiredTokenException',
      'ok',
    ]);
  });
});

describe('whole-request failures that are retried', () => {
  it.each([
    ['a 500 InternalFailure', { throw: serviceError('InternalFailure', 500) }, 'InternalFailure'],
    ['a 503 ServiceUnavailable', { throw: serviceError('ServiceUnavailable', 503) }, 'ServiceUnavailable'],
    [
      'whole-request throttling',
      { throw: serviceError('ProvisionedThroughputExceededException', 400) },
      'ProvisionedThroughputExceededException',
    ],
    [
      'LimitExceededException',
      { throw: serviceError('LimitExceededException', 400) },
      'LimitExceededException',
    ],
    [
      'an expired token (credentials refresh)',
      { throw: serviceError('ExpiredTokenException', 400) },
      'ExpiredTokenException',
    ],
    [
      'a stream that is not ACTIVE yet',
      { throw: serviceError('ResourceInUseException', 400) },
      'ResourceInUseException',
    ],
    [
      "KMSThrottlingException (the stream's KMS key is throttled)",
      { throw: serviceError('KMSThrottlingException', 400) },
      'KMSThrottlingException',
    ],
    [
      'an HTTP 429, whatever the error is named (a proxy on the way)',
      { throw: serviceError('TooManyRequests', 429) },
      'TooManyRequests',
    ],
    [
      'an HTTP 408 from the service or a proxy on the way',
      { throw: serviceError('RequestTimeout', 408) },
      'RequestTimeout',
    ],
    ['a connection reset', { throw: networkError('ECONNRESET') }, 'ECONNRESET'],
    ['another TLS protocol error', { throw: networkError('EPROTO') }, 'EPROTO'],
    [
      'credentials no provider found (yet)',
      {
        throw: Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        }),
      },
      'CredentialsProviderError',
    ],
    [
      "a certificate not yet valid (this host's clock is not set yet)",
      { throw: networkError('CERT_NOT_YET_VALID') },
      'CERT_NOT_YET_VALID',
    ],
    ['a certificate past its date', { throw: networkError('CERT_HAS_EXPIRED') }, 'CERT_HAS_EXPIRED'],
    ['a request that never answers (requestTimeoutMs)', 'hang' as const, 'RequestTimeout'],
  ])('%s', async (_name, answer, code) => {
    fake.script.push(answer);
    const p = producer({ requestTimeoutMs: 2_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(10_000);
    const { value } = await result;
    expect(value?.attempts.map((a) => [a.success, a.errorCode ?? null])).toEqual([
      [false, code],
      [true, null],
    ]);
    expect(fake.calls).toHaveLength(2);
  });

  it('aborts a request after requestTimeoutMs', async () => {
    fake.script.push('hang');
    const p = producer({ requestTimeoutMs: 1_500 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(100 + 1_499);
    expect(fake.calls[0]!.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake.calls[0]!.signal?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await result).value?.attempts[0]).toMatchObject({
      errorCode: 'RequestTimeout',
      durationMs: 1_500,
    });
  });

  it('ends a request at requestTimeoutMs even when the client does not hear the abort', async () => {
    // Stuck before the HTTP exchange (a credential provider that hangs): the abort signal goes
    // unheard, and the request must end on time all the same.
    fake.script.push('hang-deaf');
    const p = producer({ requestTimeoutMs: 1_500, recordTtlMs: 10_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(100 + 1_500);
    expect(fake.calls[0]!.signal?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(2_000);
    const { value } = await result;
    expect(value?.attempts.map((a) => [a.success, a.errorCode ?? null, a.durationMs])).toEqual([
      [false, 'RequestTimeout', 1_500],
      [true, null, expect.any(Number)],
    ]);
    // flush and close are not held up by the request that never ended.
    await p.flush();
  });

  it('keeps the slot of a request the client still runs: stuck calls do not pile up past maxConnections', async () => {
    fake.onPut = () => 'hang-deaf';
    const p = producer({ maxConnections: 1, requestTimeoutMs: 1_000, recordTtlMs: 5_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(200);
    const later = outcome(p.put({ partitionKey: 'k', data: 'y' }));
    await vi.advanceTimersByTimeAsync(6_000);
    // One call, still stuck in the client: nothing else was started beside it.
    expect(fake.calls).toHaveLength(1);
    expect((await result).error).toMatchObject({ code: 'Expired' });
    expect((await result).error?.attempts.map((a) => a.errorCode)).toEqual(['RequestTimeout']);
    expect((await later).error).toMatchObject({ code: 'Expired', attempts: [] });
  });

  it('sends again as soon as such a call settles late and frees its slot', async () => {
    fake.hold(); // calls wait for release(), deaf to their abort
    const p = producer({ maxConnections: 1, requestTimeoutMs: 1_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(fake.calls).toHaveLength(1);
    fake.release(); // the first call ends now; its answer comes too late to count
    await vi.advanceTimersByTimeAsync(100);
    expect(fake.calls).toHaveLength(2);
    expect((await result).value?.attempts.map((a) => a.errorCode ?? 'ok')).toEqual(['RequestTimeout', 'ok']);
  });

  it('treats an entry the response left out as failed and retries it', async () => {
    fake.script.push({ Records: [{ ShardId: 'shardId-000000000000', SequenceNumber: '1' }], $metadata: {} });
    const p = producer({ aggregation: false });
    const a = p.put({ partitionKey: 'a', data: '1' });
    const b = p.put({ partitionKey: 'b', data: '2' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await a).attempts).toHaveLength(1);
    expect((await b).attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['MissingResult', 'ok']);
  });

  it.each([
    ['nothing', undefined],
    ['null', null],
    ['Records that is not a list', { Records: { length: 2 }, $metadata: {} }],
    ['null entries', { Records: [null, null], $metadata: {} }],
  ])('retries the records of an answer of %s (a client of your own may answer so)', async (_, answer) => {
    fake.script.push({ resolve: answer });
    const p = producer({ aggregation: false });
    const a = p.put({ partitionKey: 'a', data: '1' });
    const b = p.put({ partitionKey: 'b', data: '2' });
    await vi.advanceTimersByTimeAsync(1_000);
    for (const result of [await a, await b]) {
      expect(result.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['MissingResult', 'ok']);
    }
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1', '2']);
  });
});

describe('a client of your own that answers oddly', () => {
  it.each([
    ['no promise at all (a bare test double)', () => undefined, 'MissingResult'],
    [
      'a thenable whose then throws',
      () => ({
        // biome-ignore lint/suspicious/noThenProperty: the odd answer under test is such a thenable.
        then() {
          throw new Error('then failed');
        },
      }),
      'Error',
    ],
  ])('retries the records of a call that returns %s, and frees its connection', async (_, answer, code) => {
    const base = fake.client;
    let puts = 0;
    const client = {
      send: (command: unknown, options: unknown) =>
        command instanceof PutRecordsCommand && puts++ === 0
          ? answer()
          : base.send(command as never, options as never),
      destroy: () => {},
    } as unknown as KinesisClient;
    // One connection: the retry can go only once the odd call has given its slot back.
    const p = producer({ aggregation: false, client, maxConnections: 1 });
    const result = outcome(p.put({ partitionKey: 'a', data: '1' }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await result).value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual([code, 'ok']);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1']);
  });

  it('retries a request that failed with a value that cannot become a string', async () => {
    fake.script.push({ throw: Object.assign(Object.create(null), { name: 'Odd', message: 42 }) });
    const p = producer({ aggregation: false });
    const result = outcome(p.put({ partitionKey: 'a', data: '1' }));
    await vi.advanceTimersByTimeAsync(1_000);
    const { value } = await result;
    expect(value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['Odd', 'ok']);
    expect(value?.attempts[0]?.errorMessage).toBe('[object Object]');
  });
});

describe('a defect while handling an answer', () => {
  it('fails the records of that request with Internal; the others, flush and close go on', async () => {
    const p = producer({ aggregation: false, logger: memoryLogger().logger });
    await vi.advanceTimersByTimeAsync(0);
    const pipeline = StreamPipeline.prototype;
    vi.spyOn(pipeline, 'onAccepted').mockImplementationOnce(() => {
      throw new Error('boom');
    });
    const first = outcome(p.put({ partitionKey: 'a', data: '1' }));
    await vi.advanceTimersByTimeAsync(200);
    const { error } = await first;
    expect(error).toMatchObject({ code: 'Internal', retryable: false, cause: new Error('boom') });
    expect(error?.message).toMatch(/failed while handling the answer .* please report it/);
    expect(p.outstandingRecords).toBe(0);
    // The same shard goes on.
    const next = outcome(p.put({ partitionKey: 'a', data: '2' }));
    await vi.advanceTimersByTimeAsync(200);
    expect((await next).value?.attempts).toHaveLength(1);
    await p.flush();
    await p.close();
  });

  it('leaves the records handled before the throw to their fate: one set to retry is written', async () => {
    fake.script.push({ errorCodes: ['InternalFailure', undefined] });
    const p = producer({ aggregation: false, logger: memoryLogger().logger });
    await vi.advanceTimersByTimeAsync(0);
    vi.spyOn(StreamPipeline.prototype, 'onAccepted').mockImplementationOnce(() => {
      throw new Error('boom');
    });
    const a = outcome(p.put({ partitionKey: 'a', data: '1' }));
    const b = outcome(p.put({ partitionKey: 'b', data: '2' }));
    await vi.advanceTimersByTimeAsync(2_000);
    // `a` failed its entry and was set to retry before `b`'s handling threw: it is retried, not told
    // Internal (and then written behind the app's back).
    expect((await a).value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['InternalFailure', 'ok']);
    // `b`, whose handling threw, was stored by the service: its error says it cannot tell.
    expect((await b).error?.code).toBe('Internal');
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['2', '1']);
    expect(p.outstandingRecords).toBe(0);
  });

  it.each([
    ['', {}],
    [', with ordering', { ordering: 'per-partition-key' as const }],
  ])('a record set to retry just before the throw is retried, not failed%s', async (_, options) => {
    fake.script.push({ errorCodes: ['InternalFailure'] });
    const p = producer({ aggregation: false, logger: memoryLogger().logger, ...options });
    await vi.advanceTimersByTimeAsync(0);
    const retryLater = StreamPipeline.prototype.retryLater;
    vi.spyOn(StreamPipeline.prototype, 'retryLater').mockImplementationOnce(function (
      this: StreamPipeline,
      ...args
    ) {
      retryLater.apply(this, args);
      throw new Error('boom after retryLater');
    });
    const a = outcome(p.put({ partitionKey: 'a', data: '1' }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await a).value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['InternalFailure', 'ok']);
    expect(fake.storedUserRecords().map((r) => r.data)).toEqual(['1']);
    expect(p.outstandingRecords).toBe(0);
  });

  it('close() finishes though the meter throws as it is let go', async () => {
    const meter = {
      createCounter: () => ({ add() {} }),
      createHistogram: () => ({ record() {} }),
      createObservableGauge: () => ({}),
      addBatchObservableCallback() {},
      removeBatchObservableCallback() {
        throw new Error('meter provider shut down');
      },
    };
    const p = producer({ aggregation: false, meter });
    const a = outcome(p.put({ partitionKey: 'a', data: '1' }));
    await vi.advanceTimersByTimeAsync(200);
    expect((await a).value?.attempts).toHaveLength(1);
    const closed = track(p.close());
    await vi.advanceTimersByTimeAsync(100);
    expect(closed.status).toBe('fulfilled');
  });

  it('an app meter whose instruments throw changes nothing: every record settles as it should', async () => {
    const throwing = () => {
      throw new Error('exporter shut down');
    };
    const meter = {
      createCounter: () => ({ add: throwing }),
      createHistogram: () => ({ record: throwing }),
      createObservableGauge: () => ({}),
      addBatchObservableCallback() {},
    };
    fake.script.push({ errorCodes: ['InternalFailure', undefined] });
    const p = producer({ aggregation: false, logger: memoryLogger().logger, meter });
    const a = outcome(p.put({ partitionKey: 'a', data: '1' }));
    const b = outcome(p.put({ partitionKey: 'b', data: '2' }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await a).value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['InternalFailure', 'ok']);
    expect((await b).value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['ok']);
    expect(
      fake
        .storedUserRecords()
        .map((r) => r.data)
        .sort(),
    ).toEqual(['1', '2']);
  });

  it('a logger that throws changes nothing: every record settles', async () => {
    fake.script.push({ throw: networkError('ECONNRESET') });
    const throwing = () => {
      throw new Error('log transport closed');
    };
    const p = producer({
      aggregation: false,
      logger: { debug: throwing, info: throwing, warn: throwing, error: throwing },
    });
    const a = outcome(p.put({ partitionKey: 'a', data: '1' }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await a).value?.attempts.map((x) => x.errorCode ?? 'ok')).toEqual(['ECONNRESET', 'ok']);
    await p.close();
  });
});

describe('clock skew', () => {
  it('retries a signature refused for clock skew (the SDK corrected its clock), and fails other signature errors', async () => {
    const skewed = Object.assign(
      serviceError(
        'InvalidSignatureException',
        400,
        'Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z',
      ),
      {
        $metadata: { httpStatusCode: 400, clockSkewCorrected: true },
      },
    );
    fake.script.push({ throw: skewed });
    const p = producer();
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await result).value?.attempts.map((a) => a.errorCode ?? 'ok')).toEqual([
      'InvalidSignatureException',
      'ok',
    ]);

    fake.script.push({
      throw: serviceError(
        'InvalidSignatureException',
        400,
        'The request signature we calculated does not match',
      ),
    });
    const bad = outcome(p.put({ partitionKey: 'k', data: 'y' }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await bad).error).toMatchObject({ code: 'InvalidSignatureException' });
  });

  it('retries a signature error the SDK corrected its clock for, whatever its message says', async () => {
    fake.script.push({
      throw: Object.assign(serviceError('InvalidSignatureException', 403, 'Signature not yet current'), {
        $metadata: { httpStatusCode: 403, clockSkewCorrected: true },
      }),
    });
    const p = producer();
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(2_000);
    expect((await result).value?.attempts.map((a) => a.errorCode ?? 'ok')).toEqual([
      'InvalidSignatureException',
      'ok',
    ]);
  });
});

describe('a record whose earlier request may have stored it, told so by every failure', () => {
  it('DataChanged after a RequestTimeout does not say "before the record was written"', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    fake.onPut = (call) => (call.index === 0 ? 'hang' : undefined);
    const p = producer({ requestTimeoutMs: 1_000, retryBaseDelayMs: 2_000, retryMaxDelayMs: 2_000 });
    // A resizable ArrayBuffer (ES2024; typed here by hand, as the project's lib is ES2023).
    const Resizable = ArrayBuffer as unknown as new (
      bytes: number,
      options: { maxByteLength: number },
    ) => ArrayBuffer & { resize(bytes: number): void };
    const buffer = new Resizable(8, { maxByteLength: 16 });
    const data = new Uint8Array(buffer);
    data.fill(1);
    const result = outcome(p.put({ partitionKey: 'k', data }));
    await vi.advanceTimersByTimeAsync(1_500); // sent at 100 ms, timed out at 1,100 ms: in backoff
    buffer.resize(4); // the caller reuses its buffer (wrongly)
    await vi.advanceTimersByTimeAsync(5_000);
    const { error } = await result;
    expect(error?.code).toBe('DataChanged');
    expect(error?.attempts[0]?.errorCode).toBe('RequestTimeout');
    // The timed-out request may have stored the record: it must not be said to be unwritten.
    expect(error?.message).toMatch(
      /before the record was known to be written \(an earlier request carrying it ended without an answer \(RequestTimeout\), and may have stored it\)/,
    );
  });

  it.each([
    // A handler's own timeouts: smithy's socket timeout, Node's with throwOnRequestTimeout.
    ['TimeoutError', { throw: Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }) }],
    ['ETIMEDOUT', { throw: networkError('ETIMEDOUT') }],
    // The SDK's default client: an HTTP/2 stream reset after the request went out.
    ['ERR_HTTP2_STREAM_ERROR', { throw: networkError('ERR_HTTP2_STREAM_ERROR') }],
    [
      'ResponseTooLarge',
      { throw: Object.assign(new Error('answer too large'), { code: 'ResponseTooLarge' }) },
    ],
    // Server faults: Kinesis's own, and a 500 page with no Kinesis error in it.
    ['InternalFailure', { throw: serviceError('InternalFailure', 500) }],
    ['ServiceUnavailable', { throw: serviceError('ServiceUnavailable', 503) }],
    [
      'Http500',
      {
        throw: Object.assign(new Error('UnknownError'), {
          name: 'Unknown',
          $metadata: { httpStatusCode: 500 },
        }),
      },
    ],
    // A 200 with no result for the record.
    ['MissingResult', { resolve: { FailedRecordCount: 0, $metadata: {} } }],
  ] as [string, PutAnswer][])(
    'an expiry after a request that ended with %s does not say "without being written"',
    async (code, answer) => {
      vi.spyOn(Math, 'random').mockReturnValue(0.5);
      fake.onPut = (call) =>
        call.index === 0 ? answer : { errorCodes: ['ProvisionedThroughputExceededException'] };
      const p = producer({ recordTtlMs: 5_000 });
      const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
      await vi.advanceTimersByTimeAsync(10_000);
      const { error } = await result;
      expect(error?.code).toBe('Expired');
      expect(error?.attempts[0]?.errorCode).toBe(code);
      expect(error?.message).toContain(`(${code}), and may have stored it`);
      expect(error?.message).not.toMatch(/without being written/);
    },
  );

  it.each([
    [
      'refused for good (AccessDeniedException)',
      {},
      serviceError('AccessDeniedException', 400, 'User is not authorized.'),
    ],
    [
      'throttled, with failIfThrottled',
      { failIfThrottled: true },
      serviceError('ProvisionedThroughputExceededException', 400, 'Rate exceeded for stream test.'),
    ],
  ])('a record %s after a reset says the reset request may have stored it', async (_, options, refusal) => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    fake.onPut = (call) => ({ throw: call.index === 0 ? networkError('ECONNRESET') : refusal });
    const p = producer(options);
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(10_000);
    const { error } = await result;
    expect(error?.code).toBe(refusal.name);
    // Putting it again may write it twice, but may be what the caller wants when throttled.
    expect(error?.retryable).toBe('failIfThrottled' in options);
    expect(error?.attempts.map((a) => a.errorCode)).toEqual(['ECONNRESET', refusal.name]);
    expect(error?.message).toBe(
      `${refusal.message.replace(/\.$/, '')}; an earlier request carrying it ended without an answer (ECONNRESET), and may have stored it.`,
    );
  });

  it.each([
    [
      // @smithy/node-http-handler's connectionTimeout, which the producer's own client sets when
      // requestTimeoutMs is above 10 s.
      'ConnectTimeout',
      Object.assign(
        new Error(
          '@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 10000 ms.',
        ),
        { name: 'TimeoutError' },
      ),
    ],
    // The same from @smithy/node-http-handler 2.x and 3.x, in a client of your own.
    [
      'ConnectTimeout',
      Object.assign(new Error('Socket timed out without establishing a connection within 1000 ms'), {
        name: 'TimeoutError',
      }),
    ],
    // Node refuses to open an HTTP/2 stream on a session that received GOAWAY.
    [
      'ERR_HTTP2_GOAWAY_SESSION',
      Object.assign(new Error('New streams cannot be created after receiving a GOAWAY'), {
        code: 'ERR_HTTP2_GOAWAY_SESSION',
      }),
    ],
  ])('an expiry after a request that never left (%s) says "without being written"', async (code, thrown) => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    fake.onPut = () => ({ throw: thrown });
    const p = producer({ recordTtlMs: 5_000 });
    const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
    await vi.advanceTimersByTimeAsync(10_000);
    const { error } = await result;
    expect(error?.attempts[0]?.errorCode).toBe(code);
    expect(error?.message).toContain('without being written');
    expect(error?.message).not.toContain('may have stored it');
  });

  it.each([
    ['Http200', 200, 'Unterminated string in JSON at position 28'],
    ['Http504', 504, `Unexpected token '<', "<html>Gate"... is not valid JSON`],
  ])(
    'an expiry after an unreadable answer (%s) does not say "without being written"',
    async (code, status, json) => {
      vi.spyOn(Math, 'random').mockReturnValue(0.5);
      // What the SDK throws for a 200 whose body was cut short, or a gateway's timeout page.
      const unreadable = Object.assign(
        new SyntaxError(
          `${json}\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.`,
        ),
        { $metadata: { httpStatusCode: status } },
      );
      fake.onPut = (call) =>
        call.index === 0 ? { throw: unreadable } : { errorCodes: ['ProvisionedThroughputExceededException'] };
      const p = producer({ recordTtlMs: 5_000 });
      const result = outcome(p.put({ partitionKey: 'k', data: 'x' }));
      await vi.advanceTimersByTimeAsync(10_000);
      const { error } = await result;
      expect(error?.attempts[0]?.errorCode).toBe(code);
      expect(error?.message).not.toMatch(/without being written/);
    },
  );
});
