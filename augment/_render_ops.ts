/**
 * The per-sample ops both schedules of `renderViews` run: nearest-neighbour
 * rotation and the four colour-jitter ops, indexed as `ViewParams.jitter.order`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { applyGroups } from "./_batch.ts";
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
} from "./color.ts";
import type { ViewParams } from "./params.ts";

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

/** The jitter op of each group: brightness, contrast, saturation, hue. */
export function jitterOps(
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
