/**
 * The `blas` backend's `BatchMatMul`: one `sgemm` per matrix of the batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import { fallbackKernel, withHeap } from "./_wasm_heap.ts";

/**
 * `BatchMatMul` on the BLAS; other dtypes and broadcasts go to wasm's kernel.
 *
 * @param backendName The TF.js backend the kernel is for.
 * @param blas The BLAS.
 * @returns The config.
 */
export function matMulKernelConfig(
  backendName: string,
  blas: Blas,
): tf.KernelConfig {
  return {
    kernelName: tf.BatchMatMul,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const a = inputs.a;
      const b = inputs.b;
      const plan = a !== undefined && b !== undefined
        ? matMulPlan(a, b, attrs ?? {})
        : undefined;
      if (plan === undefined) {
        return fallbackKernel(backendName, tf.BatchMatMul).kernelFunc(args);
      }
      return withHeap(
        backend,
        plan.outShape,
        [a!, b!],
        (c, av, bv) => {
          for (let i = 0; i < plan.batch; i++) {
            blas.sgemm(
              plan.transA,
              plan.transB,
              plan.m,
              plan.n,
              plan.k,
              1,
              av.subarray(plan.strideA * i),
              plan.transA ? plan.m : plan.k,
              bv.subarray(plan.strideB * i),
              plan.transB ? plan.k : plan.n,
              0,
              c.subarray(plan.m * plan.n * i),
              plan.n,
            );
          }
        },
      );
    },
  };
}

interface MatMulPlan {
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  strideA: number;
  strideB: number;
}

/**
 * How to run a `BatchMatMul` as sgemm calls, or `undefined` for the cases
 * left to wasm (non-float32, or batch dimensions that broadcast other than
 * all-or-one).
 */
function matMulPlan(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): MatMulPlan | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const transA = attrs.transposeA === true;
  const transB = attrs.transposeB === true;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) return undefined;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const sizeA = tf.util.sizeFromShape(batchA);
  const sizeB = tf.util.sizeFromShape(batchB);
  let outBatch: number[];
  if (sizeA === 1) outBatch = batchB.length >= batchA.length ? batchB : batchA;
  else if (sizeB === 1) {
    outBatch = batchA.length >= batchB.length ? batchA : batchB;
  } else if (tf.util.arraysEqual(batchA, batchB)) outBatch = batchA;
  else return undefined;
  if (sizeA !== 1 && sizeB !== 1 && sizeA !== sizeB) return undefined;
  const batch = Math.max(sizeA, sizeB);
  return {
    outShape: [...outBatch, m, n],
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: sizeA === 1 ? 0 : m * k,
    strideB: sizeB === 1 ? 0 : k * n,
  };
}
