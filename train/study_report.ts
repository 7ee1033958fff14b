/**
 * The report of an ablation study: `study.md` with one Table-1-style table
 * per probe protocol (rows = configurations, columns = data sets + average),
 * a grouped bar chart like the paper's Figure 2 (hand-written SVG, and a PNG
 * rasterised with imagescript), every run's loss curve on one SVG plot, and
 * the run metadata; `study.json` holds the same numbers. The PNG's text is
 * drawn with the project's bitmap font, and every label is laid out inside
 * the canvas.
 *
 * @module
 */
import { Image } from "./_imagescript.ts";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import {
  drawText,
  GLYPH_HEIGHT,
  svgTextWidth,
  type TextBox,
  textBox,
} from "@scaling-vicreg/probe/figure-text";
import type { StudyResult } from "./study.ts";
import type { StepMetrics } from "./pretrain.ts";

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

/** One label of a figure: its text, anchor point and font size (layout pixels). */
export interface FigureLabel {
  /** The text. */
  text: string;
  /** Anchor column (see `anchor`). */
  x: number;
  /** Top of the text box. */
  y: number;
  /** Font size: the SVG's, and the PNG's glyph height (7 font pixels) ≈ 0.7 of it. */
  size: number;
  /** Where `x` is. */
  anchor: "start" | "middle" | "end";
  /** What the label is, for tests and styling. */
  role: "title" | "axis" | "tick" | "group" | "legend";
}

/** Geometry shared by the SVG and PNG bar charts, in layout pixels. */
export interface BarChartLayout {
  /** Canvas width. */
  width: number;
  /** Canvas height. */
  height: number;
  /** The plot area. */
  plot: { x: number; y: number; w: number; h: number };
  /** One bar per (group, configuration) with a value. */
  bars: { x: number; y: number; w: number; h: number; color: string }[];
  /** Horizontal grid lines (y) with their tick values in percent. */
  ticks: { y: number; label: string }[];
  /** Legend swatches (10 × 10), one per configuration. */
  swatches: { x: number; y: number; color: string }[];
  /** Every text of the chart: title, axis labels, ticks, groups, legend. */
  labels: FigureLabel[];
  /** The value the plot's top stands for, in [0.1, 1]. */
  top: number;
}

const LABEL_SIZE = 11;
const TITLE_SIZE = 14;

/** Width a label may take: the SVG estimate, at least the PNG font's. */
function labelWidth(text: string, size: number): number {
  const png = textBox(text, 0, 0, { scale: pngScale(size) }).width /
    PNG_PIXEL_RATIO;
  return Math.max(svgTextWidth(text, size), png);
}

/** The PNG is drawn at twice the layout's resolution, for legible text. */
const PNG_PIXEL_RATIO = 2;

/** Font pixels per PNG pixel: 5 × 7 glyphs about 0.7 of the font size tall. */
function pngScale(size: number): number {
  return Math.max(1, Math.round((0.7 * size * PNG_PIXEL_RATIO) / 7));
}

/**
 * Lays out the grouped bar chart of a table: title, "top-1 (%)" axis label,
 * plot with grid lines and tick values, one group of bars per data set (and
 * the average) with its name, the x-axis label, and a legend of the
 * configurations that wraps onto more rows rather than leaving the canvas.
 * The canvas grows to fit every label.
 *
 * @param table The table to draw.
 * @param title The chart's title.
 * @returns The layout (SVG and PNG draw the same one).
 *
 * @example
 * ```ts
 * import { studyBarChartLayout } from "@scaling-vicreg/train/study-report";
 * const layout = studyBarChartLayout({
 *   protocol: "sweep",
 *   columns: ["a"],
 *   rows: [{ configuration: "full", values: [0.5], average: 0.5 }],
 * }, "Top-1 (%)");
 * // layout.bars.length = 2 (data set a and the average)
 * ```
 */
