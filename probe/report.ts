/**
 * The probe report a person reads: `report.md` (headline table, the gain
 * the sweep and TTA bring, and which features every split got),
 * `report.json`, and two hand-written SVG plots.
 *
 * @module
 */
import type { KnnResult } from "./knn.ts";
import type { ClassificationMetrics } from "./metrics.ts";
import type {
  BaselineResult,
  ProbeHyperparams,
  SweepResult,
  SweepTrial,
} from "./sweep.ts";
import { escapeXml, percent, svgOpen } from "./svg.ts";

/** The headline numbers of one probe, as fractions in [0, 1]. */
export interface ReportMetrics {
  /** Top-1 accuracy. */
  top1: number;
  /** Top-5 accuracy. */
  top5: number;
  /** Mean per-class accuracy. */
  perClassAccuracy: number;
}

/** The kNN numbers of a report. */
export interface ReportKnn {
  /** Top-1 accuracy in [0, 1]. */
  top1: number;
  /** Top-5 accuracy in [0, 1]. */
  top5: number;
  /** Neighbours. */
  k: number;
  /** Vote temperature. */
  temperature: number;
}

/**
 * Which splits the TTA row takes 10-crop features for: `"all"` (train,
 * validation and test, as the paper's `create_submission_linear_tta.py`) or
 * `"test"` (fitted and selected on single-view features, tested on 10-crop
 * ones: a train/test shift, for comparison only).
 */
export type TtaSplits = "all" | "test";

/** The TTA sweep of a report with `ttaOn: "all"`: its own trials and selection. */
export interface ReportTtaSweep {
  /** The selected hyper-parameters (on 10-crop validation features). */
  best: ProbeHyperparams;
  /** Index of the selected trial. */
  bestTrial: number;
  /** Every trial, scored on the 10-crop validation features. */
  trials: SweepTrial[];
}

/** The features one probe row gives each split (`"none"` where it has no such split). */
export interface ReportSplits {
  /** The row, as in the headline table. */
  probe: string;
  /** Features the classifier is fitted on (the training split, then all of train). */
  train: string;
  /** Features the sweep's trials are scored on for selection. */
  validation: string;
  /** Features of the test split (used once). */
  test: string;
}

/** What the report's feature names stand for. */
export interface ReportTransforms {
  /** The single-view features (e.g. the eval transform). */
  plain: string;
  /** The 10-crop mean features. */
  tta: string;
}

/** Everything {@linkcode writeReport} writes (also the shape of `report.json`). */
export interface ProbeReport {
  /** Heading of `report.md`. */
  title: string;
  /** Free-form facts shown under "Setup" (weights, data, backend, sizes…). */
  meta: Record<string, string | number | boolean>;
  /** Fixed-hyper-parameter probe on single-view features. */
  baseline: ReportMetrics;
  /** Hyper-parameters of the baseline. */
  baselineParams: ProbeHyperparams;
  /** The swept probe on single-view features. */
  sweep: ReportMetrics;
  /** The swept probe with 10-crop TTA (see `ttaOn`), or `null` when not run. */
  sweepTta: ReportMetrics | null;
  /** Which splits the TTA row took 10-crop features for, or `null` without TTA. */
  ttaOn: TtaSplits | null;
  /** The TTA row's own sweep when `ttaOn` is `"all"`, else `null`. */
  ttaSweep: ReportTtaSweep | null;
  /** The features every row gives train, validation and test. */
  splits: ReportSplits[];
  /** What the feature names in `splits` stand for. */
  transforms: ReportTransforms;
  /** kNN accuracy, or `null` when not run. */
  knn: ReportKnn | null;
  /** The selected hyper-parameters. */
  best: ProbeHyperparams;
  /** Index of the selected trial. */
  bestTrial: number;
  /** Every trial of the sweep. */
  trials: SweepTrial[];
  /** Confusion matrix `[C, C]` of the final (TTA if run, else sweep) probe on test. */
  confusion: number[][];
}

