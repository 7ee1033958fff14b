/**
 * Fast 2-D convolution gradients (`Conv2DBackpropFilter`,
 * `Conv2DBackpropInput`) built from im2col/col2im loops plus the active
 * backend's own `BatchMatMul` and `Conv2D` kernels.
 *
 * The wasm backend has no `Conv2DBackpropFilter` at all and a naive
 * `Conv2DBackpropInput`; XNNPACK's matmul and forward convolution are fast,
 * so both gradients are rewritten in terms of them:
 *
 * - filter gradient: `dW [K, Co] = colsᵀ [K, M] @ dy [M, Co]`, where
 *   `colsᵀ` is the transposed im2col matrix of `x` (K = KH·KW·Ci,
 *   M = N·OH·OW rows, batch-chunked to bound memory);
 * - input gradient, stride 1: a forward `Conv2D` of `dy` with the filter
 *   rotated by 180° and its channels swapped (`[KH, KW, Co, Ci]`);
 * - input gradient, stride > 1: `cols [M, K] = dy [M, Co] @ Wᵀ [Co, K]`,
 *   scattered back into `dx` by col2im.
 *
 * Only NHWC (`channelsLast`) and dilation 1 are supported, which is what
 * TF.js's own conv gradient asks for.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type Geometry, geometry, rotateFilter } from "./_geometry.ts";
import { type Host, hostFor } from "./_host.ts";

/** Options of {@linkcode convGradKernelConfigs}. */
export interface ConvGradOptions {
  /**
   * Largest im2col matrix, in floats, before the batch is split into chunks
   * (bounds the extra memory a gradient needs).
   * @default {4194304}
   */
  maxColsFloats?: number;
}

/** Defaults of {@linkcode ConvGradOptions}: 16 MiB of im2col at most. */
export const DEFAULT_CONV_GRAD_OPTIONS: Required<ConvGradOptions> = {
  maxColsFloats: 1 << 22,
};

/** The same buffer seen with another shape (no copy, no refcount change). */
function as(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/**
 * Writes the transposed im2col matrix of images `n0 .. n0+nc` of `x`:
 * `colsT[k, m]` with `k = (kh·KW + kw)·Ci + ci`, `m = (n·OH + oh)·OW + ow`.
 *
 * `x` is first transposed to channel-major `[Ci, nc, H, W]`, so that every
 * row of `colsT` is a run of (shifted, strided) copies of contiguous rows.
 */
function im2colT(
  x: Float32Array,
  colsT: Float32Array,
  g: Geometry,
  n0: number,
  nc: number,
): void {
  const { h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const hw = h * w;
  // x [nc, H·W, Ci] -> xT [Ci, nc, H·W], in tiles of 16 pixels.
  const xT = new Float32Array(ci * nc * hw);
  const planeStride = nc * hw;
  for (let n = 0; n < nc; n++) {
    const xn = (n0 + n) * hw * ci;
    for (let p0 = 0; p0 < hw; p0 += 16) {
      const p1 = Math.min(hw, p0 + 16);
      for (let c = 0; c < ci; c++) {
        let dst = c * planeStride + n * hw + p0;
        let src = xn + p0 * ci + c;
        for (let p = p0; p < p1; p++, src += ci) xT[dst++] = x[src];
      }
    }
  }
  let dst = 0;
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      // Output columns whose input column ix = xo·sw - left + b is inside.
      const xlo = Math.min(ow, Math.max(0, Math.ceil((left - b) / sw)));
      const xhi = Math.max(
        xlo,
        Math.min(ow, Math.floor((w - 1 + left - b) / sw) + 1),
      );
      for (let c = 0; c < ci; c++) {
        for (let n = 0; n < nc; n++) {
          const plane = c * planeStride + n * hw;
          for (let y = 0; y < oh; y++) {
            const iy = y * sh - top + a;
            if (iy < 0 || iy >= h) {
              colsT.fill(0, dst, dst + ow);
              dst += ow;
              continue;
            }
            let xo = 0;
            for (; xo < xlo; xo++) colsT[dst++] = 0;
            let src = plane + iy * w + xlo * sw - left + b;
            for (; xo < xhi; xo++, src += sw) colsT[dst++] = xT[src];
            for (; xo < ow; xo++) colsT[dst++] = 0;
          }
        }
      }
    }
  }
}

