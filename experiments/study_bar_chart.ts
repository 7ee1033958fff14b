/**
 * The grouped bar chart of a study table, like the paper's Figure 2: one
 * layout (title, axis labels, ticks, bars, a legend that wraps) drawn as
 * hand-written SVG and as a PNG rasterised with imagescript, its text in the
 * project's bitmap font, every label inside the canvas.
 *
 * @module
 */
import { Image } from "./_imagescript.ts";
import {
  drawText,
  GLYPH_HEIGHT,
  svgTextWidth,
  type TextBox,
  textBox,
} from "@scaling-vicreg/probe/figure-text";
import { escapeXml, svgOpen } from "@scaling-vicreg/probe/svg";
import type { StudyTable } from "./study_table.ts";
import { LABEL_SIZE, PALETTE } from "./_study_style.ts";

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
 * import { studyBarChartLayout } from "@scaling-vicreg/experiments/study-bar-chart";
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
    svgOpen(L.width, L.height, { fontSize: LABEL_SIZE }),
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