export function studyBarChartLayout(
  table: StudyTable,
  title: string,
): BarChartLayout {
  const groups = [...table.columns, "average"];
  const series = Math.max(1, table.rows.length);
  const groupLabelW = Math.max(
    ...groups.map((g) => labelWidth(g, LABEL_SIZE)),
  );
  const groupW = Math.max(series * 16 + 30, groupLabelW + 12);
  const width = Math.ceil(
    Math.max(
      480,
      70 + groups.length * groupW,
      labelWidth(title, TITLE_SIZE) + 20,
    ),
  );
  const labels: FigureLabel[] = [{
    text: title,
    x: width / 2,
    y: 6,
    size: TITLE_SIZE,
    anchor: "middle",
    role: "title",
  }, {
    text: "top-1 (%)",
    x: 8,
    y: 28,
    size: LABEL_SIZE,
    anchor: "start",
    role: "axis",
  }];
  const plot = { x: 50, y: 48, w: width - 70, h: 200 };
  const values = table.rows.flatMap((r) => [...r.values, r.average]);
  const top = Math.min(
    1,
    Math.max(
      0.1,
      Math.ceil(Math.max(0, ...values.map((v) => v ?? 0)) * 10) / 10,
    ),
  );
  const ticks: BarChartLayout["ticks"] = [];
  for (let i = 0; i <= 5; i++) {
    const v = (top * i) / 5;
    const y = plot.y + plot.h - (v / top) * plot.h;
    ticks.push({ y, label: (100 * v).toFixed(0) });
    labels.push({
      text: (100 * v).toFixed(0),
      x: plot.x - 6,
      y: y - LABEL_SIZE / 2,
      size: LABEL_SIZE,
      anchor: "end",
      role: "tick",
    });
  }
  const slot = plot.w / groups.length;
  const barW = Math.max(4, Math.min(16, (slot - 20) / series));
  const bars: BarChartLayout["bars"] = [];
  groups.forEach((label, g) => {
    const start = plot.x + g * slot + (slot - barW * series) / 2;
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
    labels.push({
      text: label,
      x: plot.x + (g + 0.5) * slot,
      y: plot.y + plot.h + 6,
      size: LABEL_SIZE,
      anchor: "middle",
      role: "group",
    });
  });
  labels.push({
    text: "downstream data set (test split)",
    x: plot.x + plot.w / 2,
    y: plot.y + plot.h + 24,
    size: LABEL_SIZE,
    anchor: "middle",
    role: "axis",
  });
  // Legend: swatch, name, gap; a new row when the next item would not fit.
  const swatches: BarChartLayout["swatches"] = [];
  let lx = plot.x, ly = plot.y + plot.h + 46;
  table.rows.forEach((r, s) => {
    const itemW = 14 + labelWidth(r.configuration, LABEL_SIZE);
    if (lx > plot.x && lx + itemW > width - 8) {
      lx = plot.x;
      ly += 18;
    }
    swatches.push({ x: lx, y: ly, color: PALETTE[s % PALETTE.length] });
    labels.push({
      text: r.configuration,
      x: lx + 14,
      y: ly,
      size: LABEL_SIZE,
      anchor: "start",
      role: "legend",
    });
    lx += itemW + 16;
  });
  const height = Math.ceil(ly + 18 + 8);
  return { width, height, plot, bars, ticks, swatches, labels, top };
}

/**
 * A grouped bar chart like the paper's Figure 2, as SVG: one group per data
 * set (and the average), one bar per configuration, top-1 in percent, with
 * title, axis labels and legend (see {@linkcode studyBarChartLayout}).
 *
 * @param table The table to draw (usually sweep + TTA).
 * @param title The chart's title.
 * @returns SVG text.
 */
