/**
 * The native backends' `Sum` and `Mean` over adjacent axes (BatchNorm's
 * leading ones on NHWC maps, a global average pool's middle ones) as BLAS
 * products.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import type { Scratch } from "./scratch.ts";
import { fallbackKernel, withHeap } from "./_wasm_heap.ts";

/**
 * `Sum` and `Mean` over adjacent axes on the BLAS; other reductions go to
 * the base backend's kernels.
 *
 * @param backendName The TF.js backend the kernels are for.
 * @param blas The BLAS.
 * @param scratch Holds the vector of ones.
 * @returns The two configs.
 */
export function reductionKernelConfigs(
  backendName: string,
  blas: Blas,
  scratch: Scratch,
): tf.KernelConfig[] {
  return [
    adjacentReduction(backendName, tf.Sum, blas, scratch, false),
    adjacentReduction(backendName, tf.Mean, blas, scratch, true),
  ];
}

/**
 * `Sum` or `Mean` over one run of adjacent axes `[i, j)` of a float32
 * tensor seen as `x[O, M, C]`: the leading axes (BatchNorm's, on NHWC maps)
 * as one product `ones[1, M] · x[M, C]`, the trailing ones as one
 * `x[O, M] · ones[M, 1]`, and middle ones (a global average pool's `[1, 2]`)
 * as one leading product per outer index. wasm and cpu transpose the input
 * first for any axes but the last.
 */
function adjacentReduction(
  backendName: string,
  kernelName: string,
  blas: Blas,
  scratch: Scratch,
  mean: boolean,
): tf.KernelConfig {
  return {
    kernelName,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const x = inputs.x;
      const plan = x === undefined ? undefined : reductionPlan(x, attrs ?? {});
      if (plan === undefined) {
        return fallbackKernel(backendName, kernelName).kernelFunc(args);
      }
      const { outer, m, c, outShape } = plan;
      const ones = scratch.ones(m);
      const alpha = mean ? 1 / m : 1;
      return withHeap(backend, outShape, [x!], (out, xv) => {
        if (c === 1) {
          blas.sgemm(
            false,
            false,
            outer,
            1,
            m,
            alpha,
            xv,
            m,
            ones,
            1,
            0,
            out,
            1,
          );
          return;
        }
        for (let o = 0; o < outer; o++) {
          blas.sgemm(
            false,
            false,
            1,
            c,
            m,
            alpha,
            ones,
            m,
            xv.subarray(o * m * c),
            c,
            0,
            out.subarray(o * c),
            c,
          );
        }
      });
    },
  };
}

/** Outer products a middle-axes reduction may take one by one. */
const MAX_OUTER = 4096;

function reductionPlan(
  x: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
):
  | { outer: number; m: number; c: number; outShape: number[] }
  | undefined {
  if (x.dtype !== "float32" || x.shape.length === 0) return undefined;
  const axes = tf.util.parseAxisParam(
    attrs.axis as number | number[],
    x.shape,
  ).sort((a, b) => a - b);
  if (axes.length === 0) return undefined;
  const i = axes[0];
  const j = i + axes.length;
  if (axes.some((a, k) => a !== i + k)) return undefined;
  const outer = tf.util.sizeFromShape(x.shape.slice(0, i));
  const m = tf.util.sizeFromShape(x.shape.slice(i, j));
  const c = tf.util.sizeFromShape(x.shape.slice(j));
  if (m === 0 || outer === 0 || c === 0) return undefined;
  if (c > 1 && outer > MAX_OUTER) return undefined;
  const outShape = attrs.keepDims === true
    ? x.shape.map((d, k) => (k >= i && k < j ? 1 : d))
    : [...x.shape.slice(0, i), ...x.shape.slice(j)];
  return { outer, m, c, outShape };
}
