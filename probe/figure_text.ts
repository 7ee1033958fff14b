/**
 * Text in the figures the project writes: a 5 × 7 bitmap font (printable
 * ASCII, drawn for this project) to render labels into PNGs without any font
 * on the system, a reader that decodes such text back (so tests can check a
 * PNG's title and legend), and a conservative width estimate for SVG text so
 * layouts keep every label inside the canvas.
 *
 * @module
 */

/** Glyph width in font pixels. */
export const GLYPH_WIDTH = 5;
/** Glyph height in font pixels. */
export const GLYPH_HEIGHT = 7;
/** Horizontal advance per character in font pixels (glyph + one blank column). */
export const GLYPH_ADVANCE = 6;

// Each glyph: seven rows of five cells, top to bottom, "#" inked.
const GLYPHS: Record<string, string> = {
  " ": "..... ..... ..... ..... ..... ..... .....",
  "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
  '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
  "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
  "$": "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
  "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
  "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
  "'": "..#.. ..#.. ..... ..... ..... ..... .....",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
  "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  ",": "..... ..... ..... ..... .##.. ..#.. .#...",
  "-": "..... ..... ..... ##### ..... ..... .....",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  "/": "..... ....# ...#. ..#.. .#... #.... .....",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  ":": "..... .##.. .##.. ..... .##.. .##.. .....",
  ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
  "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
  "=": "..... ..... ##### ..... ##### ..... .....",
  ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
  "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
  "A": ".###. #...# #...# ##### #...# #...# #...#",
  "B": "####. #...# #...# ####. #...# #...# ####.",
  "C": ".###. #...# #.... #.... #.... #...# .###.",
  "D": "###.. #..#. #...# #...# #...# #..#. ###..",
  "E": "##### #.... #.... ####. #.... #.... #####",
  "F": "##### #.... #.... ####. #.... #.... #....",
  "G": ".###. #...# #.... #.### #...# #...# .####",
  "H": "#...# #...# #...# ##### #...# #...# #...#",
  "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
  "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  "L": "#.... #.... #.... #.... #.... #.... #####",
  "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
  "O": ".###. #...# #...# #...# #...# #...# .###.",
  "P": "####. #...# #...# ####. #.... #.... #....",
  "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
  "R": "####. #...# #...# ####. #.#.. #..#. #...#",
  "S": ".#### #.... #.... .###. ....# ....# ####.",
  "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "U": "#...# #...# #...# #...# #...# #...# .###.",
  "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
  "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  "Z": "##### ....# ...#. ..#.. .#... #.... #####",
  "[": ".###. .#... .#... .#... .#... .#... .###.",
  "\\": "..... #.... .#... ..#.. ...#. ....# .....",
  "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
  "^": "..#.. .#.#. #...# ..... ..... ..... .....",
  "_": "..... ..... ..... ..... ..... ..... #####",
  "`": ".#... ..#.. ..... ..... ..... ..... .....",
  "a": "..... ..... .###. ....# .#### #...# .####",
  "b": "#.... #.... #.##. ##..# #...# #...# ####.",
  "c": "..... ..... .###. #.... #.... #...# .###.",
  "d": "....# ....# .##.# #..## #...# #...# .####",
  "e": "..... ..... .###. #...# ##### #.... .###.",
  "f": "..##. .#..# .#... ###.. .#... .#... .#...",
  "g": "..... .#### #...# #...# .#### ....# .###.",
  "h": "#.... #.... #.##. ##..# #...# #...# #...#",
  "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  "j": "...#. ..... ..##. ...#. ...#. #..#. .##..",
  "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  "l": ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "m": "..... ..... ##.#. #.#.# #.#.# #...# #...#",
  "n": "..... ..... #.##. ##..# #...# #...# #...#",
  "o": "..... ..... .###. #...# #...# #...# .###.",
  "p": "..... ..... ####. #...# ####. #.... #....",
  "q": "..... ..... .##.# #..## .#### ....# ....#",
  "r": "..... ..... #.##. ##..# #.... #.... #....",
  "s": "..... ..... .###. #.... .###. ....# ####.",
  "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
  "u": "..... ..... #...# #...# #...# #..## .##.#",
  "v": "..... ..... #...# #...# #...# .#.#. ..#..",
  "w": "..... ..... #...# #...# #.#.# #.#.# .#.#.",
  "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  "y": "..... ..... #...# #...# .#### ....# .###.",
  "z": "..... ..... ##### ...#. ..#.. .#... #####",
  "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
  "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
  "~": "..... ..... .#... #.#.# ...#. ..... .....",
};