/**
 * Adds the im2col matrix `cols [M, K]` of images `n0 .. n0+nc` back into
 * `dx` (the adjoint of im2col); `dx` must start zeroed.
 */
function col2imAdd(
  cols: Float32Array,
  dx: Float32Array,
  g: Geometry,
  n0: number,
  nc: number,
): void {
  const { h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  let src = 0;
  for (let n = n0; n < n0 + nc; n++) {
    const xn = n * h * w * ci;
    for (let y = 0; y < oh; y++) {
      const iy0 = y * sh - top;
      for (let xo = 0; xo < ow; xo++) {
        const ix0 = xo * sw - left;
        for (let a = 0; a < kh; a++) {
          const iy = iy0 + a;
          if (iy < 0 || iy >= h) {
            src += kw * ci;
            continue;
          }
          for (let b = 0; b < kw; b++) {
            const ix = ix0 + b;
            if (ix < 0 || ix >= w) {
              src += ci;
              continue;
            }
            let dst = xn + (iy * w + ix) * ci;
            for (let c = 0; c < ci; c++) dx[dst++] += cols[src++];
          }
        }
      }
    }
  }
}

function input(
  inputs: tf.NamedTensorInfoMap,
  name: string,
  kernel: string,
): tf.TensorInfo {
  const info = inputs[name];
  if (info === undefined) {
    throw new TypeError(`${kernel}: missing input '${name}'`);
  }
  if (info.dtype !== "float32" || info.shape.length !== 4) {
    throw new TypeError(
      `${kernel}: expected '${name}' float32 of rank 4: received ${info.dtype} of rank ${info.shape.length}`,
    );
  }
  return info;
}

const NO_TRANSPOSE: tf.NamedAttrMap = { transposeA: false, transposeB: false };

function backpropFilter(
  host: Host,
  maxCols: number,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const filterShape = attrs.filterShape as [number, number, number, number];
  const g = geometry(
    x.shape as [number, number, number, number],
    filterShape,
    attrs,
    "Conv2DBackpropFilter",
  );
  const k = g.kh * g.kw * g.ci;
  const p = g.oh * g.ow;
  const nb = Math.max(1, Math.min(g.n, Math.floor(maxCols / (p * k))));
  if (nb >= g.n) {
    // One chunk: dW [K, Co] = colsT [K, M] @ dy [M, Co], no copies.
    const colsT = host.alloc([1, k, g.n * p]);
    im2colT(host.view(x), host.view(colsT), g, 0, g.n);
    const out = host.run(
      "BatchMatMul",
      { a: colsT, b: as(dy, [1, g.n * p, g.co]) },
      NO_TRANSPOSE,
    );
    host.free(colsT);
    return as(out, filterShape);
  }
  const acc = new Float32Array(k * g.co);
  for (let n0 = 0; n0 < g.n; n0 += nb) {
    const nc = Math.min(nb, g.n - n0);
    const colsT = host.alloc([1, k, nc * p]);
    const dyc = host.alloc([1, nc * p, g.co]);
    host.view(dyc).set(
      host.view(dy).subarray(n0 * p * g.co, (n0 + nc) * p * g.co),
    );
    im2colT(host.view(x), host.view(colsT), g, n0, nc);
    const out = host.run("BatchMatMul", { a: colsT, b: dyc }, NO_TRANSPOSE);
    const part = host.view(out);
    for (let i = 0; i < acc.length; i++) acc[i] += part[i];
    host.free(out);
    host.free(colsT);
    host.free(dyc);
  }
  const result = host.alloc(filterShape);
  host.view(result).set(acc);
  return result;
}

function backpropInput(
  host: Host,
  maxCols: number,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const inputShape = attrs.inputShape as [number, number, number, number];
  const g = geometry(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs,
    "Conv2DBackpropInput",
  );
  const { kh, kw, ci, co } = g;
  const k = kh * kw * ci;
  if (
    g.sh === 1 && g.sw === 1 && g.top < kh && g.bottom < kh && g.left < kw &&
    g.right < kw
  ) {
    // dx = conv2d(dy, W rotated 180° with in/out channels swapped), stride 1.
    const flipped = host.alloc([kh, kw, co, ci]);
    rotateFilter(host.view(filter), kh, kw, ci, co, host.view(flipped));
    const out = host.run("Conv2D", { x: dy, filter: flipped }, {
      strides: [1, 1],
      pad: [
        [0, 0],
        [kh - 1 - g.top, kh - 1 - g.bottom],
        [kw - 1 - g.left, kw - 1 - g.right],
        [0, 0],
      ],
      dataFormat: "NHWC",
      dilations: [1, 1],
    });
    host.free(flipped);
    return out;
  }
  // Strided: cols [M, K] = dy [M, Co] @ Wᵀ [Co, K], then col2im into dx.
  const wt = host.alloc([1, co, k]);
  {
    const src = host.view(filter);
    const dst = host.view(wt);
    for (let i = 0; i < k; i++) {
      for (let o = 0; o < co; o++) dst[o * k + i] = src[i * co + o];
    }
  }
  const p = g.oh * g.ow;
  const nb = Math.max(1, Math.min(g.n, Math.floor(maxCols / (p * k))));
  const dx = host.alloc(inputShape);
  host.view(dx).fill(0);
  for (let n0 = 0; n0 < g.n; n0 += nb) {
    const nc = Math.min(nb, g.n - n0);
    let dyc: tf.TensorInfo;
    if (nc === g.n) {
      dyc = as(dy, [1, g.n * p, co]);
    } else {
      dyc = host.alloc([1, nc * p, co]);
      host.view(dyc).set(
        host.view(dy).subarray(n0 * p * co, (n0 + nc) * p * co),
      );
    }
    const cols = host.run("BatchMatMul", { a: dyc, b: wt }, NO_TRANSPOSE);
    col2imAdd(host.view(cols), host.view(dx), g, n0, nc);
    host.free(cols);
    if (dyc.dataId !== dy.dataId) host.free(dyc);
  }
  host.free(wt);
  return dx;
}

/**
 * Kernel configs of the fast `Conv2DBackpropFilter` and `Conv2DBackpropInput`
 * for one backend (wasm, or a CPU-style backend), ready for
 * `tf.registerKernel`.
 *
 * Both run on NHWC tensors with dilation 1; `pad` may be `"same"`,
 * `"valid"`, a number, or explicit `[[0, 0], [t, b], [l, r], [0, 0]]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { convGradKernelConfigs } from "./conv_grad.ts";
 * const names = convGradKernelConfigs("wasm").map((k) => k.kernelName);
 * console.log(names); // ["Conv2DBackpropFilter", "Conv2DBackpropInput"]
 * ```
 *
 * @param backendName The TF.js backend the kernels are for.
 * @param options See {@linkcode ConvGradOptions}.
 * @returns Two kernel configs.
 */
export function convGradKernelConfigs(
  backendName: string,
  options: ConvGradOptions = {},
): tf.KernelConfig[] {
  const { maxColsFloats } = { ...DEFAULT_CONV_GRAD_OPTIONS, ...options };
  if (!(maxColsFloats >= 1)) {
    throw new RangeError(
      `Expected maxColsFloats >= 1: received ${maxColsFloats}`,
    );
  }
  return [
    {
      kernelName: tf.Conv2DBackpropFilter,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        backpropFilter(
          hostFor(backend, backendName),
          maxColsFloats,
          input(inputs, "x", tf.Conv2DBackpropFilter),
          input(inputs, "dy", tf.Conv2DBackpropFilter),
          attrs ?? {},
        ),
    },
    {
      kernelName: tf.Conv2DBackpropInput,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        backpropInput(
          hostFor(backend, backendName),
          maxColsFloats,
          input(inputs, "dy", tf.Conv2DBackpropInput),
          input(inputs, "filter", tf.Conv2DBackpropInput),
          attrs ?? {},
        ),
    },
  ];
}

/**
 * Registers the fast conv gradients for a backend, replacing whatever it
 * had; safe to call more than once.
 *
 * @example
 * ```ts ignore
 * import { registerConvGradKernels } from "./conv_grad.ts";
 * registerConvGradKernels("wasm");
 * ```
 *
 * @param backendName The TF.js backend, e.g. `"wasm"`.
 * @param options See {@linkcode ConvGradOptions}.
 */
export function registerConvGradKernels(
  backendName: string,
  options: ConvGradOptions = {},
): void {
  for (const config of convGradKernelConfigs(backendName, options)) {
    if (tf.getKernel(config.kernelName, backendName) !== undefined) {
      tf.unregisterKernel(config.kernelName, backendName);
    }
    tf.registerKernel(config);
  }
}
