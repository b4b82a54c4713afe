/** Turns the runs of every case into the Markdown report: per section, a table of medians and ratios. */
import type { Case, Column, Metrics, Section } from './case.js';

/** Every run of one case. */
export interface CaseResult {
  readonly case: Case;
  readonly runs: readonly Metrics[];
}

/** The middle value; the mean of the two middle values for an even count. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of each metric, taken metric by metric. */
export function medians(runs: readonly Metrics[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(runs[0] ?? {})) out[key] = median(runs.map((run) => run[key] ?? Number.NaN));
  return out;
}

function formatNumber(value: number | undefined, digits: number): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Half the range of a metric over the runs, relative to its median: how far a run strayed. */
function spread(runs: readonly Metrics[], metric: string): number {
  const values = runs.map((run) => run[metric] ?? Number.NaN);
  return (Math.max(...values) - Math.min(...values)) / 2 / median(values);
}

/**
 * A Markdown table padded to align in a terminal too, laid out as Biome formats Markdown (so that
 * `npm run lint` accepts the BENCHMARKS.md it is written to). Columns for which `right` holds align
 * right: by default all after the first two.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: (column: number) => boolean = (i) => i >= 2,
): string {
  const widths = header.map((h, i) => Math.max(h.length, 3, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => (right(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = widths.map((w, i) => (right(i) ? `${'-'.repeat(w - 1)}:` : `:${'-'.repeat(w - 1)}`));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

function sectionTable(section: Section, results: readonly CaseResult[]): string {
  const compared = new Set(section.ratios.map((r) => r.metric));
  const spreadShown = (c: Column) => c.spread === true || compared.has(c.metric);
  const header = [
    section.groupHeader,
    'case',
    ...section.columns.map((c) => (spreadShown(c) ? `${c.header} ±spread` : c.header)),
    ...section.ratios.map((r) => r.header),
  ];
  const rows: string[][] = [];
  for (const group of new Set(results.map((r) => r.case.group))) {
    const peers = results.filter((r) => r.case.group === group);
    const medianOf = new Map(peers.map((r) => [r, medians(r.runs)]));
    const referenceOf = (name: string) => peers.find((r) => r.case.reference === name);
    for (const result of peers) {
      const m = medianOf.get(result)!;
      const cells = section.columns.map((c) => {
        const value = formatNumber(m[c.metric], c.digits);
        if (!spreadShown(c)) return value;
        const relative = spread(result.runs, c.metric);
        // Relative to a median of 0 (nothing measured, e.g. nothing throttled) there is none to show.
        return Number.isFinite(relative) ? `${value} ±${formatNumber(relative * 100, 0)}%` : value;
      });
      const ratios = section.ratios.map((r) => {
        const reference = referenceOf(r.against);
        if (result === reference) return 'baseline';
        const value = m[r.metric];
        const against = reference === undefined ? undefined : medianOf.get(reference)![r.metric];
        if (value === undefined || against === undefined) return '–';
        return `${formatNumber(r.lowerIsBetter === true ? against / value : value / against, 2)}×`;
      });
      rows.push([group, result.case.label, ...cells, ...ratios]);
    }
  }
  return table(header, rows);
}

/** How many runs each figure of a section is the median of, e.g. "Medians of 5 runs". */
function runsSentence(results: readonly CaseResult[]): string {
  const counts = [...new Set(results.map((r) => r.runs.length))].sort((a, b) => a - b);
  if (counts.length === 1 && counts[0] === 1) return 'One run';
  return `Medians of ${counts.join(' or ')} runs`;
}

/** One `## section` per section, in the order the cases were registered. */
export function renderSections(results: readonly CaseResult[]): string {
  return [...new Set(results.map((r) => r.case.section))]
    .map((section) => {
      const own = results.filter((r) => r.case.section === section);
      const notes = [
        `${runsSentence(own)}; ±spread is half the range of the runs, relative to the median.`,
        ...(section.ratios.length === 0
          ? []
          : [
              'A × column compares the median with the case it names, in the same group, so that above 1 is ' +
                'better than that case (for CPU per record, that case divided by this one).',
            ]),
      ];
      return [
        `## ${section.title}`,
        '',
        section.about,
        '',
        notes.join(' '),
        '',
        sectionTable(section, own),
      ].join('\n');
    })
    .join('\n\n');
}
