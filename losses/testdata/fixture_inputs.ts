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

/**
 * The embeddings of view `v` of `make_multi_view_fixtures.py`, row-major
 * `[N, D]`: `z_v[i][j] = f32(a_j u(i,j,1) + 0.3 u(i,0,3) + s_v u(i,j,100+v))`,
 * `s_v` = 0.2 for the `globalViews` first views, 0.5 for the others.
 */
export function makeViewEmbeddings(
  v: number,
  n: number,
  d: number,
  globalViews: number,
): Float32Array {
  const s = v < globalViews ? 0.2 : 0.5;
  const z = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const a = 0.5 + (j % 7) / 3;
      z[i * d + j] = a * unit(i, j, 1) + 0.3 * unit(i, 0, 3) +
        s * unit(i, j, 100 + v);
    }
  }
  return z;
}

/**
 * The local descriptors of view `v` of `make_multi_view_fixtures.py`,
 * row-major `[N, L, D]`: `m_v[i][c][k] = f32(u(1000 i + c, k, 200+v) + 0.5 u(i, k, 300))`.
 */
export function makeViewMap(
  v: number,
  n: number,
  l: number,
  d: number,
): Float32Array {
  const m = new Float32Array(n * l * d);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < l; c++) {
      for (let k = 0; k < d; k++) {
        m[(i * l + c) * d + k] = unit(1000 * i + c, k, 200 + v) +
          0.5 * unit(i, k, 300);
      }
    }
  }
  return m;
}
