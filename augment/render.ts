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
 * Two schedules of the same arithmetic, chosen by backend:
 *
 * - **Device path** (WebGPU, WebGL): as above, a few large batched ops.
 * - **Host path** (`cpu`, `wasm`, `cpu-fast`, `tensorflow`; tensors in host
 *   memory): per-sample plain 2-D matmuls (tfjs-wasm runs a batched matmul
 *   as a naive loop, its 2-D matmul on XNNPACK); the crop +
 *   resize reads only each sample's crop window (cut from one read of the
 *   batch, channel-planar, so no columns of zeros and no padding cost); and
 *   batch splits, gathers and the jitter stages go through host memory (one
 *   read and one upload each) because tfjs-wasm's `Slice` copies its whole
 *   input on every call. On `wasm` this is the faster schedule (measured
 *   figures: `bench/README.md`, from `bench/augment_compare.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  activeBackendHas,
  checkRgbImage,
  type RgbImage,
} from "@scaling-vicreg/backend";
import {
  COLOR_JITTER_KERNEL,
  CROP_RESIZE_KERNEL,
} from "@scaling-vicreg/backend/augment-kernels";
import {
  applyGroups,
  bandedMatMul,
  hostBackend,
  HostBatch,
  resampleSeparable,
  writeAxisWeights,
} from "./_batch.ts";
import {
  pilBicubicMatrix,
  type PilCoefficients,
  pilCoefficients,
} from "./_pil_resample.ts";
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
  rgbToGrayscale,
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
  /**
   * The same pixels in host memory, when the batch was built there (saves
   * host backends a read of `pixels`; never modified).
   */
  host?: Float32Array;
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
    host: buffer,
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
  });
  if (activeBackendHas(CROP_RESIZE_KERNEL)) {
    return cropResizeKernel(source.pixels, crops, flips, width, height);
  }
  if (hostBackend()) {
    return cropResizeWindows(
      source.pixels,
      source.host ?? source.pixels.dataSync() as Float32Array,
      crops,
      flips,
      width,
      height,
    );
  }
  const wx = new Float32Array(n * width * wMax);
  const wy = new Float32Array(n * height * hMax);
  crops.forEach((c, i) => {
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
 * {@linkcode cropResize} as one {@linkcode CROP_RESIZE_KERNEL} call (host
 * backends that register it): Pillow's coefficient tables per image, packed
 * as `[N, out, K]` taps with `[N, out, 2]` bounds, the 1/255 of ToTensor in
 * the horizontal taps, the horizontal rows reversed for a mirror.
 */
function cropResizeKernel(
  pixels: tf.Tensor4D,
  crops: readonly CropBox[],
  flips: readonly boolean[],
  width: number,
  height: number,
): tf.Tensor4D {
  const n = crops.length;
  const xs = crops.map((c) => pilCoefficients(c.width, width));
  const ys = crops.map((c) => pilCoefficients(c.height, height));
  const pack = (
    tables: PilCoefficients[],
    out: number,
    scale: number,
    reverse: (i: number) => boolean,
  ): [tf.Tensor3D, tf.Tensor3D] => {
    const k = Math.max(...tables.map((t) => t.ksize));
    const bounds = new Float32Array(n * out * 2);
    const weights = new Float32Array(n * out * k);
    tables.forEach((t, i) => {
      for (let o = 0; o < out; o++) {
        const row = reverse(i) ? out - 1 - o : o;
        const to = i * out + row;
        bounds[to * 2] = t.bounds[o * 2];
        bounds[to * 2 + 1] = t.bounds[o * 2 + 1];
        for (let j = 0; j < t.bounds[o * 2 + 1]; j++) {
          weights[to * k + j] = t.weights[o * t.ksize + j] * scale;
        }
      }
    });
    return [
      tf.tensor3d(bounds, [n, out, 2]),
      tf.tensor3d(weights, [n, out, k]),
    ];
  };
  return tf.tidy(() => {
    const [xBounds, xWeights] = pack(xs, width, 1 / 255, (i) => flips[i]);
    const [yBounds, yWeights] = pack(ys, height, 1, () => false);
    const windows = tf.tensor2d(
      crops.flatMap((c) => [c.x, c.y, c.width, c.height]),
      [n, 4],
    );
    return tf.engine().runKernel(CROP_RESIZE_KERNEL, {
      x: pixels,
      windows,
      xBounds,
      xWeights,
      yBounds,
      yWeights,
    }, {}) as tf.Tensor4D;
  });
}

/**
 * Pillow's `[out, span]` bicubic matrix in float32, scaled, rows reversed for
 * a mirror.
 */
function axisWeights(
  span: number,
  out: number,
  reverse: boolean,
  scale: number,
): Float32Array {
  const m = pilBicubicMatrix(span, out);
  const t = new Float32Array(out * span);
  for (let o = 0; o < out; o++) {
    const row = (reverse ? out - 1 - o : o) * span;
    for (let j = 0; j < span; j++) t[row + j] = m[o * span + j] * scale;
  }
  return t;
}

/**
 * {@linkcode cropResize} on a host backend: per sample, two banded
 * left-multiplies (see {@linkcode bandedMatMul}) over its crop window only:
 * no padding, and no zero weights beyond each block's band (fewer
 * multiply-adds than dense per-sample matmuls; measured speed in
 * `bench/README.md`). The window is
 * cut from one read of the batch, x-major (`[cw, ch·3]`), so that the
 * horizontal pass is a left-multiply.
 */
function cropResizeWindows(
  pixels: tf.Tensor4D,
  values: Float32Array,
  crops: readonly CropBox[],
  flips: readonly boolean[],
  width: number,
  height: number,
): tf.Tensor4D {
  const [, hMax, wMax] = pixels.shape;
  return tf.tidy(() => {
    const views = crops.map((c, i) => {
      const ch = c.height, cw = c.width;
      // window [cw, ch, 3] (x-major) from the sample's [Hmax, Wmax, 3]
      const win = new Float32Array(cw * ch * 3);
      for (let y = 0; y < ch; y++) {
        let src = ((i * hMax + c.y + y) * wMax + c.x) * 3;
        for (let x = 0; x < cw; x++, src += 3) {
          const dst = (x * ch + y) * 3;
          win[dst] = values[src];
          win[dst + 1] = values[src + 1];
          win[dst + 2] = values[src + 2];
        }
      }
      // Horizontal pass first, as Pillow (1/255 of ToTensor folded in):
      // Wx [outW, cw] · [cw, ch·3] -> [outW, ch·3]
      const h = tf.clipByValue(
        bandedMatMul(
          axisWeights(cw, width, flips[i], 1 / 255),
          width,
          cw,
          win,
          ch * 3,
        ),
        0,
        1,
      );
      // [outW, ch, 3] -> [ch, outW, 3], read back for the banded pass
      const ht = tf.transpose(tf.reshape(h, [width, ch, 3]), [1, 0, 2]);
      // Vertical pass: Wy [outH, ch] · [ch, outW·3] -> [outH, outW·3]
      return tf.clipByValue(
        bandedMatMul(
          axisWeights(ch, height, false, 1),
          height,
          ch,
          ht.dataSync() as Float32Array,
          width * 3,
        ),
        0,
        1,
      );
    });
    // [N, outH, outW·3] -> [N, outH, outW, 3]
    return tf.reshape(tf.stack(views), [
      crops.length,
      height,
      width,
      3,
    ]) as tf.Tensor4D;
  });
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
  if (hostBackend()) {
    if (!params.some((p) => p.jitter.applied)) return tf.clone(x);
    if (activeBackendHas(COLOR_JITTER_KERNEL)) {
      return jitterKernel(x, params, luma);
    }
    const batch = new HostBatch(x);
    colorJitterOnHost(batch, params, luma);
    return batch.toTensor();
  }
  let y = x;
  for (let stage = 0; stage < 4; stage++) {
    const groups: number[][] = [[], [], [], []];
    params.forEach((p, i) => {
      if (p.jitter.applied) groups[p.jitter.order[stage]].push(i);
    });
    const next = applyGroups(y, groups, jitterOps(params, luma));
    if (y !== x) y.dispose();
    y = next;
  }
  return y === x ? tf.clone(x) : y;
}

/** {@linkcode COLOR_JITTER_KERNEL} on `x`, one jitter draw per image. */
function jitterKernel(
  x: tf.Tensor4D,
  params: readonly Pick<ViewParams, "jitter">[],
  luma: readonly [number, number, number],
): tf.Tensor4D {
  return tf.tidy(() =>
    tf.engine().runKernel(COLOR_JITTER_KERNEL, {
      x,
      params: jitterTable(params),
    }, { luma: [...luma] }) as tf.Tensor4D
  );
}

/** `[N, 9]` rows of {@linkcode COLOR_JITTER_KERNEL}'s `params`. */
function jitterTable(
  params: readonly Pick<ViewParams, "jitter">[],
): tf.Tensor2D {
  const rows = new Float32Array(params.length * 9);
  params.forEach(({ jitter: j }, i) => {
    rows.set(
      [
        j.applied ? 1 : 0,
        ...(j.applied ? j.order : [0, 1, 2, 3]),
        j.brightness,
        j.contrast,
        j.saturation,
        j.hue,
      ],
      i * 9,
    );
  });
  return tf.tensor2d(rows, [params.length, 9]);
}

/** The jitter op of each group: brightness, contrast, saturation, hue. */
function jitterOps(
  params: readonly Pick<ViewParams, "jitter">[],
  luma: readonly [number, number, number],
): ((sub: tf.Tensor4D, indices: number[]) => tf.Tensor4D)[] {
  const pick = (
    idx: number[],
    key: "brightness" | "contrast" | "saturation" | "hue",
  ) => idx.map((i) => params[i].jitter[key]);
  return [
    (s, idx) => adjustBrightness(s, pick(idx, "brightness")),
    (s, idx) => adjustContrast(s, pick(idx, "contrast"), { luma }),
    (s, idx) => adjustSaturation(s, pick(idx, "saturation"), { luma }),
    (s, idx) => adjustHue(s, pick(idx, "hue")),
  ];
}

/** The jitter stages of {@linkcode colorJitter} on a host-memory batch. */
function colorJitterOnHost(
  batch: HostBatch,
  params: readonly Pick<ViewParams, "jitter">[],
  luma: readonly [number, number, number],
): void {
  if (activeBackendHas(COLOR_JITTER_KERNEL)) {
    // The jittered samples in one kernel (see backend/kernels/color.ts).
    batch.apply(
      params.flatMap((p, i) => (p.jitter.applied ? [i] : [])),
      (s, idx) => jitterKernel(s, idx.map((i) => params[i]), luma),
    );
    return;
  }
  const ops = jitterOps(params, luma);
  for (let stage = 0; stage < 4; stage++) {
    const groups: number[][] = [[], [], [], []];
    params.forEach((p, i) => {
      if (p.jitter.applied) groups[p.jitter.order[stage]].push(i);
    });
    // Groups are disjoint: each reads and writes only its own samples.
    groups.forEach((g, k) => batch.apply(g, ops[k]));
  }
}

/**
 * {@linkcode renderViews} on a host backend: after the crop + resize the batch
 * stays in host memory and each stage uploads only the samples it changes.
 */
function renderViewsOnHost(
  source: SourceBatch,
  params: readonly ViewParams[],
  o: Required<RenderOptions>,
): tf.Tensor4D {
  const pick = (f: (p: ViewParams) => boolean) =>
    params.flatMap((p, i) => (f(p) ? [i] : []));
  const resized = cropResize(
    source,
    params.map((p) => p.crop),
    params.map((p) => p.flip),
    o.size,
    o.size,
  );
  const batch = new HostBatch(resized);
  resized.dispose();
  batch.apply(
    pick((p) => p.rotation !== null),
    (s, idx) => rotateNearest(s, idx.map((i) => params[i].rotation)),
  );
  colorJitterOnHost(batch, params, o.luma);
  batch.apply(
    pick((p) => p.grayscale),
    (s) => rgbToGrayscale(s, { luma: o.luma }),
  );
  batch.apply(
    pick((p) => p.blurSigma !== null),
    (s, idx) =>
      gaussianBlur(s, idx.map((i) => params[i].blurSigma), {
        method: o.blurMethod,
      }),
  );
  batch.apply(
    pick((p) => p.solarize),
    (s, idx) =>
      solarize(s, idx.map(() => true), { threshold: o.solarizeThreshold }),
  );
  return tf.tidy(() => {
    const x = batch.toTensor();
    return o.mean === null ? x : normalize(x, { mean: o.mean, std: o.std });
  });
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
  if (hostBackend()) return renderViewsOnHost(source, params, o);
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
