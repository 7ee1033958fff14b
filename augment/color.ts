/**
 * Batched colour operations with one factor per sample, following
 * torchvision's functional tensor ops on float images in [0, 1]
 * (`adjust_brightness`, `adjust_contrast`, `adjust_saturation`, `adjust_hue`,
 * `rgb_to_grayscale`, `solarize`, `normalize`), including their clamping to
 * [0, 1] after every blend. Images are NHWC `[N, H, W, 3]` float32.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  ADJUST_HUE_KERNEL,
  CHANNEL_AFFINE_KERNEL,
} from "@scaling-vicreg/backend/augment-kernels";
import { activeBackendHas } from "@scaling-vicreg/backend";

/**
 * ITU-R 601-2 luma weights, as Pillow's `convert("L")` (used by the paper's
 * PIL pipeline for grayscale, contrast and saturation).
 */
export const LUMA_ITU_R_601: readonly [number, number, number] = [
  0.299,
  0.587,
  0.114,
];

/** torchvision's tensor `rgb_to_grayscale` weights (0.2989, not 0.299). */
export const LUMA_TORCHVISION: readonly [number, number, number] = [
  0.2989,
  0.587,
  0.114,
];

/** The ImageNet channel means used by `Normalize`. */
export const IMAGENET_MEAN: readonly [number, number, number] = [
  0.485,
  0.456,
  0.406,
];

/** The ImageNet channel standard deviations used by `Normalize`. */
export const IMAGENET_STD: readonly [number, number, number] = [
  0.229,
  0.224,
  0.225,
];

/** Options of the grayscale-based colour ops. */
export interface LumaOptions {
  /**
   * RGB weights of the grayscale image.
   * @default {LUMA_ITU_R_601}
   */
  luma?: readonly [number, number, number];
}

/** Options of {@linkcode normalize} and {@linkcode denormalize}. */
export interface NormalizeOptions {
  /**
   * Channel means.
   * @default {IMAGENET_MEAN}
   */
  mean?: readonly [number, number, number];
  /**
   * Channel standard deviations.
   * @default {IMAGENET_STD}
   */
  std?: readonly [number, number, number];
}

function checkImages(x: tf.Tensor, fn: string): void {
  if (x.rank !== 4 || x.shape[3] !== 3) {
    throw new TypeError(
      `Expected ${fn}() images of shape [N, H, W, 3]: received [${x.shape}]`,
    );
  }
  if (x.dtype !== "float32") {
    throw new TypeError(
      `Expected ${fn}() images of dtype float32: received ${x.dtype}`,
    );
  }
}

function checkFactors(
  factors: ArrayLike<unknown>,
  n: number,
  fn: string,
): void {
  if (factors.length !== n) {
    throw new TypeError(
      `Expected ${fn}() to get one factor per image (${n}): received ${factors.length}`,
    );
  }
}

/**
 * A tensor of `shape` whose sample i is filled with `values[i]`. Built with
 * `TypedArray.fill` per sample: a same-shape multiply is several times faster
 * than a broadcast `[N, 1, 1, 1]` one on the CPU backend.
 */
function perSampleFull(
  values: ArrayLike<number>,
  shape: number[],
): tf.Tensor4D {
  const n = shape[0];
  const per = shape[1] * shape[2] * shape[3];
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i++) out.fill(values[i], i * per, (i + 1) * per);
  return tf.tensor4d(out, shape as [number, number, number, number]);
}

function perSampleMask(values: ArrayLike<boolean>, shape: number[]): tf.Tensor {
  const n = shape[0];
  const per = shape[1] * shape[2] * shape[3];
  const out = new Uint8Array(n * per);
  for (let i = 0; i < n; i++) {
    out.fill(values[i] ? 1 : 0, i * per, (i + 1) * per);
  }
  return tf.tensor(out, shape, "bool");
}

