/**
 * How the numbers and figures of a study report look: the colours of the
 * configurations, the label font size, and a top-1 cell in percent.
 *
 * @module
 */
import { percent } from "@scaling-vicreg/probe/svg";

/** One colour per configuration, in table order (Tableau 10), reused after ten. */
export const PALETTE: readonly string[] = [
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

/** Font size of a figure's labels (the SVG's default). */
export const LABEL_SIZE = 11;

/** A top-1 accuracy in percent with one decimal, `–` for a missing one. */
export function cellPercent(x: number | null): string {
  return x === null ? "–" : percent(x, 1);
}
