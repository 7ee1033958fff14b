/**
 * Evaluation transforms for the linear probe, batched on the backend:
 * a plain bicubic resize to `size × size` (the paper's code), the common
 * resize-shorter-side + centre crop, and test-time TenCrop.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { RgbImage } from "@scaling-vicreg/backend";
import { IMAGENET_MEAN, IMAGENET_STD, normalize } from "./color.ts";
import { resampleSeparable, takeRows, writeAxisWeights } from "./_batch.ts";
import { uploadImages } from "./render.ts";
import { centerCropOffset, shorterSideSize } from "./resize.ts";

/** Options of {@linkcode evalTransform}. */
export interface EvalTransformOptions {
  /**
   * Output side.
   * @default {96}
   */
  size?: number;
  /**
   * `"resize"`: bicubic resize to `size × size` (the paper's code);
   * `"center-crop"`: shorter side to `round(size / cropFraction)`, then the
   * central `size × size`.
   * @default {"resize"}
   */
  mode?: "resize" | "center-crop";
  /**
   * Fraction of the resized image the centre crop keeps.
   * @default {0.875}
   */
  cropFraction?: number;
  /**
   * Normalisation means; `null` keeps [0, 1] pixels.
   * @default {IMAGENET_MEAN}
   */
  mean?: readonly [number, number, number] | null;
  /**
   * Normalisation standard deviations.
   * @default {IMAGENET_STD}
   */
  std?: readonly [number, number, number];
}

/** Defaults of {@linkcode EvalTransformOptions}. */
export const DEFAULT_EVAL_TRANSFORM_OPTIONS: Readonly<
  Required<EvalTransformOptions>
> = {
  size: 96,
  mode: "resize",
  cropFraction: 0.875,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};

function resolve(
  options: EvalTransformOptions,
): Required<EvalTransformOptions> {
  const o = { ...DEFAULT_EVAL_TRANSFORM_OPTIONS, ...options };
  if (!(Number.isInteger(o.size) && o.size > 0)) {
    throw new RangeError(
      `Expected size to be a positive integer: received ${o.size}`,
    );
  }
  if (!(o.cropFraction > 0 && o.cropFraction <= 1)) {
    throw new RangeError(
      `Expected cropFraction in (0, 1]: received ${o.cropFraction}`,
    );
  }
  if (o.mode !== "resize" && o.mode !== "center-crop") {
    throw new RangeError(
      `Expected mode "resize" or "center-crop": received ${o.mode}`,
    );
  }
  return o;
}

function finish(
  x: tf.Tensor4D,
  o: Required<EvalTransformOptions>,
): tf.Tensor4D {
  return o.mean === null ? x : normalize(x, { mean: o.mean, std: o.std });
}

/**
 * The evaluation view of each image (see {@linkcode EvalTransformOptions}).
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { evalTransform } from "@scaling-vicreg/augment/eval-transform";
 * await useBackend("cpu");
 * const image = { width: 30, height: 20, data: new Uint8Array(30 * 20 * 3) };
 * const x = evalTransform([image], { size: 8, mode: "center-crop" });
 * console.log(x.shape); // [1, 8, 8, 3]
 * x.dispose();
 * ```
 *
 * @param images Non-empty list of `[H, W, 3]` uint8 images (any sizes).
 * @param options Size, mode and normalisation.
 * @returns `[N, size, size, 3]` float32.
 */
export function evalTransform(
  images: RgbImage[],
  options: EvalTransformOptions = {},
): tf.Tensor4D {
  const o = resolve(options);
  const source = uploadImages(images);
  try {
    const [n, hMax, wMax] = source.pixels.shape;
    const s = o.size;
    const wx = new Float32Array(n * s * wMax);
    const wy = new Float32Array(n * s * hMax);
    images.forEach((im, i) => {
      if (o.mode === "resize") {
        writeAxisWeights(
          wx,
          i * s * wMax,
          wMax,
          0,
          im.width,
          s,
          false,
          1 / 255,
        );
        writeAxisWeights(wy, i * s * hMax, hMax, 0, im.height, s, false, 1);
      } else {
        const [w, h] = shorterSideSize(
          im.width,
          im.height,
          Math.round(s / o.cropFraction),
        );
        const [left, top] = centerCropOffset(w, h, s, s);
        writeAxisWeights(
          wx,
          i * s * wMax,
          wMax,
          0,
          im.width,
          w,
          false,
          1 / 255,
          left,
          s,
        );
        writeAxisWeights(
          wy,
          i * s * hMax,
          hMax,
          0,
          im.height,
          h,
          false,
          1,
          top,
          s,
        );
      }
    });
    return tf.tidy(() =>
      finish(resampleSeparable(source.pixels, wx, wy, s, s), o)
    );
  } finally {
    source.pixels.dispose();
  }
}

