/**
 * 2-D convolutions (forward, input and filter gradients) on NHWC float32
 * arrays written on a BLAS's `cblas_sgemm` (see `blas.ts`):
 *
 * - stride 1 with enough channels: the "shifted GEMM" form. The padded
 *   input is laid out once; each filter row is then a few GEMMs over the
 *   whole padded grid, reading the input at fixed offsets (see
 *   `shiftConv`), so there is no im2col copy at all. Grid positions outside
 *   the output are computed and dropped (13 % extra work for a 32 px map with
 *   a 3×3 filter).
 * - otherwise (strides, few channels, tiny maps): im2col rows + one GEMM.
 *
 * @module
 */
import { type Geometry, rotateFilter } from "./_geometry.ts";
import type { Blas } from "./blas.ts";
import type { Scratch } from "./scratch.ts";

/** Shapes, strides and padding of one NHWC convolution. */
export type ConvShape = Geometry;

/** Largest padded-grid / output area ratio the shifted form accepts. */
const SHIFT_MAX_GROWTH = 1.5;

/** Whether the conv is a plain matrix product (1×1, stride 1, no padding). */
function isPointwise(g: ConvShape): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 &&
    g.top === 0 && g.left === 0 && g.bottom === 0 && g.right === 0;
}

/**
 * Whether a stride-1 conv with `channels` input channels per tap should use
 * the shifted-GEMM form: enough channels for a GEMM per tap to pay, and a
 * padded grid not much larger than the output.
 */
function useShift(
  hp: number,
  wp: number,
  outH: number,
  outW: number,
  channels: number,
): boolean {
  return channels >= 16 && hp * wp <= SHIFT_MAX_GROWTH * outH * outW;
}

/**
 * Copies `src [n, hs, ws, c]` into the zeroed padded grid `dst`
 * `[n, hs + top + bottom, ws + left + right, c]`.
 */
function padInto(
  src: Float32Array,
  srcOffset: number,
  n: number,
  hs: number,
  ws: number,
  c: number,
  top: number,
  left: number,
  hp: number,
  wp: number,
  dst: Float32Array,
): void {
  dst.fill(0);
  const row = ws * c;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < hs; y++) {
      const s = srcOffset + ((i * hs + y) * ws) * c;
      dst.set(src.subarray(s, s + row), ((i * hp + y + top) * wp + left) * c);
    }
  }
}

/**
 * Calls `fn(n0, nc, xp, mg)` for each chunk of images `n0 .. n0 + nc` of
 * `src [n, hs, ws, cs]`: `xp` is the chunk laid out zero-padded on its
 * `[nc, hp, wp, cs]` grid, and `mg` the number of grid positions whose
 * `kh × kw` window stays inside `xp` (every output position is among them).
 * Chunks are sized so that grids of `max(cs, cout)` floats a position fit
 * the scratch buffers.
 */
function eachGridChunk(
  scratch: Scratch,
  src: Float32Array,
  n: number,
  hs: number,
  ws: number,
  cs: number,
  cout: number,
  [top, bottom, left, right]: [number, number, number, number],
  kh: number,
  kw: number,
  fn: (n0: number, nc: number, xp: Float32Array, mg: number) => void,
): void {
  const hp = hs + top + bottom;
  const wp = ws + left + right;
  const plane = hp * wp;
  const nb = chunk(n, plane * Math.max(cs, cout), scratch);
  const reach = (kh - 1) * wp + (kw - 1);
  for (let n0 = 0; n0 < n; n0 += nb) {
    const nc = Math.min(nb, n - n0);
    const xp = scratch.get(0, nc * plane * cs);
    padInto(src, n0 * hs * ws * cs, nc, hs, ws, cs, top, left, hp, wp, xp);
    fn(n0, nc, xp, nc * plane - reach);
  }
}

/**
 * Stride-1 convolution in shifted-GEMM form.
 *
 * `dst [n, ho, wo, cout] = Σ_{a,b} pad(src)[., y + a, x + b, :] · W(a, b)`,
 * where `tapRow(a)` holds the taps of filter row `a` stacked as one
 * `[kw·cs, cout]` matrix (row stride `ldb`).
 *
 * On the padded grid (positions `p`, `cs` floats each), the `kw` taps of
 * row `a` read the `kw·cs` contiguous floats from position `p + a·Wp`, so
 * one GEMM with `K = kw·cs` covers them. Consecutive positions overlap, which
 * BLAS forbids (`lda ≥ K`), so the positions are taken `kw` apart: residue
 * `r` covers `p = r, r + kw, r + 2kw, …` with `lda = kw·cs` and writes every
 * `kw`-th output row (`ldc = kw·cout`). That is `kh·kw` GEMMs, each with
 * `kw`× the depth and a `kw`th of the rows of one GEMM per tap: fewer passes
 * over the output, and no copy of the input beyond the padding.
 */
