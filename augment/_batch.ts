/**
 * Private batching helpers shared by the renderers: per-sample separable
 * resampling by batched matmul, axis-0 gathers by slices, and partitioned
 * per-group application.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeBackendOnHost } from "@scaling-vicreg/backend";
import { pilBicubicMatrix } from "./_pil_resample.ts";

let hostOverride: boolean | null = null;

/**
 * Test seam: forces the host (`true`) or device (`false`) code paths on any
 * backend; `null` restores the choice by backend.
 */
export function setHostPathForTesting(value: boolean | null): void {
  hostOverride = value;
}

/**
 * Whether the active backend keeps tensors in host memory (`cpu`, `wasm`,
 * `cpu-fast`, `tensorflow`), where per-sample work is best done as one plain
 * 2-D matmul per sample and batch splits as one host read: tfjs-wasm runs
 * `BatchMatMul` with a batch > 1 as a naive loop (its 2-D matmul runs on
 * XNNPACK), and its `Slice` copies the whole input on every call, so N
 * slices of a batch cost N full copies. GPU backends prefer few large
 * dispatches and no reads back.
 */
export function hostBackend(): boolean {
  if (hostOverride !== null) return hostOverride;
  return activeBackendOnHost();
}

/**
 * Splits `x: [N, ...]` into its N samples: on a host backend from one read
 * of the data (see {@linkcode hostBackend}), else by `tf.unstack`.
 */
export function splitSamples<T extends tf.Tensor>(x: tf.Tensor): T[] {
  const [n, ...rest] = x.shape;
  if (!hostBackend()) return tf.unstack(x) as T[];
  const values = x.dataSync();
  const per = rest.reduce((a, b) => a * b, 1);
  return Array.from(
    { length: n },
    (_, i) =>
      tf.tensor(
        values.subarray(i * per, (i + 1) * per),
        rest,
        x.dtype,
      ) as T,
  );
}