/** Inputs of {@linkcode makeProbeReport}. */
export interface MakeProbeReportInput {
  /** The baseline run. */
  baseline: BaselineResult;
  /** The sweep run. */
  sweep: SweepResult;
  /**
   * The sweep on 10-crop features of train and test (`ttaOn: "all"`, the
   * paper's protocol); exclusive with `ttaSet`.
   */
  ttaSweep?: SweepResult;
  /**
   * Name of a 10-crop test set in `sweep.extra` (`ttaOn: "test"`: the
   * plain-feature classifier applied to 10-crop test features); exclusive
   * with `ttaSweep`.
   */
  ttaSet?: string;
  /** What produced the features. @default {DEFAULT_REPORT_TRANSFORMS} */
  transforms?: ReportTransforms;
  /** A kNN result. */
  knn?: KnnResult;
  /** Heading. @default {"Linear probe"} */
  title?: string;
  /** Setup facts. @default {{}} */
  meta?: Record<string, string | number | boolean>;
}

/** The default {@linkcode ReportTransforms}: the eval transform and the paper's 10-crop mean. */
export const DEFAULT_REPORT_TRANSFORMS: Readonly<ReportTransforms> = Object
  .freeze({
    plain: "the eval transform (bicubic resize to size × size)",
    tta:
      "bicubic resize to ⌊size / 0.875⌋², the four corner and centre crops of size × size and their mirror images, the mean of the ten feature vectors",
  });

const PLAIN = "single view";
const TEN_CROP = "10-crop mean";

/** The headline name of the TTA row. */
function ttaRowName(ttaOn: TtaSplits): string {
  return ttaOn === "all"
    ? "sweep + 10-crop TTA"
    : "sweep + 10-crop TTA (test split only)";
}

/**
 * The features each probe row of a report gives the train, validation and
 * test splits (`"single view"`, `"10-crop mean"` or `"none"`).
 *
 * @param report The rows it has: TTA (and on which splits), kNN.
 * @returns One entry per row, in headline order.
 *
 * @example
 * ```ts
 * import { reportSplits } from "@scaling-vicreg/probe/report";
 * reportSplits({ trials: [], ttaOn: "all", knn: null })[2];
 * // { probe: "sweep + 10-crop TTA", train: "10-crop mean", validation: "10-crop mean", test: "10-crop mean" }
 * ```
 */
export function reportSplits(
  report: Pick<ProbeReport, "trials" | "ttaOn" | "knn">,
): ReportSplits[] {
  const out: ReportSplits[] = [
    { probe: "baseline", train: PLAIN, validation: "none", test: PLAIN },
    {
      probe: `sweep (${report.trials.length} trials)`,
      train: PLAIN,
      validation: PLAIN,
      test: PLAIN,
    },
  ];
  if (report.ttaOn === "all") {
    out.push({
      probe: ttaRowName("all"),
      train: TEN_CROP,
      validation: TEN_CROP,
      test: TEN_CROP,
    });
  } else if (report.ttaOn === "test") {
    out.push({
      probe: ttaRowName("test"),
      train: PLAIN,
      validation: PLAIN,
      test: TEN_CROP,
    });
  }
  if (report.knn) {
    out.push({
      probe: `kNN (k=${report.knn.k}, T=${report.knn.temperature})`,
      train: PLAIN,
      validation: "none",
      test: PLAIN,
    });
  }
  return out;
}

function headline(m: ClassificationMetrics): ReportMetrics {
  return {
    top1: m.top1,
    top5: m.top5,
    perClassAccuracy: m.perClassAccuracy,
  };
}

/**
 * Assembles a {@linkcode ProbeReport} from a baseline, a sweep, the TTA row
 * (a sweep on 10-crop features, or the name of a 10-crop test set in
 * `sweep.extra`) and an optional kNN result.
 *
 * @param input The runs; see {@linkcode MakeProbeReportInput}.
 * @returns The report.
 *
 * @example
 * ```ts ignore
 * const report = makeProbeReport({ baseline, sweep: swept, ttaSet: "tta", knn });
 * await writeReport("runs/probe", report);
 * ```
 */
