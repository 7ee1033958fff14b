/**
 * Per-sample Gaussian blur as separable matrices: each image gets a
 * `[S, S]` blur matrix per axis and the batch is blurred with two batched
 * matmuls. Two kernels are available:
 *
 * - `"pil"` (default): what the paper's code runs, Pillow's
 *   `ImageFilter.GaussianBlur(radius=σ)`, which is not a sampled Gaussian but
 *   three passes of an "extended" box blur (Gwosdek et al. 2011) whose box
 *   radius `l + α` is chosen to give variance σ², with edge pixels repeated.
 *   We build the exact linear map of those three passes in float; Pillow
 *   rounds to uint8 after each pass, so results differ from Pillow by
 *   rounding only (≤ 2.5/255 in our fixture).
 * - `"gaussian"`: torchvision's tensor `gaussian_blur` (a sampled Gaussian of
 *   `kernelSize` taps, normalised, reflect padding).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { applySeparable, bandedLeftMultiply, hostBackend } from "./_batch.ts";

/** Options of {@linkcode blurMatrix} and {@linkcode gaussianBlur}. */
export interface BlurOptions {
  /**
   * `"pil"`: Pillow's three-pass box approximation (the paper's code);
   * `"gaussian"`: torchvision's sampled, reflect-padded kernel.
   * @default {"pil"}
   */
  method?: "pil" | "gaussian";
  /**
   * Taps of the `"gaussian"` kernel (odd); clipped to the largest odd size
   * the reflect padding allows.
   * @default {23}
   */
  kernelSize?: number;
}

/** Defaults of {@linkcode BlurOptions}. */
export const DEFAULT_BLUR_OPTIONS: Required<BlurOptions> = {
  method: "pil",
  kernelSize: 23,
};

/**
 * Pillow's `_gaussian_blur_radius`: the extended-box radius `l + α` whose
 * `passes`-fold repetition has variance `radius²` (float32 arithmetic, as in
 * Pillow's C code).
 *
 * @example
 * ```ts
 * import { pilBoxRadius } from "@scaling-vicreg/augment/blur";
 * console.log(pilBoxRadius(2).toFixed(4)); // "1.1111"
 * ```
 *
 * @param sigma The Gaussian's σ (Pillow's "radius").
 * @param passes Number of box passes.
 * @returns The fractional box radius.
 */
export function pilBoxRadius(sigma: number, passes = 3): number {
  const f = Math.fround;
  const sigma2 = f(f(sigma * sigma) / passes);
  const L = f(Math.sqrt(12 * sigma2 + 1));
  const l = f(Math.floor((L - 1) / 2));
  let a = f((2 * l + 1) * f(l * (l + 1) - 3 * sigma2));
  a = f(a / f(6 * f(sigma2 - (l + 1) * (l + 1))));
  return f(l + a);
}

function clampIndex(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/**
 * One extended box pass applied to every column of `m` (`[n, n]`), touching
 * only each row's non-zero columns `[lo[i], hi[i]]` (the band; updated in
 * place), so a pass costs O(n · band) rather than O(n²).
 */
function boxPass(
  m: Float64Array<ArrayBuffer>,
  n: number,
  radius: number,
  lo: Int32Array,
  hi: Int32Array,
): Float64Array<ArrayBuffer> {
  const l = Math.trunc(radius);
  const ww = 1 / (2 * radius + 1);
  const fw = (1 - (2 * l + 1) * ww) / 2;
  const out = new Float64Array(n * n);
  const lo2 = new Int32Array(n), hi2 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let a = n, b = -1;
    for (let k = -l - 1; k <= l + 1; k++) {
      const w = k === -l - 1 || k === l + 1 ? fw : ww;
      if (w === 0) continue;
      const r = clampIndex(i + k, n);
      const src = r * n;
      for (let j = lo[r]; j <= hi[r]; j++) out[row + j] += w * m[src + j];
      if (lo[r] < a) a = lo[r];
      if (hi[r] > b) b = hi[r];
    }
    lo2[i] = a;
    hi2[i] = b;
  }
  lo.set(lo2);
  hi.set(hi2);
  return out;
}

/**
 * The `[n, n]` matrix `B` (row-major) that blurs a length-`n` signal as
 * `out = B · in`, for one image axis.
 *
 * @example
 * ```ts
 * import { blurMatrix } from "@scaling-vicreg/augment/blur";
 * const b = blurMatrix(5, 1.0);
 * console.log(b.slice(10, 15).reduce((s, v) => s + v, 0).toFixed(5)); // "1.00000"
 * ```
 *
 * @param n Axis length.
 * @param sigma σ > 0.
 * @param options The kernel.
 * @returns `[n, n]` float32, each row summing to 1.
 */
