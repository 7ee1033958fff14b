/**
 * The host path of `renderViews` (`cpu`, `wasm`, `cpu-fast`, `tensorflow`;
 * tensors in host memory): per-sample banded matmuls over each crop window,
 * and stages that upload only the samples they change (see the notes of
 * `render.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeBackendHas } from "@scaling-vicreg/backend";
import { COLOR_JITTER_KERNEL } from "@scaling-vicreg/backend/augment-kernels";
import { bandedMatMul, HostBatch } from "./_batch.ts";
import { pilBicubicMatrix } from "./_pil_resample.ts";
import { jitterKernel } from "./_render_fused.ts";
import { jitterOps, rotateNearest } from "./_render_ops.ts";
import { gaussianBlur } from "./blur.ts";
import { normalize, rgbToGrayscale, solarize } from "./color.ts";
import type { CropBox, ViewParams } from "./params.ts";
import type { RenderOptions } from "./render_options.ts";

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
export function cropResizeWindows(
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
 * `colorJitter` on a host backend: a copy when no sample is jittered, else
 * the fused kernel where registered, else the stages in host memory.
 */
export function colorJitterOnHost(
  x: tf.Tensor4D,
  params: readonly Pick<ViewParams, "jitter">[],
  luma: readonly [number, number, number],
): tf.Tensor4D {
  if (!params.some((p) => p.jitter.applied)) return tf.clone(x);
  if (activeBackendHas(COLOR_JITTER_KERNEL)) {
    return jitterKernel(x, params, luma);
  }
  const batch = new HostBatch(x);
  colorJitterHostBatch(batch, params, luma);
  return batch.toTensor();
}

/** The jitter stages of `colorJitter` on a host-memory batch. */
function colorJitterHostBatch(
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
 * `renderViews` on a host backend, the stages after crop + resize: the batch
 * stays in host memory and each stage uploads only the samples it changes.
 * Takes ownership of `resized` (disposed here).
 */
export function renderResizedOnHost(
  resized: tf.Tensor4D,
  params: readonly ViewParams[],
  o: Required<RenderOptions>,
): tf.Tensor4D {
  const pick = (f: (p: ViewParams) => boolean) =>
    params.flatMap((p, i) => (f(p) ? [i] : []));
  const batch = new HostBatch(resized);
  resized.dispose();
  batch.apply(
    pick((p) => p.rotation !== null),
    (s, idx) => rotateNearest(s, idx.map((i) => params[i].rotation)),
  );
  colorJitterHostBatch(batch, params, o.luma);
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
