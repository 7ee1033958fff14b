/**
 * The Table-1-style tables of a study: one per probe protocol, rows =
 * configurations, columns = downstream data sets and their average, top-1
 * accuracy; and their Markdown.
 *
 * @module
 */
import type { StudyResult } from "./study_result.ts";
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

/** One row of a study table: top-1 accuracies in [0, 1]. */
export interface StudyTableRow {
  /** The configuration. */
  configuration: string;
  /** Top-1 per data set, in column order (`null` where not run). */
  values: (number | null)[];
  /** Mean over the data sets, or `null` when one is missing. */
  average: number | null;
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
 * The table of one protocol: top-1 of every (configuration, data set) cell
 * and the row averages.
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
  const rows = result.study.configurations.map((c): StudyTableRow => {
    const values = columns.map((d) => {
      const cell = result.cells.find((x) =>
        x.configuration === c.name && x.dataset === d
      );
      return cell?.report[protocol]?.top1 ?? null;
    });
    const average = values.every((v) => v !== null)
      ? (values as number[]).reduce((s, v) => s + v, 0) / values.length
      : null;
    return { configuration: c.name, values, average };
  });
  return { protocol, columns, rows };
}

/**
 * A table as Markdown (accuracies in percent, the best average in bold).
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
