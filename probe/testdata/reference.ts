/**
 * Float64 plain-JS references for the probe tests: synthetic data and
 * softmax-regression gradients written independently of the tfjs code.
 *
 * @module
 */
import type { Rng } from "@scaling-vicreg/backend";

/** Rows of features with labels, as plain arrays. */
export interface PlainData {
  x: number[][];
  y: number[];
}

/** Gaussian blobs: class c centred at `centres[c]`, isotropic `noise`. */
export function blobs(
  centres: number[][],
  perClass: number,
  noise: number,
  rng: Rng,
): PlainData {
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < perClass; i++) {
    for (let c = 0; c < centres.length; c++) {
      x.push(centres[c].map((m) => m + rng.normal(0, noise)));
      y.push(c);
    }
  }
  return { x, y };
}

/** Row-major Float32Array of rows. */
export function flat(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

/** softmax of one row of logits. */
export function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * Gradient of mean cross-entropy of softmax(xW + b) over the rows `idx`.
 * W is [D][C].
 */
export function ceGrad(
  data: PlainData,
  w: number[][],
  b: number[],
  idx?: number[],
): { gw: number[][]; gb: number[]; loss: number } {
  const rows = idx ?? data.x.map((_, i) => i);
  const d = w.length, c = b.length;
  const gw = w.map((r) => r.map(() => 0));
  const gb = b.map(() => 0);
  let loss = 0;
  for (const i of rows) {
    const z = b.map((bj, j) => {
      let s = bj;
      for (let k = 0; k < d; k++) s += data.x[i][k] * w[k][j];
      return s;
    });
    const p = softmax(z);
    loss -= Math.log(p[data.y[i]]);
    for (let j = 0; j < c; j++) {
      const g = (p[j] - (data.y[i] === j ? 1 : 0)) / rows.length;
      gb[j] += g;
      for (let k = 0; k < d; k++) gw[k][j] += g * data.x[i][k];
    }
  }
  return { gw, gb, loss: loss / rows.length };
}

/**
 * Minimises mean CE + wd/2·(‖W‖² + ‖b‖²) by full-batch gradient descent in
 * float64 until the gradient norm is below `tol`.
 */
export function logisticOptimum(
  data: PlainData,
  classes: number,
  wd: number,
  lr = 0.5,
  tol = 1e-12,
): { w: number[][]; b: number[] } {
  const d = data.x[0].length;
  let w = Array.from({ length: d }, () => new Array(classes).fill(0));
  let b = new Array(classes).fill(0);
  for (let it = 0; it < 200000; it++) {
    const { gw, gb } = ceGrad(data, w, b);
    let norm = 0;
    w = w.map((r, k) =>
      r.map((v, j) => {
        const g = gw[k][j] + wd * v;
        norm += g * g;
        return v - lr * g;
      })
    );
    b = b.map((v, j) => {
      const g = gb[j] + wd * v;
      norm += g * g;
      return v - lr * g;
    });
    if (norm < tol * tol) break;
  }
  return { w, b };
}
