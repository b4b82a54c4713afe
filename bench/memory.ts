/**
 * Memory under overload: a producer with its default limits, fed far faster than a shard-limited
 * stream takes records, kept full for seconds. The producer runs in a process of its own
 * (overload-producer.ts); this case's child holds the stream: the fault front enforcing the shard
 * limits, in front of the null sink.
 */
import { startFaultFront } from '../test/support/fault-front.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { forkScript } from './forked.js';
import { startNullKinesis } from './null-kinesis.js';
import type { OverloadParams, OverloadResult } from './overload-producer.js';
import { RECORD_SIZES } from './workload.js';

/** Shards of the stream: 4 MiB/s and 4,000 records/s in all. */
const MEMORY_SHARDS = 4;
/** The service's per-shard write limits, which the front enforces. */
const SHARD_LIMITS = { recordsPerSecond: 1000, bytesPerSecond: 1024 * 1024 } as const;
/** How long the producer is kept full, in multiples of `measureMs`. */
const FULL_MEASURES = 4;
const MiB = 1024 * 1024;
/** The producer's defaults, shown beside its peaks. */
const DEFAULT_MAX_BUFFERED_BYTES = 64 * MiB;
const DEFAULT_MAX_OUTSTANDING_RECORDS = 100_000;

const section: Section = {
  title: 'Memory under overload',
  about: [
    'A producer with its default limits (`maxBufferedBytes` 64 MiB, `maxOutstandingRecords` 100,000) and',
    'otherwise default options, in a process of its own, writes to a stream of',
    `${MEMORY_SHARDS} shards that takes 1 MiB/s and 1,000 records/s each (the fault front enforcing the`,
    'limits, in front of the null sink). Callers put records with fresh bytes far faster than that,',
    `keeping 1,000 puts waiting for room at all times, for ${FULL_MEASURES} × \`measureMs\`; then`,
    'the producer closes with `timeoutMs: 0`. RSS, buffered bytes and outstanding records are sampled',
    'every 10 ms; live memory (heap used + ArrayBuffers after a full GC, above the same after a warm-up',
    'put) every 500 ms. "Full" is the time during which puts waited for room. The README bounds memory',
    'at about 6 × `maxBufferedBytes` (384 MiB) plus 0.5 KiB per outstanding record and a few MiB.',
  ].join(' '),
  groupHeader: 'record size',
  columns: [
    { metric: 'peakRssMiB', header: 'peak RSS MiB', digits: 0, spread: true },
    { metric: 'baselineRssMiB', header: 'idle RSS MiB', digits: 0 },
    { metric: 'peakLiveMiB', header: 'peak live MiB above idle', digits: 0, spread: true },
    {
      metric: 'peakBufferedMiB',
      header: `peak buffered MiB (limit ${DEFAULT_MAX_BUFFERED_BYTES / MiB})`,
      digits: 1,
    },
    {
      metric: 'peakOutstanding',
      header: `peak outstanding records (limit ${DEFAULT_MAX_OUTSTANDING_RECORDS.toLocaleString('en-US')})`,
      digits: 0,
    },
    { metric: 'fullSec', header: 'full, s', digits: 1 },
    { metric: 'recordsPerSec', header: 'user records/s written', digits: 0 },
  ],
  ratios: [],
  maxRuns: 3,
};

async function runOverload(params: { recordBytes: number }, settings: RunSettings): Promise<Metrics> {
  const sink = await startNullKinesis({ shards: MEMORY_SHARDS });
  const front = await startFaultFront({ upstream: sink.endpoint, shardLimits: SHARD_LIMITS });
  try {
    const scenario: OverloadParams = {
      recordBytes: params.recordBytes,
      fullMs: FULL_MEASURES * settings.measureMs,
    };
    const producer = forkScript<OverloadResult>(new URL('./overload-producer.ts', import.meta.url), [
      front.endpoint,
      JSON.stringify(scenario),
    ]);
    const r = await producer.result;
    return {
      peakRssMiB: r.peakRssBytes / MiB,
      baselineRssMiB: r.baselineRssBytes / MiB,
      peakLiveMiB: r.peakLiveAboveBaselineBytes / MiB,
      peakBufferedMiB: r.peakBufferedBytes / MiB,
      peakOutstanding: r.peakOutstandingRecords,
      fullSec: r.fullSec,
      recordsPerSec: r.recordsPerSec,
    };
  } finally {
    await front.close();
    await sink.stop();
  }
}

/**
 * 100 B records fill the producer's record limit first (100,000 records, 13 MiB), 1 KiB records its
 * byte limit (64 MiB, 63,000 records): the two ways it can be full.
 */
const SIZES = RECORD_SIZES.filter(({ bytes }) => bytes === 100 || bytes === 1024);

export const memoryCases: readonly Case<{ recordBytes: number }>[] = SIZES.map(({ bytes, label }) => ({
  name: `memory/overload/${bytes}`,
  section,
  group: label,
  label: 'put() callers, stream 4 MiB/s',
  params: { recordBytes: bytes },
  run: runOverload,
}));