/** One TenCrop crop: a box of the resized image, mirrored when `flip`. */
export interface TenCropBox {
  /** Left column in the (unflipped) image. */
  x: number;
  /** Top row. */
  y: number;
  /** Crop width. */
  width: number;
  /** Crop height. */
  height: number;
  /** Whether the crop is taken from the mirrored image (output mirrored). */
  flip: boolean;
}

/**
 * The ten boxes of torchvision's `TenCrop(size)` on a `width × height`
 * image: top-left, top-right, bottom-left, bottom-right, centre, then the
 * same five of the horizontally flipped image, expressed in the unflipped
 * image's coordinates (centre offsets use Python's round-half-to-even, so a
 * flipped centre can sit one pixel off the unflipped one).
 *
 * @example
 * ```ts
 * import { tenCropBoxes } from "@scaling-vicreg/augment/eval-transform";
 * console.log(tenCropBoxes(9, 7, 4)[9]); // { x: 3, y: 2, width: 4, height: 4, flip: true }
 * ```
 *
 * @param width Image width.
 * @param height Image height.
 * @param size Crop side (≤ both).
 * @returns Ten boxes in TenCrop order.
 */
export function tenCropBoxes(
  width: number,
  height: number,
  size: number,
): TenCropBox[] {
  if (
    !(Number.isInteger(size) && size > 0 && size <= width && size <= height)
  ) {
    throw new RangeError(
      `Expected a crop size in [1, ${
        Math.min(width, height)
      }]: received ${size}`,
    );
  }
  const [cx, cy] = centerCropOffset(width, height, size, size);
  const five: [number, number][] = [
    [0, 0],
    [width - size, 0],
    [0, height - size],
    [width - size, height - size],
    [cx, cy],
  ];
  const boxes: TenCropBox[] = five.map(([x, y]) => ({
    x,
    y,
    width: size,
    height: size,
    flip: false,
  }));
  // Crops of the mirrored image, mapped back: x ↦ width − x − size.
  for (const [x, y] of five) {
    boxes.push({
      x: width - x - size,
      y,
      width: size,
      height: size,
      flip: true,
    });
  }
  return boxes;
}

/**
 * Test-time TenCrop: bicubic resize to `R × R` with
 * `R = ⌊size / cropFraction⌋` (`int(size / 0.875)` in the paper's
 * `create_submission_linear_tta.py`), then the ten crops of
 * {@linkcode tenCropBoxes}. Rows `n·10 … n·10 + 9` belong to image n.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { tenCrop } from "@scaling-vicreg/augment/eval-transform";
 * await useBackend("cpu");
 * const image = { width: 12, height: 10, data: new Uint8Array(12 * 10 * 3) };
 * const x = tenCrop([image, image], { size: 7 });
 * console.log(x.shape); // [20, 7, 7, 3]
 * x.dispose();
 * ```
 *
 * @param images Non-empty list of `[H, W, 3]` uint8 images.
 * @param options `size` (default 96), `cropFraction` (0.875), normalisation.
 * @returns `[N·10, size, size, 3]` float32.
 */
export function tenCrop(
  images: RgbImage[],
  options: Omit<EvalTransformOptions, "mode"> = {},
): tf.Tensor4D {
  const o = resolve(options);
  const s = o.size;
  const r = Math.floor(s / o.cropFraction);
  const source = uploadImages(images);
  try {
    const [n, hMax, wMax] = source.pixels.shape;
    const wx = new Float32Array(n * r * wMax);
    const wy = new Float32Array(n * r * hMax);
    images.forEach((im, i) => {
      writeAxisWeights(wx, i * r * wMax, wMax, 0, im.width, r, false, 1 / 255);
      writeAxisWeights(wy, i * r * hMax, hMax, 0, im.height, r, false, 1);
    });
    // Exact selection (and mirror) matrices for the ten crops of R × R.
    const boxes = tenCropBoxes(r, r, s);
    const sx = new Float32Array(n * 10 * s * r);
    const sy = new Float32Array(n * 10 * s * r);
    for (let i = 0; i < n * 10; i++) {
      const b = boxes[i % 10];
      for (let o2 = 0; o2 < s; o2++) {
        const col = b.flip ? b.x + s - 1 - o2 : b.x + o2;
        sx[(i * s + o2) * r + col] = 1;
        sy[(i * s + o2) * r + b.y + o2] = 1;
      }
    }
    return tf.tidy(() => {
      const resized = resampleSeparable(source.pixels, wx, wy, r, r);
      const repeated = takeRows(
        resized,
        Array.from({ length: n * 10 }, (_, i) => Math.floor(i / 10)),
      );
      return finish(resampleSeparable(repeated, sx, sy, s, s), o);
    });
  } finally {
    source.pixels.dispose();
  }
}