/** torchvision's `_blend`: `clamp(r·a + (1 − r)·b, 0, 1)` with `r` per sample. */
function blend(
  a: tf.Tensor4D,
  b: tf.Tensor4D | null,
  factors: ArrayLike<number>,
  fn: string,
): tf.Tensor4D {
  checkFactors(factors, a.shape[0], fn);
  const ra = tf.mul(perSampleFull(factors, a.shape), a);
  if (b === null) return tf.clipByValue(ra, 0, 1) as tf.Tensor4D;
  const q = perSampleFull(Array.from(factors, (f) => 1 - f), a.shape);
  return tf.clipByValue(tf.add(ra, tf.mul(q, b)), 0, 1) as tf.Tensor4D;
}

/** The luma plane `wr·R + wg·G + wb·B`, `[N·H·W, 1]` (a `[M, 3] @ [3, 1]` matmul). */
function lumaColumn(
  x: tf.Tensor4D,
  weights: readonly [number, number, number],
): tf.Tensor2D {
  const [n, h, w] = x.shape;
  return tf.matMul(
    tf.reshape(x, [n * h * w, 3]),
    tf.tensor2d([...weights], [3, 1]),
  );
}

/** The luma replicated to three channels, `[N, H, W, 3]`. */
function luma3(
  x: tf.Tensor4D,
  weights: readonly [number, number, number],
): tf.Tensor4D {
  // [M, 1] @ [1, 3] -> [M, 3]: a broadcast by matmul (each product is exact).
  return tf.reshape(
    tf.matMul(lumaColumn(x, weights), tf.ones([1, 3])),
    x.shape,
  );
}

/** `[N, H, W, 3]` to three `[1, M]` planes (one transpose, contiguous slices). */
function planes(x: tf.Tensor4D): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const [n, h, w] = x.shape;
  const m = n * h * w;
  const t = tf.transpose(tf.reshape(x, [m, 3]));
  return [0, 1, 2].map((c) => tf.slice(t, [c, 0], [1, m])) as [
    tf.Tensor2D,
    tf.Tensor2D,
    tf.Tensor2D,
  ];
}

/** Three `[1, M]` planes back to `[N, H, W, 3]`. */
function unplanes(
  r: tf.Tensor,
  g: tf.Tensor,
  b: tf.Tensor,
  shape: [number, number, number, number],
): tf.Tensor4D {
  return tf.reshape(tf.transpose(tf.concat([r, g, b], 0)), shape);
}

/**
 * Grayscale with the luma replicated to three channels, as
 * `rgb_to_grayscale(img, num_output_channels=3)`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { rgbToGrayscale } from "@scaling-vicreg/augment/color";
 * await useBackend("cpu");
 * const gray = rgbToGrayscale(tf.tensor4d([1, 0, 0], [1, 1, 1, 3]));
 * console.log(gray.dataSync()); // ≈ [0.299, 0.299, 0.299]
 * ```
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param options The luma weights.
 * @returns `[N, H, W, 3]`.
 */
export function rgbToGrayscale(
  x: tf.Tensor4D,
  options: LumaOptions = {},
): tf.Tensor4D {
  checkImages(x, "rgbToGrayscale");
  return tf.tidy(() => {
    return luma3(x, options.luma ?? LUMA_ITU_R_601);
  });
}

/**
 * Brightness: blends each image with black, `clamp(f·x, 0, 1)`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { adjustBrightness } from "@scaling-vicreg/augment/color";
 * await useBackend("cpu");
 * const y = adjustBrightness(tf.fill([2, 1, 1, 3], 0.5) as tf.Tensor4D, [0.5, 3]);
 * console.log(y.dataSync()); // [0.25, 0.25, 0.25, 1, 1, 1]
 * ```
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param factors One factor ≥ 0 per image.
 * @returns `[N, H, W, 3]`.
 */
export function adjustBrightness(
  x: tf.Tensor4D,
  factors: ArrayLike<number>,
): tf.Tensor4D {
  checkImages(x, "adjustBrightness");
  return tf.tidy(() => blend(x, null, factors, "adjustBrightness"));
}

