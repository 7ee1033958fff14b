/**
 * Multi-crop: a few global views (large crops, full size) and several local
 * views (small crops, smaller size) per image, for the paper's crop-size
 * ablations and VICRegL-style training (VICRegL, SwAV and DINO's
 * multi-crop). Colour augmentations are those of {@linkcode TrainTransform};
 * global view k uses view (k mod 2)'s blur and solarization probabilities,
 * local views their own (VICRegL's: blur p 0.5, no solarization).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { RgbImage, Rng } from "@scaling-vicreg/backend";
import {
  sampleViewParams,
  type ViewDistribution,
  type ViewParams,
} from "./params.ts";
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
export const DEFAULT_MULTI_CROP_OPTIONS: Readonly<
  MultiCropRecipe & { localBlurP: number; localSolarizeP: number }
> = Object.freeze({
  numGlobal: 2,
  numLocal: 6,
  globalSize: 96,
  localSize: 48,
  globalScale: [0.5, 1.0] as const,
  localScale: [0.05, 0.5] as const,
  localBlurP: 0.5,
  localSolarizeP: 0,
});

/** Multi-crop views and their parameters. */
export interface MultiCropViews {
  /** `numGlobal` tensors `[N, globalSize, globalSize, 3]`. */
  global: tf.Tensor4D[];
  /** `numLocal` tensors `[N, localSize, localSize, 3]`. */
  local: tf.Tensor4D[];
  /** Parameters: `global[k][n]`, `local[k][n]`. */
  params: { global: ViewParams[][]; local: ViewParams[][] };
}

/** {@linkcode MultiCropOptions} with every default filled in. */
export type ResolvedMultiCropOptions =
  & Required<TrainTransformOptions>
  & typeof DEFAULT_MULTI_CROP_OPTIONS;

/**
 * Fills in and validates {@linkcode MultiCropOptions} (the one place).
 *
 * @param options Partial options.
 * @returns The complete options.
 * @throws {RangeError} When a count is not a non-negative integer, a size is
 * not a positive integer, a scale range is not `0 < lo ≤ hi ≤ 1` or a
 * TrainTransform option is out of range.
 *
 * @example
 * ```ts
 * import { resolveMultiCropOptions } from "@scaling-vicreg/augment/multi-crop";
 * const o = resolveMultiCropOptions({ numLocal: 0 });
 * console.log(o.numGlobal, o.globalScale); // 2 [ 0.5, 1 ]
 * ```
 */
export function resolveMultiCropOptions(
  options: MultiCropOptions = {},
): ResolvedMultiCropOptions {
  const m = { ...DEFAULT_MULTI_CROP_OPTIONS };
  for (const key of Object.keys(m) as (keyof typeof m)[]) {
    if (options[key] !== undefined) {
      (m as Record<string, unknown>)[key] = options[key];
    }
  }
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
  for (const key of ["globalScale", "localScale"] as const) {
    checkScaleRange(m[key], key);
  }
  for (const key of ["localBlurP", "localSolarizeP"] as const) {
    if (!(m[key] >= 0 && m[key] <= 1)) {
      throw new RangeError(`Expected ${key} in [0, 1]: received ${m[key]}`);
    }
  }
  return Object.freeze({ ...base, ...m });
}

/**
 * G global and M local views of each image, drawn and rendered in batches.
 * Global view k follows {@linkcode TrainTransform}'s view (k mod 2) at
 * `globalScale` and `globalSize`; local views use `localScale`,
 * `localSize`, `localBlurP` and `localSolarizeP`.
 *
 * Randomness: the global views draw from the generator itself, image by
 * image, in TrainTransform's order (view 1, view 2, then further global
 * views), so with 2 global views at TrainTransform's scale and size they are
 * TrainTransform's views exactly; local view k draws from its own fork
 * `rng.fork("local k")`, taken before any draw. Adding local views therefore
 * changes no global view, and local view k is the same whatever M is.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { MultiCropTransform } from "@scaling-vicreg/augment/multi-crop";
 * await useBackend("cpu");
 * const image = { width: 24, height: 24, data: new Uint8Array(24 * 24 * 3) };
 * const t = new MultiCropTransform({ globalSize: 12, localSize: 6, numLocal: 2 });
 * const params = t.sample([image], new Rng(0)); // [view][image]
 * const views = t.render([image], params);
 * console.log(t.sizes, views[3].shape); // [ 12, 12, 6, 6 ] [ 1, 6, 6, 3 ]
 * views.forEach((v) => v.dispose());
 * ```
 */
