/**
 * The speed targets of the codec and of the benchmarks issue, checked against this run's medians: the
 * report's first table, so every full run says which targets it meets instead of leaving the sum to
 * the reader.
 *
 * Where the same run also measured a limit on what a target could reach, the table shows it beside the
 * target: what aggregating and sending alone reach (the producer does that work and more, on one
 * thread), or what a promise per caller costs with no producer at all.
 */
import { FLOOR_HOLDS_MS } from './await-floor.js';
import type { Metrics } from './case.js';
import { type CaseResult, medians, table } from './report.js';

/** The medians of one case by its name, or undefined when it did not run (BENCH_FILTER). */
type Lookup = (caseName: string, metric: string) => number | undefined;

/** One target: a figure of this run, the line it must pass, and a limit the run measured, if any. */
interface Target {
  /** What is asked, as the issue words it. */
  readonly goal: string;
  /** The line, e.g. "≥ 4.00×". */
  readonly line: string;
  readonly value: (m: Lookup) => number | undefined;
  readonly met: (value: number) => boolean;
  readonly format: (value: number) => string;
  /** The most this run's own figures leave room for, with what it is. */
  readonly limit?: { readonly value: (m: Lookup) => number | undefined; readonly what: string };
}

const times = (v: number) => `${v.toFixed(2)}×`;
const percent = (v: number) => `${(v * 100).toFixed(1)}%`;
const ms = (v: number) => `${v.toFixed(1)} ms`;

/** `a / b` when both ran. */
function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a / b;
}

/**
 * Aggregating and sending alone: RecordAggregator and the producer's body writer with nothing around
 * them, the work fire and forget cannot skip.
 */
const AGGREGATE_AND_SEND = 'sdk/aggregate-and-send';

/** Fire and forget against a peer, in user records/s, with aggregating and sending alone as the limit. */
function againstPeer(bytes: number, label: string, peer: string, peerLabel: string, at: number): Target {
  const peerRate = (m: Lookup) => m(`sdk/${peer}/${bytes}`, 'recordsPerSec');
  return {
    goal: `${label}, fire and forget: ${at}× ${peerLabel}`,
    line: `≥ ${times(at)}`,
    value: (m) => ratio(m(`sdk/producer-send/${bytes}`, 'recordsPerSec'), peerRate(m)),
    met: (v) => v >= at,
    format: times,
    limit: {
      value: (m) => ratio(m(`${AGGREGATE_AND_SEND}/${bytes}`, 'recordsPerSec'), peerRate(m)),
      what: 'aggregate + send alone',
    },
  };
}

/** `await put()` over `send()`, in user records/s. */
function awaitKeeps(bytes: number, label: string, limit?: Target['limit']): Target {
  return {
    goal: `${label}: awaiting every record keeps 60% of fire and forget`,
    line: '≥ 60%',
    value: (m) =>
      ratio(
        m(`sdk/producer-put/${bytes}`, 'recordsPerSec'),
        m(`sdk/producer-send/${bytes}`, 'recordsPerSec'),
      ),
    met: (v) => v >= 0.6,
    format: percent,
    ...(limit === undefined ? {} : { limit }),
  };
}

/**
 * At 100 B the promise-cost section has the same number of callers as `await put()`: a record awaited
 * costs at least send()'s CPU plus a bare promise's (the cheapest hold measured), so on one core the
 * rate can keep at most send's share of the two.
 */
const PROMISE_LIMIT: Target['limit'] = {
  value: (m) => {
    const send = m('sdk/producer-send/100', 'cpuSecPerMillion');
    const floors = FLOOR_HOLDS_MS.map((hold) => m(`await-floor/${hold}`, 'cpuSecPerMillion')).filter(
      (v): v is number => v !== undefined,
    );
    if (send === undefined || floors.length === 0) return undefined;
    return send / (send + Math.min(...floors));
  },
  what: 'promise',
};

/**
 * The codec against aws-kinesis-agg (the foundation issue's targets): `aggregateAll` over the pass, as
 * aws-kinesis-agg's `aggregate()` is, both at 1 MiB an aggregate.
 */
