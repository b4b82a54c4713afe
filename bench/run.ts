/**
 * `npm run bench`: runs every case of cases.ts, each run in a fresh child process, prints the report
 * and writes it to BENCHMARKS.md (raw figures of every run to bench/results/, which git ignores).
 *
 * Environment:
 *   BENCH_RUNS=n    runs per case; every figure is their median (default 5, 3 with BENCH_QUICK)
 *   BENCH_QUICK=1   smoke run of about a minute: short warm-up and measurement
 *   BENCH_FILTER=s  only the cases whose name contains s; BENCHMARKS.md is then left alone
 *   BENCH_WARMUP_MS=n, BENCH_MEASURE_MS=n  other timings per run; BENCHMARKS.md is then left alone
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Case, Metrics, RunSettings } from './case.js';
import { cases } from './cases.js';
import type { ChildMessage } from './child.js';
import { type CaseResult, medians, renderSections } from './report.js';
import { renderTargets } from './targets.js';

const quick = process.env.BENCH_QUICK === '1';
const runsPerFigure = positiveInteger('BENCH_RUNS', process.env.BENCH_RUNS ?? (quick ? '3' : '5'));
const filter = process.env.BENCH_FILTER;
const defaults: RunSettings = quick ? { warmupMs: 100, measureMs: 300 } : { warmupMs: 400, measureMs: 1200 };
const settings: RunSettings = {
  warmupMs: positiveInteger('BENCH_WARMUP_MS', process.env.BENCH_WARMUP_MS ?? String(defaults.warmupMs)),
  measureMs: positiveInteger('BENCH_MEASURE_MS', process.env.BENCH_MEASURE_MS ?? String(defaults.measureMs)),
};
/** Timings other than a full run's: BENCHMARKS.md is then left alone, as with BENCH_FILTER. */
const customTimings = process.env.BENCH_WARMUP_MS !== undefined || process.env.BENCH_MEASURE_MS !== undefined;
/** A child that takes this much longer than its measurement is stuck. */
const CHILD_TIMEOUT_MS = 120_000;

const childPath = fileURLToPath(new URL('./child.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const tsxLoader = import.meta.resolve('tsx');

function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`${name} must be an integer >= 1; received ${value}`);
  return n;
}

/** One run of one case, in a fresh process. */
async function runChild(benchCase: Case): Promise<Metrics> {
  const child = fork(childPath, [benchCase.name, JSON.stringify(settings)], {
    // --expose-gc lets measure() start each measurement from a collected heap.
    execArgv: ['--import', tsxLoader, '--expose-gc', ...(benchCase.nodeFlags ?? [])],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let message: ChildMessage | undefined;
  child.on('message', (m) => {
    message = m as ChildMessage;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS + settings.measureMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (message?.ok === true) return message.metrics;
  const why = message?.error ?? `exited with ${signal ?? code} without a result`;
  throw new Error(`${benchCase.name} failed: ${why}\n--- child output ---\n${output}`);
}

function describeMachine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, ${process.platform} ${process.arch}`;
}

/** Runs per figure of a case: BENCH_RUNS, or fewer where its section asks for fewer. */
function runsOf(benchCase: Case): number {
  return Math.min(runsPerFigure, benchCase.section.maxRuns ?? runsPerFigure);
}

async function main(): Promise<void> {
  const selected = cases.filter((c) => filter === undefined || c.name.includes(filter));
  if (selected.length === 0) throw new Error(`no case name contains BENCH_FILTER=${filter}`);
  const runs = new Map<Case, Metrics[]>(selected.map((c) => [c, []]));
  const started = Date.now();

  // Round-robin: run 1 of every case, then run 2 of every case... A spell of noise from a neighbour
  // on the shared machine then lands on one run of many cases, which the median discards, rather
  // than on every run of one case.
  for (let round = 1; round <= runsPerFigure; round++) {
    for (const benchCase of selected) {
      if (round > runsOf(benchCase)) continue;
      const metrics = await runChild(benchCase);
      runs.get(benchCase)!.push(metrics);
      const shown = Object.entries(metrics)
        .map(([k, v]) => `${k}=${v.toPrecision(4)}`)
        .join(' ');
      const elapsed = ((Date.now() - started) / 1000).toFixed(0);
      process.stderr.write(`[${elapsed}s] run ${round}/${runsOf(benchCase)} ${benchCase.name}: ${shown}\n`);
    }
  }

  const results: CaseResult[] = selected.map((c) => ({ case: c, runs: runs.get(c)! }));
  const date = new Date().toISOString();
  const machine = describeMachine();
  const header = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` (bench/run.ts; see bench/README.md) on ${date}. Do not edit by hand.`,
    '',
    `- Machine: ${machine}`,
    `- Node: ${process.version}`,
    `- Mode: ${quick ? 'BENCH_QUICK smoke run — short timings, indicative only' : 'full'}`,
    `- Runs per figure: ${runsPerFigure} (fewer where a section says so), the median shown. Every run is a fresh ` +
      `child process that warms up for ${settings.warmupMs} ms, then measures for ${settings.measureMs} ms (wall ` +
      'time by performance.now(), CPU by process.cpuUsage()); sections that run a longer scenario give its ' +
      'timings as multiples of these. Runs of different cases are interleaved; peers in a table were measured in ' +
      'the same run.',
  ].join('\n');
  const report = `${[header, renderTargets(results), renderSections(results)].filter((part) => part !== '').join('\n\n')}\n`;
  process.stdout.write(`\n${report}`);

  const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const raw = {
    date,
    machine,
    node: process.version,
    quick,
    settings,
    runsPerFigure,
    cases: results.map((r) => ({
      name: r.case.name,
      section: r.case.section.title,
      group: r.case.group,
      label: r.case.label,
      params: r.case.params,
      median: medians(r.runs),
      runs: r.runs,
    })),
  };
  const rawPath = `${resultsDir}${date.replaceAll(':', '-')}.json`;
  writeFileSync(rawPath, `${JSON.stringify(raw, null, 2)}\n`);
  process.stderr.write(`raw results: ${rawPath}\n`);
  if (filter === undefined && !customTimings) {
    writeFileSync(`${repoRoot}BENCHMARKS.md`, report);
    process.stderr.write(`wrote ${repoRoot}BENCHMARKS.md\n`);
  }
}

await main();