export function makeProbeReport(input: MakeProbeReportInput): ProbeReport {
  const { baseline, sweep, ttaSet, ttaSweep, knn } = input;
  if (ttaSet !== undefined && ttaSweep !== undefined) {
    throw new TypeError(
      "Expected one of ttaSweep (10-crop features on every split) and ttaSet (10-crop test features only): received both",
    );
  }
  let tta: ClassificationMetrics | null = ttaSweep?.test ?? null;
  if (ttaSet !== undefined) {
    tta = sweep.extra[ttaSet] ?? null;
    if (tta === null) {
      throw new RangeError(
        `Expected sweep.extra to hold the TTA set "${ttaSet}": it has ${
          Object.keys(sweep.extra).join(", ") || "none"
        }`,
      );
    }
  }
  const ttaOn: TtaSplits | null = ttaSweep !== undefined
    ? "all"
    : ttaSet !== undefined
    ? "test"
    : null;
  const reportKnn = knn
    ? {
      top1: knn.top1,
      top5: knn.top5,
      k: knn.k,
      temperature: knn.temperature,
    }
    : null;
  return {
    title: input.title ?? "Linear probe",
    meta: input.meta ?? {},
    baseline: headline(baseline.test),
    baselineParams: baseline.params,
    sweep: headline(sweep.test),
    sweepTta: tta ? headline(tta) : null,
    ttaOn,
    ttaSweep: ttaSweep
      ? {
        best: ttaSweep.best,
        bestTrial: ttaSweep.bestTrial,
        trials: ttaSweep.trials,
      }
      : null,
    splits: reportSplits({ trials: sweep.trials, ttaOn, knn: reportKnn }),
    transforms: { ...(input.transforms ?? DEFAULT_REPORT_TRANSFORMS) },
    knn: reportKnn,
    best: sweep.best,
    bestTrial: sweep.bestTrial,
    trials: sweep.trials,
    confusion: (tta ?? sweep.test).confusion,
  };
}

/** Percent with two decimals: 0.1234 → "12.34". */
function pct(x: number): string {
  return percent(x, 2);
}

/** Signed points: 0.0512 → "+5.12". */
function points(x: number): string {
  const p = 100 * x;
  return `${p >= 0 ? "+" : "−"}${Math.abs(p).toFixed(2)}`;
}

interface Row {
  name: string;
  metrics: ReportMetrics | ReportKnn;
  perClass: boolean;
  gain: number | null;
}

function rows(report: ProbeReport): Row[] {
  const out: Row[] = [
    { name: "baseline", metrics: report.baseline, perClass: true, gain: null },
    {
      name: `sweep (${report.trials.length} trials)`,
      metrics: report.sweep,
      perClass: true,
      gain: report.sweep.top1 - report.baseline.top1,
    },
  ];
  if (report.sweepTta) {
    out.push({
      name: ttaRowName(report.ttaOn ?? "test"),
      metrics: report.sweepTta,
      perClass: true,
      gain: report.sweepTta.top1 - report.baseline.top1,
    });
  }
  if (report.knn) {
    out.push({
      name: `kNN (k=${report.knn.k}, T=${report.knn.temperature})`,
      metrics: report.knn,
      perClass: false,
      gain: null,
    });
  }
  return out;
}

/** The gains in top-1 accuracy (fractions) the sweep and TTA bring. */
export interface ReportGains {
  /** sweep − baseline. */
  sweep: number;
  /** (sweep + TTA) − sweep, or `null` without TTA. */
  tta: number | null;
  /** best of sweep / sweep + TTA − baseline. */
  total: number;
}

/**
 * The top-1 gains of a report: sweep over baseline, TTA over sweep, and total.
 *
 * @param report The report.
 * @returns The gains as fractions (×100 for points).
 *
 * @example
 * ```ts ignore
 * reportGains(report).total; // e.g. 0.12 = +12 points
 * ```
 */
export function reportGains(report: ProbeReport): ReportGains {
  const sweep = report.sweep.top1 - report.baseline.top1;
  const tta = report.sweepTta ? report.sweepTta.top1 - report.sweep.top1 : null;
  return { sweep, tta, total: sweep + (tta ?? 0) };
}

/**
 * The headline table as monospaced text for a terminal: one row per probe
 * (baseline, sweep, sweep + TTA, kNN) with top-1, top-5, per-class accuracy
 * (percent) and the top-1 gain over the baseline in points.
 *
 * @param report The report.
 * @returns Lines joined by `\n` (no trailing newline).
 *
 * @example
 * ```ts ignore
 * console.log(formatHeadline(report));
 * // probe                 top-1   top-5  per-class  Δ top-1
 * // baseline              61.20   85.00      60.10        —
 * // ...
 * ```
 */
