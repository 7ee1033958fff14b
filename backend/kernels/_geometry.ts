/**
 * Geometry of an NHWC 2-D convolution, shared by the conv kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Shapes, strides and padding of one NHWC 2-D convolution. */
export interface Geometry {
  /** Batch size. */
  n: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Input channels. */
  ci: number;
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
  /** Output channels. */
  co: number;
  /** Filter height. */
  kh: number;
  /** Filter width. */
  kw: number;
  /** Vertical stride. */
  sh: number;
  /** Horizontal stride. */
  sw: number;
  /** Zero rows above the input. */
  top: number;
  /** Zero columns left of the input. */
  left: number;
  /** Zero rows below the input. */
  bottom: number;
  /** Zero columns right of the input. */
  right: number;
}

/**
 * Reads a conv kernel's shapes and attributes (NHWC, dilation 1 only).
 *
 * @param xShape The input's shape `[N, H, W, Ci]`.
 * @param filterShape The filter's shape `[KH, KW, Ci, Co]`.
 * @param attrs The kernel's attributes (`strides`, `pad`, ...).
 * @param kernel The kernel's name, for errors.
 * @returns The geometry.
 */
export function geometry(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: tf.NamedAttrMap,
  kernel: string,
): Geometry {
  const dataFormat = (attrs.dataFormat ?? "NHWC") as "NHWC" | "NCHW";
  if (dataFormat !== "NHWC") {
    throw new TypeError(
      `${kernel}: expected dataFormat NHWC: received ${dataFormat}`,
    );
  }
  const dilations = (attrs.dilations ?? 1) as number | [number, number];
  if (!tf.backend_util.tupleValuesAreOne(dilations)) {
    throw new RangeError(
      `${kernel}: expected dilations 1: received ${dilations}`,
    );
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "valid" | "same" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    false,
    "channelsLast",
  );
  return geometryOfInfo(info);
}

/**
 * TF.js's geometry of a convolution or pool (`computeConv2DInfo`,
 * `computePool2DInfo`) as the native kernels take it; a pool has `ci` =
 * `co` channels.
 *
 * @param info The geometry.
 * @returns The same, by the kernels' names.
 */
export function geometryOfInfo(info: tf.backend_util.Conv2DInfo): Geometry {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    ci: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    co: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
    bottom: info.padInfo.bottom,
    right: info.padInfo.right,
  };
}

/**
 * The filter of a convolution's input gradient as a stride-1 convolution:
 * `w [KH, KW, Ci, Co]` rotated 180° with its channels swapped,
 * `out[a][b][o][c] = w[KH-1-a][KW-1-b][c][o]`.
 *
 * @param w The filter, `[KH, KW, Ci, Co]`.
 * @param kh Filter height.
 * @param kw Filter width.
 * @param ci Input channels.
 * @param co Output channels.
 * @param out Written, `[KH, KW, Co, Ci]`.
 */
export function rotateFilter(
  w: Float32Array,
  kh: number,
  kw: number,
  ci: number,
  co: number,
  out: Float32Array,
): void {
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const s0 = ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
      const d0 = (a * kw + b) * co * ci;
      for (let c = 0; c < ci; c++) {
        for (let o = 0; o < co; o++) {
          out[d0 + o * ci + c] = w[s0 + c * co + o];
        }
      }
    }
  }
}
