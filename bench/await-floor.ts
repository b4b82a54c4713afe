/**
 * What awaiting a promise per record costs by itself, with no producer: the floor under the gap
 * between `await put()` and `send()` in the sending section. Many callers each await a promise that
 * is resolved a fixed time later; the longer the promises live, the more of them (and of what each
 * caller's await keeps) outlive the young generation, and the more the garbage collector copies.
 */
import { type PutResult, partitionKeyHash, type RecordFailedError } from '../src/index.js';
import { PartitionKeyCache } from '../src/key-cache.js';
import { PendingRecord } from '../src/pending-record.js';
import { RoomShare } from '../src/room.js';
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { measure, throughputMetrics } from './measure.js';
import { LARGER_YOUNG_GENERATION, putCallers } from './sending.js';

/** Callers of the 100 B `await put()` case, so the figures line up with it. */
const CALLERS = putCallers(100);
/** How often the resolver looks for promises that are due. */
const TICK_MS = 1;

const section: Section = {
  title: 'Cost of a promise per record',
  about: [
    `No producer and no network: ${CALLERS.toLocaleString('en-US')} callers (as in the 100 B \`await put()\` case), each a loop`,
    'awaiting a promise; a promise is resolved once it is `hold` ms old (a timer looks every',
    `${TICK_MS} ms) with a result shaped like \`put()\`'s, and waits in the producer's own per-record object,`,
    "as in `put()`. A promise lives at least `hold` and about callers ÷ rate: with a short hold, the callers' work keeps",
    'it waiting longer. This is the floor under the gap between `await put()` and `send()` in the section',
    'above, where a record lives about callers ÷ rate too. CPU is every thread of the process, GC included.',
    `Rows with \`node ${LARGER_YOUNG_GENERATION}\` run with a young generation four times Node's default, so that`,
    "more promises die young instead of being copied out of it; peak RSS is the whole run's, by",
    '`process.resourceUsage()`.',
  ].join(' '),
  groupHeader: 'hold',
  columns: [
    { metric: 'recordsPerSec', header: 'promises/s', digits: 0, spread: true },
    { metric: 'cpuSecPerMillion', header: 'CPU s / M promises', digits: 2, spread: true },
    { metric: 'peakRssMiB', header: 'peak RSS MiB', digits: 0 },
  ],
  ratios: [],
};

interface FloorParams {
  readonly holdMs: number;
}

/** The record every promise carries, as a caller would put it. */
const RECORD = { partitionKey: 'caller', data: Buffer.alloc(100) };
/** Its hash key (MD5 of the partition key); the producer computes it once per key too. */
const HASH_KEY = partitionKeyHash(RECORD.partitionKey);
/** The share of the room a record counts in, as the producer keeps one per shard. */
const SHARE = new RoomShare('shard shardId-000000000000 of stream bench');
/** What the producer keeps per partition key, as put() finds it for a key it has seen. */
const KEY = new PartitionKeyCache().add(RECORD.partitionKey, Buffer.byteLength(RECORD.partitionKey));

/** The resolving functions of the promise `wait` is making, handed over by `capture` (as in put()). */
const captured = {
  resolve: (_result: PutResult) => {},
  reject: (_error: RecordFailedError) => {},
};

function capture(resolve: (result: PutResult) => void, reject: (error: RecordFailedError) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

async function runFloor(params: FloorParams, settings: RunSettings): Promise<Metrics> {
  // Records waiting, oldest first: a queue with a moving head, compacted now and then.
  let queue: PendingRecord[] = [];
  let head = 0;
  const timer = setInterval(() => {
    const due = performance.now() - params.holdMs;
    while (head < queue.length && queue[head]!.arrivedAt <= due) {
      const waiting = queue[head++]!;
      waiting.settled = true;
      waiting.resolve!({
        shardId: 'shardId-000000000000',
        sequenceNumber: '1',
        subSequenceNumber: head,
        aggregated: true,
        attempts: [],
      });
    }
    if (head > 4096 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  }, TICK_MS);
  // The producer's own per-record object, holding the promise's functions as `put()` has it do
  // (with one shared executor, as there: no closure per promise).
  const wait = () => {
    const promise = new Promise<PutResult>(capture);
    const now = performance.now();
    const { data } = RECORD;
    queue.push(
      new PendingRecord(
        RECORD,
        KEY,
        data,
        100,
        undefined,
        HASH_KEY,
        now,
        now + 30_000,
        0,
        SHARE,
        captured.resolve,
        captured.reject,
        undefined,
      ),
    );
    return promise;
  };
  const work = async (until: number) => {
    let records = 0;
    const caller = async () => {
      while (performance.now() < until) {
        await wait();
        records++;
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));
    return { records, bytes: 0 };
  };
  try {
    await work(performance.now() + settings.warmupMs);
    const m = await measure(settings.measureMs, work);
    const { recordsPerSec, cpuSecPerMillion } = throughputMetrics(m);
    return { recordsPerSec, cpuSecPerMillion, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
  } finally {
    clearInterval(timer);
  }
}

/** How long each promise is held before it is resolved, one group of the section each. */
export const FLOOR_HOLDS_MS: readonly number[] = [0, 50, 100, 250];

export const awaitFloorCases: readonly Case<FloorParams>[] = FLOOR_HOLDS_MS.flatMap((holdMs) => [
  {
    name: `await-floor/${holdMs}`,
    section,
    group: `${holdMs} ms`,
    label: `${CALLERS.toLocaleString('en-US')} callers awaiting`,
    params: { holdMs },
    run: runFloor,
  },
  {
    name: `await-floor-young64/${holdMs}`,
    section,
    group: `${holdMs} ms`,
    label: `${CALLERS.toLocaleString('en-US')} callers awaiting, node ${LARGER_YOUNG_GENERATION}`,
    params: { holdMs },
    nodeFlags: [LARGER_YOUNG_GENERATION],
    run: runFloor,
  },
]);
