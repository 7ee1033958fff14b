/**
 * A port of Pillow's separable resampler (`libImaging/Resample.c`) for the
 * bicubic filter: the coefficient tables, the 8-bit fixed-point passes used
 * for uint8 images, and dense float weight matrices for the tensor path.
 *
 * Pillow's bicubic kernel is Keys' cubic with a = −0.5, and its support is
 * widened by the downscale factor (antialiasing), with each row of weights
 * renormalised to sum to 1 after clipping at the image border.
 *
 * @module
 */

/** Keys' cubic convolution kernel as Pillow defines it (a = −0.5). */
export function pilBicubicKernel(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's per-output-sample coefficient table for one axis. */
export interface PilCoefficients {
  /** Taps per output sample (the row stride of `weights`). */
  ksize: number;
  /** `[outSize, 2]`: first input index and number of taps of each output. */
  bounds: Int32Array;
  /** `[outSize, ksize]`: the normalised weights (double precision). */
  weights: Float64Array;
}

/**
 * `precompute_coeffs` of Resample.c: maps input span `[in0, in1)` of an axis
 * of length `inSize` onto `outSize` samples.
 */
export function pilCoefficients(
  inSize: number,
  outSize: number,
  in0 = 0,
  in1: number = inSize,
): PilCoefficients {
  const scale = (in1 - in0) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    const k = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = pilBicubicKernel((x + xmin - center + 0.5) * ss);
      weights[k + x] = w;
      ww += w;
    }
    if (ww !== 0) {
      for (let x = 0; x < xmax; x++) weights[k + x] /= ww;
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/**
 * The coefficient table as a dense `[outSize, inSize]` row-major matrix
 * (float64), so that `out = M · in` along the axis.
 */
export function pilBicubicMatrix(
  inSize: number,
  outSize: number,
): Float64Array {
  const { ksize, bounds, weights } = pilCoefficients(inSize, outSize);
  const m = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const xmin = bounds[o * 2], n = bounds[o * 2 + 1];
    for (let x = 0; x < n; x++) {
      m[o * inSize + xmin + x] = weights[o * ksize + x];
    }
  }
  return m;
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

function fixedPoint(weights: Float64Array): Int32Array {
  const out = new Int32Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    out[i] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
  }
  return out;
}

function clip8(ss: number): number {
  // Arithmetic shift right by PRECISION_BITS, then clamp to a byte.
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes an interleaved RGB uint8 buffer exactly as Pillow's
 * `Image.resize((width, height), BICUBIC)`: horizontal pass, rounding to
 * uint8, then vertical pass. Only output columns `[x0, x1)` and rows
 * `[y0, y1)` are produced (each output sample is independent, so this equals
 * resizing fully and cropping).
 */
export function pilResizeRgb8(
  src: Uint8Array,
  inW: number,
  inH: number,
  outW: number,
  outH: number,
  window: [number, number, number, number] = [0, 0, outW, outH],
): Uint8Array {
  const [x0, y0, x1, y1] = window;
  const cw = x1 - x0, ch = y1 - y0;
  const needH = outW !== inW;
  const needV = outH !== inH;
  // Vertical taps decide which input rows the horizontal pass must produce.
  const vert = pilCoefficients(inH, outH);
  let rowFirst = 0, rowLast = inH;
  if (needV) {
    rowFirst = vert.bounds[y0 * 2];
    rowLast = vert.bounds[(y1 - 1) * 2] + vert.bounds[(y1 - 1) * 2 + 1];
  } else {
    rowFirst = y0;
    rowLast = y1;
  }
  const rows = rowLast - rowFirst;
  // Horizontal pass: [rows, cw, 3].
  let temp: Uint8Array;
  if (needH) {
    const hor = pilCoefficients(inW, outW);
    const k = fixedPoint(hor.weights);
    temp = new Uint8Array(rows * cw * 3);
    for (let y = 0; y < rows; y++) {
      const rowIn = (y + rowFirst) * inW * 3;
      for (let xx = x0; xx < x1; xx++) {
        const xmin = hor.bounds[xx * 2], n = hor.bounds[xx * 2 + 1];
        const kb = xx * hor.ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < n; x++) {
          const p = rowIn + (xmin + x) * 3;
          const w = k[kb + x];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        const o = (y * cw + (xx - x0)) * 3;
        temp[o] = clip8(s0);
        temp[o + 1] = clip8(s1);
        temp[o + 2] = clip8(s2);
      }
    }
  } else {
    temp = new Uint8Array(rows * cw * 3);
    for (let y = 0; y < rows; y++) {
      const from = ((y + rowFirst) * inW + x0) * 3;
      temp.set(src.subarray(from, from + cw * 3), y * cw * 3);
    }
  }
  if (!needV) return temp;
  // Vertical pass over the horizontally resampled rows.
  const k = fixedPoint(vert.weights);
  const out = new Uint8Array(ch * cw * 3);
  for (let yy = y0; yy < y1; yy++) {
    const ymin = vert.bounds[yy * 2] - rowFirst, n = vert.bounds[yy * 2 + 1];
    const kb = yy * vert.ksize;
    for (let xx = 0; xx < cw; xx++) {
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let y = 0; y < n; y++) {
        const p = ((ymin + y) * cw + xx) * 3;
        const w = k[kb + y];
        s0 += temp[p] * w;
        s1 += temp[p + 1] * w;
        s2 += temp[p + 2] * w;
      }
      const o = ((yy - y0) * cw + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}
