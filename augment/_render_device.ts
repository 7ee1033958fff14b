/**
 * The device path of `renderViews` (WebGPU, WebGL): a few large batched ops
 * over the whole zero-padded batch (see the notes of `render.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { applyGroups, resampleSeparable, writeAxisWeights } from "./_batch.ts";
import { jitterOps, rotateNearest } from "./_render_ops.ts";
import { gaussianBlur } from "./blur.ts";
import { normalize, randomGrayscale, solarize } from "./color.ts";
import type { CropBox, ViewParams } from "./params.ts";
import type { RenderOptions } from "./render_options.ts";

/**
 * `cropResize` on the device: per-sample weight matrices over the padded
 * batch (`Wx: [N, S, Wmax]`, `Wy: [N, S, Hmax]`, zero outside each crop) and
 * one batched separable resample.
 */
export function cropResizeOnDevice(
  pixels: tf.Tensor4D,
  crops: readonly CropBox[],
  flips: readonly boolean[],
  width: number,
  height: number,
): tf.Tensor4D {
  const [n, hMax, wMax] = pixels.shape;
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
  return resampleSeparable(pixels, wx, wy, width, height);
}

/** `colorJitter` on the device: four stages, each op on its gathered group. */
export function colorJitterOnDevice(
  x: tf.Tensor4D,
  params: readonly Pick<ViewParams, "jitter">[],
  luma: readonly [number, number, number],
): tf.Tensor4D {
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

/**
 * The stages of `renderViews` after crop + resize on the device, each over
 * the whole batch with per-sample masks; call it inside `tf.tidy`.
 */
export function renderResizedOnDevice(
  resized: tf.Tensor4D,
  params: readonly ViewParams[],
  o: Required<RenderOptions>,
): tf.Tensor4D {
  let x = resized;
  if (params.some((p) => p.rotation !== null)) {
    x = rotateNearest(x, params.map((p) => p.rotation));
  }
  x = colorJitterOnDevice(x, params, o.luma);
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
}
