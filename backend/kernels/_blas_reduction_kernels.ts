/**
 * The `blas` backend's `Sum` and `Mean` over leading axes (what BatchNorm
 * asks for on NHWC maps) as one BLAS product each.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import type { Scratch } from "./scratch.ts";
import { fallbackKernel, withHeap } from "./_wasm_heap.ts";

/**
 * `Sum` and `Mean` over leading axes on the BLAS; other reductions go to
 * wasm's kernels.
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
    leadingReduction(backendName, tf.Sum, blas, scratch, false),
    leadingReduction(backendName, tf.Mean, blas, scratch, true),
  ];
}

/**
 * `Sum` or `Mean` over the leading axes `[0, j)` of a float32 tensor (what
 * BatchNorm asks for on NHWC maps) as one product `ones[1, M] · x[M, C]`:
 * wasm transposes the input first for any axes but the last.
 */
function leadingReduction(
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
      const { m, c, outShape } = plan;
      const ones = scratch.ones(m);
      return withHeap(
        backend,
        outShape,
        [x!],
        (out, xv) =>
          blas.sgemm(
            false,
            false,
            1,
            c,
            m,
            mean ? 1 / m : 1,
            ones,
            m,
            xv,
            c,
            0,
            out,
            c,
          ),
      );
    },
  };
}

function reductionPlan(
  x: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): { m: number; c: number; outShape: number[] } | undefined {
  if (x.dtype !== "float32" || x.shape.length === 0) return undefined;
  const axes = tf.util.parseAxisParam(
    attrs.axis as number | number[],
    x.shape,
  ).sort((a, b) => a - b);
  const j = axes.length;
  if (j === 0 || axes.some((a, i) => a !== i)) return undefined;
  const m = tf.util.sizeFromShape(x.shape.slice(0, j));
  const c = tf.util.sizeFromShape(x.shape.slice(j));
  if (m === 0) return undefined;
  const outShape = attrs.keepDims === true
    ? x.shape.map((d, i) => (i < j ? 1 : d))
    : x.shape.slice(j);
  return { m, c, outShape };
}