export function blurMatrix(
  n: number,
  sigma: number,
  options: BlurOptions = {},
): Float32Array {
  const { method, kernelSize } = { ...DEFAULT_BLUR_OPTIONS, ...options };
  if (!(sigma > 0 && Number.isFinite(sigma))) {
    throw new RangeError(`Expected blur sigma > 0: received ${sigma}`);
  }
  if (method === "pil") {
    let m = new Float64Array(n * n);
    for (let i = 0; i < n; i++) m[i * n + i] = 1;
    const radius = pilBoxRadius(sigma);
    if (radius === 0) return Float32Array.from(m);
    const lo = Int32Array.from({ length: n }, (_, i) => i);
    const hi = Int32Array.from(lo);
    for (let pass = 0; pass < 3; pass++) m = boxPass(m, n, radius, lo, hi);
    return Float32Array.from(m);
  }
  if (!(Number.isInteger(kernelSize) && kernelSize > 0 && kernelSize % 2)) {
    throw new RangeError(
      `Expected kernelSize to be a positive odd integer: received ${kernelSize}`,
    );
  }
  // Reflect padding needs half < n.
  const half = Math.min((kernelSize - 1) / 2, n - 1);
  const kernel = new Float64Array(2 * half + 1);
  let sum = 0;
  for (let k = -half; k <= half; k++) {
    const v = Math.exp(-0.5 * (k / sigma) ** 2);
    kernel[k + half] = v;
    sum += v;
  }
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = -half; k <= half; k++) {
      let j = i + k;
      if (j < 0) j = -j;
      if (j > n - 1) j = 2 * (n - 1) - j;
      m[i * n + j] += kernel[k + half] / sum;
    }
  }
  return m;
}

/**
 * Blurs each image of a batch with its own σ (`null`: unchanged).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { gaussianBlur } from "@scaling-vicreg/augment/blur";
 * await useBackend("cpu");
 * const x = tf.randomUniform([2, 8, 8, 3]) as tf.Tensor4D;
 * const y = gaussianBlur(x, [1.5, null]);
 * console.log(y.shape); // [2, 8, 8, 3]
 * ```
 *
 * @param x Images `[N, H, W, 3]`.
 * @param sigmas One σ or `null` per image.
 * @param options The kernel.
 * @returns `[N, H, W, 3]`.
 */
export function gaussianBlur(
  x: tf.Tensor4D,
  sigmas: ArrayLike<number | null>,
  options: BlurOptions = {},
): tf.Tensor4D {
  if (x.rank !== 4) {
    throw new TypeError(
      `Expected gaussianBlur() images of rank 4: received rank ${x.rank}`,
    );
  }
  const [n, h, w] = x.shape;
  if (sigmas.length !== n) {
    throw new TypeError(
      `Expected gaussianBlur() to get one sigma per image (${n}): received ${sigmas.length}`,
    );
  }
  const rows = new Float32Array(n * h * h);
  const cols = new Float32Array(n * w * w);
  for (let i = 0; i < n; i++) {
    const s = sigmas[i];
    if (s === null) {
      for (let j = 0; j < h; j++) rows[i * h * h + j * h + j] = 1;
      for (let j = 0; j < w; j++) cols[i * w * w + j * w + j] = 1;
    } else {
      rows.set(blurMatrix(h, s, options), i * h * h);
      cols.set(
        h === w
          ? rows.subarray(i * h * h, (i + 1) * h * h)
          : blurMatrix(w, s, options),
        i * w * w,
      );
    }
  }
  if (hostBackend()) return blurOnHost(x, rows, cols);
  return tf.tidy(() =>
    applySeparable(
      x,
      tf.tensor3d(rows, [n, h, h]),
      tf.tensor3d(cols, [n, w, w]),
    )
  );
}

/**
 * {@linkcode gaussianBlur} on a host backend: each pass is a banded
 * left-multiply over host memory (only the rows each block of outputs
 * touches: the blur matrices are ~10 % non-zero), with one transpose between
 * and after the passes.
 */
function blurOnHost(
  x: tf.Tensor4D,
  rows: Float32Array,
  cols: Float32Array,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  // Vertical: [N, H, H] · [N, H, W·C] -> [N, H, W·C]
  const v = bandedLeftMultiply(rows, x.dataSync() as Float32Array, n, h, w * c);
  // [N, H, W, C] -> [N, W, H, C]
  const t = tf.tidy(() =>
    tf.transpose(tf.reshape(v, [n, h, w, c]), [0, 2, 1, 3])
  );
  v.dispose();
  // Horizontal: [N, W, W] · [N, W, H·C] -> [N, W, H·C]
  const u = bandedLeftMultiply(cols, t.dataSync() as Float32Array, n, w, h * c);
  t.dispose();
  return tf.tidy(() => {
    const out = tf.transpose(tf.reshape(u, [n, w, h, c]), [0, 2, 1, 3]);
    u.dispose();
    return out as tf.Tensor4D;
  });
}
