/**
 * Per-view augmentation parameters, drawn on the CPU from the seeded
 * generator exactly as torchvision draws them (`RandomResizedCrop.get_params`,
 * `ColorJitter.get_params`, `RandomApply` coins), so that the pixel work can
 * run batched on the tensor backend afterwards.
 *
 * Draw order for one view (fixed, so a seed always gives the same views):
 * 1. crop: up to 10 × (area fraction U(scale), log aspect ratio U(log ratio)),
 *    then on success top = int(H − h + 1), left = int(W − w + 1);
 * 2. flip coin; 3. rotation coin and angle (only when rotation is enabled);
 * 4. jitter coin, and when applied: order = randperm(4), then brightness,
 *    contrast, saturation, hue factors; 5. grayscale coin; 6. blur coin, and
 *    when applied σ ~ U(sigma); 7. solarize coin.
 * Every coin is drawn whatever its probability (p = 0 or 1 included).
 *
 * @module
 */
import type { Rng } from "@scaling-vicreg/backend";
import { roundHalfEven } from "./resize.ts";

/** A crop rectangle in source pixels. */
export interface CropBox {
  /** Left column. */
  x: number;
  /** Top row. */
  y: number;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/** The colour-jitter draw of one view. */
export interface JitterParams {
  /** Whether the jitter was applied (the p = 0.8 coin). */
  applied: boolean;
  /** Brightness factor (1 when not applied). */
  brightness: number;
  /** Contrast factor (1 when not applied). */
  contrast: number;
  /** Saturation factor (1 when not applied). */
  saturation: number;
  /** Hue shift (0 when not applied). */
  hue: number;
  /** Order of the ops: 0 brightness, 1 contrast, 2 saturation, 3 hue. */
  order: number[];
}

/** Everything random about one view. */
export interface ViewParams {
  /** Source image width. */
  sourceWidth: number;
  /** Source image height. */
  sourceHeight: number;
  /** The crop, in source pixels. */
  crop: CropBox;
  /** The crop as `[x0, y0, x1, y1]`, normalised to [0, 1] of the source. */
  box: [number, number, number, number];
  /** Horizontal flip. */
  flip: boolean;
  /** Rotation in degrees (counter-clockwise), or `null`. */
  rotation: number | null;
  /** Colour jitter. */
  jitter: JitterParams;
  /** Grayscale. */
  grayscale: boolean;
  /** Blur σ, or `null`. */
  blurSigma: number | null;
  /** Solarization. */
  solarize: boolean;
}

/** Distribution of one view's parameters (a full set; no defaults here). */
export interface ViewDistribution {
  /** Crop area fraction range. */
  scale: readonly [number, number];
  /** Crop aspect ratio (w/h) range, sampled log-uniformly. */
  ratio: readonly [number, number];
  /** Horizontal flip probability. */
  flipP: number;
  /** Rotation probability (0 disables the step and its draws). */
  rotationP: number;
  /** Maximum rotation in degrees; angles are U(−d, d). */
  rotationDegrees: number;
  /** Colour jitter probability. */
  jitterP: number;
  /** Jitter strengths: brightness, contrast, saturation, hue. */
  jitter: readonly [number, number, number, number];
  /** Grayscale probability. */
  grayscaleP: number;
  /** Blur probability. */
  blurP: number;
  /** Blur σ range. */
  blurSigma: readonly [number, number];
  /** Solarization probability. */
  solarizeP: number;
}

/**
 * torchvision's `RandomResizedCrop.get_params`: up to ten tries of a random
 * area fraction and log-uniform aspect ratio (sizes rounded half-to-even as
 * Python's `round`), then the centre-crop fallback.
 *
 * @example
 * ```ts
 * import { Rng } from "@scaling-vicreg/backend";
 * import { randomResizedCropBox } from "@scaling-vicreg/augment/params";
 * const box = randomResizedCropBox(200, 100, new Rng(0), { scale: [0.2, 1], ratio: [3 / 4, 4 / 3] });
 * console.log(box.width <= 200 && box.height <= 100); // true
 * ```
 *
 * @param width Source width.
 * @param height Source height.
 * @param rng The generator.
 * @param options Area fraction and aspect ratio ranges.
 * @returns The crop in source pixels.
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  rng: Rng,
  options: {
    scale: readonly [number, number];
    ratio: readonly [number, number];
  },
): CropBox {
  const { scale, ratio } = options;
  const area = width * height;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const y = rng.int(height - h + 1);
      const x = rng.int(width - w + 1);
      return { x, y, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  }
  return {
    x: Math.floor((width - w) / 2),
    y: Math.floor((height - h) / 2),
    width: w,
    height: h,
  };
}

/**
 * Draws one view's parameters in the documented order.
 *
 * @example
 * ```ts
 * import { Rng } from "@scaling-vicreg/backend";
 * import { sampleViewParams, VIEW1_DISTRIBUTION } from "@scaling-vicreg/augment/params";
 * const p = sampleViewParams(64, 48, new Rng(1), VIEW1_DISTRIBUTION);
 * console.log(p.blurSigma !== null); // true (blur p = 1 on view 1)
 * ```
 *
 * @param width Source width.
 * @param height Source height.
 * @param rng The generator.
 * @param dist The distribution.
 * @returns The view's parameters.
 */
export function sampleViewParams(
  width: number,
  height: number,
  rng: Rng,
  dist: ViewDistribution,
): ViewParams {
  const crop = randomResizedCropBox(width, height, rng, dist);
  const flip = rng.uniform() < dist.flipP;
  let rotation: number | null = null;
  if (dist.rotationP > 0) {
    if (rng.uniform() < dist.rotationP) {
      rotation = rng.uniform(-dist.rotationDegrees, dist.rotationDegrees);
    }
  }
  const jitter: JitterParams = {
    applied: false,
    brightness: 1,
    contrast: 1,
    saturation: 1,
    hue: 0,
    order: [0, 1, 2, 3],
  };
  if (rng.uniform() < dist.jitterP) {
    const [b, c, s, h] = dist.jitter;
    jitter.applied = true;
    jitter.order = rng.permutation(4);
    jitter.brightness = rng.uniform(Math.max(0, 1 - b), 1 + b);
    jitter.contrast = rng.uniform(Math.max(0, 1 - c), 1 + c);
    jitter.saturation = rng.uniform(Math.max(0, 1 - s), 1 + s);
    jitter.hue = rng.uniform(-h, h);
  }
  const grayscale = rng.uniform() < dist.grayscaleP;
  const blurSigma = rng.uniform() < dist.blurP
    ? rng.uniform(dist.blurSigma[0], dist.blurSigma[1])
    : null;
  const solarize = rng.uniform() < dist.solarizeP;
  return {
    sourceWidth: width,
    sourceHeight: height,
    crop,
    box: [
      crop.x / width,
      crop.y / height,
      (crop.x + crop.width) / width,
      (crop.y + crop.height) / height,
    ],
    flip,
    rotation,
    jitter,
    grayscale,
    blurSigma,
    solarize,
  };
}

/** The paper's first view: blur always, no solarization. */
export const VIEW1_DISTRIBUTION: ViewDistribution = {
  scale: [0.2, 1.0],
  ratio: [3 / 4, 4 / 3],
  flipP: 0.5,
  rotationP: 0,
  rotationDegrees: 10,
  jitterP: 0.8,
  jitter: [0.8, 0.8, 0.8, 0.2],
  grayscaleP: 0.2,
  blurP: 1.0,
  blurSigma: [0.1, 2.0],
  solarizeP: 0.0,
};

/** The paper's second view: blur p = 0.1, solarization p = 0.2. */
export const VIEW2_DISTRIBUTION: ViewDistribution = {
  ...VIEW1_DISTRIBUTION,
  blurP: 0.1,
  solarizeP: 0.2,
};