function shiftConv(
  blas: Blas,
  scratch: Scratch,
  src: Float32Array,
  n: number,
  hs: number,
  ws: number,
  cs: number,
  pads: [number, number, number, number],
  kh: number,
  kw: number,
  tapRow: (a: number) => Float32Array,
  ldb: number,
  cout: number,
  dst: Float32Array,
): void {
  const hp = hs + pads[0] + pads[1];
  const wp = ws + pads[2] + pads[3];
  const ho = hp - kh + 1;
  const wo = wp - kw + 1;
  eachGridChunk(scratch, src, n, hs, ws, cs, cout, pads, kh, kw, (
    n0,
    nc,
    xp,
    mg,
  ) => {
    const grid = scratch.get(1, mg * cout);
    for (let a = 0; a < kh; a++) {
      const taps = tapRow(a);
      for (let r = 0; r < kw && r < mg; r++) {
        blas.sgemm(
          false,
          false,
          Math.ceil((mg - r) / kw),
          cout,
          kw * cs,
          1,
          xp.subarray((a * wp + r) * cs),
          kw * cs,
          taps,
          ldb,
          a === 0 ? 0 : 1,
          grid.subarray(r * cout),
          kw * cout,
        );
      }
    }
    const row = wo * cout;
    for (let i = 0; i < nc; i++) {
      for (let y = 0; y < ho; y++) {
        const s = (i * hp + y) * wp * cout;
        dst.set(grid.subarray(s, s + row), ((n0 + i) * ho + y) * row);
      }
    }
  });
}

/** Images per chunk so that `perImage` floats a buffer stay in scratch. */
function chunk(n: number, perImage: number, scratch: Scratch): number {
  return Math.max(1, Math.min(n, Math.floor(scratch.maxFloats / perImage)));
}

/**
 * Writes rows `m0 .. m0 + mc` of the im2col matrix of `x`:
 * `cols[m, (a·KW + b)·Ci + c]` for output pixel `m = (n·OH + y)·OW + x`.
 */
