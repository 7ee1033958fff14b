// A max pool computed independently of the kernels, for the pooling tests
// of `native` and of oneDNN.

/**
 * A max pool worked out here on an explicitly padded copy of `x` (padding
 * is `-Infinity`, so it never wins): each output and, for the gradient, the
 * flat index of the first maximum of its window in row-major order.
 */
export function referencePool(
  x: Float32Array,
  [n, h, w, c]: number[],
  size: number,
  stride: number,
  pad: number,
): { out: Float32Array; argmax: Int32Array; oh: number; ow: number } {
  const ph = h + 2 * pad;
  const pw = w + 2 * pad;
  const padded = new Float32Array(n * ph * pw * c).fill(-Infinity);
  const origin = new Int32Array(padded.length).fill(-1);
  for (let i = 0; i < x.length; i++) {
    const d = i % c;
    const xx = Math.floor(i / c) % w;
    const yy = Math.floor(i / (c * w)) % h;
    const b = Math.floor(i / (c * w * h));
    const j = ((b * ph + yy + pad) * pw + xx + pad) * c + d;
    padded[j] = x[i];
    origin[j] = i;
  }
  const oh = Math.floor((ph - size) / stride) + 1;
  const ow = Math.floor((pw - size) / stride) + 1;
  const out = new Float32Array(n * oh * ow * c);
  const argmax = new Int32Array(out.length);
  for (let o = 0; o < out.length; o++) {
    const d = o % c;
    const ox = Math.floor(o / c) % ow;
    const oy = Math.floor(o / (c * ow)) % oh;
    const b = Math.floor(o / (c * ow * oh));
    let best = -Infinity;
    let at = -1;
    for (let ky = 0; ky < size; ky++) {
      for (let kx = 0; kx < size; kx++) {
        const j = ((b * ph + oy * stride + ky) * pw + ox * stride + kx) * c +
          d;
        if (padded[j] > best) [best, at] = [padded[j], origin[j]];
      }
    }
    out[o] = best;
    argmax[o] = at;
  }
  return { out, argmax, oh, ow };
}

/** The indices where `v` is not zero (where a pool's gradient landed). */
export function routedTo(v: ArrayLike<number>): number[] {
  return Array.from(v, (d, i) => d !== 0 ? i : -1).filter((i) => i >= 0);
}
