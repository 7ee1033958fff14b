/**
 * The Table-1-style tables of a study: one per probe protocol, rows =
 * configurations, columns = downstream data sets and their average, top-1
 * accuracy; over several seeds each row's mean ± sample standard deviation,
 * its number of seeds, and whether it is within noise of the best row; and
 * their Markdown.
 *
 * @module
 */
import type { StudyResult } from "./study_result.ts";
import { studySeeds } from "./study_budget.ts";
import {
  compareToBest,
  type NoiseMark,
  noisePairs,
  type SeedSummary,
  summarizeSeeds,
} from "./study_noise.ts";
import { cellPercent as pct } from "./_study_style.ts";

/** A probe protocol of the study tables. */
export type StudyProtocol = "baseline" | "sweep" | "sweepTta" | "knn";

/** Every protocol, in table order, with its heading. */
export const STUDY_PROTOCOLS: readonly {
  key: StudyProtocol;
  label: string;
}[] = Object.freeze([
  { key: "baseline", label: "Baseline probe (fixed lr/wd, single view)" },
  { key: "sweep", label: "Sweep (selected on validation, single view)" },
  { key: "sweepTta", label: "Sweep + 10-crop TTA" },
  { key: "knn", label: "kNN (k = 20, cosine, T = 0.07)" },
]);

/** One seed's numbers in a row of a study table. */
export interface StudySeedValues {
  /** The seed. */
  seed: number;
  /** Top-1 per data set, in column order (`null` where not run). */
  values: (number | null)[];
  /** Mean over the data sets, or `null` when one is missing. */
  average: number | null;
}

/** One row of a study table: top-1 accuracies in [0, 1]. */
export interface StudyTableRow {
  /** The configuration. */
  configuration: string;
  /**
   * Top-1 per data set, in column order (`null` where not run): the mean over
   * the seeds that have the cell.
   */
  values: (number | null)[];
  /**
   * Mean over the data sets, or `null` when one is missing; over several
   * seeds, the mean of the averages of the seeds that have every data set.
   */
  average: number | null;
  /** Each seed that has at least one cell, in seed order. */
  seeds?: StudySeedValues[];
  /** Sample standard deviation over seeds per data set (`null` below 2 seeds). */
  spreads?: (number | null)[];
  /** The per-seed averages summarised (`null` when no seed has every data set). */
  averageSummary?: SeedSummary | null;
  /** How the row's average stands against the best row's (see `compareToBest`). */
  mark?: NoiseMark;
}

/** A Table-1-style table for one protocol. */
export interface StudyTable {
  /** The protocol. */
  protocol: StudyProtocol;
  /** Data set names (columns, before the average). */
  columns: string[];
  /** One row per configuration. */
  rows: StudyTableRow[];
}

/**
 * The table of one protocol: top-1 of every (configuration, seed, data set)
 * cell, each row's mean and sample standard deviation over its seeds per data
 * set and for the average over data sets, and each row marked against the
 * best average (`compareToBest`: within noise when the difference of means is
 * at most the larger standard deviation).
 *
 * @param result The study result.
 * @param protocol Which probe's numbers.
 * @returns The table.
 */
export function studyTable(
  result: StudyResult,
  protocol: StudyProtocol,
): StudyTable {
  const columns = result.study.downstream.map((d) => d.name);
  const first = result.study.budget.seed;
  const rows = result.study.configurations.map((c): StudyTableRow => {
    const seeds = studySeeds(result.study).map((seed): StudySeedValues => {
      const values = columns.map((d) => {
        const cell = result.cells.find((x) =>
          x.configuration === c.name && (x.seed ?? first) === seed &&
          x.dataset === d
        );
        return cell?.report[protocol]?.top1 ?? null;
      });
      return { seed, values, average: mean(values) };
    }).filter((s) => s.values.some((v) => v !== null));
    const present = (j: number) =>
      seeds.map((s) => s.values[j]).filter((v): v is number => v !== null);
    const averages = seeds.map((s) => s.average).filter((v): v is number =>
      v !== null
    );
    const averageSummary = averages.length ? summarizeSeeds(averages) : null;
    return {
      configuration: c.name,
      values: columns.map((_, j) => mean(present(j))),
      average: averageSummary?.mean ?? null,
      seeds,
      spreads: columns.map((_, j) =>
        present(j).length ? summarizeSeeds(present(j)).sd : null
      ),
      averageSummary,
    };
  });
  const marks = compareToBest(rows.map((r) => r.averageSummary ?? null));
  rows.forEach((r, i) => r.mark = marks[i]);
  return { protocol, columns, rows };
}