/**
 * Contrast: blends each image with the mean of its grayscale image (one
 * scalar per image).
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param factors One factor ≥ 0 per image.
 * @param options The luma weights.
 * @returns `[N, H, W, 3]`.
 */
export function adjustContrast(
  x: tf.Tensor4D,
  factors: ArrayLike<number>,
  options: LumaOptions = {},
): tf.Tensor4D {
  checkImages(x, "adjustContrast");
  return tf.tidy(() => {
    const [n, h, w] = x.shape;
    // luma [N·H·W, 1] -> [N, H·W] -> mean: [N, 1]
    const l = tf.reshape(lumaColumn(x, options.luma ?? LUMA_ITU_R_601), [
      n,
      h * w,
    ]);
    const mean = tf.mean(l, 1, true);
    // [N, 1] @ [1, H·W·3]: the per-image mean broadcast by matmul.
    const b: tf.Tensor4D = tf.reshape(
      tf.matMul(mean, tf.ones([1, h * w * 3])),
      x.shape,
    );
    return blend(x, b, factors, "adjustContrast");
  });
}

/**
 * Saturation: blends each image with its grayscale image.
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param factors One factor ≥ 0 per image.
 * @param options The luma weights.
 * @returns `[N, H, W, 3]`.
 */
export function adjustSaturation(
  x: tf.Tensor4D,
  factors: ArrayLike<number>,
  options: LumaOptions = {},
): tf.Tensor4D {
  checkImages(x, "adjustSaturation");
  return tf.tidy(() =>
    blend(
      x,
      luma3(x, options.luma ?? LUMA_ITU_R_601),
      factors,
      "adjustSaturation",
    )
  );
}

/**
 * A positive float below any non-zero difference of pixel values: dividing
 * by `max(d, TINY)` equals torchvision's divide by `where(d == 0, 1, d)`
 * wherever the numerator is 0 when d is (both give 0), without a select.
 */
const TINY = 1e-30;

/**
 * torchvision's `_rgb2hsv` on `[1, M]` planes: h, s, v planes. Selects are
 * written as arithmetic (0/1 masks, `max(d, TINY)` divisors): on the wasm
 * backend `Select` costs ~6 elementwise ops.
 */
function rgbToHsv(
  r: tf.Tensor2D,
  g: tf.Tensor2D,
  b: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const maxc = tf.maximum(tf.maximum(r, g), b);
  const minc = tf.minimum(tf.minimum(r, g), b);
  const cr = tf.sub(maxc, minc);
  // Clips rather than maxima: Minimum/Maximum are ~5× slower on wasm.
  const s = tf.div(cr, tf.clipByValue(maxc, TINY, Number.MAX_VALUE));
  const crDivisor = tf.clipByValue(cr, TINY, Number.MAX_VALUE);
  const rc = tf.div(tf.sub(maxc, r), crDivisor);
  const gc = tf.div(tf.sub(maxc, g), crDivisor);
  const bc = tf.div(tf.sub(maxc, b), crDivisor);
  // The three cases are exclusive (red wins ties, then green): a 0/1 blend
  // equals torchvision's mask sum.
  const isR = tf.cast(tf.equal(maxc, r), "float32");
  const isG = tf.cast(tf.equal(maxc, g), "float32");
  const hr = tf.sub(bc, gc);
  const hg = tf.sub(tf.add(rc, 2), bc);
  const hb = tf.sub(tf.add(gc, 4), rc);
  const hgb = tf.add(hb, tf.mul(isG, tf.sub(hg, hb)));
  const hSum = tf.add(hgb, tf.mul(isR, tf.sub(hr, hgb)));
  const h6 = tf.add(tf.div(hSum, 6), 1);
  // fmod(h, 1) for h > 0.
  const h = tf.sub(h6, tf.floor(h6));
  return [h as tf.Tensor2D, s as tf.Tensor2D, maxc as tf.Tensor2D];
}

