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
              !onBlas(g) &&
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
              !onBlas(g) &&
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
 * and filter gradient run on the BLAS even with oneDNN loaded, when the
 * filter is at least {@linkcode BLAS_MIN_DEPTH} deep. oneDNN's kernels are
 * slow on deep filters over a few pixels and fast elsewhere. On the 2-core
 * EPYC (oneDNN 2.6.3, OpenBLAS 0.3.21; ms, oneDNN / BLAS), a 3×3 conv of
 * 1024 channels at 3×3 pixels, batch 32: forward 46.6 / 29.3, filter
 * gradient 36.4 / 31.1 (batch 64: 79.6 / 58.7, 69.9 / 56.9; from 6×6 at
 * stride 2: 47.1 / 29.8, 51.4 / 29.0); but 3×3 of 512 channels at 3×3:
 * 8.3 / 7.9, 6.3 / 8.2; at 4×4, batch 64: 21.2 / 28.6, 17.2 / 28.3; 1×1 of
 * 4096 → 1024 at 3×3: 12.8 / 13.6, 10.8 / 14.2; filter gradients at 6×6
 * (256 and 512 channels): 3.8 / 8.9, 15.9 / 31.3. The input gradient stays
 * on oneDNN (within 5 % of the BLAS on all of these).
 */
export const BLAS_MAX_PIXELS = 9;

/** Filter depth `KH·KW·Ci` from which {@linkcode BLAS_MAX_PIXELS} applies. */
export const BLAS_MIN_DEPTH = 9 * 1024;

/**
 * Whether a forward pass or filter gradient runs on the BLAS: at most
 * {@linkcode BLAS_MAX_PIXELS} output pixels over a filter at least
 * {@linkcode BLAS_MIN_DEPTH} deep (float32 only: bf16 stays on oneDNN).
 */
function onBlas(g: Geometry): boolean {
  return g.oh * g.ow <= BLAS_MAX_PIXELS &&
    g.kh * g.kw * g.ci >= BLAS_MIN_DEPTH && activePrecision() === "fp32";
}

/** Whether conv attributes are NHWC with dilation 1 (what the kernels take). */
function isPlainNhwc(attrs: tf.NamedAttrMap): boolean {
  return (attrs.dataFormat ?? "NHWC") === "NHWC" &&
    tf.backend_util.tupleValuesAreOne(
      (attrs.dilations ?? 1) as number | [number, number],
    );
}
