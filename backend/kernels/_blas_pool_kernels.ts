/**
 * NHWC max pooling for the native backends: `MaxPoolGrad` for `blas` and
 * `native`, and the forward `MaxPool` for `native` (`cpu`'s generic pool
 * reads each window element by element through index arithmetic; `wasm`'s,
 * under `blas`, is already fast). On oneDNN's primitives when it is loaded
 * and has one for the geometry, else as one pass in JavaScript; both give
 * each window's first maximum in row-major order the gradient.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Dnnl } from "./dnnl.ts";
import { geometryOfInfo } from "./_geometry.ts";
import {
  fallbackKernel,
  float32,
  type Shape4,
  withHeap,
} from "./_wasm_heap.ts";

/**
 * `MaxPool` of float32 NHWC maps: oneDNN's pooling, or one pass over the
 * input taking each window's maximum channel by channel (the rest goes to
 * the base backend).
 *
 * @param backendName The TF.js backend the kernel is for.
 * @param dnnl oneDNN, when loaded.
 * @returns The config.
 */
export function maxPoolKernelConfig(
  backendName: string,
  dnnl?: Dnnl,
): tf.KernelConfig {
  return {
    kernelName: tf.MaxPool,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const x = inputs.x;
      if (x === undefined || x.dtype !== "float32" || x.shape.length !== 4) {
        return fallbackKernel(backendName, tf.MaxPool).kernelFunc(args);
      }
      const info = poolInfo(x, attrs ?? {});
      return withHeap(
        backend,
        [info.batchSize, info.outHeight, info.outWidth, info.outChannels],
        [x],
        (out, xv) => {
          if (dnnl?.maxPool(geometryOfInfo(info), xv, out) !== true) {
            maxPool(info, xv, out);
          }
        },
      );
    },
  };
}

/** The pool's geometry from a `MaxPool`/`MaxPoolGrad`'s attributes. */
function poolInfo(
  x: tf.TensorInfo,
  a: tf.NamedAttrMap,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    x.shape as Shape4,
    a.filterSize as number | [number, number],
    a.strides as number | [number, number],
    1,
    a.pad as "valid" | "same" | number,
    a.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
  );
}

/**
 * `MaxPoolGrad` routing each output gradient to its window's first maximum.
 *
 * @param backendName The TF.js backend the kernel is for.
 * @param dnnl oneDNN, when loaded.
 * @returns The config.
 */
export function maxPoolGradKernelConfig(
  backendName: string,
  dnnl?: Dnnl,
): tf.KernelConfig {
  return {
    // wasm's MaxPoolGrad takes ~150 ms for a ResNet-50 stem at batch 32;
    // this one routes each output gradient to its window's first maximum
    // (the cpu backend's rule) in one pass over the input.
    kernelName: tf.MaxPoolGrad,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const dy = float32(inputs, "dy", tf.MaxPoolGrad, 4);
      const x = float32(inputs, "input", tf.MaxPoolGrad, 4);
      const info = poolInfo(x, attrs ?? {});
      return withHeap(
        backend,
        x.shape,
        [x, dy],
        (dx, xv, dyv) => {
          if (
            dnnl?.maxPoolBackward(geometryOfInfo(info), xv, dyv, dx) !== true
          ) {
            maxPoolGrad(info, xv, dyv, dx);
          }
        },
      );
    },
  };
}

/**
 * The gradient of a 2-D max pool (NHWC): `dx` gets each `dy` at the first
 * maximum of its window, in row-major window order.
 */
function maxPoolGrad(
  info: tf.backend_util.Conv2DInfo,
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
): void {
  dx.fill(0);
  windowMaxima(info, x, (o, _, where) => {
    for (let d = 0; d < where.length; d++) {
      if (where[d] >= 0) dx[where[d]] += dy[o + d];
    }
  });
}

/**
 * A 2-D max pool (NHWC): each output is its window's maximum, `-Infinity`
 * for a window with no input (the `cpu` backend's rule: a NaN never wins).
 */
function maxPool(
  info: tf.backend_util.Conv2DInfo,
  x: Float32Array,
  out: Float32Array,
): void {
  windowMaxima(info, x, (o, best) => out.set(best, o));
}

/**
 * Walks a 2-D max pool's windows (NHWC) in one pass over the input: for
 * each output pixel, `visit` gets its offset in the output, each channel's
 * maximum and the flat input index of its first maximum in row-major window
 * order (`-Infinity` and −1 for a window with no input).
 */
function windowMaxima(
  info: tf.backend_util.Conv2DInfo,
  x: Float32Array,
  visit: (o: number, best: Float32Array, where: Int32Array) => void,
): void {
  const {
    batchSize,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
    filterHeight: fh,
    filterWidth: fw,
  } = info;
  const { top, left } = info.padInfo;
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - top;
      const ylo = Math.max(0, y0);
      const yhi = Math.min(h, y0 + fh);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - left;
        const xlo = Math.max(0, x0);
        const xhi = Math.min(w, x0 + fw);
        best.fill(-Infinity);
        where.fill(-1);
        for (let iy = ylo; iy < yhi; iy++) {
          for (let ix = xlo; ix < xhi; ix++) {
            const base = ((n * h + iy) * w + ix) * c;
            for (let d = 0; d < c; d++) {
              const v = x[base + d];
              if (v > best[d]) {
                best[d] = v;
                where[d] = base + d;
              }
            }
          }
        }
        visit(((n * oh + oy) * ow + ox) * c, best, where);
      }
    }
  }
}
