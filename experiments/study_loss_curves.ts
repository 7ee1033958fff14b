/**
 * The loss curves of a study: every run's total training loss against the
 * step, on one hand-written SVG plot.
 *
 * @module
 */
import { svgTextWidth } from "@scaling-vicreg/probe/figure-text";
import { escapeXml, svgOpen } from "@scaling-vicreg/probe/svg";
import { LABEL_SIZE, PALETTE } from "./_study_style.ts";

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
    svgOpen(width, height, { fontSize: LABEL_SIZE }),
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
