/**
 * The report of an ablation study: `study.md` with one Table-1-style table
 * per probe protocol (rows = configurations, columns = data sets + average),
 * a grouped bar chart like the paper's Figure 2 (hand-written SVG, and a PNG
 * rasterised with imagescript), every run's loss curve on one SVG plot, and
 * the run metadata; `study.json` holds the same numbers.
 *
 * @module
 */
import { Image } from "imagescript";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import type { StudyResult } from "./study.ts";
import type { StepMetrics } from "./pretrain.ts";

/** A probe protocol of the study tables. */
export type StudyProtocol = "baseline" | "sweep" | "sweepTta" | "knn";

/** Every protocol, in table order, with its heading. */
export const STUDY_PROTOCOLS: readonly {
  key: StudyProtocol;
  label: string;
}[] = Object.freeze([
  { key: "baseline", label: "Baseline probe (fixed lr/wd, centre crop)" },
  { key: "sweep", label: "Sweep (selected on validation, centre crop)" },
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

function pct(x: number | null): string {
  return x === null ? "–" : (100 * x).toFixed(1);
}

/**
 * A table as Markdown (accuracies in percent, the best average in bold).
 *
 * @example
 * ```ts
 * import { formatStudyTable } from "@scaling-vicreg/train/study-report";
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

/** The protocol the figure shows: sweep + TTA when it was run, else sweep. */
function figureProtocol(result: StudyResult): StudyProtocol {
  return result.cells.some((c) => c.report.sweepTta !== null)
    ? "sweepTta"
    : "sweep";
}

const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

function escapeXml(s: string): string {
  return s.replace(
    /[<>&"]/g,
    (ch) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[ch]!,
  );
}

/** Geometry shared by the SVG and PNG bar charts. */
interface BarLayout {
  width: number;
  height: number;
  plot: { x: number; y: number; w: number; h: number };
  bars: { x: number; y: number; w: number; h: number; color: string }[];
  groups: { label: string; x: number }[];
  top: number;
}

function barLayout(table: StudyTable): BarLayout {
  const groups = [...table.columns, "average"];
  const series = table.rows.length;
  const width = Math.max(480, 90 + groups.length * (series * 16 + 30));
  const height = 320;
  const plot = { x: 50, y: 20, w: width - 70, h: height - 80 };
  const values = table.rows.flatMap((r) => [...r.values, r.average]);
  const top = Math.min(
    1,
    Math.max(
      0.1,
      Math.ceil(Math.max(0, ...values.map((v) => v ?? 0)) * 10) / 10,
    ),
  );
  const groupW = plot.w / groups.length;
  const barW = Math.max(4, Math.min(16, (groupW - 20) / series));
  const bars: BarLayout["bars"] = [];
  groups.forEach((_, g) => {
    const start = plot.x + g * groupW + (groupW - barW * series) / 2;
    table.rows.forEach((r, s) => {
      const v = g < table.columns.length ? r.values[g] : r.average;
      if (v === null) return;
      const h = Math.max(1, (v / top) * plot.h);
      bars.push({
        x: start + s * barW,
        y: plot.y + plot.h - h,
        w: barW - 2,
        h,
        color: PALETTE[s % PALETTE.length],
      });
    });
  });
  return {
    width,
    height,
    plot,
    bars,
    groups: groups.map((label, g) => ({
      label,
      x: plot.x + (g + 0.5) * groupW,
    })),
    top,
  };
}

/**
 * A grouped bar chart like the paper's Figure 2, as SVG: one group per data
 * set (and the average), one bar per configuration, top-1 in percent.
 *
 * @param table The table to draw (usually sweep + TTA).
 * @param title The chart's title.
 * @returns SVG text.
 */
export function studyBarChartSvg(table: StudyTable, title: string): string {
  const L = barLayout(table);
  const { plot } = L;
  const f = (x: number) => x.toFixed(1);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${L.width / 2}" y="14" text-anchor="middle" font-size="13">${
      escapeXml(title)
    }</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (L.top * i) / 5;
    const y = plot.y + plot.h - (v / L.top) * plot.h;
    out.push(
      `<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${f(y)}" y2="${
        f(y)
      }" stroke="#ddd"/>`,
      `<text x="${plot.x - 6}" y="${f(y + 4)}" text-anchor="end">${
        (100 * v).toFixed(0)
      }</text>`,
    );
  }
  for (const b of L.bars) {
    out.push(
      `<rect x="${f(b.x)}" y="${f(b.y)}" width="${f(b.w)}" height="${
        f(b.h)
      }" fill="${b.color}"/>`,
    );
  }
  for (const g of L.groups) {
    out.push(
      `<text x="${f(g.x)}" y="${plot.y + plot.h + 16}" text-anchor="middle">${
        escapeXml(g.label)
      }</text>`,
    );
  }
  out.push(
    `<text transform="translate(14 ${
      plot.y + plot.h / 2
    }) rotate(-90)" text-anchor="middle">top-1 (%)</text>`,
  );
  let lx = plot.x;
  table.rows.forEach((r, s) => {
    out.push(
      `<rect x="${lx}" y="${L.height - 26}" width="10" height="10" fill="${
        PALETTE[s % PALETTE.length]
      }"/>`,
      `<text x="${lx + 14}" y="${L.height - 17}">${
        escapeXml(r.configuration)
      }</text>`,
    );
    lx += 24 + 7 * r.configuration.length;
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/**
 * The same bar chart rasterised to PNG (bars, grid lines and a legend of
 * colour swatches in row order; no text, as no font is bundled).
 *
 * @param table The table to draw.
 * @returns PNG bytes.
 */
export async function studyBarChartPng(table: StudyTable): Promise<Uint8Array> {
  const L = barLayout(table);
  const image = new Image(L.width, L.height);
  image.fill(0xffffffff);
  const rgba = (hex: string) => (parseInt(hex.slice(1), 16) * 256 + 255) >>> 0;
  const box = (x: number, y: number, w: number, h: number, color: number) => {
    const x0 = Math.max(1, Math.round(x));
    const y0 = Math.max(1, Math.round(y));
    const w0 = Math.min(L.width - x0, Math.max(1, Math.round(w)));
    const h0 = Math.min(L.height - y0, Math.max(1, Math.round(h)));
    if (w0 > 0 && h0 > 0) image.drawBox(x0, y0, w0, h0, color);
  };
  const { plot } = L;
  for (let i = 0; i <= 5; i++) {
    box(plot.x, plot.y + plot.h - (i / 5) * plot.h, plot.w, 1, 0xddddddff);
  }
  for (const b of L.bars) box(b.x, b.y, b.w, b.h, rgba(b.color));
  box(plot.x, plot.y, 1, plot.h, 0x000000ff);
  box(plot.x, plot.y + plot.h, plot.w, 1, 0x000000ff);
  table.rows.forEach((_, s) => {
    box(plot.x + s * 20, L.height - 26, 10, 10, rgba(PALETTE[s % 10]));
  });
  return await image.encode();
}

/** One run's loss curve. */
export interface LossCurve {
  /** The configuration. */
  name: string;
  /** `[step, loss]` pairs. */
  points: [number, number][];
}

/**
 * Every run's total training loss against the step, on one SVG plot.
 *
 * @param curves The curves.
 * @param title The plot's title.
 * @returns SVG text.
 */
export function lossCurvesSvg(
  curves: readonly LossCurve[],
  title: string,
): string {
  const width = 560, height = 340;
  const plot = { x: 60, y: 24, w: width - 180, h: height - 70 };
  const all = curves.flatMap((c) => c.points);
  const maxStep = Math.max(1, ...all.map((p) => p[0]));
  const losses = all.map((p) => p[1]).filter(Number.isFinite);
  let lo = losses.length ? Math.min(...losses) : 0;
  let hi = losses.length ? Math.max(...losses) : 1;
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  const sx = (s: number) => plot.x + (s / maxStep) * plot.w;
  const sy = (v: number) => plot.y + plot.h - ((v - lo) / (hi - lo)) * plot.h;
  const f = (x: number) => x.toFixed(1);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${
      plot.x + plot.w / 2
    }" y="14" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
    `<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#999"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    out.push(
      `<text x="${plot.x - 6}" y="${f(sy(v) + 4)}" text-anchor="end">${
        v.toPrecision(3)
      }</text>`,
    );
  }
  out.push(
    `<text x="${plot.x}" y="${
      plot.y + plot.h + 16
    }" text-anchor="middle">0</text>`,
    `<text x="${plot.x + plot.w}" y="${
      plot.y + plot.h + 16
    }" text-anchor="middle">${maxStep}</text>`,
    `<text x="${plot.x + plot.w / 2}" y="${
      plot.y + plot.h + 32
    }" text-anchor="middle">step</text>`,
  );
  curves.forEach((c, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = c.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length > 0) {
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${
          pts.map(([s, v]) => `${f(sx(s))},${f(sy(v))}`).join(" ")
        }"/>`,
      );
    }
    const y = plot.y + 10 + i * 16;
    out.push(
      `<rect x="${plot.x + plot.w + 12}" y="${
        y - 8
      }" width="10" height="10" fill="${color}"/>`,
      `<text x="${plot.x + plot.w + 26}" y="${y + 1}">${
        escapeXml(c.name)
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/**
 * The Markdown of `study.md`: setup, one table per protocol, the figures,
 * notes and the run metadata.
 *
 * @param result The study result.
 * @returns Markdown text.
 */
export function formatStudyMarkdown(result: StudyResult): string {
  const { study } = result;
  const b = study.budget;
  const lines = [
    `# ${study.title}`,
    "",
    `Status: **${result.status}**. Every configuration was pretrained with the same budget and seed: ${b.epochs} epoch(s)${
      b.maxSteps > 0 ? `, at most ${b.maxSteps} steps` : ""
    }, batch ${b.batchSize}, ${b.size} px crops, seed ${b.seed}, on \`${study.pretrainData}\`. Probes: ${study.probe.trials} sweep trials scored on a validation split of each training set (the test split is used once, by the selected probe), ≤ ${study.probe.maxEpochs} epochs, baseline ${study.probe.baselineEpochs} epochs${
      study.probe.tta ? ", 10-crop TTA" : ""
    }. Numbers are top-1 accuracy (%) on each data set's test split.`,
    "",
    "Data sets:",
    "",
    ...study.downstream.map((d) =>
      `- **${d.name}**: \`${d.data}\`${d.kind ? ` (${d.kind})` : ""}${
        d.data === "procedural"
          ? `, seed ${d.seed}, ${d.trainImages} train / ${d.testImages} test images of ${d.imageSize} px`
          : ""
      }`
    ),
    "",
    "Configurations:",
    "",
    ...study.configurations.map((c) =>
      `- **${c.name}**: ${c.description}${
        Object.keys(c.flags).length
          ? ` — \`${
            Object.entries(c.flags).map(([k, v]) => `--${k} ${v}`).join(" ")
          }\``
          : ""
      }`
    ),
  ];
  for (const p of STUDY_PROTOCOLS) {
    const table = studyTable(result, p.key);
    if (table.rows.every((r) => r.values.every((v) => v === null))) continue;
    lines.push("", `## ${p.label}`, "", formatStudyTable(table));
  }
  lines.push(
    "",
    "## Figures",
    "",
    `![Top-1 per data set and configuration](figure.svg)`,
    "",
    `(\`figure.png\` is the same chart without text; bars in configuration order.)`,
    "",
    `![Training loss of every run](loss.svg)`,
    "",
    "The loss curves show the total logged loss (VICReg, plus α × the local loss where it is used), so runs with the local loss sit higher.",
  );
  if (study.notes.length) {
    lines.push("", "## Notes", "", ...study.notes.map((n) => `- ${n}`));
  }
  lines.push(
    "",
    "## Runs",
    "",
    `Commit \`${
      result.commit ?? "unknown"
    }\`, backend ${result.backend}, this invocation ${
      result.wallSeconds.toFixed(0)
    } s.`,
    "",
    "| configuration | arch | steps | pretrain time (s) | images/s | final loss | sessions |",
    "|---|---|--:|--:|--:|--:|--:|",
    ...result.runs.map((r) =>
      `| ${r.configuration} | ${r.arch} | ${r.steps} | ${
        r.wallSeconds.toFixed(0)
      } | ${r.imagesPerSecond.toFixed(1)} | ${
        r.finalLoss?.toFixed(3) ?? "–"
      } | ${r.sessions} |`
    ),
    "",
    "| configuration | data set | probe time (s) | selected probe (validation top-1) |",
    "|---|---|--:|---|",
    ...result.cells.map((c) => {
      const t = c.report.trials[c.report.bestTrial];
      return `| ${c.configuration} | ${c.dataset} | ${
        c.seconds.toFixed(0)
      } | ${c.report.best.optimizer}, ${c.report.best.scheduler}, lr ${
        c.report.best.lr.toPrecision(2)
      }, wd ${
        c.report.best.weightDecay.toPrecision(2)
      }, ${c.report.best.epochs} ep (${pct(t?.validationTop1 ?? null)}) |`;
    }),
  );
  return lines.join("\n") + "\n";
}

/**
 * The machine-readable report (`study.json`): the study, the metadata, every
 * table and every cell's headline numbers and sweep trials.
 *
 * @param result The study result.
 * @returns A JSON-serialisable object.
 */
export function studyJson(result: StudyResult): Record<string, unknown> {
  return {
    status: result.status,
    commit: result.commit,
    backend: result.backend,
    wallSeconds: result.wallSeconds,
    study: result.study,
    tables: Object.fromEntries(
      STUDY_PROTOCOLS.map((p) => [p.key, studyTable(result, p.key)]),
    ),
    runs: result.runs,
    cells: result.cells.map((c) => ({
      configuration: c.configuration,
      dataset: c.dataset,
      seconds: c.seconds,
      baseline: c.report.baseline,
      sweep: c.report.sweep,
      sweepTta: c.report.sweepTta,
      knn: c.report.knn,
      best: c.report.best,
      bestTrial: c.report.bestTrial,
      trials: c.report.trials,
    })),
  };
}

/**
 * Writes `study.md`, `study.json`, `figure.svg`, `figure.png` and `loss.svg`
 * to the study's directory (each atomically), reading each run's
 * `metrics.jsonl` for the loss curves.
 *
 * @param dir The study's output directory.
 * @param result The study result.
 * @returns The paths written.
 */
export async function writeStudyReport(
  dir: string,
  result: StudyResult,
): Promise<string[]> {
  const table = studyTable(result, figureProtocol(result));
  const label = STUDY_PROTOCOLS.find((p) => p.key === table.protocol)!.label;
  const curves: LossCurve[] = [];
  for (const r of result.runs) {
    const metrics = await readMetrics(
      `${result.study.out}/runs/${r.configuration}`,
    );
    curves.push({
      name: r.configuration,
      points: metrics.map((m) => [m.step, m.loss]),
    });
  }
  const files: [string, string | Uint8Array][] = [
    ["study.md", formatStudyMarkdown(result)],
    ["study.json", JSON.stringify(studyJson(result), null, 2) + "\n"],
    ["figure.svg", studyBarChartSvg(table, `Top-1 (%) — ${label}`)],
    ["figure.png", await studyBarChartPng(table)],
    ["loss.svg", lossCurvesSvg(curves, "Training loss")],
  ];
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, data] of files) {
    await writeFileAtomic(`${dir}/${name}`, data);
  }
  return files.map(([name]) => `${dir}/${name}`);
}

/**
 * The logged steps of a run directory's `metrics.jsonl` (empty when absent),
 * without its event lines.
 *
 * @param dir The run directory.
 * @returns One entry per logged step.
 */
export async function readMetrics(dir: string): Promise<StepMetrics[]> {
  let body: string;
  try {
    body = await Deno.readTextFile(`${dir}/metrics.jsonl`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  // Event lines (`{"event": "config-change", …}`) are not steps.
  return body.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
    .filter((m) => m.event === undefined);
}
