/**
 * What awaiting a promise per record costs by itself, with no producer: the floor under the gap
 * between `await put()` and `send()` in the sending section. Many callers each await a promise that
 * is resolved a fixed time later; the longer the promises live, the more of them (and of what each
 * caller's await keeps) outlive the young generation, and the more the garbage collector copies.
 */
import type { Case, Metrics, RunSettings, Section } from './case.js';
import { measure, throughputMetrics } from './measure.js';
import { putCallers } from './sending.js';

/** Callers of the 100 B `await put()` case, so the figures line up with it. */
const CALLERS = putCallers(100);
/** How often the resolver looks for promises that are due. */
const TICK_MS = 1;

const section: Section = {
  title: 'Cost of a promise per record',
  about: [
    `No producer and no network: ${CALLERS.toLocaleString('en-US')} callers (as in the 100 B \`await put()\` case), each a loop`,
    'awaiting a promise; every promise is resolved `hold` ms after it was made (by a timer that looks',
    `every ${TICK_MS} ms), with a result object shaped like \`put()\`'s, while an object the size of the`,
    "producer's per-record state waits with it. This is the floor under the gap between `await put()`",
    'and `send()` in the section above, where a record lives about callers ÷ rate. CPU is every thread',
    'of the process, GC included.',
  ].join(' '),
  groupHeader: 'hold',
  columns: [
    { metric: 'recordsPerSec', header: 'promises/s', digits: 0, spread: true },
    { metric: 'cpuSecPerMillion', header: 'CPU s / M promises', digits: 2, spread: true },
  ],
  ratios: [],
};

interface FloorParams {
  readonly holdMs: number;
}

/** What the producer keeps per record while it waits, in size: a plain object of 16 fields. */
class Waiting {
  a = 0;
  b = 0;
  c = 0;
  d = 0;
  e = 0;
  f = 0;
  g = 0;
  h = 0;
  i = 0;
  j = 0;
  k = 0;
  l = 0;
  readonly madeAt: number;
  readonly resolve: (result: object) => void;
  readonly data: string;
  settled = false;

  constructor(madeAt: number, resolve: (result: object) => void, data: string) {
    this.madeAt = madeAt;
    this.resolve = resolve;
    this.data = data;
  }
}

async function runFloor(params: FloorParams, settings: RunSettings): Promise<Metrics> {
  // Promises waiting, oldest first: a queue with a moving head, compacted now and then.
  let queue: Waiting[] = [];
  let head = 0;
  const timer = setInterval(() => {
    const due = performance.now() - params.holdMs;
    while (head < queue.length && queue[head]!.madeAt <= due) {
      const waiting = queue[head++]!;
      waiting.settled = true;
      waiting.resolve({
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
  const wait = () =>
    new Promise<object>((resolve) => {
      queue.push(new Waiting(performance.now(), resolve, 'record'));
    });
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
    return { recordsPerSec, cpuSecPerMillion };
  } finally {
    clearInterval(timer);
  }
}

export const awaitFloorCases: readonly Case<FloorParams>[] = [0, 50, 100, 250].map((holdMs) => ({
  name: `await-floor/${holdMs}`,
  section,
  group: `${holdMs} ms`,
  label: `${CALLERS.toLocaleString('en-US')} callers awaiting`,
  params: { holdMs },
  run: runFloor,
}));