function codecAgainstKinesisAgg(bytes: number, label: string, at: number): Target {
  return {
    goal: `Codec, ${label}: ${at}× aws-kinesis-agg (aggregateAll, 1 MiB aggregates)`,
    line: `≥ ${times(at)}`,
    value: (m) =>
      ratio(
        m(`codec/aggregate-all-1mib/${bytes}`, 'recordsPerSec'),
        m(`codec/aws-kinesis-agg/${bytes}`, 'recordsPerSec'),
      ),
    met: (v) => v >= at,
    format: times,
  };
}

const TARGETS: readonly Target[] = [
  codecAgainstKinesisAgg(100, '100 B', 3),
  codecAgainstKinesisAgg(10240, '10 KiB', 1.5),
  againstPeer(100, '100 B', 'plain', 'the plain SDK', 4),
  againstPeer(100, '100 B', 'aws-kinesis-agg', 'aws-kinesis-agg + SDK', 3),
  againstPeer(1024, '1 KiB', 'plain', 'the plain SDK', 2),
  againstPeer(1024, '1 KiB', 'aws-kinesis-agg', 'aws-kinesis-agg + SDK', 2),
  awaitKeeps(100, '100 B', PROMISE_LIMIT),
  awaitKeeps(1024, '1 KiB'),
  awaitKeeps(10240, '10 KiB'),
  {
    goal: '1 KiB: pipeline CPU at most 1.5× the raw ceiling',
    line: '≤ 1.50×',
    value: (m) =>
      ratio(m('sdk/producer-send/1024', 'cpuSecPerMillion'), m('sdk/raw-ceiling/1024', 'cpuSecPerMillion')),
    met: (v) => v <= 1.5,
    format: times,
  },
  {
    goal: 'Latency at half load, null sink, default 100 ms buffering: p99 within 100 + 20 ms',
    line: '≤ 120 ms',
    value: (m) => m('latency/null-sink', 'p99Ms'),
    met: (v) => v <= 120,
    format: ms,
  },
];

const ABOUT = [
  "The codec's targets (the foundation issue) and those of the benchmarks issue, checked against the medians",
  'in the sections below: ratios of user records/s, except the raw-ceiling row (client CPU per record).',
  '"Met" compares the median with the line; a',
  'ratio of two medians moves with both, so read it with their ±spread. The last column is a limit measured in',
  'the same run. _Aggregate + send alone_: the row of that name in the sending section validates, aggregates',
  "per predicted shard and sends every record as the producer does, with the producer's own PutRecords body,",
  "and nothing else (no room, settlement, metrics, timers or retries). The producer's `send()` does that work",
  "per record and more, on one thread, so that row's rate over the peer is an approximate limit on its fire",
  'and forget (approximate: the two batch requests differently). _Promise_: at 100 B the promise-cost',
  "section has the `await put()` case's callers and no producer; a record awaited costs at least",
  "send()'s CPU plus a bare awaited promise's (the cheapest hold measured), so on one core awaiting keeps at",
  "most send()'s part of the two.",
].join(' ');

/**
 * Renders the targets section; a row whose cases did not run shows "–", and a run that measured none of
 * them (a filtered one) gets no section: ''.
 */
export function renderTargets(results: readonly CaseResult[]): string {
  const byName = new Map<string, Metrics>(results.map((r) => [r.case.name, medians(r.runs)]));
  const lookup: Lookup = (name, metric) => byName.get(name)?.[metric];
  if (TARGETS.every((target) => target.value(lookup) === undefined)) return '';
  const rows = TARGETS.map((target) => {
    const value = target.value(lookup);
    const limit = target.limit?.value(lookup);
    return [
      target.goal,
      target.line,
      value === undefined ? '–' : target.format(value),
      value === undefined ? '–' : target.met(value) ? 'yes' : 'no',
      target.limit === undefined
        ? ''
        : limit === undefined
          ? '–'
          : `${target.format(limit)} (${target.limit.what})`,
    ];
  });
  return [
    '## Targets',
    '',
    ABOUT,
    '',
    table(['target', 'line', 'this run', 'met', 'limit in this run'], rows, (i) => i === 2),
  ].join('\n');
}