/** What a character outside printable ASCII is drawn as: a hollow box. */
const MISSING = "##### #...# #...# #...# #...# #...# #####";

// Characters the project's labels use, spelled in ASCII.
const SUBSTITUTES: Record<string, string> = {
  "—": "-",
  "–": "-",
  "−": "-",
  "×": "x",
  "≤": "<=",
  "≥": ">=",
  "α": "a",
  "µ": "u",
  "·": ".",
  "…": "...",
  "⌊": "[",
  "⌋": "]",
  "²": "^2",
  "★": "*",
  "Δ": "D",
};

function rows(art: string): number[] {
  // Bit 4 is the leftmost column.
  return art.split(" ").map((row) =>
    [...row].reduce((bits, cell) => (bits << 1) | (cell === "#" ? 1 : 0), 0)
  );
}

const TABLE: Map<string, number[]> = new Map(
  Object.entries(GLYPHS).map(([c, art]) => [c, rows(art)]),
);
const MISSING_ROWS = rows(MISSING);

/**
 * The text as the font draws it: characters outside printable ASCII spelled
 * in ASCII where the project uses them (`—` → `-`, `≤` → `<=`, `α` → `a`),
 * others kept (they draw as a hollow box).
 *
 * @param text Any text.
 * @returns The text to draw.
 *
 * @example
 * ```ts
 * import { fontText } from "@scaling-vicreg/probe/figure-text";
 * fontText("Top-1 (%) — sweep"); // "Top-1 (%) - sweep"
 * ```
 */
export function fontText(text: string): string {
  return [...text].map((c) => SUBSTITUTES[c] ?? c).join("");
}

/**
 * The seven row bitmasks of a character's glyph (bit 4 = leftmost column),
 * the hollow box for characters the font lacks.
 *
 * @param char One character.
 * @returns Seven numbers in [0, 31], top row first.
 *
 * @example
 * ```ts
 * import { glyphRows } from "@scaling-vicreg/probe/figure-text";
 * glyphRows("-"); // [0, 0, 0, 31, 0, 0, 0]
 * ```
 */
export function glyphRows(char: string): readonly number[] {
  return TABLE.get(char) ?? MISSING_ROWS;
}

/** A box in pixels: left, top, width, height. */
export interface TextBox {
  /** Left edge. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width. */
  width: number;
  /** Height. */
  height: number;
}

/** An RGBA image, e.g. an `imagescript` `Image` (row-major, 4 bytes a pixel). */
export interface RgbaBitmap {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `[height, width, 4]` bytes. */
  readonly bitmap: Uint8Array | Uint8ClampedArray;
}

/** Options of {@linkcode drawText}. */
export interface DrawTextOptions {
  /** Pixels per font pixel. @default {1} */
  scale?: number;
  /** Colour `[r, g, b]`, bytes. @default {[0, 0, 0]} */
  color?: readonly [number, number, number];
  /** Where `x` is: the text's left end, middle or right end. @default {"start"} */
  anchor?: "start" | "middle" | "end";
}

/** The defaults of {@linkcode DrawTextOptions}. */
export const DEFAULT_DRAW_TEXT_OPTIONS: Readonly<Required<DrawTextOptions>> =
  Object.freeze({ scale: 1, color: [0, 0, 0] as const, anchor: "start" });

/**
 * The box {@linkcode drawText} fills for `text` at `(x, y)`: width
 * `(6·n − 1)·scale` for n characters (after {@linkcode fontText}), height
 * `7·scale`.
 *
 * @param text The text.
 * @param x Anchor column.
 * @param y Top row.
 * @param options Scale and anchor.
 * @returns The box.
 *
 * @example
 * ```ts
 * import { textBox } from "@scaling-vicreg/probe/figure-text";
 * textBox("ab", 10, 0, { anchor: "middle" }); // { x: 5, y: 0, width: 11, height: 7 }
 * ```
 */