export function studyBarChartSvg(table: StudyTable, title: string): string {
  const L = studyBarChartLayout(table, title);
  const { plot } = L;
  const f = (x: number) => x.toFixed(1);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" font-family="sans-serif" font-size="${LABEL_SIZE}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  for (const t of L.ticks) {
    out.push(
      `<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${f(t.y)}" y2="${
        f(t.y)
      }" stroke="#ddd"/>`,
    );
  }
  for (const b of L.bars) {
    out.push(
      `<rect x="${f(b.x)}" y="${f(b.y)}" width="${f(b.w)}" height="${
        f(b.h)
      }" fill="${b.color}"/>`,
    );
  }
  for (const w of L.swatches) {
    out.push(
      `<rect x="${f(w.x)}" y="${
        f(w.y)
      }" width="10" height="10" fill="${w.color}"/>`,
    );
  }
  for (const l of L.labels) {
    out.push(
      `<text x="${f(l.x)}" y="${f(l.y + 0.8 * l.size)}"${
        l.anchor === "start" ? "" : ` text-anchor="${l.anchor}"`
      }${l.size === LABEL_SIZE ? "" : ` font-size="${l.size}"`}>${
        escapeXml(l.text)
      }</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/**
 * The same bar chart rasterised to PNG at twice the SVG's resolution, its
 * text drawn with the project's 5 × 7 bitmap font (`@scaling-vicreg/probe`'s
 * `drawText`), so the PNG carries the title, axis labels, tick values, data
 * set names and legend like the SVG.
 *
 * @param table The table to draw.
 * @param title The chart's title.
 * @returns PNG bytes.
 */
export async function studyBarChartPng(
  table: StudyTable,
  title: string,
): Promise<Uint8Array> {
  const L = studyBarChartLayout(table, title);
  const k = PNG_PIXEL_RATIO;
  const image = new Image(L.width * k, L.height * k);
  image.fill(0xffffffff);
  const rgba = (hex: string) => (parseInt(hex.slice(1), 16) * 256 + 255) >>> 0;
  const box = (x: number, y: number, w: number, h: number, color: number) => {
    const x0 = Math.max(1, Math.round(x * k));
    const y0 = Math.max(1, Math.round(y * k));
    const w0 = Math.min(image.width - x0, Math.max(1, Math.round(w * k)));
    const h0 = Math.min(image.height - y0, Math.max(1, Math.round(h * k)));
    if (w0 > 0 && h0 > 0) image.drawBox(x0, y0, w0, h0, color);
  };
  const { plot } = L;
  for (const t of L.ticks) box(plot.x, t.y, plot.w, 0.5, 0xddddddff);
  for (const b of L.bars) box(b.x, b.y, b.w, b.h, rgba(b.color));
  box(plot.x, plot.y, 0.5, plot.h, 0x000000ff);
  box(plot.x, plot.y + plot.h, plot.w, 0.5, 0x000000ff);
  for (const w of L.swatches) box(w.x, w.y, 10, 10, rgba(w.color));
  for (const l of L.labels) {
    const scale = pngScale(l.size);
    // Centred vertically in the label's box of height `size`.
    const y = Math.round(l.y * k + (l.size * k - GLYPH_HEIGHT * scale) / 2);
    drawText(image, l.text, Math.round(l.x * k), y, {
      scale,
      anchor: l.anchor,
    });
  }
  return await image.encode();
}

/**
 * Where {@linkcode studyBarChartPng} draws each label, in PNG pixels (for
 * checking the PNG's text, e.g. with `readText`).
 *
 * @param table The table drawn.
 * @param title The chart's title.
 * @returns The PNG's size and each label's text, box and font scale.
 */
export function studyBarChartPngLabels(
  table: StudyTable,
  title: string,
): {
  width: number;
  height: number;
  labels: (TextBox & { text: string; scale: number; role: string })[];
} {
  const L = studyBarChartLayout(table, title);
  const k = PNG_PIXEL_RATIO;
  return {
    width: L.width * k,
    height: L.height * k,
    labels: L.labels.map((l) => {
      const scale = pngScale(l.size);
      const y = Math.round(l.y * k + (l.size * k - GLYPH_HEIGHT * scale) / 2);
      return {
        ...textBox(l.text, Math.round(l.x * k), y, { scale, anchor: l.anchor }),
        text: l.text,
        scale,
        role: l.role,
      };
    }),
  };
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
  // The legend column is as wide as the longest name needs.
  const legendW = 40 + Math.max(
    60,
    ...curves.map((c) => svgTextWidth(c.name, LABEL_SIZE)),
  );
  const plotW = 380;
  const width = Math.ceil(
    Math.max(60 + plotW + legendW, svgTextWidth(title, 13) + 20),
  );
  const height = Math.max(340, 24 + 16 * curves.length + 60);
  const plot = { x: 60, y: 36, w: width - 60 - legendW, h: height - 82 };
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
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${
      escapeXml(title)
    }</text>`,
    `<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#999"/>`,
    `<text x="8" y="${plot.y - 8}">loss</text>`,
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

/** Which features each split gets, in words, for `study.md`. */
function studyTtaSentence(probe: StudyResult["study"]["probe"]): string {
  const single =
    "The baseline, the sweep and kNN use single-view features (bicubic resize to the crop size) for train, validation and test.";
  if (!probe.tta) return single;
  return probe.ttaOn === "test"
    ? `${single} Sweep + 10-crop TTA is the **test-only variant**: the plain sweep's classifier applied to 10-crop mean test features (a train/test shift).`
    : `${single} Sweep + 10-crop TTA is a second sweep on 10-crop mean features (resize to ⌊size / 0.875⌋², four corner and centre crops and their mirror images, the ten feature vectors averaged) of train, validation and test alike, as the paper's code.`;
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
    }, batch ${b.batchSize}, ${b.size} px crops, seed ${b.seed}, on \`${study.pretrainData}\`. Probes: ${study.probe.trials} sweep trials scored on a validation split of each training set (the test split is used once, by the selected probe), ≤ ${study.probe.maxEpochs} epochs, baseline ${study.probe.baselineEpochs} epochs. ${
      studyTtaSentence(study.probe)
    } Numbers are top-1 accuracy (%) on each data set's test split.`,
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
    `(\`figure.png\` is the same chart as a bitmap, at twice the resolution.)`,
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
      ttaOn: c.report.ttaOn,
      splits: c.report.splits,
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
  const figureTitle = `Top-1 (%) — ${label}`;
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
    ["figure.svg", studyBarChartSvg(table, figureTitle)],
    ["figure.png", await studyBarChartPng(table, figureTitle)],
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