export function formatHeadline(report: ProbeReport): string {
  const table = [
    ["probe", "top-1", "top-5", "per-class", "Δ top-1"],
    ...rows(report).map((r) => [
      r.name,
      pct(r.metrics.top1),
      pct(r.metrics.top5),
      r.perClass ? pct((r.metrics as ReportMetrics).perClassAccuracy) : "—",
      r.gain === null ? "—" : points(r.gain),
    ]),
  ];
  const widths = table[0].map((_, c) =>
    Math.max(...table.map((row) => row[c].length))
  );
  const lines = table.map((row) =>
    row.map((cell, c) =>
      c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])
    )
      .join("  ")
  );
  const g = reportGains(report);
  lines.push(
    `gain in top-1: sweep ${points(g.sweep)} pts${
      g.tta === null ? "" : `, TTA ${points(g.tta)} pts`
    }, total ${points(g.total)} pts`,
  );
  return lines.join("\n");
}

function escapeMd(text: string): string {
  return text.replace(/\|/g, "\\|");
}

/** Colours of the optimizers in the sweep scatter. */
const OPTIMIZER_COLOURS: Record<string, string> = {
  sgd: "#1f77b4",
  adamw: "#d62728",
};

/**
 * The accuracy bar chart: one bar (top-1, percent) per probe — baseline,
 * sweep, and sweep + TTA when present — as an SVG document.
 *
 * @param report The report.
 * @returns SVG text; bars are `<rect class="bar">`.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("accuracy.svg", accuracySvg(report));
 * ```
 */