/**
 * `a[n] @ b[n]` for `a: [N, M, K]`, `b: [N, K, P]` -> `[N, M, P]`: one plain
 * 2-D matmul per sample on a host backend, one batched matmul elsewhere.
 */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  if (!hostBackend()) return tf.matMul(a, b) as tf.Tensor3D;
  return tf.tidy(() => {
    const as = splitSamples<tf.Tensor2D>(a);
    const bs = splitSamples<tf.Tensor2D>(b);
    return tf.stack(as.map((ai, i) => tf.matMul(ai, bs[i]))) as tf.Tensor3D;
  });
}

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
      batchMatMul(tf.tensor3d(wx, [n, width, wMax]), xt),
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
      batchMatMul(tf.tensor3d(wy, [n, height, hMax]), h1t),
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
  if (hostBackend()) {
    // One read and one upload instead of one (whole-input) slice per run.
    const values = x.dataSync();
    const per = x.size / n;
    const out = new (values.constructor as Float32ArrayConstructor)(
      indices.length * per,
    );
    indices.forEach((v, i) =>
      out.set(values.subarray(v * per, (v + 1) * per), i * per)
    );
    return tf.tensor(
      out,
      [indices.length, ...x.shape.slice(1)],
      x.dtype,
    ) as T;
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
  const whole = groups.findIndex((g) =>
    g.length === n && g.every((v, i) => v === i)
  );
  if (whole >= 0) return fns[whole](x, groups[whole]);
  if (hostBackend()) return applyGroupsOnHost(x, groups, fns, rest);
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
 * {@linkcode applyGroups} on a host backend: one read of `x`, one upload
 * per group, one read per group result, and the batch reassembled in order
 * on the host and uploaded once (rather than a read of `x` per gather).
 */
function applyGroupsOnHost(
  x: tf.Tensor4D,
  groups: readonly number[][],
  fns: readonly ((sub: tf.Tensor4D, indices: number[]) => tf.Tensor4D)[],
  rest: readonly number[],
): tf.Tensor4D {
  const n = x.shape[0];
  const per = x.size / n;
  const values = x.dataSync() as Float32Array;
  const out = new (values.constructor as Float32ArrayConstructor)(x.size);
  for (const i of rest) {
    out.set(values.subarray(i * per, (i + 1) * per), i * per);
  }
  groups.forEach((g, k) => {
    if (g.length === 0) return;
    const part = new (values.constructor as Float32ArrayConstructor)(
      g.length * per,
    );
    g.forEach((v, i) =>
      part.set(values.subarray(v * per, (v + 1) * per), i * per)
    );
    const sub = tf.tensor(part, [g.length, ...x.shape.slice(1)], x.dtype);
    const result = fns[k](sub as tf.Tensor4D, g);
    const got = result.dataSync();
    g.forEach((v, i) => out.set(got.subarray(i * per, (i + 1) * per), v * per));
    tf.dispose([sub, result]);
  });
  return tf.tensor4d(out, x.shape, x.dtype);
}

/**
 * A batch `[N, H, W, C]` float32 held in host memory while groups of its
 * samples go through tensor ops (host backends, see
 * {@linkcode hostBackend}): each {@linkcode HostBatch.apply} uploads only
 * the group and writes the results back in place, so a chain of per-group
 * stages costs one read and one upload of the whole batch.
 */
export class HostBatch {
  /** `[N, H, W, C]`. */
  readonly shape: [number, number, number, number];
  /** The samples, row-major (a private copy). */
  readonly values: Float32Array;

  /**
   * Reads (copies) a batch.
   *
   * @param x `[N, H, W, C]` float32.
   */
  constructor(x: tf.Tensor4D) {
    this.shape = x.shape;
    this.values = new Float32Array(x.dataSync());
  }

  /**
   * Replaces samples `indices` by `fn` of them (`fn` gets `[m, H, W, C]` and
   * returns the same shape; it may read `indices`).
   */
  apply(
    indices: readonly number[],
    fn: (sub: tf.Tensor4D, indices: number[]) => tf.Tensor4D,
  ): void {
    if (indices.length === 0) return;
    const [n, h, w, c] = this.shape;
    const per = this.values.length / n;
    const part = new Float32Array(indices.length * per);
    indices.forEach((v, i) =>
      part.set(this.values.subarray(v * per, (v + 1) * per), i * per)
    );
    const sub = tf.tensor4d(part, [indices.length, h, w, c]);
    const result = fn(sub, [...indices]);
    const got = result.dataSync();
    indices.forEach((v, i) =>
      this.values.set(got.subarray(i * per, (i + 1) * per), v * per)
    );
    tf.dispose([sub, result]);
  }

  /** The batch as a new tensor. */
  toTensor(): tf.Tensor4D {
    return tf.tensor4d(this.values, this.shape);
  }
}

/** Output rows per matmul of {@linkcode bandedLeftMultiply}. */
const BAND_BLOCK = 32;

/**
 * `M · X` for a banded `M: [R, K]` and `X: [K, L]` (both row-major, host
 * memory) as one plain 2-D matmul per block of {@linkcode BAND_BLOCK} output
 * rows over only the rows of `X` that block's weights touch.
 *
 * @returns `[R, L]`.
 */
export function bandedMatMul(
  m: Float32Array,
  r: number,
  k: number,
  x: Float32Array,
  l: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    const blocks: tf.Tensor2D[] = [];
    for (let r0 = 0; r0 < r; r0 += BAND_BLOCK) {
      const r1 = Math.min(r, r0 + BAND_BLOCK);
      // The block's non-zero input rows [c0, c1).
      let c0 = k, c1 = 0;
      for (let o = r0; o < r1; o++) {
        const row = o * k;
        let a = 0, b = k;
        while (a < k && m[row + a] === 0) a++;
        while (b > a && m[row + b - 1] === 0) b--;
        if (a < c0) c0 = a;
        if (b > c1) c1 = b;
      }
      if (c1 <= c0) {
        blocks.push(tf.zeros([r1 - r0, l]));
        continue;
      }
      const w = new Float32Array((r1 - r0) * (c1 - c0));
      for (let o = r0; o < r1; o++) {
        w.set(m.subarray(o * k + c0, o * k + c1), (o - r0) * (c1 - c0));
      }
      // [r1 − r0, c1 − c0] @ [c1 − c0, L] -> [r1 − r0, L]
      blocks.push(tf.matMul(
        tf.tensor2d(w, [r1 - r0, c1 - c0]),
        tf.tensor2d(x.subarray(c0 * l, c1 * l), [c1 - c0, l]),
      ));
    }
    return blocks.length === 1 ? blocks[0] : tf.concat(blocks, 0);
  });
}

/**
 * `out[i] = M[i] · X[i]` for banded per-sample matrices `M: [N, R, R]` and
 * `X: [N, R, L]` in host memory, by {@linkcode bandedMatMul} per sample.
 *
 * @returns `[N, R, L]`.
 */
export function bandedLeftMultiply(
  m: Float32Array,
  x: Float32Array,
  n: number,
  r: number,
  l: number,
): tf.Tensor3D {
  return tf.tidy(() =>
    tf.stack(
      Array.from({ length: n }, (_, i) =>
        bandedMatMul(
          m.subarray(i * r * r, (i + 1) * r * r),
          r,
          r,
          x.subarray(i * r * l, (i + 1) * r * l),
          l,
        )),
    ) as tf.Tensor3D
  );
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
    const v = batchMatMul(rows, tf.reshape(x, [n, h, w * c]));
    // [N, H2, W, C] -> [N, W, H2*C]
    const t = tf.reshape(
      tf.transpose(tf.reshape(v, [n, h2, w, c]), [0, 2, 1, 3]),
      [n, w, h2 * c],
    );
    // [N, W2, H2*C] -> [N, H2, W2, C]
    const u = batchMatMul(cols, t);
    return tf.transpose(tf.reshape(u, [n, w2, h2, c]), [0, 2, 1, 3]);
  });
}
