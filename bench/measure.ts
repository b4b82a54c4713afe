/** Timing primitives shared by the cases, and the columns and ratios that show their throughput. */
import type { Column, Ratio } from './case.js';

/** Work done: user records and their data bytes (partition keys not counted). */
export interface Tally {
  readonly records: number;
  readonly bytes: number;
}

/** One timed stretch of work. */
export interface Measurement<T extends Tally = Tally> {
  readonly tally: T;
  /** Wall time, by performance.now(). */
  readonly wallSec: number;
  /** CPU time (user + system) of this process, all its threads, by process.cpuUsage(). */
  readonly cpuSec: number;
}

/**
 * Times `work`, which must keep working until the `until` time (a performance.now() value) has passed
 * and then resolve with what it did. Call it after a warm-up: it measures whatever it is given.
 */
export async function measure<T extends Tally>(
  durationMs: number,
  work: (until: number) => Promise<T>,
): Promise<Measurement<T>> {
  // Collect the garbage of set-up and warm-up now (run.ts passes --expose-gc), not during the measurement.
  globalThis.gc?.();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const tally = await work(start + durationMs);
  const wallSec = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { tally, wallSec, cpuSec: (cpu.user + cpu.system) / 1e6 };
}

/** The throughput figures every section shows: user records/s, MB/s (10^6 bytes of data), CPU per 10^6 records. */
export function throughputMetrics(m: Measurement): {
  recordsPerSec: number;
  mbPerSec: number;
  cpuSecPerMillion: number;
} {
  return {
    recordsPerSec: m.tally.records / m.wallSec,
    mbPerSec: m.tally.bytes / 1e6 / m.wallSec,
    cpuSecPerMillion: (m.cpuSec / m.tally.records) * 1e6,
  };
}

/** The columns that show {@link throughputMetrics}' figures. */
export const THROUGHPUT_COLUMNS: readonly Column[] = [
  { metric: 'recordsPerSec', header: 'user records/s', digits: 0 },
  { metric: 'mbPerSec', header: 'MB/s', digits: 1 },
  { metric: 'cpuSecPerMillion', header: 'CPU s / M records', digits: 3 },
];

/**
 * Records/s and CPU per record of a case over those of its group's case whose `reference` is
 * `against`, headed `× name, records/s` and `× name, <cpu>`.
 */
export function ratiosTo(against: string, name: string, cpu = 'CPU'): Ratio[] {
  return [
    { metric: 'recordsPerSec', header: `× ${name}, records/s`, against },
    { metric: 'cpuSecPerMillion', header: `× ${name}, ${cpu}`, against, lowerIsBetter: true },
  ];
}

/**
 * Keeps `concurrency` calls of `task` running until `until` has passed: each worker starts its next
 * call as soon as its last one settles. Resolves when every started call has finished; the first
 * failure rejects.
 */
export async function keepInFlight(
  concurrency: number,
  until: number,
  task: () => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) await task();
    }),
  );
}
