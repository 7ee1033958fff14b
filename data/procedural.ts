/**
 * The embedded data set: a deterministic, procedural, labelled image
 * generator (10 classes of large shapes and full-frame patterns), so the demo
 * and every test run without a download.
 *
 * Each image is drawn from its own generator seeded by `(seed, split, index)`,
 * so any image can be produced on its own, train and test never share a seed,
 * and the same options always give the same bytes. Class identity is carried
 * by geometry (outline, orientation, periodicity), not by colour: colours,
 * position, scale, rotation, background texture, lighting and noise are all
 * random, so a label survives random resized crops (20–100 % area), colour
 * jitter, grayscale and blur.
 *
 * @module
 */
import { Rng } from "@scaling-vicreg/backend/random";
import type { RgbImage } from "@scaling-vicreg/backend/image";
import { checkIndex, type ImageSource } from "./source.ts";

/** The class names of the procedural data set, indexed by label. */
export const PROCEDURAL_CLASS_NAMES: readonly string[] = Object.freeze([
  "circle",
  "square",
  "triangle",
  "cross",
  "ring",
  "horizontal_stripes",
  "vertical_stripes",
  "checkerboard",
  "diagonal_stripes",
  "dots",
]);

/** Options of {@linkcode proceduralImage}. */
export interface ProceduralOptions {
  /**
   * Width and height in pixels (≥ 8).
   * @default {64}
   */
  size?: number;
  /**
   * Data-set seed; every image's seed derives from (seed, split, index).
   * @default {0}
   */
  seed?: number;
  /**
   * Which split the image belongs to; the splits never share a seed.
   * @default {"train"}
   */
  split?: "train" | "test";
  /**
   * Standard deviation of the per-pixel noise, in 0–255 intensity units.
   * @default {6}
   */
  noise?: number;
}

/** Defaults of {@linkcode ProceduralOptions}. */
export const DEFAULT_PROCEDURAL_OPTIONS: Readonly<Required<ProceduralOptions>> =
  Object
    .freeze({
      size: 64,
      seed: 0,
      split: "train",
      noise: 6,
    });

/** Options of {@linkcode proceduralDataset}. */
export interface ProceduralDatasetOptions extends ProceduralOptions {
  /**
   * Number of images.
   * @default {2000}
   */
  n?: number;
}

/** Defaults of {@linkcode ProceduralDatasetOptions}. */
export const DEFAULT_PROCEDURAL_DATASET_OPTIONS: Readonly<
  Required<ProceduralDatasetOptions>
> = Object.freeze({ ...DEFAULT_PROCEDURAL_OPTIONS, n: 2000 });

function resolveOptions(
  options: ProceduralOptions | undefined,
): Required<ProceduralOptions> {
  const o = { ...DEFAULT_PROCEDURAL_OPTIONS, ...options };
  if (!Number.isInteger(o.size) || o.size < 8 || o.size > 4096) {
    throw new RangeError(
      `Expected procedural option "size" to be an integer in [8, 4096]: received ${o.size}`,
    );
  }
  if (!Number.isFinite(o.seed)) {
    throw new RangeError(
      `Expected procedural option "seed" to be a finite number: received ${o.seed}`,
    );
  }
  if (o.split !== "train" && o.split !== "test") {
    throw new RangeError(
      `Expected procedural option "split" to be "train" or "test": received ${o.split}`,
    );
  }
  if (!(o.noise >= 0 && o.noise <= 128)) {
    throw new RangeError(
      `Expected procedural option "noise" in [0, 128]: received ${o.noise}`,
    );
  }
  return o;
}

// murmur3's finaliser: a bijection on uint32, so distinct indices get distinct seeds.
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The seed of one procedural image, from (data-set seed, split, index).
 *
 * @example
 * ```ts
 * import { proceduralSeed } from "@scaling-vicreg/data/procedural";
 * console.log(proceduralSeed(0, "train", 5) !== proceduralSeed(0, "test", 5)); // true
 * ```
 *
 * @param seed The data-set seed.
 * @param split The split.
 * @param index The image index.
 * @returns A uint32 seed.
 */
