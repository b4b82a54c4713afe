import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { LOCAL_CREDENTIALS, LOCAL_REGION, readStream } from '../scripts/local-kinesis.js';
import { deaggregate, KinesisProducer, type PutResult, RecordFailedError } from '../src/index.js';
import { startFaultFront } from './support/fault-front.js';
import { testClient, testStream } from './support/streams.js';

const client = testClient();
afterAll(() => client.destroy());

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function liveBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('chaos: throttling limits, 2% InternalFailure, 1% 5xx, 1% resets, 1% timeouts', () => {
  it('settles every record exactly once, and every acknowledged record is in the stream', async () => {
    const { streamName } = await testStream(client, 4, 'chaos');
    const front = await startFaultFront({
      upstream: inject('kinesisEndpoint'),
      seed: 2026,
      // A quarter of a shard's limit, as if other producers shared the shards: the producer is
      // throttled until its rate limiter has learned what is left for it.
      shardLimits: { recordsPerSecond: 1000, bytesPerSecond: 256 * 1024 },
      entryFailureRate: 0.02,
      requestFaultRates: {
        'internal-failure': 0.005,
        'service-unavailable': 0.005,
        // Resets and timeouts, half of each after upstream stored the records: those retries write
        // duplicates, which the suite counts and reports.
        reset: 0.005,
        'stored-then-reset': 0.005,
        hang: 0.005,
        'stored-then-hang': 0.005,
      },
    });
    // On top of the random rates, six early requests get one whole-request fault of each kind, so each
    // kind happens in every run whatever the draws. The shard limits bind only when the producer
    // outruns them, which a slow or busy machine may never do: an early request also has every other
    // entry throttled.
    const kinds = [
      'internal-failure',
      'service-unavailable',
      'reset',
      'stored-then-reset',
      'hang',
      'stored-then-hang',
    ] as const;
    let scripted = 0;
    front.script(({ operation, stream, entries }) => {
      if (operation !== 'PutRecords' || stream !== streamName) return undefined;
      scripted++;
      if (scripted === 3) return { entries: entries.map((_, j) => (j % 2 === 0 ? 'throttle' : undefined)) };
      return scripted % 5 === 0 && scripted <= 5 * kinds.length
        ? { request: kinds[scripted / 5 - 1]! }
        : undefined;
    });
    try {
      const baseline = liveBytes();
      // Everything the run holds — the producer, the results, what was read back — is local to it, so
      // once it returns, what is still alive is what the producer left behind.
      await run();
      const after = liveBytes();
      console.log(`chaos memory: ${((after - baseline) / 1048576).toFixed(2)} MiB above baseline`);
      expect(after - baseline).toBeLessThan(8 * 1024 * 1024);
    } finally {
      await front.close();
    }

    async function run(): Promise<void> {
      const producer = new KinesisProducer({
        streamName,
        endpoint: front.endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        // kinesis-local stores about 1 MB/s: a few connections and a timeout it can meet, so the only
        // timeouts are the injected ones.
        maxConnections: 4,
        requestTimeoutMs: 3000,
        maxBufferedTimeMs: 50,
        // Small aggregates and requests: more entries and more requests for the faults to hit.
        aggregationMaxBytes: 4096,
        collectionMaxCount: 25,
      });
      const total = 20_000;
      const settledTimes = new Array<number>(total).fill(0);
      const results = new Array<PutResult | RecordFailedError | undefined>(total);
      const sentAt = new Array<number>(total).fill(0);
      const settledAt = new Array<number>(total).fill(0);
      const settle = (i: number, outcome: PutResult | RecordFailedError) => {
        settledTimes[i]!++;
        settledAt[i] = Date.now();
        results[i] = outcome;
      };
      const puts: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        // One record in a hundred goes to a stream that does not exist: it must fail, fast, alone.
        const record = {
          partitionKey: `device-${i % 1500}`,
          data: JSON.stringify({ i, reading: (i * 7) % 1000, pad: 'x'.repeat(i % 200) }),
          ...(i % 100 === 50 ? { streamName: `${streamName}-missing` } : {}),
        };
        sentAt[i] = Date.now();
        if (i % 2 === 0) {
          puts.push(
            producer.put(record).then(
              (r) => settle(i, r),
              (e: RecordFailedError) => settle(i, e),
            ),
          );
        } else {
          producer.send(record, (error, result) => settle(i, error ?? result!));
        }
        if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(puts);
      await producer.close();

      // Every record settled exactly once.
      expect(settledTimes.filter((n) => n !== 1)).toEqual([]);
      const failures = results.filter((r): r is RecordFailedError => r instanceof RecordFailedError);
      // Exactly the records bound for the missing stream failed, with the service's code, at their
      // first attempt and long before their TTL; every record of the real stream was written.
      const failedIndexes = results.flatMap((r, i) => (r instanceof RecordFailedError ? [i] : []));
      expect(failedIndexes).toEqual(Array.from({ length: total / 100 }, (_, k) => k * 100 + 50));
      for (const i of failedIndexes) {
        const failure = results[i] as RecordFailedError;
        expect(failure).toMatchObject({
          code: 'ResourceNotFoundException',
          streamName: `${streamName}-missing`,
        });
        expect(failure.attempts).toHaveLength(1);
        expect(settledAt[i]! - sentAt[i]!).toBeLessThan(10_000);
      }
      const acknowledged = results.filter(
        (r): r is PutResult => r !== undefined && !(r instanceof RecordFailedError),
      );
      expect(acknowledged.length + failures.length).toBe(total);

      // The faults did happen.
      const stats = front.stats();
      expect(stats.entryFaults.throttle).toBeGreaterThan(0);
      expect(stats.entryFaults['internal-failure']).toBeGreaterThan(0);
      for (const kind of kinds) expect(stats.requestFaults[kind] ?? 0, kind).toBeGreaterThan(0);
      // Attempts say what happened: some records needed several, with the codes the front injected.
      const codes = new Set(
        acknowledged.flatMap((r) => r.attempts.map((a) => a.errorCode).filter((c) => c !== undefined)),
      );
      for (const code of [
        'InternalFailure',
        'ServiceUnavailable',
        'ProvisionedThroughputExceededException',
        'RequestTimeout',
      ]) {
        expect(codes, code).toContain(code);
      }

      // Read everything back as KCL does: every acknowledged record is there, where it was reported.
      const seen = new Map<number, number>();
      const where = new Map<number, string>();
      for (const { shard, records } of await readStream(client, streamName)) {
        for (const r of records) {
          for (const user of deaggregate(r, { hashKeyRange: shard.HashKeyRange! })) {
            const i = (JSON.parse(Buffer.from(user.data).toString()) as { i: number }).i;
            seen.set(i, (seen.get(i) ?? 0) + 1);
            where.set(i, `${shard.ShardId}/${user.sequenceNumber}/${user.subSequenceNumber}`);
          }
        }
      }
      const missing = results.flatMap((r, i) =>
        r !== undefined && !(r instanceof RecordFailedError) && !seen.has(i) ? [i] : [],
      );
      expect(failedIndexes.filter((i) => seen.has(i))).toEqual([]);
      expect(missing).toEqual([]);
      const duplicates = [...seen.values()].reduce((n, count) => n + count - 1, 0);
      console.log(
        `chaos: ${acknowledged.length} written, ${failures.length} failed (${[...new Set(failures.map((f) => f.code))].join(', ') || 'none'}), ` +
          `${duplicates} duplicate user records in the stream (from ${stats.requestFaults['stored-then-hang']} stored-then-hang and ` +
          `${stats.requestFaults['stored-then-reset']} stored-then-reset requests), ${stats.entriesThrottled} entries throttled by the shard limits`,
      );
      // Duplicates come only from requests the service may have stored without answering: every
      // duplicated record had an attempt that timed out or lost its connection.
      for (const [i, count] of seen) {
        if (count === 1) continue;
        const r = results[i] as PutResult;
        expect(r.attempts.some((a) => a.errorCode === 'RequestTimeout' || a.errorCode === 'ECONNRESET')).toBe(
          true,
        );
      }
      // Where a record landed once, it is where put() said.
      for (const [i, r] of results.entries()) {
        if (r === undefined || r instanceof RecordFailedError || seen.get(i) !== 1) continue;
        expect(where.get(i)).toBe(`${r.shardId}/${r.sequenceNumber}/${r.subSequenceNumber}`);
      }
    }
  });
});
