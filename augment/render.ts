/**
 * Renders views from drawn {@linkcode ViewParams} as a few batched tensor
 * ops on the active backend:
 *
 * - **Upload**: a batch of uint8 images of any sizes becomes one
 *   `[N, Hmax, Wmax, 3]` float32 tensor, zero-padded to the largest height
 *   and width in the batch. Each crop's offset is folded into its weight
 *   matrices, whose columns outside the crop are zero, so the padding is
 *   never read and one batched matmul serves every size (the cost is the
 *   padded area: feed same-size images, e.g. from a packed cache, for speed).
 * - **Crop + bicubic resize + flip** as one separable linear map per axis:
 *   Pillow's antialiased bicubic coefficients (a = −0.5) for the crop, rows
 *   reversed for a flip, `Wx: [N, S, Wmax]` then `Wy: [N, S, Hmax]`, clamped
 *   to [0, 1] after each pass as Pillow clips after each of its passes.
 * - **Rotation** (optional): nearest-neighbour gather, fill 0, as Pillow's
 *   `rotate(angle, NEAREST)` that `RandomRotation` calls.
 * - **Colour jitter** in four stages: at stage k every jittered sample gets
 *   its own k-th op (`order[k]`); the batch is partitioned by op, each op runs
 *   once on its gathered samples with their factors, and a gather with the
 *   inverse permutation restores the batch order. Un-jittered samples pass
 *   through untouched (bit-exact).
 * - **Grayscale**, **solarize**: per-sample masks; **blur**: per-sample
 *   separable blur matrices, on the blurred samples only; **normalize**.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { checkRgbImage, type RgbImage } from "@scaling-vicreg/backend";
import { applyGroups, resampleSeparable, writeAxisWeights } from "./_batch.ts";
import { type BlurOptions, gaussianBlur } from "./blur.ts";
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  IMAGENET_MEAN,
  IMAGENET_STD,
  LUMA_ITU_R_601,
  normalize,
  randomGrayscale,
  solarize,
} from "./color.ts";
import type { CropBox, ViewParams } from "./params.ts";

/** Options of {@linkcode renderViews}. */
export interface RenderOptions {
  /**
   * Output side S (views are `S × S`).
   * @default {96}
   */
  size?: number;
  /**
   * Luma weights for grayscale, contrast and saturation.
   * @default {LUMA_ITU_R_601}
   */
  luma?: readonly [number, number, number];
  /**
   * The blur kernel.
   * @default {"pil"}
   */
  blurMethod?: BlurOptions["method"];
  /**
   * Solarization threshold (pixels ≥ it are inverted).
   * @default {0.5}
   */
  solarizeThreshold?: number;
  /**
   * Normalisation means; `null` skips normalisation (views stay in [0, 1]).
   * @default {IMAGENET_MEAN}
   */
  mean?: readonly [number, number, number] | null;
  /**
   * Normalisation standard deviations.
   * @default {IMAGENET_STD}
   */
  std?: readonly [number, number, number];
}

/** Defaults of {@linkcode RenderOptions}. */
export const DEFAULT_RENDER_OPTIONS: Required<RenderOptions> = {
  size: 96,
  luma: LUMA_ITU_R_601,
  blurMethod: "pil",
  solarizeThreshold: 0.5,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};

/** A batch of source images on the backend (see the module notes). */
export interface SourceBatch {
  /** `[N, Hmax, Wmax, 3]` float32 pixel values in 0 … 255, zero-padded. */
  pixels: tf.Tensor4D;
  /** Each image's width. */
  widths: number[];
  /** Each image's height. */
  heights: number[];
}

/**
 * Uploads uint8 images as one zero-padded `[N, Hmax, Wmax, 3]` float32
 * tensor; dispose `pixels` when done.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { uploadImages } from "@scaling-vicreg/augment/render";
 * await useBackend("cpu");
 * const batch = uploadImages([
 *   { width: 2, height: 1, data: new Uint8Array(6) },
 *   { width: 1, height: 3, data: new Uint8Array(9) },
 * ]);
 * console.log(batch.pixels.shape); // [2, 3, 2, 3]
 * batch.pixels.dispose();
 * ```
 *
 * @param images Non-empty list of `[H, W, 3]` uint8 images.
 * @returns The padded batch.
 */
