/**
 * The small pieces every hand-written SVG figure of the project shares: the
 * opening `<svg>` tag, XML escaping of label text, and fractions written as
 * percent.
 *
 * @module
 */

/** Options of {@linkcode svgOpen}. */
export interface SvgOpenOptions {
  /** Default font size of the document's text. @default {12} */
  fontSize?: number;
  /** Also give a `viewBox` of `0 0 width height` (scales with its box). @default {false} */
  viewBox?: boolean;
}

/** The default {@linkcode SvgOpenOptions}. */
export const DEFAULT_SVG_OPEN_OPTIONS: Readonly<Required<SvgOpenOptions>> =
  Object.freeze({ fontSize: 12, viewBox: false });

/**
 * The opening tag of a standalone SVG document in sans-serif text.
 *
 * @example
 * ```ts
 * import { svgOpen } from "@scaling-vicreg/probe/svg";
 * svgOpen(100, 50, { fontSize: 11 });
 * // '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" font-family="sans-serif" font-size="11">'
 * ```
 *
 * @param width Width in pixels.
 * @param height Height in pixels.
 * @param options Font size and whether to add a `viewBox`.
 * @returns The `<svg …>` tag.
 */
export function svgOpen(
  width: number,
  height: number,
  options: SvgOpenOptions = {},
): string {
  const { fontSize, viewBox } = { ...DEFAULT_SVG_OPEN_OPTIONS, ...options };
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"${
    viewBox ? ` viewBox="0 0 ${width} ${height}"` : ""
  } font-family="sans-serif" font-size="${fontSize}">`;
}

/**
 * Text made safe for an SVG (XML) element or attribute: `<`, `>`, `&`, `"`
 * and `'` become entities.
 *
 * @example
 * ```ts
 * import { escapeXml } from "@scaling-vicreg/probe/svg";
 * escapeXml(`a < b & "c"`); // "a &lt; b &amp; &quot;c&quot;"
 * ```
 *
 * @param text The text.
 * @returns The escaped text.
 */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => XML_ENTITIES[c]);
}

const XML_ENTITIES: Readonly<Record<string, string>> = Object.freeze({
  "<": "&lt;",
  ">": "&gt;",
  "&": "&amp;",
  '"': "&quot;",
  "'": "&apos;",
});

/**
 * A fraction written in percent with a fixed number of decimals (no `%`
 * sign): `percent(0.1234, 2)` is `"12.34"`.
 *
 * @example
 * ```ts
 * import { percent } from "@scaling-vicreg/probe/svg";
 * percent(0.5, 1); // "50.0"
 * ```
 *
 * @param fraction The value, e.g. an accuracy in [0, 1].
 * @param digits Decimals after the point.
 * @returns `(100 × fraction).toFixed(digits)`.
 */
export function percent(fraction: number, digits: number): string {
  return (100 * fraction).toFixed(digits);
}
