/**
 * The paper's asymmetric two-view `TrainTransform`, batched: per-view
 * parameters are drawn on the CPU from the seeded generator (see
 * `params.ts` for the draw order) and the pixels are rendered by a few
 * batched tensor ops (see `render.ts`).
 *
 * Per image, in torchvision's order: RandomResizedCrop (bicubic, Pillow's
 * kernel) → horizontal flip → [rotation, `paper-code` preset only] →
 * ColorJitter (p 0.8) → grayscale (p 0.2) → Gaussian blur (p 1.0 / 0.1) →
 * solarization (p 0 / 0.2) → ImageNet normalisation.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { RgbImage, Rng } from "@scaling-vicreg/backend";
import type { BlurOptions } from "./blur.ts";
import { IMAGENET_MEAN, IMAGENET_STD, LUMA_ITU_R_601 } from "./color.ts";
import {
  sampleViewParams,
  type ViewDistribution,
  type ViewParams,
} from "./params.ts";
import { renderViews, uploadImages } from "./render.ts";

/** Options of {@linkcode TrainTransform}; every value of the paper's pipeline. */
export interface TrainTransformOptions {
  /**
   * `"vicreg"`: the paper's pipeline; `"paper-code"`: also the random
   * rotation (±10°, p = 0.3) that the paper's code adds after the flip.
   * Explicit options override the preset.
   * @default {"vicreg"}
   */
  preset?: "vicreg" | "paper-code";
  /**
   * Output side in pixels.
   * @default {96}
   */
  size?: number;
  /**
   * RandomResizedCrop area fraction range.
   * @default {[0.2, 1.0]}
   */
  scale?: readonly [number, number];
  /**
   * RandomResizedCrop aspect ratio range (log-uniform).
   * @default {[3 / 4, 4 / 3]}
   */
  ratio?: readonly [number, number];
  /**
   * Horizontal flip probability.
   * @default {0.5}
   */
  flipP?: number;
  /**
   * Rotation probability (0 disables rotation and its draws).
   * @default {0 (0.3 in "paper-code")}
   */
  rotationP?: number;
  /**
   * Maximum rotation in degrees.
   * @default {10}
   */
  rotationDegrees?: number;
  /**
   * Colour-jitter probability.
   * @default {0.8}
   */
  jitterP?: number;
  /**
   * Brightness strength b: factor ~ U(max(0, 1 − b), 1 + b).
   * @default {0.8}
   */
  brightness?: number;
  /**
   * Contrast strength.
   * @default {0.8}
   */
  contrast?: number;
  /**
   * Saturation strength.
   * @default {0.8}
   */
  saturation?: number;
  /**
   * Hue strength h: shift ~ U(−h, h), h ≤ 0.5.
   * @default {0.2}
   */
  hue?: number;
  /**
   * Grayscale probability.
   * @default {0.2}
   */
  grayscaleP?: number;
  /**
   * Blur probability of view 1 and view 2.
   * @default {[1.0, 0.1]}
   */
  blurP?: readonly [number, number];
  /**
   * Blur σ range.
   * @default {[0.1, 2.0]}
   */
  blurSigma?: readonly [number, number];
  /**
   * Blur kernel: Pillow's (the paper's code) or torchvision's Gaussian.
   * @default {"pil"}
   */
  blurMethod?: BlurOptions["method"];
  /**
   * Solarization probability of view 1 and view 2.
   * @default {[0.0, 0.2]}
   */
  solarizeP?: readonly [number, number];
  /**
   * Solarization threshold.
   * @default {0.5}
   */
  solarizeThreshold?: number;
  /**
   * Luma weights (grayscale, contrast, saturation).
   * @default {LUMA_ITU_R_601}
   */
  luma?: readonly [number, number, number];
  /**
   * Normalisation means.
   * @default {IMAGENET_MEAN}
   */
  mean?: readonly [number, number, number];
  /**
   * Normalisation standard deviations.
   * @default {IMAGENET_STD}
   */
  std?: readonly [number, number, number];
}

