/**
 * Multi-crop: a few global views (large crops, full size) and several local
 * views (small crops, smaller size) per image, for the paper's crop-size
 * ablations and VICRegL-style training. Colour augmentations are those of
 * {@linkcode TrainTransform}; global view k uses view (k mod 2)'s blur and
 * solarization probabilities, local views their own.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { RgbImage, Rng } from "@scaling-vicreg/backend";
import { sampleViewParams, type ViewParams } from "./params.ts";
import { renderViews, uploadImages } from "./render.ts";
import {
  resolveTrainTransformOptions,
  type TrainTransformOptions,
  viewDistributions,
} from "./train_transform.ts";

/** Options of {@linkcode multiCrop}: the TrainTransform options plus the crops. */
export interface MultiCropOptions extends TrainTransformOptions {
  /**
   * Number of global crops.
   * @default {2}
   */
  numGlobal?: number;
  /**
   * Number of local crops.
   * @default {6}
   */
  numLocal?: number;
  /**
   * Side of the global crops (overrides `size`).
   * @default {96}
   */
  globalSize?: number;
  /**
   * Side of the local crops.
   * @default {48}
   */
  localSize?: number;
  /**
   * Area fraction range of the global crops.
   * @default {[0.5, 1.0]}
   */
  globalScale?: readonly [number, number];
  /**
   * Area fraction range of the local crops.
   * @default {[0.05, 0.5]}
   */
  localScale?: readonly [number, number];
  /**
   * Blur probability of the local crops.
   * @default {0.5}
   */
  localBlurP?: number;
  /**
   * Solarization probability of the local crops.
   * @default {0}
   */
  localSolarizeP?: number;
}

/** Defaults of the multi-crop fields of {@linkcode MultiCropOptions}. */
export const DEFAULT_MULTI_CROP_OPTIONS: Readonly<{
  numGlobal: number;
  numLocal: number;
  globalSize: number;
  localSize: number;
  globalScale: readonly [number, number];
  localScale: readonly [number, number];
  localBlurP: number;
  localSolarizeP: number;
}> = {
  numGlobal: 2,
  numLocal: 6,
  globalSize: 96,
  localSize: 48,
  globalScale: [0.5, 1.0],
  localScale: [0.05, 0.5],
  localBlurP: 0.5,
  localSolarizeP: 0,
};

/** Multi-crop views and their parameters. */
export interface MultiCropViews {
  /** `numGlobal` tensors `[N, globalSize, globalSize, 3]`. */
  global: tf.Tensor4D[];
  /** `numLocal` tensors `[N, localSize, localSize, 3]`. */
  local: tf.Tensor4D[];
  /** Parameters: `global[k][n]`, `local[k][n]`. */
  params: { global: ViewParams[][]; local: ViewParams[][] };
}

/**
 * Draws and renders multi-crop views. Draw order: for each image, its
 * global crops then its local crops.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { multiCrop } from "@scaling-vicreg/augment/multi-crop";
 * await useBackend("cpu");
 * const image = { width: 24, height: 24, data: new Uint8Array(24 * 24 * 3) };
 * const v = multiCrop([image], new Rng(0), { globalSize: 12, localSize: 6, numLocal: 2 });
 * console.log(v.global.length, v.local[0].shape); // 2 [1, 6, 6, 3]
 * [...v.global, ...v.local].forEach((t) => t.dispose());
 * ```
 *
 * @param images Non-empty list of `[H, W, 3]` uint8 images.
 * @param rng The generator.
 * @param options Crops and colour augmentations.
 * @returns The views and their parameters.
 */
export function multiCrop(
  images: RgbImage[],
  rng: Rng,
  options: MultiCropOptions = {},
): MultiCropViews {
  const m = { ...DEFAULT_MULTI_CROP_OPTIONS, ...options };
  const base = resolveTrainTransformOptions(options);
  for (const key of ["numGlobal", "numLocal"] as const) {
    if (!(Number.isInteger(m[key]) && m[key] >= 0)) {
      throw new RangeError(`Expected ${key} ≥ 0 (integer): received ${m[key]}`);
    }
  }
  for (const key of ["globalSize", "localSize"] as const) {
    if (!(Number.isInteger(m[key]) && m[key] > 0)) {
      throw new RangeError(`Expected ${key} > 0 (integer): received ${m[key]}`);
    }
  }
  const [d1, d2] = viewDistributions(base);
  const globalDists = [
    { ...d1, scale: m.globalScale },
    { ...d2, scale: m.globalScale },
  ];
  const localDist = {
    ...d1,
    scale: m.localScale,
    blurP: m.localBlurP,
    solarizeP: m.localSolarizeP,
  };
  const global: ViewParams[][] = Array.from({ length: m.numGlobal }, () => []);
  const local: ViewParams[][] = Array.from({ length: m.numLocal }, () => []);
  for (const im of images) {
    for (let k = 0; k < m.numGlobal; k++) {
      global[k].push(
        sampleViewParams(im.width, im.height, rng, globalDists[k % 2]),
      );
    }
    for (let k = 0; k < m.numLocal; k++) {
      local[k].push(sampleViewParams(im.width, im.height, rng, localDist));
    }
  }
  const render = {
    luma: base.luma,
    blurMethod: base.blurMethod,
    solarizeThreshold: base.solarizeThreshold,
    mean: base.mean,
    std: base.std,
  };
  const source = uploadImages(images);
  try {
    return {
      global: global.map((p) =>
        renderViews(source, p, { ...render, size: m.globalSize })
      ),
      local: local.map((p) =>
        renderViews(source, p, { ...render, size: m.localSize })
      ),
      params: { global, local },
    };
  } finally {
    source.pixels.dispose();
  }
}
