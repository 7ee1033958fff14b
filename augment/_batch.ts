/**
 * Private batching helpers shared by the renderers: per-sample separable
 * resampling by batched matmul, axis-0 gathers by slices, and partitioned
 * per-group application.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { pilBicubicMatrix } from "./_pil_resample.ts";

/**
 * Writes the rows `[first, first + count)` of Pillow's `[out, span]` bicubic
 * matrix (resizing a span of `span` pixels to `out`) into `target` at `base`,
 * as rows of length `inMax` starting at column `offset`, optionally in
 * reverse order (a mirror) and scaled.
 */
export function writeAxisWeights(
  target: Float32Array,
  base: number,
  inMax: number,
  offset: number,
  span: number,
  out: number,
  reverse: boolean,
  scale: number,
  first = 0,
  count: number = out,
): void {
  const m = pilBicubicMatrix(span, out);
  for (let o = 0; o < count; o++) {
    const row = base + (reverse ? count - 1 - o : o) * inMax + offset;
    const src = (first + o) * span;
    for (let j = 0; j < span; j++) target[row + j] = m[src + j] * scale;
  }
}

/**
 * Applies per-sample axis maps: horizontal `wx: [N, outW, W]` first, then
 * vertical `wy: [N, outH, H]`, clamping to [0, 1] after each pass (as Pillow
 * clips after each of its passes).
 *
 * @param pixels `[N, H, W, 3]`.
 * @param wx `[N, outW, W]` row-major.
 * @param wy `[N, outH, H]` row-major.
 * @param width outW.
 * @param height outH.
 * @returns `[N, outH, outW, 3]`.
 */
export function resampleSeparable(
  pixels: tf.Tensor4D,
  wx: Float32Array,
  wy: Float32Array,
  width: number,
  height: number,
): tf.Tensor4D {
  const [n, hMax, wMax] = pixels.shape;
  return tf.tidy(() => {
    // Horizontal pass first, as Pillow: [N, H, W, 3] -> [N, W, H*3]
    const xt = tf.reshape(
      tf.transpose(pixels, [0, 2, 1, 3]),
      [n, wMax, hMax * 3],
    );
    // Wx: [N, outW, W] @ [N, W, H*3] -> [N, outW, H*3]
    const h1 = tf.clipByValue(
      tf.matMul(tf.tensor3d(wx, [n, width, wMax]), xt),
      0,
      1,
    );
    // [N, outW, H, 3] -> [N, H, outW*3]
    const h1t = tf.reshape(
      tf.transpose(tf.reshape(h1, [n, width, hMax, 3]), [0, 2, 1, 3]),
      [n, hMax, width * 3],
    );
    // Wy: [N, outH, H] @ [N, H, outW*3] -> [N, outH, outW*3]
    const v = tf.clipByValue(
      tf.matMul(tf.tensor3d(wy, [n, height, hMax]), h1t),
      0,
      1,
    );
    return tf.reshape(v, [n, height, width, 3]);
  });
}

/**
 * `x[indices]` along axis 0 as contiguous slices + one concat: runs of
 * consecutive indices become one slice (a gather is several times slower on
 * the CPU backend).
 */
export function takeRows<T extends tf.Tensor>(
  x: T,
  indices: readonly number[],
): T {
  const n = x.shape[0];
  if (indices.length === n && indices.every((v, i) => v === i)) {
    return tf.clone(x);
  }
  const parts: T[] = [];
  let start = 0;
  for (let i = 1; i <= indices.length; i++) {
    if (i === indices.length || indices[i] !== indices[i - 1] + 1) {
      const begin = x.shape.map(() => 0);
      const size = x.shape.map((d) => d);
      begin[0] = indices[start];
      size[0] = i - start;
      parts.push(tf.slice(x, begin, size));
      start = i;
    }
  }
  return parts.length === 1 ? parts[0] : tf.concat(parts, 0);
}

/**
 * Applies `fns[g]` to the samples listed in `groups[g]` and leaves the rest
 * unchanged: a gather per group, one op call per group, and one gather with
 * the inverse permutation to restore the order.
 */
export function applyGroups(
  x: tf.Tensor4D,
  groups: readonly number[][],
  fns: readonly ((sub: tf.Tensor4D, indices: number[]) => tf.Tensor4D)[],
): tf.Tensor4D {
  const n = x.shape[0];
  const taken = new Uint8Array(n);
  for (const g of groups) for (const i of g) taken[i] = 1;
  const rest: number[] = [];
  for (let i = 0; i < n; i++) if (!taken[i]) rest.push(i);
  if (rest.length === n) return tf.clone(x);
  return tf.tidy(() => {
    const parts: tf.Tensor4D[] = [];
    const order: number[] = [];
    if (rest.length > 0) {
      parts.push(takeRows(x, rest));
      order.push(...rest);
    }
    groups.forEach((g, k) => {
      if (g.length === 0) return;
      const sub = g.length === n ? x : takeRows(x, g);
      parts.push(fns[k](sub, g));
      order.push(...g);
    });
    const joined = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
    if (order.every((v, i) => v === i)) return joined;
    const inverse = new Array<number>(n);
    order.forEach((v, i) => (inverse[v] = i));
    return takeRows(joined, inverse);
  });
}

/**
 * Applies per-sample `[S, S]` axis matrices to a batch: `out[n] = A[n] · x[n]
 * · B[n]ᵀ` per channel, where `A` acts on rows (H) and `B` on columns (W).
 *
 * @param x `[N, H, W, C]`.
 * @param rows `[N, H2, H]`.
 * @param cols `[N, W2, W]`.
 * @returns `[N, H2, W2, C]`.
 */
export function applySeparable(
  x: tf.Tensor4D,
  rows: tf.Tensor3D,
  cols: tf.Tensor3D,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const h2 = rows.shape[1], w2 = cols.shape[1];
  return tf.tidy(() => {
    // [N, H, W*C] -> [N, H2, W*C]
    const v = tf.matMul(rows, tf.reshape(x, [n, h, w * c]));
    // [N, H2, W, C] -> [N, W, H2*C]
    const t = tf.reshape(
      tf.transpose(tf.reshape(v, [n, h2, w, c]), [0, 2, 1, 3]),
      [n, w, h2 * c],
    );
    // [N, W2, H2*C] -> [N, H2, W2, C]
    const u = tf.matMul(cols, t);
    return tf.transpose(tf.reshape(u, [n, w2, h2, c]), [0, 2, 1, 3]);
  });
}