/** The paper's TrainTransform (preset `"vicreg"`). */
export const DEFAULT_TRAIN_TRANSFORM_OPTIONS: Readonly<
  Required<TrainTransformOptions>
> = {
  preset: "vicreg",
  size: 96,
  scale: [0.2, 1.0],
  ratio: [3 / 4, 4 / 3],
  flipP: 0.5,
  rotationP: 0,
  rotationDegrees: 10,
  jitterP: 0.8,
  brightness: 0.8,
  contrast: 0.8,
  saturation: 0.8,
  hue: 0.2,
  grayscaleP: 0.2,
  blurP: [1.0, 0.1],
  blurSigma: [0.1, 2.0],
  blurMethod: "pil",
  solarizeP: [0.0, 0.2],
  solarizeThreshold: 0.5,
  luma: LUMA_ITU_R_601,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};

const PRESETS: Record<"vicreg" | "paper-code", TrainTransformOptions> = {
  "vicreg": {},
  "paper-code": { rotationP: 0.3, rotationDegrees: 10 },
};

function probability(value: number, name: string): void {
  if (!(value >= 0 && value <= 1)) {
    throw new RangeError(`Expected ${name} in [0, 1]: received ${value}`);
  }
}

function range(
  value: readonly [number, number],
  name: string,
  lo: number,
  hi = Infinity,
): void {
  if (
    !(value.length === 2 && value[0] >= lo && value[1] >= value[0] &&
      value[1] <= hi)
  ) {
    throw new RangeError(
      `Expected ${name} = [lo, hi] with ${lo} ≤ lo ≤ hi ≤ ${hi}: received [${value}]`,
    );
  }
}

/** Resolves a preset and validates every option (the one place). */
export function resolveTrainTransformOptions(
  options: TrainTransformOptions = {},
): Required<TrainTransformOptions> {
  const preset = options.preset ?? "vicreg";
  if (!(preset in PRESETS)) {
    throw new RangeError(
      `Expected preset "vicreg" or "paper-code": received ${preset}`,
    );
  }
  const o = {
    ...DEFAULT_TRAIN_TRANSFORM_OPTIONS,
    ...PRESETS[preset],
    ...options,
    preset,
  };
  if (!(Number.isInteger(o.size) && o.size > 0)) {
    throw new RangeError(
      `Expected size to be a positive integer: received ${o.size}`,
    );
  }
  range(o.scale, "scale", 0, 1);
  if (!(o.scale[1] > 0)) {
    throw new RangeError(`Expected scale[1] > 0: received [${o.scale}]`);
  }
  range(o.ratio, "ratio", Number.MIN_VALUE);
  for (const key of ["flipP", "rotationP", "jitterP", "grayscaleP"] as const) {
    probability(o[key], key);
  }
  o.blurP.forEach((p, i) => probability(p, `blurP[${i}]`));
  o.solarizeP.forEach((p, i) => probability(p, `solarizeP[${i}]`));
  range(o.blurSigma, "blurSigma", Number.MIN_VALUE);
  for (const key of ["brightness", "contrast", "saturation"] as const) {
    if (!(o[key] >= 0)) {
      throw new RangeError(`Expected ${key} ≥ 0: received ${o[key]}`);
    }
  }
  if (!(o.hue >= 0 && o.hue <= 0.5)) {
    throw new RangeError(`Expected hue in [0, 0.5]: received ${o.hue}`);
  }
  if (!(o.rotationDegrees >= 0)) {
    throw new RangeError(
      `Expected rotationDegrees ≥ 0: received ${o.rotationDegrees}`,
    );
  }
  return o;
}