export function textBox(
  text: string,
  x: number,
  y: number,
  options: DrawTextOptions = {},
): TextBox {
  const o = resolve(options);
  const n = [...fontText(text)].length;
  const width = n === 0 ? 0 : (GLYPH_ADVANCE * n - 1) * o.scale;
  const left = o.anchor === "start"
    ? x
    : o.anchor === "end"
    ? x - width
    : x - Math.floor(width / 2);
  return { x: left, y, width, height: GLYPH_HEIGHT * o.scale };
}

function resolve(options: DrawTextOptions): Required<DrawTextOptions> {
  const o = { ...DEFAULT_DRAW_TEXT_OPTIONS, ...options };
  if (!(Number.isInteger(o.scale) && o.scale >= 1)) {
    throw new RangeError(
      `Expected scale to be a positive integer: received ${o.scale}`,
    );
  }
  return o;
}

/**
 * Draws `text` with the 5 × 7 font into an RGBA image, each font pixel a
 * `scale × scale` square; pixels that fall outside the image are skipped.
 *
 * @param target The image (changed in place).
 * @param text The text ({@linkcode fontText} is applied).
 * @param x Anchor column (see `anchor`).
 * @param y Top row.
 * @param options Scale, colour and anchor.
 * @returns The box the text occupies (see {@linkcode textBox}).
 *
 * @example
 * ```ts
 * import { drawText } from "@scaling-vicreg/probe/figure-text";
 * const image = { width: 40, height: 9, bitmap: new Uint8Array(40 * 9 * 4) };
 * drawText(image, "hi", 1, 1); // { x: 1, y: 1, width: 11, height: 7 }
 * ```
 */
export function drawText(
  target: RgbaBitmap,
  text: string,
  x: number,
  y: number,
  options: DrawTextOptions = {},
): TextBox {
  const o = resolve(options);
  const box = textBox(text, Math.round(x), Math.round(y), o);
  const [r, g, b] = o.color;
  [...fontText(text)].forEach((char, i) => {
    const glyph = glyphRows(char);
    const left = box.x + i * GLYPH_ADVANCE * o.scale;
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (((glyph[gy] >> (GLYPH_WIDTH - 1 - gx)) & 1) === 0) continue;
        for (let sy = 0; sy < o.scale; sy++) {
          const py = box.y + gy * o.scale + sy;
          if (py < 0 || py >= target.height) continue;
          for (let sx = 0; sx < o.scale; sx++) {
            const px = left + gx * o.scale + sx;
            if (px < 0 || px >= target.width) continue;
            const at = (py * target.width + px) * 4;
            target.bitmap[at] = r;
            target.bitmap[at + 1] = g;
            target.bitmap[at + 2] = b;
            target.bitmap[at + 3] = 255;
          }
        }
      }
    }
  });
  return box;
}

/** Options of {@linkcode readText}. */
export interface ReadTextOptions {
  /** Pixels per font pixel the text was drawn with. @default {1} */
  scale?: number;
  /** A pixel is ink when its mean of R, G, B is below this. @default {128} */
  threshold?: number;
}

/**
 * Reads back text drawn by {@linkcode drawText} in dark ink on a light
 * background: the glyph at each 6-pixel step (× scale) from `(x, y)` is
 * matched exactly against the font; `"\u0000"` marks a cell that matches no
 * glyph. For checking figures in tests.
 *
 * @param source The image.
 * @param x Left edge of the first glyph.
 * @param y Top edge.
 * @param length Number of characters to read.
 * @param options Scale and ink threshold.
 * @returns The characters read.
 *
 * @example
 * ```ts
 * import { drawText, readText } from "@scaling-vicreg/probe/figure-text";
 * const image = { width: 40, height: 9, bitmap: new Uint8Array(40 * 9 * 4).fill(255) };
 * drawText(image, "hi", 1, 1);
 * readText(image, 1, 1, 2); // "hi"
 * ```
 */