/** The mean, or `null` for no values or a missing one. */
function mean(values: readonly (number | null)[]): number | null {
  if (values.length === 0 || values.some((v) => v === null)) return null;
  return (values as number[]).reduce((s, v) => s + v, 0) / values.length;
}

/** The most seeds any row's average has (1 for a table without seeds). */
function seedCount(table: StudyTable): number {
  return Math.max(1, ...table.rows.map((r) => r.averageSummary?.n ?? 1));
}

const MARK_TEXT: Record<NoiseMark, string> = {
  "best": "best",
  "within-noise": "within noise",
  "below": "below",
  "unjudged": "–",
};

/**
 * A table as Markdown (accuracies in percent, the best average in bold). Over
 * several seeds each value is `mean ± sample standard deviation`, with the
 * row's number of seeds (`n`), its mark against the best row (`vs best`), and
 * a legend under the table stating the spread, the within-noise rule and the
 * pairs of rows within noise of each other.
 *
 * @example
 * ```ts
 * import { formatStudyTable } from "@scaling-vicreg/experiments/study-table";
 * formatStudyTable({
 *   protocol: "sweep",
 *   columns: ["a", "b"],
 *   rows: [{ configuration: "full", values: [0.5, 0.25], average: 0.375 }],
 * });
 * // "| configuration | a | b | average |\n|---|--:|--:|--:|\n| full | 50.0 | 25.0 | **37.5** |"
 * ```
 *
 * @param table The table.
 * @returns Markdown text.
 */
export function formatStudyTable(table: StudyTable): string {
  const best = Math.max(
    ...table.rows.map((r) => r.average ?? -Infinity),
  );
  if (seedCount(table) > 1) return formatSeedTable(table, best);
  return [
    `| configuration | ${[...table.columns, "average"].join(" | ")} |`,
    `|---|${table.columns.map(() => "--:|").join("")}--:|`,
    ...table.rows.map((r) => {
      const avg = pct(r.average);
      return `| ${r.configuration} | ${r.values.map(pct).join(" | ")} | ${
        r.average !== null && r.average === best ? `**${avg}**` : avg
      } |`;
    }),
  ].join("\n");
}

/** The table over several seeds, with its legend. */
function formatSeedTable(table: StudyTable, best: number): string {
  const withSpread = (x: number | null, sd: number | null | undefined) =>
    x === null
      ? "–"
      : sd === null || sd === undefined
      ? pct(x)
      : `${pct(x)} ± ${pct(sd)}`;
  const ns = table.rows.map((r) => r.averageSummary?.n ?? 0);
  const names = table.rows.map((r) => r.configuration);
  const pairs = noisePairs(table.rows.map((r) => r.averageSummary ?? null));
  const legend = [
    `Each value is the mean ± the sample standard deviation (n − 1) of top-1 over the row's n seeds${
      ns.some((n) => n === 2)
        ? " (with n = 2 the standard deviation is |a − b| / √2, a rough spread)"
        : ""
    }; "average" is the mean over seeds of each seed's average over the data sets.`,
    `Within noise: two rows are within noise of each other when the difference of their mean averages is at most the larger of their two standard deviations. "vs best" marks each row against the best average: "within noise", "below" (the difference is larger), "–" (a single seed: no spread to judge by).`,
    `Pairs within noise of each other (average): ${
      pairs.length
        ? pairs.map(([i, j]) => `${names[i]} ≈ ${names[j]}`).join(", ")
        : "none"
    }.`,
  ];
  return [
    `| configuration | ${
      [...table.columns, "average"].join(" | ")
    } | n | vs best |`,
    `|---|${table.columns.map(() => "--:|").join("")}--:|--:|---|`,
    ...table.rows.map((r, i) => {
      const avg = withSpread(r.average, r.averageSummary?.sd);
      return `| ${r.configuration} | ${
        r.values.map((v, j) => withSpread(v, r.spreads?.[j])).join(" | ")
      } | ${r.average !== null && r.average === best ? `**${avg}**` : avg} | ${
        ns[i]
      } | ${MARK_TEXT[r.mark ?? "unjudged"]} |`;
    }),
    "",
    ...legend,
  ].join("\n");
}
