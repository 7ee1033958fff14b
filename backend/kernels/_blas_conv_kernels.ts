/**
 * The `blas` backend's convolution kernels: `Conv2D`, `Conv2DBackpropInput`
 * and `Conv2DBackpropFilter` on oneDNN where it has a primitive and on the
 * BLAS's GEMM forms elsewhere, and `FusedConv2D` (bias + ReLU) on oneDNN.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { geometry } from "./_geometry.ts";
import type { Blas } from "./blas.ts";
import {
  conv2d,
  conv2dBackpropFilter,
  conv2dBackpropInput,
} from "./blas_conv.ts";
import type { Dnnl } from "./dnnl.ts";
import type { Scratch } from "./scratch.ts";
import {
  fallbackKernel,
  float32,
  type Shape4,
  withHeap,
} from "./_wasm_heap.ts";

/**
 * The four convolution kernels; NCHW and dilated convolutions go to wasm's
 * kernels, and so does `FusedConv2D` without oneDNN.
 *
 * @param backendName The TF.js backend the kernels are for.
 * @param blas The BLAS.
 * @param scratch Buffers the GEMM forms reuse.
 * @param dnnl oneDNN, when loaded.
 * @returns The four configs.
 */
export function convKernelConfigs(
  backendName: string,
  blas: Blas,
  scratch: Scratch,
  dnnl: Dnnl | undefined,
): tf.KernelConfig[] {
  return [
    {
      kernelName: tf.Conv2D,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const x = float32(inputs, "x", tf.Conv2D, 4);
        const filter = float32(inputs, "filter", tf.Conv2D, 4);
        const a = attrs ?? {};
        if (!isPlainNhwc(a)) {
          // NCHW or dilated: wasm's own kernel.
          return fallbackKernel(backendName, tf.Conv2D).kernelFunc(args);
        }
        const g = geometry(
          x.shape as Shape4,
          filter.shape as Shape4,
          a,
          tf.Conv2D,
        );
        return withHeap(
          backend,
          [g.n, g.oh, g.ow, g.co],
          [x, filter],
          (out, xv, wv) => {
            if (dnnl?.conv2d(g, xv, wv, out)) return;
            conv2d(blas, scratch, g, xv, wv, out);
          },
        );
      },
    },
    {
      // Conv + bias + ReLU (an eval-mode conv → BatchNorm → ReLU with the
      // BatchNorm folded in) as one oneDNN primitive; wasm's XNNPACK kernel
      // for other activations, NCHW, dilation, or without oneDNN.
      kernelName: tf.FusedConv2D,
      backendName,
      kernelFunc: (args) => {
        const { inputs, backend, attrs } = args;
        const a = attrs ?? {};
        const bias = inputs.bias;
        const activation = (a.activation ?? "linear") as string;
        const x = inputs.x;
        const filter = inputs.filter;
        if (
          dnnl === undefined || x === undefined || filter === undefined ||
          x.dtype !== "float32" || filter.dtype !== "float32" ||
          (activation !== "linear" && activation !== "relu") ||
          inputs.preluActivationWeights !== undefined ||
          (bias !== undefined &&
            (bias.dtype !== "float32" ||
              tf.util.sizeFromShape(bias.shape) !==
                filter.shape[filter.shape.length - 1])) ||
          !isPlainNhwc(a)
        ) {
          return fallbackKernel(backendName, tf.FusedConv2D).kernelFunc(args);
        }
        const g = geometry(
          x.shape as Shape4,
          filter.shape as Shape4,
          a,
          tf.FusedConv2D,
        );
        let done = false;
        const out = withHeap(
          backend,
          [g.n, g.oh, g.ow, g.co],
          bias === undefined ? [x, filter] : [x, filter, bias],
          (y, xv, wv, bv) => {
            done = dnnl.conv2dFused(g, xv, wv, bv, activation === "relu", y);
          },
        );
        if (done || g.n * g.oh * g.ow * g.co === 0) return out;
        (backend as unknown as { disposeData(id: tf.DataId): void })
          .disposeData(out.dataId);
        return fallbackKernel(backendName, tf.FusedConv2D).kernelFunc(args);
      },
    },
    {
      kernelName: tf.Conv2DBackpropInput,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const dy = float32(inputs, "dy", tf.Conv2DBackpropInput, 4);
        const filter = float32(inputs, "filter", tf.Conv2DBackpropInput, 4);
        const inputShape = (attrs ?? {}).inputShape as Shape4;
        const g = geometry(
          inputShape,
          filter.shape as Shape4,
          attrs ?? {},
          tf.Conv2DBackpropInput,
        );
        return withHeap(
          backend,
          inputShape,
          [dy, filter],
          (dx, dyv, wv) => {
            if (dnnl?.conv2dBackpropInput(g, dyv, wv, dx)) return;
            conv2dBackpropInput(blas, scratch, g, dyv, wv, dx);
          },
        );
      },
    },
    {
      kernelName: tf.Conv2DBackpropFilter,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const x = float32(inputs, "x", tf.Conv2DBackpropFilter, 4);
        const dy = float32(inputs, "dy", tf.Conv2DBackpropFilter, 4);
        const filterShape = (attrs ?? {}).filterShape as Shape4;
        const g = geometry(
          x.shape as Shape4,
          filterShape,
          attrs ?? {},
          tf.Conv2DBackpropFilter,
        );
        return withHeap(
          backend,
          filterShape,
          [x, dy],
          (dw, xv, dyv) => {
            if (dnnl?.conv2dBackpropFilter(g, xv, dyv, dw)) return;
            conv2dBackpropFilter(blas, scratch, g, xv, dyv, dw);
          },
        );
      },
    },
  ];
}

/** Whether conv attributes are NHWC with dilation 1 (what the kernels take). */
function isPlainNhwc(attrs: tf.NamedAttrMap): boolean {
  return (attrs.dataFormat ?? "NHWC") === "NHWC" &&
    tf.backend_util.tupleValuesAreOne(
      (attrs.dilations ?? 1) as number | [number, number],
    );
}
