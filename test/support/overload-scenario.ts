/**
 * The overload scenario, run in its own process (with --expose-gc) by the backpressure integration
 * test and by the benchmark: callers feed the producer far faster than the stream takes records, and
 * the process samples its live memory (after a GC) and RSS all along.
 *
 *   node --expose-gc --import tsx test/support/overload-scenario.ts <endpoint> <stream> <json options>
 *
 * Prints one JSON line: the figures the caller asserts or reports.
 */
import { KinesisProducer, type PutResult } from '../../src/index.js';

interface ScenarioOptions {
  /** Total user data to write. */
  totalBytes: number;
  recordBytes: number;
  /**
   * Concurrent callers, each awaiting its put before the next: more than the producer may hold, so
   * most of them are paused at any moment, each holding its own record.
   */
  callers: number;
  maxBufferedBytes?: number;
  maxOutstandingRecords?: number;
}

const [endpoint, streamName, json] = process.argv.slice(2) as [string, string, string];
const options = JSON.parse(json) as ScenarioOptions;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

function liveBytes(): { live: number; rss: number } {
  gc!();
  const m = process.memoryUsage();
  return { live: m.heapUsed + m.arrayBuffers, rss: m.rss };
}

const producer = new KinesisProducer({
  streamName,
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  ...(options.maxBufferedBytes === undefined ? {} : { maxBufferedBytes: options.maxBufferedBytes }),
  ...(options.maxOutstandingRecords === undefined
    ? {}
    : { maxOutstandingRecords: options.maxOutstandingRecords }),
});
// Warm up (connections, stream summary, shard map) before the baseline.
await producer.put({ partitionKey: 'warm-up', data: 'x' });
const baseline = liveBytes();

const records = Math.floor(options.totalBytes / options.recordBytes);
let next = 0;
let succeeded = 0;
let failed = 0;
let peakLive = 0;
let peakRss = 0;
let peakBuffered = 0;
let peakOutstanding = 0;
let pausedPuts = 0;
const sampler = setInterval(() => {
  const { live, rss } = liveBytes();
  peakLive = Math.max(peakLive, live - baseline.live);
  peakRss = Math.max(peakRss, rss);
}, 100);

const started = performance.now();
const makeRecord = (i: number) => ({
  partitionKey: `device-${i % 500}`,
  data: Buffer.alloc(options.recordBytes, i % 251),
});
const observe = () => {
  peakBuffered = Math.max(peakBuffered, producer.bufferedBytes);
  peakOutstanding = Math.max(peakOutstanding, producer.outstandingRecords);
};
const callers = Array.from({ length: options.callers }, async () => {
  for (let i = next++; i < records; i = next++) {
    const put = producer.put(makeRecord(i));
    if (producer.waitingPuts > 0) pausedPuts++;
    const result: PutResult | undefined = await put.catch(() => undefined);
    if (result === undefined) failed++;
    else succeeded++;
    observe();
  }
});
await Promise.all(callers);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
await producer.close();
const end = liveBytes();

console.log(
  JSON.stringify({
    records,
    putSucceeded: succeeded,
    putFailed: failed,
    seconds,
    bytesPerSecond: (records * options.recordBytes) / seconds,
    pausedPuts,
    peakBuffered,
    peakOutstanding,
    baselineLive: baseline.live,
    peakLiveAboveBaseline: peakLive,
    endLiveAboveBaseline: end.live - baseline.live,
    peakRss,
  }),
);