/**
 * torchvision's `_hsv2rgb` on `[1, M]` planes: r, g, b planes, in the
 * select-free closed form `c = v − v·s·clamp(min(k, 4 − k), 0, 1)` with
 * `k = (n + 6h) mod 6`, n = 5, 3, 1 (the same piecewise-linear map as
 * torchvision's choice among v, p, q, t; equal up to float rounding).
 */
function hsvToRgb(
  h: tf.Tensor2D,
  s: tf.Tensor2D,
  v: tf.Tensor2D,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const h6 = tf.mul(h, 6);
  const vs = tf.mul(v, s);
  const channel = (n: number) => {
    const k0 = tf.add(h6, n);
    // k0 in [n, n + 6): mod 6 with one floor.
    const k = tf.sub(k0, tf.mul(tf.floor(tf.div(k0, 6)), 6));
    // min(k, 4 − k) = 2 − |k − 2| (Abs is ~5× cheaper than Minimum on wasm).
    const m = tf.clipByValue(tf.sub(2, tf.abs(tf.sub(k, 2))), 0, 1);
    return tf.sub(v, tf.mul(vs, m));
  };
  return [channel(5), channel(3), channel(1)];
}

/**
 * Hue: converts to HSV, shifts h by the factor (mod 1) and converts back, as
 * torchvision's `adjust_hue` for float tensors.
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param factors One shift in [−0.5, 0.5] per image.
 * @returns `[N, H, W, 3]`.
 */
export function adjustHue(
  x: tf.Tensor4D,
  factors: ArrayLike<number>,
): tf.Tensor4D {
  checkImages(x, "adjustHue");
  for (const f of Array.from(factors)) {
    if (!(f >= -0.5 && f <= 0.5)) {
      throw new RangeError(
        `Expected adjustHue() factors in [-0.5, 0.5]: received ${f}`,
      );
    }
  }
  checkFactors(factors, x.shape[0], "adjustHue");
  if (activeBackendHas(ADJUST_HUE_KERNEL)) {
    // One pass per pixel on host-memory backends that register it.
    return tf.tidy(() =>
      tf.engine().runKernel(ADJUST_HUE_KERNEL, {
        x,
        shifts: tf.tensor1d(Float32Array.from(factors)),
      }, {}) as tf.Tensor4D
    );
  }
  return tf.tidy(() => {
    const [r, g, b] = planes(x);
    const [h, s, v] = rgbToHsv(r, g, b);
    // Per-sample shifts as a [1, M] plane (samples are contiguous in M).
    const shift = tf.reshape(
      perSampleFull(factors, [x.shape[0], x.shape[1], x.shape[2], 1]),
      h.shape,
    );
    const shifted = tf.add(h, shift);
    // Python's `%`: a − floor(a).
    const h2 = tf.sub(shifted, tf.floor(shifted)) as tf.Tensor2D;
    const [r2, g2, b2] = hsvToRgb(h2, s, v);
    return unplanes(r2, g2, b2, x.shape);
  });
}

/**
 * Solarization of the chosen images: pixels `x ≥ threshold` become `1 − x`,
 * as torchvision's `solarize`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { solarize } from "@scaling-vicreg/augment/color";
 * await useBackend("cpu");
 * const y = solarize(tf.tensor4d([0.2, 0.5, 0.9], [1, 1, 1, 3]), [true]);
 * console.log(y.dataSync()); // ≈ [0.2, 0.5, 0.1]
 * ```
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param apply Whether to solarize each image.
 * @param options `threshold` (default 0.5).
 * @returns `[N, H, W, 3]`.
 */
