/**
 * The producer of the memory case (memory.ts), forked into a process of its own so that the RSS and
 * heap it reports are the producer's and its feeder's alone, not the stream's.
 *
 * A producer with default options is fed with `put()` faster than the stream drains it: whenever
 * fewer than `WAITING_PUTS` puts wait for room, more are made, so it stays at its limit. Every record
 * has fresh bytes, as an application's records would: a producer that only kept references to one
 * shared workload would look smaller than it is. After `fullMs` it closes with `timeoutMs: 0`, which
 * fails what is still outstanding.
 *
 * argv: <endpoint> <OverloadParams as JSON>
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { runForked } from './forked.js';
import { benchProducer } from './producer-feed.js';
import { PARTITION_KEYS } from './workload.js';

export interface OverloadParams {
  readonly recordBytes: number;
  /** How long to keep the producer full. */
  readonly fullMs: number;
}

/** Bytes, records and seconds, as measured by the producer's process. */
export interface OverloadResult {
  /** RSS after the warm-up, with the producer idle. */
  readonly baselineRssBytes: number;
  readonly peakRssBytes: number;
  /** Heap used + ArrayBuffers after a full GC, above the same figure after the warm-up. */
  readonly peakLiveAboveBaselineBytes: number;
  readonly peakBufferedBytes: number;
  readonly peakOutstandingRecords: number;
  /** Time during which puts were waiting for room. */
  readonly fullSec: number;
  /** User records written per second while the feeder ran. */
  readonly recordsPerSec: number;
}

/** Puts kept waiting for room: enough that the producer takes a new record whenever it frees room. */
const WAITING_PUTS = 1000;
/** RSS, buffered bytes and outstanding records are cheap to read: sampled often, peaks are short. */
const SAMPLE_MS = 10;
/** Live memory needs a full GC to read, which stalls the producer: sampled less often. */
const LIVE_SAMPLE_MS = 500;

runForked(async (): Promise<OverloadResult> => {
  const [endpoint, json] = process.argv.slice(2);
  if (endpoint === undefined || json === undefined) throw new Error('usage: <endpoint> <params>');
  const params = JSON.parse(json) as OverloadParams;
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run with --expose-gc');

  const producer = benchProducer(endpoint);
  // Connections, stream summary and shard map, before the baseline.
  await producer.put({ partitionKey: 'warm-up', data: 'x' });
  const keys = Array.from({ length: PARTITION_KEYS }, () => randomUUID());
  const template = randomBytes(params.recordBytes);
  gc();
  const baseline = process.memoryUsage();
  const baselineLive = baseline.heapUsed + baseline.arrayBuffers;

  let stopped = false;
  let written = 0;
  let failure: unknown;
  let next = 0;
  const topUp = () => {
    while (!stopped && producer.waitingPuts < WAITING_PUTS) {
      const data = Buffer.from(template);
      producer.put({ partitionKey: keys[next++ % keys.length]!, data }).then(onWritten, onFailed);
    }
  };
  const onWritten = () => {
    written++;
    topUp();
  };
  // Once stopped, close() fails what is outstanding on purpose.
  const onFailed = (error: unknown) => {
    if (!stopped) failure ??= error;
    topUp();
  };

  const started = performance.now();
  // Fills the producer to its limit in one synchronous run, before any sampling.
  topUp();
  let peakRss = baseline.rss;
  let peakLive = 0;
  let peakBuffered = 0;
  let peakOutstanding = 0;
  let fullMs = 0;
  let sampledAt = performance.now();
  const sampler = setInterval(() => {
    const now = performance.now();
    if (producer.waitingPuts > 0) fullMs += now - sampledAt;
    sampledAt = now;
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    peakBuffered = Math.max(peakBuffered, producer.bufferedBytes);
    peakOutstanding = Math.max(peakOutstanding, producer.outstandingRecords);
  }, SAMPLE_MS);
  const liveSampler = setInterval(() => {
    gc();
    const m = process.memoryUsage();
    peakLive = Math.max(peakLive, m.heapUsed + m.arrayBuffers - baselineLive);
    peakRss = Math.max(peakRss, m.rss);
  }, LIVE_SAMPLE_MS);

  await sleep(params.fullMs);
  stopped = true;
  const seconds = (performance.now() - started) / 1000;
  const recordsPerSec = written / seconds;
  clearInterval(sampler);
  clearInterval(liveSampler);
  await producer.close({ timeoutMs: 0 });
  if (failure !== undefined) throw failure;
  return {
    baselineRssBytes: baseline.rss,
    peakRssBytes: peakRss,
    peakLiveAboveBaselineBytes: peakLive,
    peakBufferedBytes: peakBuffered,
    peakOutstandingRecords: peakOutstanding,
    fullSec: fullMs / 1000,
    recordsPerSec,
  };
});
