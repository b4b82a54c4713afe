/** What a benchmark case is. bench/README.md says how to add one. */

/** Named figures a case measured, e.g. `{ recordsPerSec: 1.2e6, mbPerSec: 120 }`. */
export type Metrics = Readonly<Record<string, number>>;

/** How long a case warms up and then measures; run.ts chooses (BENCH_QUICK shortens both). */
export interface RunSettings {
  readonly warmupMs: number;
  readonly measureMs: number;
}

/** One column of a section's table: the median of one metric. */
export interface Column {
  readonly metric: string;
  readonly header: string;
  /** Digits shown after the decimal point. */
  readonly digits: number;
  /** Show ±spread beside the median. Always shown for a metric that a ratio compares. */
  readonly spread?: boolean;
}

/** One table of the report. */
export interface Section {
  readonly title: string;
  /** Markdown paragraph above the table: what is measured, and how. */
  readonly about: string;
  /** Header of the first column, which shows each case's group (e.g. "record size"). */
  readonly groupHeader: string;
  readonly columns: readonly Column[];
  /** Comparisons with reference cases of the same group, one column each, after the metric columns. */
  readonly ratios: readonly Ratio[];
  /**
   * Runs per figure of this section's cases when fewer than the other sections' will do (at most
   * BENCH_RUNS): for scenarios that take several seconds a run.
   */
  readonly maxRuns?: number;
}

/**
 * A comparison with the group's case whose `reference` is `against`, written so that above 1 is better
 * than that case: the case's median over the reference's, or the inverse when lower is better (e.g.
 * CPU per record).
 */
export interface Ratio {
  readonly metric: string;
  readonly header: string;
  readonly against: string;
  readonly lowerIsBetter?: boolean;
}

/**
 * A benchmark case. run.ts starts a fresh child process for every run of every case; the child looks
 * the case up by name in cases.ts and calls `run`, so nothing — JIT state, heap, open sockets — carries
 * over from one case or run to the next.
 */
export interface Case<P = unknown> {
  /** Unique and stable: the child finds the case by it and the results file is keyed by it. */
  readonly name: string;
  readonly section: Section;
  /** The case's peers: cases of one section and group measure the same workload the same way. */
  readonly group: string;
  /** The row's label in the table. */
  readonly label: string;
  /**
   * Names this case as the one the section's ratios with this `against` divide by, in its group. Unique
   * within a section and group.
   */
  readonly reference?: string;
  /** Plain data, written to the results file and handed to `run`. */
  readonly params: P;
  /**
   * Node or V8 flags the case's child process runs with, beyond run.ts's own: a tuning a user would
   * make on the command line. The label must say so.
   */
  readonly nodeFlags?: readonly string[];
  /** In the child: set up, warm up, measure, verify; resolves with the metrics. */
  run(params: P, settings: RunSettings): Promise<Metrics>;
}
