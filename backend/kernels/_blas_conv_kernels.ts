/**
 * The native backends' convolution kernels: `Conv2D`, `Conv2DBackpropInput`
 * and `Conv2DBackpropFilter` on oneDNN where it has a primitive and on the
 * BLAS's GEMM forms elsewhere (and for the forward pass and filter gradient
 * of float32 convolutions with few output pixels, where the GEMM forms are
 * faster), and `FusedConv2D` (bias + ReLU) on oneDNN.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type Geometry, geometry } from "./_geometry.ts";
import { activePrecision } from "../precision.ts";
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
            if (
              !onBlas(g, BLAS_FORWARD_MAX_PIXELS) &&
              dnnl?.conv2d(g, xv, wv, out)
            ) {
              return;
            }
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
            if (
              !onBlas(g, BLAS_FILTER_MAX_PIXELS) &&
              dnnl?.conv2dBackpropFilter(g, xv, dyv, dw)
            ) {
              return;
            }
            conv2dBackpropFilter(blas, scratch, g, xv, dyv, dw);
          },
        );
      },
    },
  ];
}

/**
 * Output pixels (`OH·OW`) up to which a float32 convolution's forward pass
 * runs on the BLAS even with oneDNN loaded. On the 2-core EPYC (oneDNN
 * 2.6.3, OpenBLAS 0.3.21, 3 runs each) the GEMM form took 63.8 ms against
 * oneDNN's 118.8 for a 3×3 conv of 1024 channels at 3×3 pixels (batch 64),
 * 14.4 against 20.4 for a 1×1 conv of 4096 → 1024 there, and lost from 4×4
 * pixels up (30.8 against 26.0 ms at 512 channels).
 */
export const BLAS_FORWARD_MAX_PIXELS = 9;

/**
 * Output pixels up to which a float32 filter gradient runs on the BLAS:
 * oneDNN's reduction over `N·OH·OW` is slow when that is short (a 3×3 conv
 * of 1024 channels at 3×3 pixels, batch 32: 32.7 ms against 148.8; at 6×6
 * pixels, 512 channels, batch 64: 113.2 against 135.4; at 8×8, 256 channels:
 * 36.5 against 27.5, so oneDNN from there up).
 */
export const BLAS_FILTER_MAX_PIXELS = 36;

/**
 * Whether a convolution direction runs on the BLAS for having at most
 * `maxPixels` output pixels (float32 only: bf16 stays on oneDNN).
 */
function onBlas(g: Geometry, maxPixels: number): boolean {
  return g.oh * g.ow <= maxPixels && activePrecision() === "fp32";
}

/** Whether conv attributes are NHWC with dilation 1 (what the kernels take). */
function isPlainNhwc(attrs: tf.NamedAttrMap): boolean {
  return (attrs.dataFormat ?? "NHWC") === "NHWC" &&
    tf.backend_util.tupleValuesAreOne(
      (attrs.dilations ?? 1) as number | [number, number],
    );
}