export function uploadImages(images: readonly RgbImage[]): SourceBatch {
  if (images.length === 0) {
    throw new RangeError("Expected at least one image: received none");
  }
  images.forEach((image, i) => checkRgbImage(image, `images[${i}]`));
  const widths = images.map((im) => im.width);
  const heights = images.map((im) => im.height);
  const wMax = Math.max(...widths), hMax = Math.max(...heights);
  const n = images.length;
  const buffer = new Float32Array(n * hMax * wMax * 3);
  images.forEach((im, i) => {
    const base = i * hMax * wMax * 3;
    if (im.width === wMax) {
      // Typed-array set converts uint8 to float32 natively.
      buffer.set(im.data, base);
    } else {
      for (let y = 0; y < im.height; y++) {
        buffer.set(
          im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3),
          base + y * wMax * 3,
        );
      }
    }
  });
  return {
    pixels: tf.tensor4d(buffer, [n, hMax, wMax, 3]),
    widths,
    heights,
  };
}

/**
 * Crops, resizes (Pillow bicubic, antialiased) and optionally mirrors each
 * image of a source batch, as torchvision's `resized_crop` + `hflip` on PIL
 * images up to Pillow's uint8 rounding.
 *
 * @param source The uploaded batch.
 * @param crops One crop (source pixels) per image.
 * @param flips Whether to mirror each output.
 * @param width Output width.
 * @param height Output height.
 * @returns `[N, height, width, 3]` float32 in [0, 1].
 */
export function cropResize(
  source: SourceBatch,
  crops: readonly CropBox[],
  flips: readonly boolean[],
  width: number,
  height: number,
): tf.Tensor4D {
  const [n, hMax, wMax] = source.pixels.shape;
  if (crops.length !== n || flips.length !== n) {
    throw new TypeError(
      `Expected one crop and flip per image (${n}): received ${crops.length} and ${flips.length}`,
    );
  }
  const wx = new Float32Array(n * width * wMax);
  const wy = new Float32Array(n * height * hMax);
  crops.forEach((c, i) => {
    if (
      !(c.x >= 0 && c.y >= 0 && c.width > 0 && c.height > 0 &&
        c.x + c.width <= source.widths[i] &&
        c.y + c.height <= source.heights[i])
    ) {
      throw new RangeError(
        `Expected crops[${i}] inside its ${source.widths[i]}×${
          source.heights[i]
        } image: received ${JSON.stringify(c)}`,
      );
    }
    // The 1/255 of ToTensor is folded into the first (horizontal) pass.
    writeAxisWeights(
      wx,
      i * width * wMax,
      wMax,
      c.x,
      c.width,
      width,
      flips[i],
      1 / 255,
    );
    writeAxisWeights(
      wy,
      i * height * hMax,
      hMax,
      c.y,
      c.height,
      height,
      false,
      1,
    );
  });
  return resampleSeparable(source.pixels, wx, wy, width, height);
}

/**
 * Rotates the chosen images about their centre with nearest-neighbour
 * sampling and zero fill, as Pillow's `rotate(angle, NEAREST)`
 * (counter-clockwise degrees; `null` leaves an image unchanged).
 *
 * @param x Images `[N, H, W, C]`.
 * @param angles Degrees or `null` per image.
 * @returns `[N, H, W, C]`.
 */
export function rotateNearest(
  x: tf.Tensor4D,
  angles: readonly (number | null)[],
): tf.Tensor4D {
  const [, h, w, c] = x.shape;
  const chosen = angles.flatMap((a, i) => (a === null ? [] : [i]));
  return applyGroups(x, [chosen], [(sub, idx) =>
    tf.tidy(() => {
      const m = idx.length;
      const theta = idx.map((i) => (angles[i] as number) * Math.PI / 180);
      const cos = tf.tensor2d(theta.map(Math.cos), [m, 1]);
      const sin = tf.tensor2d(theta.map(Math.sin), [m, 1]);
      // Output pixel centres relative to the image centre: [1, H*W].
      const gx = new Float32Array(h * w), gy = new Float32Array(h * w);
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) {
          gx[y * w + xx] = xx + 0.5 - w / 2;
          gy[y * w + xx] = y + 0.5 - h / 2;
        }
      }
      const dx = tf.tensor2d(gx, [1, h * w]), dy = tf.tensor2d(gy, [1, h * w]);
      // Pillow's inverse map: [m, H*W] source coordinates.
      const sx = tf.floor(
        tf.add(tf.sub(tf.mul(cos, dx), tf.mul(sin, dy)), w / 2),
      );
      const sy = tf.floor(
        tf.add(tf.add(tf.mul(sin, dx), tf.mul(cos, dy)), h / 2),
      );
      const inside = tf.logicalAnd(
        tf.logicalAnd(tf.greaterEqual(sx, 0), tf.less(sx, w)),
        tf.logicalAnd(tf.greaterEqual(sy, 0), tf.less(sy, h)),
      );
      const base = tf.tensor2d(
        Array.from({ length: m }, (_, i) => i * h * w),
        [m, 1],
      );
      const flat = tf.where(
        inside,
        tf.add(tf.add(tf.mul(sy, w), sx), base),
        tf.zerosLike(sx),
      );
      const pixels = tf.gather(
        tf.reshape(sub, [m * h * w, c]),
        tf.cast(tf.reshape(flat, [m * h * w]), "int32"),
      );
      const mask = tf.reshape(tf.cast(inside, "float32"), [m * h * w, 1]);
      return tf.reshape(tf.mul(pixels, mask), [m, h, w, c]);
    })]);
}

