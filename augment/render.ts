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
 * Backends that register the fused kernels (`CROP_RESIZE_KERNEL`,
 * `COLOR_JITTER_KERNEL`) run crop + resize and colour jitter as one kernel
 * call each. This file holds the public entry points and picks the path; the
 * paths live in `_render_device.ts`, `_render_host.ts` and `_render_fused.ts`,
 * and the ops both schedules share in `_render_ops.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  activeBackendHas,
  checkRgbImage,
  type RgbImage,
} from "@scaling-vicreg/backend";
import { CROP_RESIZE_KERNEL } from "@scaling-vicreg/backend/augment-kernels";
import { hostBackend } from "./_batch.ts";
import {
  colorJitterOnDevice,
  cropResizeOnDevice,
  renderResizedOnDevice,
} from "./_render_device.ts";
import { cropResizeKernel } from "./_render_fused.ts";
import {
  colorJitterOnHost,
  cropResizeWindows,
  renderResizedOnHost,
} from "./_render_host.ts";
import { LUMA_ITU_R_601 } from "./color.ts";
import {
  DEFAULT_RENDER_OPTIONS,
  type RenderOptions,
} from "./render_options.ts";
import type { CropBox, ViewParams } from "./params.ts";

export { rotateNearest } from "./_render_ops.ts";

export {
  DEFAULT_RENDER_OPTIONS,
  type RenderOptions,
} from "./render_options.ts";

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
  const [n] = source.pixels.shape;
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
  return cropResizeOnDevice(source.pixels, crops, flips, width, height);
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
  if (hostBackend()) return colorJitterOnHost(x, params, luma);
  return colorJitterOnDevice(x, params, luma);
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
  const resize = () =>
    cropResize(
      source,
      params.map((p) => p.crop),
      params.map((p) => p.flip),
      o.size,
      o.size,
    );
  if (hostBackend()) return renderResizedOnHost(resize(), params, o);
  return tf.tidy(() => renderResizedOnDevice(resize(), params, o));
}