/** The two view distributions of resolved options. */
export function viewDistributions(
  o: Required<TrainTransformOptions>,
): [ViewDistribution, ViewDistribution] {
  const common = {
    scale: o.scale,
    ratio: o.ratio,
    flipP: o.flipP,
    rotationP: o.rotationP,
    rotationDegrees: o.rotationDegrees,
    jitterP: o.jitterP,
    jitter: [o.brightness, o.contrast, o.saturation, o.hue] as const,
    grayscaleP: o.grayscaleP,
    blurSigma: o.blurSigma,
  };
  return [
    { ...common, blurP: o.blurP[0], solarizeP: o.solarizeP[0] },
    { ...common, blurP: o.blurP[1], solarizeP: o.solarizeP[1] },
  ];
}

/** Two views of a batch and the parameters that made them. */
export interface TwoViews {
  /** View 1, `[N, size, size, 3]` float32, normalised. */
  view1: tf.Tensor4D;
  /** View 2, `[N, size, size, 3]` float32, normalised. */
  view2: tf.Tensor4D;
  /** Per-image parameters of view 1 and of view 2. */
  params: [ViewParams[], ViewParams[]];
}

/**
 * The paper's two-view augmentation for a batch of images of any sizes.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { TrainTransform } from "@scaling-vicreg/augment/train-transform";
 * await useBackend("cpu");
 * const image = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).fill(90) };
 * const { view1, view2, params } = new TrainTransform({ size: 16 }).apply([image, image], new Rng(0));
 * console.log(view1.shape, params[1].length); // [2, 16, 16, 3] 2
 * view1.dispose();
 * view2.dispose();
 * ```
 */
export class TrainTransform {
  #options: Required<TrainTransformOptions>;
  #dists: [ViewDistribution, ViewDistribution];

  /**
   * Makes the transform; defaults are the paper's.
   *
   * @param options Overrides of {@linkcode DEFAULT_TRAIN_TRANSFORM_OPTIONS}.
   */
  constructor(options: TrainTransformOptions = {}) {
    this.#options = resolveTrainTransformOptions(options);
    this.#dists = viewDistributions(this.#options);
  }

  /** The resolved options. */
  get options(): Readonly<Required<TrainTransformOptions>> {
    return this.#options;
  }

  /**
   * Draws the parameters of both views of every image: for each image in
   * order, view 1 then view 2 (each in the order documented in `params.ts`).
   *
   * @param images The images (only their sizes are read).
   * @param rng The generator.
   * @returns Parameters of view 1 and of view 2.
   */
  sample(
    images: readonly Pick<RgbImage, "width" | "height">[],
    rng: Rng,
  ): [ViewParams[], ViewParams[]] {
    const p1: ViewParams[] = [], p2: ViewParams[] = [];
    for (const im of images) {
      p1.push(sampleViewParams(im.width, im.height, rng, this.#dists[0]));
      p2.push(sampleViewParams(im.width, im.height, rng, this.#dists[1]));
    }
    return [p1, p2];
  }

  /**
   * Makes two views of each image.
   *
   * @param images Non-empty list of `[H, W, 3]` uint8 images.
   * @param rng The generator (advanced by the draws).
   * @returns Both views (`[N, size, size, 3]`) and their parameters.
   */
  apply(images: RgbImage[], rng: Rng): TwoViews {
    const params = this.sample(images, rng);
    return { ...this.render(images, params), params };
  }

  /**
   * Renders two views from given parameters (e.g. recorded ones).
   *
   * @param images Non-empty list of `[H, W, 3]` uint8 images.
   * @param params Parameters of view 1 and view 2, one per image each.
   * @returns Both views, `[N, size, size, 3]`.
   */
  render(
    images: RgbImage[],
    params: [readonly ViewParams[], readonly ViewParams[]],
  ): { view1: tf.Tensor4D; view2: tf.Tensor4D } {
    const o = this.#options;
    const source = uploadImages(images);
    try {
      const render = {
        size: o.size,
        luma: o.luma,
        blurMethod: o.blurMethod,
        solarizeThreshold: o.solarizeThreshold,
        mean: o.mean,
        std: o.std,
      };
      const view1 = renderViews(source, params[0], render);
      const view2 = renderViews(source, params[1], render);
      return { view1, view2 };
    } finally {
      source.pixels.dispose();
    }
  }
}
