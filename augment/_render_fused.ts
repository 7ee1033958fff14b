/**
 * The fused-kernel path of `renderViews`: crop + resize + flip as one
 * {@linkcode CROP_RESIZE_KERNEL} call and colour jitter as one
 * {@linkcode COLOR_JITTER_KERNEL} call, on backends that register them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  COLOR_JITTER_KERNEL,
  CROP_RESIZE_KERNEL,
} from "@scaling-vicreg/backend/augment-kernels";
import { type PilCoefficients, pilCoefficients } from "./_pil_resample.ts";
import type { CropBox, ViewParams } from "./params.ts";

/**
 * {@linkcode cropResize} as one {@linkcode CROP_RESIZE_KERNEL} call (host
 * backends that register it): Pillow's coefficient tables per image, packed
 * as `[N, out, K]` taps with `[N, out, 2]` bounds, the 1/255 of ToTensor in
 * the horizontal taps, the horizontal rows reversed for a mirror.
 */
export function cropResizeKernel(
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

/** {@linkcode COLOR_JITTER_KERNEL} on `x`, one jitter draw per image. */
export function jitterKernel(
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
