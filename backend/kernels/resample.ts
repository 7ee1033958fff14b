/**
 * A crop + separable resample kernel for the host-memory backends: each
 * image's crop window is resampled to the output size in two banded passes
 * (horizontal, then vertical), each clamped to [0, 1], reading the window in
 * place. The coefficient tables come from the caller (Pillow's bicubic ones
 * in `@scaling-vicreg/augment`).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { registerHostKernel } from "./_host.ts";

/**
 * Name of the kernel. Inputs:
 *
 * - `x`: `[N, H, W, C]` float32 sources;
 * - `windows`: `[N, 4]` `x0, y0, width, height` of each crop window;
 * - `xBounds`: `[N, outW, 2]` first window column and tap count of each
 *   output column; `xWeights`: `[N, outW, Kx]` taps;
 * - `yBounds`: `[N, outH, 2]` first window row and tap count of each output
 *   row; `yWeights`: `[N, outH, Ky]` taps.
 *
 * All float32 (the integers are small, so exact).
 *
 * Output `[N, outH, outW, C]`:
 * `clamp(Σ_ky wy · clamp(Σ_kx wx · window))`, clamps to [0, 1].
 */
export const CROP_RESIZE_KERNEL = "VicregCropResize";

/** The float32 and int32 arrays of one {@linkcode CROP_RESIZE_KERNEL} call. */
export interface CropResizeArrays {
  /** `[N·H·W·C]` sources. */
  x: Float32Array;
  /** Their shape `[N, H, W, C]`. */
  shape: [number, number, number, number];
  /** `[N·4]` windows. */
  windows: Int32Array;
  /** `[N·outW·2]`. */
  xBounds: Int32Array;
  /** `[N·outW·Kx]`. */
  xWeights: Float32Array;
  /** `[N·outH·2]`. */
  yBounds: Int32Array;
  /** `[N·outH·Ky]`. */
  yWeights: Float32Array;
  /** Output width. */
  outW: number;
  /** Output height. */
  outH: number;
}

/**
 * {@linkcode CROP_RESIZE_KERNEL} on plain arrays (float64 sums).
 *
 * @param a The inputs.
 * @param out `[N·outH·outW·C]`, written.
 */
export function cropResizePixels(a: CropResizeArrays, out: Float32Array): void {
  const [n, h, w, c] = a.shape;
  const { outW, outH } = a;
  const kx = a.xWeights.length / Math.max(1, n * outW);
  const ky = a.yWeights.length / Math.max(1, n * outH);
  const rowLen = outW * c;
  const acc = new Float64Array(rowLen);
  let tmp = new Float32Array(0);
  for (let i = 0; i < n; i++) {
    const x0 = a.windows[i * 4], y0 = a.windows[i * 4 + 1];
    const rows = a.windows[i * 4 + 3];
    if (tmp.length < rows * rowLen) tmp = new Float32Array(rows * rowLen);
    // Horizontal: tmp[y, ox, :] = clamp(Σ wx[ox, k] · x[y0 + y, x0 + s + k, :]).
    for (let y = 0; y < rows; y++) {
      const src = ((i * h + y0 + y) * w + x0) * c;
      for (let ox = 0; ox < outW; ox++) {
        const b = (i * outW + ox) * 2;
        const taps = a.xBounds[b + 1];
        const wk = (i * outW + ox) * kx;
        const d = y * rowLen + ox * c;
        if (c === 3) {
          let r = 0, g = 0, bl = 0;
          let p = src + a.xBounds[b] * 3;
          for (let k = 0; k < taps; k++, p += 3) {
            const wt = a.xWeights[wk + k];
            r += wt * a.x[p];
            g += wt * a.x[p + 1];
            bl += wt * a.x[p + 2];
          }
          tmp[d] = r < 0 ? 0 : r > 1 ? 1 : r;
          tmp[d + 1] = g < 0 ? 0 : g > 1 ? 1 : g;
          tmp[d + 2] = bl < 0 ? 0 : bl > 1 ? 1 : bl;
          continue;
        }
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          let p = src + a.xBounds[b] * c + ch;
          for (let k = 0; k < taps; k++, p += c) {
            sum += a.xWeights[wk + k] * a.x[p];
          }
          tmp[d + ch] = sum < 0 ? 0 : sum > 1 ? 1 : sum;
        }
      }
    }
    // Vertical: out[oy, ox, :] = clamp(Σ wy[oy, k] · tmp[s + k, ox, :]), a
    // row of taps at a time (contiguous reads).
    for (let oy = 0; oy < outH; oy++) {
      const b = (i * outH + oy) * 2;
      const s = a.yBounds[b], taps = a.yBounds[b + 1];
      const wk = (i * outH + oy) * ky;
      acc.fill(0);
      for (let k = 0; k < taps; k++) {
        const wt = a.yWeights[wk + k];
        const base = (s + k) * rowLen;
        for (let j = 0; j < rowLen; j++) acc[j] += wt * tmp[base + j];
      }
      const d = (i * outH + oy) * rowLen;
      for (let j = 0; j < rowLen; j++) {
        const v = acc[j];
        out[d + j] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
}

/**
 * Registers {@linkcode CROP_RESIZE_KERNEL} for a host-memory backend (once).
 *
 * @param backendName A cpu-style or wasm-style TF.js backend.
 */
export function registerResampleKernels(backendName: string): void {
  registerHostKernel(CROP_RESIZE_KERNEL, backendName, (inputs, _, host) => {
    const { x, windows, xBounds, xWeights, yBounds, yWeights } = inputs;
    if (
      x === undefined || windows === undefined || xBounds === undefined ||
      xWeights === undefined || yBounds === undefined ||
      yWeights === undefined || x.shape.length !== 4 ||
      x.dtype !== "float32" || xBounds.shape.length !== 3 ||
      yBounds.shape.length !== 3
    ) {
      throw new TypeError(
        `${CROP_RESIZE_KERNEL}: expected x [N, H, W, C] float32, windows [N, 4], xBounds [N, outW, 2], xWeights [N, outW, K], yBounds [N, outH, 2], yWeights [N, outH, K]`,
      );
    }
    const [n, , , c] = x.shape;
    const outW = xBounds.shape[1];
    const outH = yBounds.shape[1];
    const out = host.alloc([n, outH, outW, c]);
    const ints = (info: tf.TensorInfo) => Int32Array.from(host.view(info));
    cropResizePixels({
      x: host.view(x),
      shape: x.shape as [number, number, number, number],
      windows: ints(windows),
      xBounds: ints(xBounds),
      xWeights: host.view(xWeights),
      yBounds: ints(yBounds),
      yWeights: host.view(yWeights),
      outW,
      outH,
    }, host.view(out));
    return out;
  });
}