export function solarize(
  x: tf.Tensor4D,
  apply: ArrayLike<boolean>,
  options: { threshold?: number } = {},
): tf.Tensor4D {
  checkImages(x, "solarize");
  const threshold = options.threshold ?? 0.5;
  return tf.tidy(() => {
    checkFactors(apply, x.shape[0], "solarize");
    const cond = tf.logicalAnd(
      tf.greaterEqual(x, threshold),
      perSampleMask(apply, x.shape),
    );
    return tf.where(cond, tf.sub(1, x), x);
  });
}

/**
 * Replaces the chosen images by their grayscale (luma in three channels).
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param apply Whether to gray each image.
 * @param options The luma weights.
 * @returns `[N, H, W, 3]`.
 */
export function randomGrayscale(
  x: tf.Tensor4D,
  apply: ArrayLike<boolean>,
  options: LumaOptions = {},
): tf.Tensor4D {
  checkImages(x, "randomGrayscale");
  return tf.tidy(() => {
    checkFactors(apply, x.shape[0], "randomGrayscale");
    return tf.where(
      perSampleMask(apply, x.shape),
      luma3(x, options.luma ?? LUMA_ITU_R_601),
      x,
    );
  });
}

/**
 * `x · scale[c] + shift[c]` per channel, as same-shape ops with the factors
 * tiled on the host: faster than broadcasting `[3]` or than `[M, 3] @ diag`
 * on both the wasm and CPU backends.
 */
function affinePerChannel(
  x: tf.Tensor4D,
  scale: readonly number[],
  shift: readonly number[],
): tf.Tensor4D {
  if (activeBackendHas(CHANNEL_AFFINE_KERNEL)) {
    // One pass on host backends that register it.
    return tf.engine().runKernel(CHANNEL_AFFINE_KERNEL, { x }, {
      scale: [...scale],
      shift: [...shift],
    }) as tf.Tensor4D;
  }
  const tile = (v: readonly number[]) => {
    const out = new Float32Array(x.size);
    out.set(v.slice(0, Math.min(3, out.length)));
    // Doubling copies: log2(size) memmoves instead of a per-element loop.
    for (let len = 3; len < out.length; len *= 2) {
      out.copyWithin(len, 0, Math.min(len, out.length - len));
    }
    return tf.tensor4d(out, x.shape);
  };
  return tf.add(tf.mul(x, tile(scale)), tile(shift));
}

/**
 * Channel normalisation `(x − mean) / std`, as torchvision's `Normalize`.
 *
 * @param x Images `[N, H, W, 3]` in [0, 1].
 * @param options Means and standard deviations (ImageNet's by default).
 * @returns `[N, H, W, 3]`.
 */
export function normalize(
  x: tf.Tensor4D,
  options: NormalizeOptions = {},
): tf.Tensor4D {
  checkImages(x, "normalize");
  const mean = options.mean ?? IMAGENET_MEAN;
  const std = options.std ?? IMAGENET_STD;
  return tf.tidy(() =>
    affinePerChannel(
      x,
      std.map((v) => 1 / v),
      mean.map((m, c) => -m / std[c]),
    )
  );
}

/**
 * Undoes {@linkcode normalize}: `x · std + mean`, clamped to [0, 1], for
 * viewing normalised views.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { denormalize } from "@scaling-vicreg/augment/color";
 * await useBackend("cpu");
 * console.log(denormalize(tf.zeros([1, 1, 1, 3])).dataSync()); // ≈ [0.485, 0.456, 0.406]
 * ```
 *
 * @param x Normalised images `[N, H, W, 3]`.
 * @param options Means and standard deviations (ImageNet's by default).
 * @returns `[N, H, W, 3]` in [0, 1].
 */
export function denormalize(
  x: tf.Tensor4D,
  options: NormalizeOptions = {},
): tf.Tensor4D {
  checkImages(x, "denormalize");
  const mean = options.mean ?? IMAGENET_MEAN;
  const std = options.std ?? IMAGENET_STD;
  return tf.tidy(() => tf.clipByValue(affinePerChannel(x, std, mean), 0, 1));
}