/**
 * torchvision's `ColorJitter` with per-sample factors and per-sample op order
 * (see the module notes); samples with `applied: false` are unchanged.
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param params One jitter draw per image (`ViewParams.jitter`).
 * @param luma Luma weights of contrast and saturation.
 * @returns `[N, H, W, 3]`.
 */
export function colorJitter(
  x: tf.Tensor4D,
  params: readonly Pick<ViewParams, "jitter">[],
  luma: readonly [number, number, number] = LUMA_ITU_R_601,
): tf.Tensor4D {
  let y = x;
  for (let stage = 0; stage < 4; stage++) {
    const groups: number[][] = [[], [], [], []];
    params.forEach((p, i) => {
      if (p.jitter.applied) groups[p.jitter.order[stage]].push(i);
    });
    const pick = (
      idx: number[],
      key: "brightness" | "contrast" | "saturation" | "hue",
    ) => idx.map((i) => params[i].jitter[key]);
    const next = applyGroups(y, groups, [
      (s, idx) => adjustBrightness(s, pick(idx, "brightness")),
      (s, idx) => adjustContrast(s, pick(idx, "contrast"), { luma }),
      (s, idx) => adjustSaturation(s, pick(idx, "saturation"), { luma }),
      (s, idx) => adjustHue(s, pick(idx, "hue")),
    ]);
    if (y !== x) y.dispose();
    y = next;
  }
  return y === x ? tf.clone(x) : y;
}

/**
 * Renders one view per image from its drawn parameters: crop, resize, flip,
 * rotation, colour jitter, grayscale, blur, solarization and normalisation,
 * in torchvision's order.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { renderViews, uploadImages } from "@scaling-vicreg/augment/render";
 * import { sampleViewParams, VIEW1_DISTRIBUTION } from "@scaling-vicreg/augment/params";
 * await useBackend("cpu");
 * const image = { width: 20, height: 16, data: new Uint8Array(20 * 16 * 3).fill(128) };
 * const params = [sampleViewParams(20, 16, new Rng(0), VIEW1_DISTRIBUTION)];
 * const source = uploadImages([image]);
 * const view = renderViews(source, params, { size: 8 });
 * console.log(view.shape); // [1, 8, 8, 3]
 * source.pixels.dispose();
 * ```
 *
 * @param source The uploaded batch.
 * @param params One {@linkcode ViewParams} per image.
 * @param options Output size, luma, blur kernel, normalisation.
 * @returns `[N, S, S, 3]` float32 (normalised unless `mean: null`).
 */
export function renderViews(
  source: SourceBatch,
  params: readonly ViewParams[],
  options: RenderOptions = {},
): tf.Tensor4D {
  const o = { ...DEFAULT_RENDER_OPTIONS, ...options };
  if (!(Number.isInteger(o.size) && o.size > 0)) {
    throw new RangeError(
      `Expected size to be a positive integer: received ${o.size}`,
    );
  }
  return tf.tidy(() => {
    let x = cropResize(
      source,
      params.map((p) => p.crop),
      params.map((p) => p.flip),
      o.size,
      o.size,
    );
    if (params.some((p) => p.rotation !== null)) {
      x = rotateNearest(x, params.map((p) => p.rotation));
    }
    x = colorJitter(x, params, o.luma);
    if (params.some((p) => p.grayscale)) {
      x = randomGrayscale(x, params.map((p) => p.grayscale), { luma: o.luma });
    }
    const blurred = params.flatMap((p, i) => (p.blurSigma === null ? [] : [i]));
    x = applyGroups(x, [blurred], [
      (s, idx) =>
        gaussianBlur(s, idx.map((i) => params[i].blurSigma), {
          method: o.blurMethod,
        }),
    ]);
    if (params.some((p) => p.solarize)) {
      x = solarize(x, params.map((p) => p.solarize), {
        threshold: o.solarizeThreshold,
      });
    }
    if (o.mean !== null) x = normalize(x, { mean: o.mean, std: o.std });
    return x;
  });
}