export function proceduralSeed(
  seed: number,
  split: "train" | "test",
  index: number,
): number {
  const base = fmix32(
    fmix32(seed >>> 0) ^ (split === "train" ? 0x5bd1e995 : 0x27d4eb2f),
  );
  return fmix32((base + index) >>> 0);
}

/**
 * The label of procedural image `index`: classes cycle, so any prefix of
 * the data set is balanced to within one image per class.
 *
 * @example
 * ```ts
 * import { proceduralLabel } from "@scaling-vicreg/data/procedural";
 * console.log(proceduralLabel(13)); // 3
 * ```
 *
 * @param index The image index (≥ 0).
 * @returns The label in [0, 10).
 */
export function proceduralLabel(index: number): number {
  return index % PROCEDURAL_CLASS_NAMES.length;
}

function luminance(c: readonly number[]): number {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

function randomColour(rng: Rng): number[] {
  return [rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)];
}

// A foreground colour whose luminance differs from the background's by at
// least 70/255, so the shape survives grayscale and colour jitter.
function contrastingColour(rng: Rng, bg: readonly number[]): number[] {
  const yb = luminance(bg);
  for (let tries = 0; tries < 64; tries++) {
    const c = randomColour(rng);
    if (Math.abs(luminance(c) - yb) >= 70) return c;
  }
  const v = yb > 127 ? 20 : 235;
  return [v, v, v];
}

/** Coverage in [0, 1] of a signed distance `d` in pixels (1-pixel antialiasing). */
function cover(d: number): number {
  return d <= -0.5 ? 1 : d >= 0.5 ? 0 : 0.5 - d;
}

/** Signed distance in pixels to a 50 % duty square wave of period `p` along `t`. */
function stripe(t: number, p: number, phase: number): number {
  const f = t / p + phase;
  return p * (Math.abs(f - Math.floor(f) - 0.5) - 0.25);
}

const SQRT3_2 = Math.sqrt(3) / 2;

type Coverage = (x: number, y: number) => number;

function shapeCoverage(label: number, rng: Rng, s: number): Coverage {
  const r = rng.uniform(0.26, 0.42) * s; // outer radius in pixels
  const slack = Math.max(0, 0.5 * s - r) * 0.8;
  const cx = 0.5 * s + rng.uniform(-slack, slack);
  const cy = 0.5 * s + rng.uniform(-slack, slack);
  const theta = rng.uniform(0, 2 * Math.PI);
  const cos = Math.cos(theta), sin = Math.sin(theta);
  // Local, rotated coordinates around the shape's centre.
  const local = (x: number, y: number): [number, number] => {
    const dx = x - cx, dy = y - cy;
    return [cos * dx + sin * dy, -sin * dx + cos * dy];
  };
  switch (label) {
    case 0: // circle
      return (x, y) => cover(Math.hypot(x - cx, y - cy) - r);
    case 1: { // square, corners on the outer radius' circle
      const h = r * 0.8;
      return (x, y) => {
        const [u, v] = local(x, y);
        return cover(Math.max(Math.abs(u), Math.abs(v)) - h);
      };
    }
    case 2: { // equilateral triangle, circumradius 1.2 r (its area is small)
      const rt = 1.2 * r;
      return (x, y) => {
        const [u, v] = local(x, y);
        const d = Math.max(
          v,
          -SQRT3_2 * u - 0.5 * v,
          SQRT3_2 * u - 0.5 * v,
        ) - 0.5 * rt;
        return cover(d);
      };
    }
    case 3: { // cross (plus sign)
      const w = r * 0.3;
      return (x, y) => {
        const [u, v] = local(x, y);
        const au = Math.abs(u), av = Math.abs(v);
        return cover(
          Math.min(Math.max(au - r, av - w), Math.max(au - w, av - r)),
        );
      };
    }
    default: { // 4: ring (annulus)
      const t = r * rng.uniform(0.25, 0.4);
      const mid = r - 0.5 * t;
      return (x, y) =>
        cover(Math.abs(Math.hypot(x - cx, y - cy) - mid) - 0.5 * t);
    }
  }
}

