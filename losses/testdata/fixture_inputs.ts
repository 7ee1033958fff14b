/**
 * The deterministic fixture inputs of `make_fixtures.py`, reproduced bit for
 * bit: an integer hash (murmur3 fmix32) mapped to [-1, 1), rounded once to
 * float32.
 *
 * @module
 */

function fmix32(h: number): number {
  h >>>= 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function unit(i: number, j: number, s: number): number {
  const h = fmix32(
    Math.imul(i, 0x9e3779b1) ^ Math.imul(j, 0x85ebca77) ^
      Math.imul(s, 0xc2b2ae3d),
  );
  return h / 4294967296 * 2 - 1;
}

/** `x[i][j] = f32(a_j u(i,j,1) + 0.3 u(i,0,3))`, `y = f32(x + 0.2 u(i,j,2))`, row-major `[N, D]`. */
export function makeInputs(
  n: number,
  d: number,
): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(n * d);
  const y = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const common = 0.3 * unit(i, 0, 3);
    for (let j = 0; j < d; j++) {
      const a = 0.5 + (j % 7) / 3;
      x[i * d + j] = a * unit(i, j, 1) + common;
      y[i * d + j] = x[i * d + j] + 0.2 * unit(i, j, 2);
    }
  }
  return { x, y };
}