export function accuracySvg(report: ProbeReport): string {
  const bars: [string, number][] = [
    ["baseline", report.baseline.top1],
    ["sweep", report.sweep.top1],
  ];
  if (report.sweepTta) {
    bars.push([
      report.ttaOn === "all" ? "sweep + TTA" : "TTA (test only)",
      report.sweepTta.top1,
    ]);
  }
  const [w, h, left, bottom, top] = [420, 280, 50, 40, 30];
  const plotH = h - bottom - top;
  const slot = (w - left - 20) / bars.length;
  const parts: string[] = [
    svgOpen(w, h, { viewBox: true }),
    `<title>${escapeXml(report.title)}: top-1 accuracy</title>`,
    `<text x="${
      w / 2
    }" y="18" text-anchor="middle" font-size="14">Top-1 accuracy (%)</text>`,
  ];
  for (const tick of [0, 25, 50, 75, 100]) {
    const y = top + plotH * (1 - tick / 100);
    parts.push(
      `<line x1="${left}" x2="${w - 20}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${tick}</text>`,
    );
  }
  const colours = ["#999999", "#1f77b4", "#2ca02c"];
  bars.forEach(([label, value], i) => {
    const bh = plotH * Math.max(0, Math.min(1, value));
    const x = left + i * slot + slot * 0.2;
    const y = top + plotH - bh;
    parts.push(
      `<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${
        (slot * 0.6).toFixed(1)
      }" height="${bh.toFixed(1)}" fill="${colours[i]}"/>`,
      `<text x="${(x + slot * 0.3).toFixed(1)}" y="${
        (y - 4).toFixed(1)
      }" text-anchor="middle">${pct(value)}</text>`,
      `<text x="${(x + slot * 0.3).toFixed(1)}" y="${
        h - bottom + 16
      }" text-anchor="middle">${escapeXml(label)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/**
 * The sweep scatter: each trial's learning rate (log x axis) against its
 * validation top-1 (percent), coloured by optimizer, the selected trial
 * ringed, as an SVG document.
 *
 * @param report The report.
 * @returns SVG text; trials are `<circle class="trial">`.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("sweep.svg", sweepSvg(report));
 * ```
 */
export function sweepSvg(report: ProbeReport): string {
  const [w, h, left, bottom, top, right] = [480, 320, 55, 45, 30, 110];
  const plotW = w - left - right, plotH = h - bottom - top;
  const lrs = report.trials.map((t) => Math.log10(t.params.lr));
  let lo = Math.floor(Math.min(-4, ...lrs));
  let hi = Math.ceil(Math.max(-1, ...lrs));
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const xOf = (lr: number) => left + plotW * (Math.log10(lr) - lo) / (hi - lo);
  const yOf = (acc: number) => top + plotH * (1 - acc);
  const parts: string[] = [
    svgOpen(w, h, { viewBox: true }),
    `<title>${escapeXml(report.title)}: sweep trials</title>`,
    `<text x="${
      left + plotW / 2
    }" y="18" text-anchor="middle" font-size="14">Sweep: validation top-1 (%) vs learning rate</text>`,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const x = left + plotW * (e - lo) / (hi - lo);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${top}" y2="${
        top + plotH
      }" stroke="#eee"/>`,
      `<text x="${x}" y="${
        top + plotH + 16
      }" text-anchor="middle">1e${e}</text>`,
    );
  }
  for (const tick of [0, 25, 50, 75, 100]) {
    const y = yOf(tick / 100);
    parts.push(
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${tick}</text>`,
    );
  }
  parts.push(
    `<text x="${left + plotW / 2}" y="${
      h - 8
    }" text-anchor="middle">learning rate (log scale)</text>`,
  );
  for (const t of report.trials) {
    const x = xOf(t.params.lr).toFixed(1), y = yOf(t.validationTop1).toFixed(1);
    const colour = OPTIMIZER_COLOURS[t.params.optimizer] ?? "#333";
    parts.push(
      `<circle class="trial" cx="${x}" cy="${y}" r="4" fill="${colour}" fill-opacity="0.8"><title>#${t.index} ${t.params.optimizer} ${t.params.scheduler} lr=${
        t.params.lr.toExponential(2)
      } wd=${
        t.params.weightDecay.toExponential(2)
      } epochs=${t.params.epochs}: ${pct(t.validationTop1)}%</title></circle>`,
    );
    if (t.index === report.bestTrial) {
      parts.push(
        `<circle class="best" cx="${x}" cy="${y}" r="8" fill="none" stroke="#000"/>`,
      );
    }
  }
  let ly = top + 10;
  for (const [name, colour] of Object.entries(OPTIMIZER_COLOURS)) {
    parts.push(
      `<circle cx="${w - right + 20}" cy="${ly}" r="4" fill="${colour}"/>`,
      `<text x="${w - right + 30}" y="${ly + 4}">${name}</text>`,
    );
    ly += 18;
  }
  parts.push(
    `<circle cx="${
      w - right + 20
    }" cy="${ly}" r="8" fill="none" stroke="#000"/>`,
    `<text x="${w - right + 32}" y="${ly + 4}">selected</text>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

function trialTable(trials: SweepTrial[], bestTrial: number): string[] {
  return [
    "| # | optimizer | scheduler | lr | weight decay | epochs | val top-1 | val top-5 | seconds |",
    "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ...trials.map((t) =>
      `| ${t.index}${
        t.index === bestTrial ? " ★" : ""
      } | ${t.params.optimizer} | ${t.params.scheduler} | ${
        t.params.lr.toExponential(2)
      } | ${t.params.weightDecay.toExponential(2)} | ${t.params.epochs} | ${
        pct(t.validationTop1)
      } | ${pct(t.validationTop5)} | ${t.seconds.toFixed(2)} |`
    ),
  ];
}

/**
 * The Markdown report: headline table, gains, the features of each split,
 * selected hyper-parameters,
 * every trial, the setup, and links to the two plots.
 *
 * @param report The report.
 * @returns Markdown text.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("report.md", reportMarkdown(report));
 * ```
 */
export function reportMarkdown(report: ProbeReport): string {
  const g = reportGains(report);
  const lines: string[] = [
    `# ${report.title}`,
    "",
    "Accuracies in percent on the test split; Δ is the top-1 gain over the baseline in points.",
    "",
    "| probe | top-1 | top-5 | per-class | Δ top-1 |",
    "|---|---:|---:|---:|---:|",
    ...rows(report).map((r) =>
      `| ${escapeMd(r.name)} | ${pct(r.metrics.top1)} | ${
        pct(r.metrics.top5)
      } | ${
        r.perClass ? pct((r.metrics as ReportMetrics).perClassAccuracy) : "—"
      } | ${r.gain === null ? "—" : points(r.gain)} |`
    ),
    "",
    `**Gain in top-1:** sweep ${points(g.sweep)} points${
      g.tta === null ? "" : `, 10-crop TTA ${points(g.tta)} points`
    }, total ${points(g.total)} points over the baseline.`,
    "",
    "![Top-1 accuracy: baseline vs sweep vs sweep + TTA](accuracy.svg)",
    "",
    "## Features of each split",
    "",
    "The classifier is fitted on the train features (the training split during the sweep, then all of train), the sweep's trials are scored on the validation features (a stratified split held out from train) to select one, and the test features are used once.",
    "",
    "| probe | train (fit) | validation (selection) | test |",
    "|---|---|---|---|",
    ...report.splits.map((r) =>
      `| ${escapeMd(r.probe)} | ${r.train} | ${r.validation} | ${r.test} |`
    ),
    "",
    `- **${PLAIN}:** ${escapeMd(report.transforms.plain)}`,
    ...(report.ttaOn === null
      ? []
      : [`- **${TEN_CROP}:** ${escapeMd(report.transforms.tta)}`]),
    ...(report.ttaOn === "test"
      ? [
        "",
        "The TTA row is the **test-only variant**: its classifier was fitted and selected on single-view features and applied to 10-crop test features, a train/test distribution shift. The paper's protocol (`--tta-on all`) uses 10-crop features on every split.",
      ]
      : []),
    "",
    "## Hyper-parameters",
    "",
    "| probe | optimizer | scheduler | lr | weight decay | epochs |",
    "|---|---|---|---:|---:|---:|",
    ...([
      ["baseline", report.baselineParams],
      [`selected (trial #${report.bestTrial})`, report.best],
      ...(report.ttaSweep
        ? [[
          `selected with 10-crop TTA (trial #${report.ttaSweep.bestTrial})`,
          report.ttaSweep.best,
        ]]
        : []),
    ] as [string, ProbeHyperparams][]).map(([name, p]) =>
      `| ${name} | ${p.optimizer} | ${p.scheduler} | ${
        p.lr.toExponential(2)
      } | ${p.weightDecay.toExponential(2)} | ${p.epochs} |`
    ),
    "",
    "## Sweep trials",
    "",
    "Each trial is trained on the training split and scored on a stratified validation split held out from the training set; the test split is used once, for the selected trial.",
    "",
    "![Sweep: validation top-1 vs learning rate](sweep.svg)",
    "",
    ...trialTable(report.trials, report.bestTrial),
    "",
  ];
  if (report.ttaSweep) {
    lines.push(
      "## Sweep trials with 10-crop TTA",
      "",
      "The same trials (same validation rows, same hyper-parameters), fitted and scored on 10-crop mean features.",
      "",
      ...trialTable(report.ttaSweep.trials, report.ttaSweep.bestTrial),
      "",
    );
  }
  const meta = Object.entries(report.meta);
  if (meta.length > 0) {
    lines.push(
      "## Setup",
      "",
      ...meta.map(([k, v]) => `- **${escapeMd(k)}:** ${escapeMd(String(v))}`),
      "",
    );
  }
  return lines.join("\n");
}

/**
 * Writes `report.md`, `report.json`, `accuracy.svg` and `sweep.svg` into
 * `dir` (created if missing).
 *
 * @param dir The output directory.
 * @param report The report.
 * @returns Resolves when all four files are written.
 *
 * @example
 * ```ts ignore
 * await writeReport("runs/probe", report);
 * ```
 */
export async function writeReport(
  dir: string,
  report: ProbeReport,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const json = { ...report, gains: reportGains(report) };
  await Promise.all([
    Deno.writeTextFile(`${dir}/report.md`, reportMarkdown(report)),
    Deno.writeTextFile(
      `${dir}/report.json`,
      JSON.stringify(json, null, 2) + "\n",
    ),
    Deno.writeTextFile(`${dir}/accuracy.svg`, accuracySvg(report)),
    Deno.writeTextFile(`${dir}/sweep.svg`, sweepSvg(report)),
  ]);
}

/**
 * Reads a `report.json` written by {@linkcode writeReport} (to re-render it).
 * A report written before `ttaOn` existed had its TTA row on the test split
 * only, and is read as such.
 *
 * @param path The `report.json` file, or the directory holding it.
 * @returns The report.
 *
 * @example
 * ```ts ignore
 * const report = await readReport("runs/probe");
 * console.log(formatHeadline(report));
 * ```
 */
export async function readReport(path: string): Promise<ProbeReport> {
  const file = path.endsWith(".json") ? path : `${path}/report.json`;
  const value = JSON.parse(await Deno.readTextFile(file));
  const ok = (m: unknown) =>
    typeof m === "object" && m !== null &&
    typeof (m as ReportMetrics).top1 === "number";
  if (
    !ok(value?.baseline) || !ok(value?.sweep) || !Array.isArray(value?.trials)
  ) {
    throw new TypeError(
      `Expected ${file} to be a probe report (baseline, sweep, trials)`,
    );
  }
  delete value.gains;
  value.ttaOn ??= value.sweepTta ? "test" : null;
  value.ttaSweep ??= null;
  value.transforms ??= { ...DEFAULT_REPORT_TRANSFORMS };
  value.splits ??= reportSplits(value);
  return value as ProbeReport;
}