function patternCoverage(label: number, rng: Rng, s: number): Coverage {
  const deg = Math.PI / 180;
  let theta: number;
  switch (label) {
    case 5: // horizontal stripes: vary along y
      theta = rng.uniform(-12, 12) * deg;
      break;
    case 6: // vertical stripes: vary along x
      theta = (90 + rng.uniform(-12, 12)) * deg;
      break;
    case 8: // diagonal stripes, either diagonal
      theta = ((rng.bernoulli(0.5) ? 45 : -45) + rng.uniform(-10, 10)) * deg;
      break;
    default: // checkerboard and dots: any small rotation
      theta = rng.uniform(-20, 20) * deg;
  }
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const ph1 = rng.uniform(0, 1), ph2 = rng.uniform(0, 1);
  if (label === 9) { // dots on a square grid
    const p = rng.uniform(1 / 6, 1 / 3.5) * s;
    const rd = p * rng.uniform(0.25, 0.33);
    return (x, y) => {
      const u = (cos * x + sin * y) / p + ph1;
      const v = (-sin * x + cos * y) / p + ph2;
      const du = (u - Math.floor(u) - 0.5) * p,
        dv = (v - Math.floor(v) - 0.5) * p;
      return cover(Math.hypot(du, dv) - rd);
    };
  }
  const p = rng.uniform(1 / 8, 1 / 4.5) * s; // one dark + one light band
  if (label === 7) { // checkerboard: XOR of two square waves
    return (x, y) => {
      const a = cover(stripe(cos * x + sin * y, p, ph1));
      const b = cover(stripe(-sin * x + cos * y, p, ph2));
      return a * b + (1 - a) * (1 - b);
    };
  }
  // Stripes: a square wave across the direction (−sin θ, cos θ).
  return (x, y) => cover(stripe(-sin * x + cos * y, p, ph1));
}

/**
 * Draws one procedural image and its label; the same index and options
 * always give the same bytes.
 *
 * The image is a `[size, size, 3]` uint8 RGB picture of class
 * {@linkcode proceduralLabel}(index) (see {@linkcode PROCEDURAL_CLASS_NAMES}):
 * a large shape (circle, square, triangle, cross, ring; radius 26–42 % of the
 * side, random position and rotation) or a full-frame pattern (stripes of
 * three orientations, checkerboard, dots; random period, phase and small
 * rotation), in a random foreground colour that contrasts in luminance with
 * a random, softly textured background, under a random lighting gradient and
 * per-pixel noise.
 *
 * @example
 * ```ts
 * import { proceduralImage } from "@scaling-vicreg/data/procedural";
 * const { image, label } = proceduralImage(7, { size: 32 });
 * console.log(image.width, image.data.length, label); // 32 3072 7
 * ```
 *
 * @param index The image index (a non-negative integer).
 * @param options Size, seed, split and noise.
 * @returns The image and its label.
 */
