/**
 * Shared by the conv kernel tests: geometries with the BLAS paths they take,
 * random data, and direct float64 loops to check every conv against.
 *
 * @module
 */
import { type Dnnl, loadDnnl } from "./dnnl.ts";
import type { Rng } from "../random.ts";
import { assertEquals, assertTrue } from "../testing.ts";
import type { ConvPaths, ConvShape } from "./blas_conv.ts";

export function random(rng: Rng, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.normal();
  return out;
}

/** A conv geometry from sizes, stride and explicit padding. */
export function shape(
  n: number,
  h: number,
  w: number,
  ci: number,
  co: number,
  k: number,
  s: number,
  pad: [number, number, number, number],
): ConvShape {
  const [top, bottom, left, right] = pad;
  return {
    n,
    h,
    w,
    ci,
    co,
    kh: k,
    kw: k,
    sh: s,
    sw: s,
    top,
    bottom,
    left,
    right,
    oh: Math.floor((h + top + bottom - k) / s) + 1,
    ow: Math.floor((w + left + right - k) / s) + 1,
  };
}

/** Direct float64 loops over every (output, tap, channel) term. */
export function reference(
  g: ConvShape,
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const y = new Float64Array(g.n * g.oh * g.ow * g.co);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  for (let n = 0; n < g.n; n++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        const o0 = ((n * g.oh + oy) * g.ow + ox) * g.co;
        for (let a = 0; a < g.kh; a++) {
          const iy = oy * g.sh - g.top + a;
          if (iy < 0 || iy >= g.h) continue;
          for (let b = 0; b < g.kw; b++) {
            const ix = ox * g.sw - g.left + b;
            if (ix < 0 || ix >= g.w) continue;
            for (let c = 0; c < g.ci; c++) {
              const xi = ((n * g.h + iy) * g.w + ix) * g.ci + c;
              const w0 = ((a * g.kw + b) * g.ci + c) * g.co;
              for (let o = 0; o < g.co; o++) {
                y[o0 + o] += x[xi] * w[w0 + o];
                dx[xi] += dy[o0 + o] * w[w0 + o];
                dw[w0 + o] += x[xi] * dy[o0 + o];
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw };
}

export function assertNear(
  actual: Float32Array,
  expected: Float64Array,
  what: string,
  tolerance = 1e-5,
): void {
  assertEquals(actual.length, expected.length, what);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  assertTrue(
    worst <= tolerance * Math.max(1, scale),
    `${what}: max error ${worst} (scale ${scale})`,
  );
}

export const CONV_CASES: [string, ConvShape, ConvPaths][] = [
  [
    "3x3 s1 same",
    shape(3, 12, 12, 16, 16, 3, 1, [1, 1, 1, 1]),
    { forward: "shift", input: "shift" },
  ],
  [
    "3x3 s1 valid",
    shape(2, 14, 14, 24, 5, 3, 1, [0, 0, 0, 0]),
    { forward: "shift", input: "im2col" },
  ],
  [
    "3x3 s1 on a 2x2 map",
    shape(4, 2, 2, 32, 6, 3, 1, [1, 1, 1, 1]),
    { forward: "im2col", input: "im2col" },
  ],
  [
    "3x3 s1 with 3 channels",
    shape(2, 8, 8, 3, 4, 3, 1, [1, 1, 1, 1]),
    { forward: "im2col", input: "im2col" },
  ],
  [
    "3x3 s2 same",
    shape(2, 8, 8, 16, 8, 3, 2, [0, 1, 0, 1]),
    { forward: "im2col", input: "im2col" },
  ],
  [
    "7x7 s2 stem",
    shape(2, 12, 12, 3, 8, 7, 2, [3, 3, 3, 3]),
    { forward: "im2col", input: "im2col" },
  ],
  [
    "1x1 s1",
    shape(2, 5, 5, 20, 12, 1, 1, [0, 0, 0, 0]),
    { forward: "pointwise", input: "pointwise" },
  ],
  [
    "1x1 s2 downsample",
    shape(2, 6, 6, 20, 12, 1, 2, [0, 0, 0, 0]),
    { forward: "im2col", input: "im2col" },
  ],
  [
    "5x5 s1 asymmetric",
    shape(2, 24, 24, 16, 16, 5, 1, [2, 1, 1, 2]),
    { forward: "shift", input: "shift" },
  ],
];

/**
 * oneDNN 2.x when it opens here, else `undefined` (its tests are then
 * ignored).
 *
 * @returns The library, or `undefined`.
 */
export function loadedDnnl(): Dnnl | undefined {
  try {
    return loadDnnl();
  } catch {
    return undefined;
  }
}