export class MultiCropTransform {
  #options: ResolvedMultiCropOptions;
  #global: ViewDistribution[];
  #local: ViewDistribution;

  /**
   * Makes the transform.
   *
   * @param options Crops and colour augmentations; see
   * {@linkcode MultiCropOptions}.
   */
  constructor(options: MultiCropOptions = {}) {
    const o = resolveMultiCropOptions(options);
    this.#options = o;
    const [d1, d2] = viewDistributions(o);
    this.#global = [
      { ...d1, scale: o.globalScale },
      { ...d2, scale: o.globalScale },
    ];
    this.#local = {
      ...d1,
      scale: o.localScale,
      blurP: o.localBlurP,
      solarizeP: o.localSolarizeP,
    };
  }

  /** The resolved options. */
  get options(): ResolvedMultiCropOptions {
    return this.#options;
  }

  /** The number of views, G + M. */
  get numViews(): number {
    return this.#options.numGlobal + this.#options.numLocal;
  }

  /** Each view's side in pixels, global views first. */
  get sizes(): number[] {
    const o = this.#options;
    return [
      ...Array(o.numGlobal).fill(o.globalSize),
      ...Array(o.numLocal).fill(o.localSize),
    ];
  }

  /**
   * Draws every view's parameters (see the class notes for the order).
   *
   * @param images Non-empty list of `[H, W, 3]` uint8 images.
   * @param rng The generator (advanced by the global views' draws).
   * @returns `params[v][n]`: view v (global views first) of image n.
   */
  sample(images: RgbImage[], rng: Rng): ViewParams[][] {
    const o = this.#options;
    const locals = Array.from(
      { length: o.numLocal },
      (_, k) => rng.fork(`local ${k}`),
    );
    const params: ViewParams[][] = Array.from(
      { length: this.numViews },
      () => [],
    );
    for (const im of images) {
      for (let k = 0; k < o.numGlobal; k++) {
        params[k].push(
          sampleViewParams(im.width, im.height, rng, this.#global[k % 2]),
        );
      }
    }
    for (const im of images) {
      locals.forEach((r, k) =>
        params[o.numGlobal + k].push(
          sampleViewParams(im.width, im.height, r, this.#local),
        )
      );
    }
    return params;
  }

  /**
   * Renders every view from given parameters.
   *
   * @param images Non-empty list of `[H, W, 3]` uint8 images.
   * @param params `params[v][n]`, as {@linkcode MultiCropTransform.sample}
   * returns them (G + M views).
   * @returns One `[N, size_v, size_v, 3]` float32 tensor per view (NHWC,
   * normalised), global views first.
   * @throws {RangeError} When `params` does not hold G + M views of one
   * entry per image.
   */
  render(
    images: RgbImage[],
    params: readonly (readonly ViewParams[])[],
  ): tf.Tensor4D[] {
    if (
      params.length !== this.numViews ||
      params.some((p) => p.length !== images.length)
    ) {
      throw new RangeError(
        `Expected parameters of ${this.numViews} views of ${images.length} images: received ${params.length} views of [${
          params.map((p) => p.length)
        }]`,
      );
    }
    const o = this.#options;
    const sizes = this.sizes;
    const render = {
      luma: o.luma,
      blurMethod: o.blurMethod,
      solarizeThreshold: o.solarizeThreshold,
      mean: o.mean,
      std: o.std,
    };
    const source = uploadImages(images);
    const out: tf.Tensor4D[] = [];
    try {
      params.forEach((p, v) =>
        out.push(renderViews(source, p, { ...render, size: sizes[v] }))
      );
      return out;
    } catch (error) {
      out.forEach((t) => t.dispose());
      throw error;
    } finally {
      source.pixels.dispose();
    }
  }

  /**
   * Draws and renders every view.
   *
   * @param images Non-empty list of `[H, W, 3]` uint8 images.
   * @param rng The generator.
   * @returns The views and their parameters, split into global and local.
   */
  apply(images: RgbImage[], rng: Rng): MultiCropViews {
    const params = this.sample(images, rng);
    const views = this.render(images, params);
    const g = this.#options.numGlobal;
    return {
      global: views.slice(0, g),
      local: views.slice(g),
      params: { global: params.slice(0, g), local: params.slice(g) },
    };
  }
}

/**
 * Draws and renders multi-crop views: `new MultiCropTransform(options)
 * .apply(images, rng)` (see {@linkcode MultiCropTransform} for the draw
 * order).
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
  return new MultiCropTransform(options).apply(images, rng);
}

/** The crop fields of a multi-crop recipe. */
export interface MultiCropRecipe {
  /** Number of global crops. */
  numGlobal: number;
  /** Number of local crops. */
  numLocal: number;
  /** Side of the global crops. */
  globalSize: number;
  /** Side of the local crops. */
  localSize: number;
  /** Area fraction range of the global crops. */
  globalScale: readonly [number, number];
  /** Area fraction range of the local crops. */
  localScale: readonly [number, number];
}

/**
 * The side of a local crop for global crops of `globalSize`, at VICRegL's
 * ratio (96 px local crops of 224 px global ones): `round(globalSize ·
 * 96 / 224)`, at least 1.
 *
 * @param globalSize The global crops' side in pixels.
 * @returns The local crops' side.
 *
 * @example
 * ```ts
 * import { paperScaledLocalSize } from "@scaling-vicreg/augment/multi-crop";
 * console.log(paperScaledLocalSize(224), paperScaledLocalSize(96)); // 96 41
 * ```
 */
export function paperScaledLocalSize(globalSize: number): number {
  return Math.max(1, Math.round(globalSize * 96 / 224));
}

/**
 * VICRegL's multi-crop recipe (facebookresearch/VICRegL: `--num-crops 2 6
 * --size-crops 224 96 --min_scale_crops 0.4 0.08 --max_scale_crops 1 0.4`)
 * with the sizes scaled to global crops of `globalSize`.
 *
 * @param globalSize The global crops' side in pixels (224 in VICRegL).
 * @returns 2 global crops at 0.4–1 and 6 local crops at 0.08–0.4 of
 * {@linkcode paperScaledLocalSize} pixels.
 *
 * @example
 * ```ts
 * import { vicreglCrops } from "@scaling-vicreg/augment/multi-crop";
 * console.log(vicreglCrops(224).localSize); // 96
 * ```
 */
export function vicreglCrops(globalSize: number): MultiCropRecipe {
  return {
    numGlobal: 2,
    numLocal: 6,
    globalSize,
    localSize: paperScaledLocalSize(globalSize),
    globalScale: [0.4, 1],
    localScale: [0.08, 0.4],
  };
}

function checkScaleRange(range: readonly number[], name: string): void {
  const [lo, hi] = range;
  if (!(range.length === 2 && lo > 0 && lo <= hi && hi <= 1)) {
    throw new RangeError(
      `Expected ${name} = [lo, hi] with 0 < lo ≤ hi ≤ 1: received [${range}]`,
    );
  }
}

/**
 * Parses a crop scale range written `lo,hi` (the form of the CLI flags and
 * YAML keys, e.g. `--local-crop-scale 0.08,0.4`) and checks `0 < lo ≤ hi ≤
 * 1`, the rule {@linkcode resolveMultiCropOptions} applies.
 *
 * @param text `lo,hi`.
 * @param name What to call it in the error (a flag or key).
 * @returns `[lo, hi]`.
 * @throws {RangeError} Naming `name`, when the text is not two numbers or
 * they are out of range.
 *
 * @example
 * ```ts
 * import { parseScaleRange } from "@scaling-vicreg/augment/multi-crop";
 * const [lo, hi] = parseScaleRange("0.08,0.4", "--local-crop-scale");
 * if (lo !== 0.08 || hi !== 0.4) throw new Error();
 * ```
 */
export function parseScaleRange(
  text: string,
  name: string,
): [number, number] {
  const parts = String(text).split(",").map((p) => p.trim());
  const values = parts.map((p) => p === "" ? NaN : Number(p));
  if (values.length !== 2 || values.some((v) => !Number.isFinite(v))) {
    throw new RangeError(
      `Expected ${name} as two numbers lo,hi (e.g. 0.08,0.4): received ${
        JSON.stringify(text)
      }`,
    );
  }
  checkScaleRange(values, name);
  return [values[0], values[1]];
}