export function proceduralImage(
  index: number,
  options?: ProceduralOptions,
): { image: RgbImage; label: number } {
  const { size: s, seed, split, noise } = resolveOptions(options);
  if (!Number.isInteger(index) || index < 0) {
    throw new RangeError(
      `Expected a procedural image index to be a non-negative integer: received ${index}`,
    );
  }
  const label = proceduralLabel(index);
  const rng = new Rng(proceduralSeed(seed, split, index));

  const bg = randomColour(rng);
  const fg = contrastingColour(rng, bg);
  // Background texture: two low-frequency waves (≤ 2.5 cycles per image)
  // shifting the background by up to ±18 per channel, too coarse and faint to
  // read as stripes.
  const tex = [0, 1].map(() => {
    const a = rng.uniform(0, 2 * Math.PI);
    const f = (2 * Math.PI * rng.uniform(0.5, 2.5)) / s;
    return {
      fx: f * Math.cos(a),
      fy: f * Math.sin(a),
      ph: rng.uniform(0, 2 * Math.PI),
    };
  });
  const texShift = [
    rng.uniform(-18, 18),
    rng.uniform(-18, 18),
    rng.uniform(-18, 18),
  ];
  // Lighting: a linear gain of ±15 % across the image.
  const la = rng.uniform(0, 2 * Math.PI);
  const lg = rng.uniform(0, 0.3) / s;
  const lx = lg * Math.cos(la), ly = lg * Math.sin(la);

  const coverage = label < 5
    ? shapeCoverage(label, rng, s)
    : patternCoverage(label, rng, s);
  const noiseRng = rng.fork("noise");
  const noiseScale = noise * Math.sqrt(6) / 4294967296; // triangular noise with std `noise`

  const data = new Uint8Array(s * s * 3);
  const half = 0.5 * s;
  for (let y = 0, o = 0; y < s; y++) {
    const py = y + 0.5;
    for (let x = 0; x < s; x++, o += 3) {
      const px = x + 0.5;
      const t = 0.5 *
        (Math.sin(tex[0].fx * px + tex[0].fy * py + tex[0].ph) +
          Math.sin(tex[1].fx * px + tex[1].fy * py + tex[1].ph));
      const m = coverage(px, py);
      const gain = 1 + lx * (px - half) + ly * (py - half);
      for (let c = 0; c < 3; c++) {
        const back = bg[c] + t * texShift[c];
        const n = (noiseRng.nextUint32() - noiseRng.nextUint32()) * noiseScale;
        const v = (back + m * (fg[c] - back)) * gain + n;
        data[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : v + 0.5;
      }
    }
  }
  return { image: { width: s, height: s, data }, label };
}

/**
 * The procedural data set as an {@linkcode ImageSource}: `n` images of one
 * split, drawn on demand by {@linkcode proceduralImage} (nothing is stored).
 *
 * @example
 * ```ts
 * import { proceduralDataset } from "@scaling-vicreg/data/procedural";
 * const test = proceduralDataset({ n: 100, split: "test", size: 32 });
 * const image = await test.get(0);
 * console.log(test.length, image.width, test.label(3)); // 100 32 3
 * ```
 *
 * @param options Count, split, size, seed and noise.
 * @returns The source.
 */
export function proceduralDataset(
  options?: ProceduralDatasetOptions,
): ImageSource {
  const { n, ...rest } = { ...DEFAULT_PROCEDURAL_DATASET_OPTIONS, ...options };
  const resolved = resolveOptions(rest);
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `Expected procedural option "n" to be a non-negative integer: received ${n}`,
    );
  }
  return new ProceduralSource(n, resolved);
}

class ProceduralSource implements ImageSource {
  readonly length: number;
  readonly classNames: readonly string[] = PROCEDURAL_CLASS_NAMES;
  #options: Required<ProceduralOptions>;

  constructor(n: number, options: Required<ProceduralOptions>) {
    this.length = n;
    this.#options = options;
  }

  get(index: number): Promise<RgbImage> {
    checkIndex(index, this.length, "the procedural data set");
    return Promise.resolve(proceduralImage(index, this.#options).image);
  }

  label(index: number): number {
    checkIndex(index, this.length, "the procedural data set");
    return proceduralLabel(index);
  }

  describe(): string {
    const { size, seed, split } = this.#options;
    return `procedural ${split} split: ${this.length} images ${size}×${size}, 10 classes, seed ${seed}`;
  }
}
