import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { readStream } from '../scripts/local-kinesis.js';
import { deaggregate } from '../src/index.js';
import { startFaultFront } from './support/fault-front.js';
import { testClient, testStream } from './support/streams.js';

const root = resolve(import.meta.dirname, '..');
const client = testClient();
afterAll(() => client.destroy());

/**
 * The memory the producer may use beyond `maxBufferedBytes` of records, as the README states it: the
 * records' data (kept for their answers), its aggregated copy, and the SDK's base64 JSON body of each
 * request in flight with its bytes — about 6 × maxBufferedBytes in all — plus ~0.5 KiB per record
 * outstanding and a few MiB of fixed cost. Callers waiting for room hold their own records.
 */
function memoryBound(
  maxBufferedBytes: number,
  maxOutstanding: number,
  callers: number,
  recordBytes: number,
): number {
  return 6 * maxBufferedBytes + 512 * maxOutstanding + callers * (recordBytes + 1024) + 8 * 1024 * 1024;
}

describe('overload: the stream is 10x slower than the producer is fed', () => {
  it('keeps memory bounded, pauses put callers instead of failing them, and writes every record', async () => {
    const { streamName } = await testStream(client, 1, 'overload');
    // One shard taking 512 KiB/s; unthrottled, the producer takes these records at well over 5 MB/s.
    const bytesPerSecond = 512 * 1024;
    const front = await startFaultFront({
      upstream: inject('kinesisEndpoint'),
      shardLimits: { recordsPerSecond: 1000, bytesPerSecond },
    });
    try {
      const options = {
        totalBytes: 4 * 1024 * 1024,
        recordBytes: 1024,
        callers: 2048,
        maxBufferedBytes: 1024 * 1024,
      };
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--expose-gc',
          '--import',
          'tsx',
          'test/support/overload-scenario.ts',
          front.endpoint,
          streamName,
          JSON.stringify(options),
        ],
        { cwd: root, timeout: 90_000 },
      );
      const run = JSON.parse(stdout.trim().split('\n').pop()!);
      const records = options.totalBytes / options.recordBytes;
      expect(run).toMatchObject({ records, putSucceeded: records, putFailed: 0 });
      expect(run.pausedPuts).toBeGreaterThan(records / 2);
      expect(run.peakBuffered).toBeLessThanOrEqual(options.maxBufferedBytes);
      expect(run.peakLiveAboveBaseline).toBeLessThan(
        memoryBound(options.maxBufferedBytes, run.peakOutstanding, options.callers, options.recordBytes),
      );
      // Paced by the stream, not by the callers.
      expect(run.bytesPerSecond).toBeLessThan(1.2 * bytesPerSecond);
      // Memory returns to baseline once closed.
      expect(run.endLiveAboveBaseline).toBeLessThan(4 * 1024 * 1024);

      let stored = 0;
      for (const { shard, records: kinesisRecords } of await readStream(client, streamName)) {
        for (const r of kinesisRecords)
          stored += deaggregate(r, { hashKeyRange: shard.HashKeyRange! }).length;
      }
      expect(stored).toBe(records + 1); // and the warm-up record
    } finally {
      await front.close();
    }
  });
});