export function readText(
  source: RgbaBitmap,
  x: number,
  y: number,
  length: number,
  options: ReadTextOptions = {},
): string {
  const { scale = 1, threshold = 128 } = options;
  const ink = (px: number, py: number) => {
    if (px < 0 || py < 0 || px >= source.width || py >= source.height) {
      return false;
    }
    const at = (py * source.width + px) * 4;
    const m = source.bitmap;
    return (m[at] + m[at + 1] + m[at + 2]) / 3 < threshold;
  };
  let out = "";
  for (let i = 0; i < length; i++) {
    const left = x + i * GLYPH_ADVANCE * scale;
    const cell: number[] = [];
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      let bits = 0;
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        // The centre pixel of each scaled font pixel.
        const on = ink(
          left + gx * scale + (scale >> 1),
          y + gy * scale + (scale >> 1),
        );
        bits = (bits << 1) | (on ? 1 : 0);
      }
      cell.push(bits);
    }
    let found = "\u0000";
    for (const [char, glyph] of TABLE) {
      if (glyph.every((row, k) => row === cell[k])) {
        found = char;
        break;
      }
    }
    out += found;
  }
  return out;
}

/**
 * A conservative width of SVG text in a proportional sans-serif font:
 * 0.62 em per character, at least the width of the same text at the given
 * size in common sans-serif fonts (whose mean advance is about 0.5 em), so a
 * layout that reserves this much keeps labels inside the canvas.
 *
 * @param text The text.
 * @param fontSize Font size in pixels.
 * @returns The width in pixels.
 *
 * @example
 * ```ts
 * import { svgTextWidth } from "@scaling-vicreg/probe/figure-text";
 * svgTextWidth("full-feature", 11); // 81.84
 * ```
 */
export function svgTextWidth(text: string, fontSize: number): number {
  return [...text].length * 0.62 * fontSize;
}

/** A `<text>` element of an SVG document and its estimated box. */
export interface SvgTextBox extends TextBox {
  /** The text (XML entities decoded). */
  text: string;
}

/**
 * The `<text>` elements of an SVG document written by this project, each
 * with its box estimated by {@linkcode svgTextWidth} (from `x`, `y` as the
 * baseline, `text-anchor` and the element's or the root's `font-size`), so a
 * test can check that every label lies inside the canvas. Rotated text is
 * not supported (the project writes none).
 *
 * @param svg SVG text.
 * @returns One box per `<text>`, in document order.
 *
 * @example
 * ```ts
 * import { svgTextBoxes } from "@scaling-vicreg/probe/figure-text";
 * svgTextBoxes('<svg font-size="10"><text x="5" y="12">ab</text></svg>');
 * // [{ text: "ab", x: 5, y: 4, width: 12.4, height: 10 }]
 * ```
 */
export function svgTextBoxes(svg: string): SvgTextBox[] {
  const attr = (attrs: string, name: string) =>
    attrs.match(new RegExp(`(?:^|\\s)${name}="([^"]*)"`))?.[1];
  const root = svg.match(/<svg\b([^>]*)>/)?.[1] ?? "";
  const rootSize = Number(attr(root, "font-size") ?? 16);
  const boxes: SvgTextBox[] = [];
  for (const m of svg.matchAll(/<text\b([^>]*)>([^<]*)<\/text>/g)) {
    const attrs = m[1];
    if (attr(attrs, "transform") !== undefined) {
      throw new TypeError(
        `Expected no transformed <text> (boxes are not estimated for them): received <text${attrs}>`,
      );
    }
    const text = m[2].replace(/&lt;/g, "<").replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");
    const size = Number(attr(attrs, "font-size") ?? rootSize);
    const width = svgTextWidth(text, size);
    const x = Number(attr(attrs, "x") ?? 0);
    const anchor = attr(attrs, "text-anchor") ?? "start";
    const left = anchor === "middle"
      ? x - width / 2
      : anchor === "end"
      ? x - width
      : x;
    // Ascent ~0.8 em above the baseline, descent ~0.2 em below.
    const baseline = Number(attr(attrs, "y") ?? 0);
    boxes.push({
      text,
      x: left,
      y: baseline - 0.8 * size,
      width,
      height: size,
    });
  }
  return boxes;
}