function im2colRows(
  x: Float32Array,
  cols: Float32Array,
  g: ConvShape,
  m0: number,
  mc: number,
): void {
  const { h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const k = kh * kw * ci;
  const small = ci < 16;
  for (let m = m0; m < m0 + mc; m++) {
    const n = Math.floor(m / (oh * ow));
    const r = m - n * oh * ow;
    const oy = Math.floor(r / ow);
    const ox = r - oy * ow;
    let dst = (m - m0) * k;
    for (let a = 0; a < kh; a++) {
      const iy = oy * sh - top + a;
      if (iy < 0 || iy >= h) {
        cols.fill(0, dst, dst + kw * ci);
        dst += kw * ci;
        continue;
      }
      for (let b = 0; b < kw; b++, dst += ci) {
        const ix = ox * sw - left + b;
        if (ix < 0 || ix >= w) {
          cols.fill(0, dst, dst + ci);
          continue;
        }
        const s = ((n * h + iy) * w + ix) * ci;
        if (small) {
          for (let c = 0; c < ci; c++) cols[dst + c] = x[s + c];
        } else {
          cols.set(x.subarray(s, s + ci), dst);
        }
      }
    }
  }
}

/** Adds rows `m0 .. m0 + mc` of an im2col matrix back into `dx` (adjoint). */
function col2imRowsAdd(
  cols: Float32Array,
  dx: Float32Array,
  g: ConvShape,
  m0: number,
  mc: number,
): void {
  const { h, w, ci, oh, ow, kh, kw, sh, sw, top, left } = g;
  const k = kh * kw * ci;
  for (let m = m0; m < m0 + mc; m++) {
    const n = Math.floor(m / (oh * ow));
    const r = m - n * oh * ow;
    const oy = Math.floor(r / ow);
    const ox = r - oy * ow;
    const base = (m - m0) * k;
    for (let a = 0; a < kh; a++) {
      const iy = oy * sh - top + a;
      if (iy < 0 || iy >= h) continue;
      for (let b = 0; b < kw; b++) {
        const ix = ox * sw - left + b;
        if (ix < 0 || ix >= w) continue;
        let s = base + (a * kw + b) * ci;
        let d = ((n * h + iy) * w + ix) * ci;
        for (let c = 0; c < ci; c++) dx[d++] += cols[s++];
      }
    }
  }
}

/** How a convolution and its two gradients are computed. */
export interface ConvPaths {
  /** The forward pass (the filter gradient takes the same path). */
  forward: "pointwise" | "shift" | "im2col";
  /** The input gradient. */
  input: "pointwise" | "shift" | "im2col";
}

/**
 * Which form {@linkcode conv2d}, {@linkcode conv2dBackpropInput} and
 * {@linkcode conv2dBackpropFilter} use for a geometry.
 *
 * @param g The convolution's geometry.
 * @returns The forms.
 */
export function convPaths(g: ConvShape): ConvPaths {
  if (isPointwise(g)) return { forward: "pointwise", input: "pointwise" };
  const stride1 = g.sh === 1 && g.sw === 1;
  const forward = stride1 &&
      useShift(
        g.h + g.top + g.bottom,
        g.w + g.left + g.right,
        g.oh,
        g.ow,
        g.ci,
      )
    ? "shift"
    : "im2col";
  const [pt, pb, pl, pr] = inputPads(g);
  const input = stride1 && Math.min(pt, pb, pl, pr) >= 0 &&
      useShift(g.oh + pt + pb, g.ow + pl + pr, g.h, g.w, g.co)
    ? "shift"
    : "im2col";
  return { forward, input };
}

/** Padding of `dy` for the input gradient as a stride-1 convolution. */
function inputPads(g: ConvShape): [number, number, number, number] {
  return [
    g.kh - 1 - g.top,
    g.kh - 1 - g.bottom,
    g.kw - 1 - g.left,
    g.kw - 1 - g.right,
  ];
}

/**
 * Calls `fn(cols, m0, mc)` for each chunk of rows `m0 .. m0 + mc` of the
 * im2col matrix (`[M, KH·KW·Ci]`, chunked to fit the scratch buffer); `cols`
 * is a scratch buffer of that chunk's size, filled with the rows of `x`'s
 * im2col matrix when `x` is given.
 */
function eachRowChunk(
  g: ConvShape,
  scratch: Scratch,
  x: Float32Array | undefined,
  fn: (cols: Float32Array, m0: number, mc: number) => void,
): void {
  const m = g.n * g.oh * g.ow;
  const k = g.kh * g.kw * g.ci;
  const rows = Math.max(1, Math.floor(scratch.maxFloats / k));
  for (let m0 = 0; m0 < m; m0 += rows) {
    const mc = Math.min(rows, m - m0);
    const cols = scratch.get(2, mc * k);
    if (x !== undefined) im2colRows(x, cols, g, m0, mc);
    fn(cols, m0, mc);
  }
}

/**
 * Forward convolution: `out [N, OH, OW, Co] = conv(x [N, H, W, Ci],
 * w [KH, KW, Ci, Co])`.
 *
 * @param blas The BLAS.
 * @param scratch Buffers for padding and im2col.
 * @param g The convolution's geometry.
 * @param x The input.
 * @param w The filter.
 * @param out The output, overwritten.
 */
export function conv2d(
  blas: Blas,
  scratch: Scratch,
  g: ConvShape,
  x: Float32Array,
  w: Float32Array,
  out: Float32Array,
): void {
  const { n, ci, co, kh, kw, oh, ow } = g;
  const m = n * oh * ow;
  if (isPointwise(g)) {
    blas.sgemm(false, false, m, co, ci, 1, x, ci, w, co, 0, out, co);
    return;
  }
  if (convPaths(g).forward === "shift") {
    // Row a's taps, [KW, Ci, Co], are already one [KW·Ci, Co] matrix.
    const tapRow = (a: number) => w.subarray(a * kw * ci * co);
    shiftConv(
      blas,
      scratch,
      x,
      n,
      g.h,
      g.w,
      ci,
      [g.top, g.bottom, g.left, g.right],
      kh,
      kw,
      tapRow,
      co,
      co,
      out,
    );
    return;
  }
  const k = kh * kw * ci;
  eachRowChunk(g, scratch, x, (cols, m0, mc) =>
    blas.sgemm(
      false,
      false,
      mc,
      co,
      k,
      1,
      cols,
      k,
      w,
      co,
      0,
      out.subarray(m0 * co),
      co,
    ));
}

/**
 * Input gradient: `dx [N, H, W, Ci]` of a convolution, from
 * `dy [N, OH, OW, Co]` and `w [KH, KW, Ci, Co]`.
 *
 * @param blas The BLAS.
 * @param scratch Buffers for padding and im2col.
 * @param g The forward convolution's geometry.
 * @param dy The output gradient.
 * @param w The filter.
 * @param dx The input gradient, overwritten.
 */
export function conv2dBackpropInput(
  blas: Blas,
  scratch: Scratch,
  g: ConvShape,
  dy: Float32Array,
  w: Float32Array,
  dx: Float32Array,
): void {
  const { n, ci, co, kh, kw, oh, ow } = g;
  const m = n * oh * ow;
  if (isPointwise(g)) {
    blas.sgemm(false, true, m, ci, co, 1, dy, co, w, co, 0, dx, ci);
    return;
  }
  if (convPaths(g).input === "shift") {
    // dx = stride-1 conv of dy with the filter rotated 180° and each tap
    // transposed: row a of it is [KW·Co, Ci] with
    // rot[a][(b·Co + o)·Ci + c] = w[KH-1-a][KW-1-b][c][o].
    const rot = scratch.get(3, kh * kw * co * ci);
    rotateFilter(w, kh, kw, ci, co, rot);
    const tapRow = (a: number) => rot.subarray(a * kw * co * ci);
    shiftConv(
      blas,
      scratch,
      dy,
      n,
      oh,
      ow,
      co,
      inputPads(g),
      kh,
      kw,
      tapRow,
      ci,
      ci,
      dx,
    );
    return;
  }
  // cols [M, K] = dy [M, Co] · wᵀ [Co, K], added back into dx.
  const k = kh * kw * ci;
  dx.fill(0);
  eachRowChunk(g, scratch, undefined, (cols, m0, mc) => {
    blas.sgemm(
      false,
      true,
      mc,
      k,
      co,
      1,
      dy.subarray(m0 * co),
      co,
      w,
      co,
      0,
      cols,
      k,
    );
    col2imRowsAdd(cols, dx, g, m0, mc);
  });
}

/**
 * Filter gradient: `dw [KH, KW, Ci, Co]` of a convolution, from
 * `x [N, H, W, Ci]` and `dy [N, OH, OW, Co]`.
 *
 * @param blas The BLAS.
 * @param scratch Buffers for padding and im2col.
 * @param g The forward convolution's geometry.
 * @param x The input.
 * @param dy The output gradient.
 * @param dw The filter gradient, overwritten.
 */
export function conv2dBackpropFilter(
  blas: Blas,
  scratch: Scratch,
  g: ConvShape,
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
): void {
  const { n, h, w, ci, co, kh, kw, oh, ow, top, left } = g;
  const m = n * oh * ow;
  if (isPointwise(g)) {
    blas.sgemm(true, false, ci, co, m, 1, x, ci, dy, co, 0, dw, co);
    return;
  }
  if (convPaths(g).forward === "shift") {
    const hp = h + top + g.bottom;
    const wp = w + left + g.right;
    // dw(a, b) = Σ_p pad(x)[p + a·Wp + b]ᵀ · dy_grid[p], with dy laid on the
    // padded grid (zeros where no output is); row a's taps at once.
    const pads: [number, number, number, number] = [
      top,
      g.bottom,
      left,
      g.right,
    ];
    eachGridChunk(scratch, x, n, h, w, ci, co, pads, kh, kw, (
      n0,
      nc,
      xp,
      mg,
    ) => {
      const grid = scratch.get(1, mg * co);
      padInto(dy, n0 * oh * ow * co, nc, oh, ow, co, 0, 0, hp, wp, grid);
      // Row a of dw, [KW·Ci, Co], in kw GEMMs over the grid's residues
      // (see shiftConv).
      for (let a = 0; a < kh; a++) {
        for (let r = 0; r < kw && r < mg; r++) {
          blas.sgemm(
            true,
            false,
            kw * ci,
            co,
            Math.ceil((mg - r) / kw),
            1,
            xp.subarray((a * wp + r) * ci),
            kw * ci,
            grid.subarray(r * co),
            kw * co,
            n0 === 0 && r === 0 ? 0 : 1,
            dw.subarray(a * kw * ci * co),
            co,
          );
        }
      }
    });
    return;
  }
  const k = kh * kw * ci;
  eachRowChunk(g, scratch, x, (cols, m0, mc) =>
    blas.sgemm(
      true,
      false,
      k,
      co,
      mc,
      1,
      cols,
      k,
      dy.subarray(m0 * co),
      co,
      m0 === 0 ? 0 : 1,
      dw,
      co,
    ));
}
