/**
 * The `native` backend's element-wise kernels: the binary ops a training
 * step runs on whole activation maps (`Add`, `Sub`, `Multiply`, `RealDiv`,
 * `Maximum`, `Minimum`) when both inputs have one shape or one of them is
 * the other's repeated along one run of adjacent axes (a scalar, a vector
 * over the last axes, an `[N, 1, 1, C]` map over `[N, H, W, C]`), and the
 * unary `Relu`, `Step`,
 * `Neg`, `Square` and `Sqrt`, as plain loops over the float32 buffers. The
 * `cpu` backend's generic kernels index every element through its strides
 * and call the operation as a function, which made element-wise ops 60 % of
 * a ResNet-18 step there. Same IEEE operations, so the same values as `cpu`;
 * every other input goes to `cpu`'s kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BinaryOp, Dnnl, EltwiseOp } from "./dnnl.ts";
import { type CpuLike, fallbackKernel, withHeap } from "./_wasm_heap.ts";
import { RELU_GRAD_KERNEL } from "../kernel_names.ts";

/**
 * Outputs of at least this many floats go to oneDNN's primitives when it is
 * loaded (both cores, vector instructions); below it one FFI crossing and
 * its thread start cost more than the loop.
 */
export const DNNL_ELEMENTWISE_MIN: number = 2 ** 16;

// oneDNN's operations for the kernels whose results it gives exactly as the
// loops do (IEEE +, −, ×, ÷, √ and x², and max(0, x) up to the sign of a
// zero); Maximum, Minimum and Step stay on the loops (NaN and ±0 rules).
const DNNL_BINARY: Record<string, BinaryOp> = {
  [tf.Add]: "add",
  [tf.Sub]: "sub",
  [tf.Multiply]: "mul",
  [tf.RealDiv]: "div",
};
const COMMUTATIVE = new Set<string>([tf.Add, tf.Multiply]);
const DNNL_UNARY: Record<string, [EltwiseOp, number, number]> = {
  [tf.Relu]: ["relu", 0, 0],
  [tf.Square]: ["square", 0, 0],
  [tf.Sqrt]: ["sqrt", 0, 0],
  [tf.Neg]: ["linear", -1, 0],
};

type Fill = (out: Float32Array, a: Float32Array, b: Float32Array) => void;

/** The three loops of one binary op: same length, `b` tiled, `a` tiled. */
interface BinaryLoops {
  same: Fill;
  tileB: Fill;
  tileA: Fill;
}

// Each op written out as its own loops, so that V8 compiles a tight loop per
// op instead of one loop calling a function per element.
const BINARY: Record<string, BinaryLoops> = {
  [tf.Add]: {
    same: (o, a, b) => {
      for (let i = 0; i < o.length; i++) o[i] = a[i] + b[i];
    },
    tileB: (o, a, b) => {
      const c = b.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[r + j] + b[j];
      }
    },
    tileA: (o, a, b) => {
      const c = a.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[j] + b[r + j];
      }
    },
  },
  [tf.Sub]: {
    same: (o, a, b) => {
      for (let i = 0; i < o.length; i++) o[i] = a[i] - b[i];
    },
    tileB: (o, a, b) => {
      const c = b.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[r + j] - b[j];
      }
    },
    tileA: (o, a, b) => {
      const c = a.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[j] - b[r + j];
      }
    },
  },
  [tf.Multiply]: {
    same: (o, a, b) => {
      for (let i = 0; i < o.length; i++) o[i] = a[i] * b[i];
    },
    tileB: (o, a, b) => {
      const c = b.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[r + j] * b[j];
      }
    },
    tileA: (o, a, b) => {
      const c = a.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[j] * b[r + j];
      }
    },
  },
  [tf.RealDiv]: {
    same: (o, a, b) => {
      for (let i = 0; i < o.length; i++) o[i] = a[i] / b[i];
    },
    tileB: (o, a, b) => {
      const c = b.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[r + j] / b[j];
      }
    },
    tileA: (o, a, b) => {
      const c = a.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = a[j] / b[r + j];
      }
    },
  },
  [tf.Maximum]: {
    same: (o, a, b) => {
      for (let i = 0; i < o.length; i++) o[i] = maximum(a[i], b[i]);
    },
    tileB: (o, a, b) => {
      const c = b.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = maximum(a[r + j], b[j]);
      }
    },
    tileA: (o, a, b) => {
      const c = a.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = maximum(a[j], b[r + j]);
      }
    },
  },
  [tf.Minimum]: {
    same: (o, a, b) => {
      for (let i = 0; i < o.length; i++) o[i] = minimum(a[i], b[i]);
    },
    tileB: (o, a, b) => {
      const c = b.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = minimum(a[r + j], b[j]);
      }
    },
    tileA: (o, a, b) => {
      const c = a.length;
      for (let r = 0; r < o.length; r += c) {
        for (let j = 0; j < c; j++) o[r + j] = minimum(a[j], b[r + j]);
      }
    },
  },
};

// As `cpu`'s kernels (NaN wins; +0 above -0).
const maximum = Math.max;
const minimum = Math.min;

type Map1 = (
  out: Float32Array,
  x: Float32Array,
  attrs: tf.NamedAttrMap,
) => void;

const UNARY: Record<string, Map1> = {
  // As `cpu`'s: max(0, x) (NaN stays NaN, -0 becomes +0).
  [tf.Relu]: (o, x) => {
    for (let i = 0; i < o.length; i++) o[i] = Math.max(0, x[i]);
  },
  // As `cpu`'s: NaN stays NaN, x > 0 ? 1 : alpha.
  [tf.Step]: (o, x, attrs) => {
    const alpha = (attrs.alpha ?? 0) as number;
    for (let i = 0; i < o.length; i++) {
      const v = x[i];
      o[i] = v !== v ? NaN : v > 0 ? 1 : alpha;
    }
  },
  [tf.Neg]: (o, x) => {
    for (let i = 0; i < o.length; i++) o[i] = -x[i];
  },
  [tf.Square]: (o, x) => {
    for (let i = 0; i < o.length; i++) o[i] = x[i] * x[i];
  },
  [tf.Sqrt]: (o, x) => {
    for (let i = 0; i < o.length; i++) o[i] = Math.sqrt(x[i]);
  },
};

/**
 * How a binary op's inputs line up: the loop that fills the output, run on
 * each of `outer` equal blocks of it, and the shapes oneDNN sees (`dims`
 * for the larger input and the output, `bDims` for the broadcast one, whose
 * inputs `swap` exchanges).
 */
interface LineUp {
  shape: number[];
  loop: keyof BinaryLoops;
  outer: number;
  dims: number[];
  bDims: number[];
  swap: boolean;
}

/** How a binary op's inputs line up, or `undefined` for `cpu`'s kernel. */
function lineUp(a: tf.TensorInfo, b: tf.TensorInfo): LineUp | undefined {
  if (tf.util.arraysEqual(a.shape, b.shape)) {
    const n = [1, tf.util.sizeFromShape(a.shape)];
    return {
      shape: a.shape,
      loop: "same",
      outer: 1,
      dims: n,
      bDims: n,
      swap: false,
    };
  }
  const onA = tiling(b.shape, a.shape);
  if (onA !== undefined) {
    return { shape: a.shape, loop: "tileB", ...onA, swap: false };
  }
  const onB = tiling(a.shape, b.shape);
  if (onB !== undefined) {
    return { shape: b.shape, loop: "tileA", ...onB, swap: true };
  }
  return undefined;
}

/**
 * How `small` broadcasts onto `big` (the result of `big`'s shape) when it
 * is repeated along one run of adjacent axes of `big` (axes of size 1
 * aside): `big` seen as `[O, M, C]` and `small` as `[O, 1, C]` (a scalar:
 * `[n]` and `[1]`; a vector over the last axes: `[M, C]` and `[1, C]`).
 */
function tiling(
  small: number[],
  big: number[],
): Pick<LineUp, "outer" | "dims" | "bDims"> | undefined {
  if (small.length > big.length) return undefined;
  const padded = [...new Array(big.length - small.length).fill(1), ...small];
  if (padded.some((d, k) => d !== 1 && d !== big[k])) return undefined;
  // Axes of size 1 in both take no part; the repeated ones must be adjacent.
  const kept = big.map((d, k) => [d, padded[k]]).filter(([d]) => d !== 1);
  const repeated = kept.flatMap(([d, e], k) => d !== e ? [k] : []);
  if (repeated.length === 0) return undefined;
  const [i, j] = [repeated[0], repeated[repeated.length - 1] + 1];
  if (repeated.length !== j - i) return undefined;
  const size = (from: number, to: number) =>
    kept.slice(from, to).reduce((p, [d]) => p * d, 1);
  const [o, m, c] = [size(0, i), size(i, j), size(j, kept.length)];
  if (o === 1 && c === 1) return { outer: 1, dims: [1, m], bDims: [1, 1] };
  if (o === 1) return { outer: 1, dims: [m, c], bDims: [1, c] };
  return { outer: o, dims: [o, m, c], bDims: [o, 1, c] };
}

function floatValues(backend: unknown, info: tf.TensorInfo): boolean {
  return info.dtype === "float32" &&
    (backend as CpuLike).data.get(info.dataId).values instanceof Float32Array;
}

/**
 * The element-wise kernel configs of the `native` backend.
 *
 * @param backendName The backend they are for (a cpu-style one).
 * @param dnnl oneDNN, when loaded: it runs the ops it has on outputs of
 * {@linkcode DNNL_ELEMENTWISE_MIN} floats or more.
 * @returns One config per binary and unary op above.
 */
export function elementwiseKernelConfigs(
  backendName: string,
  dnnl?: Dnnl,
): tf.KernelConfig[] {
  const binary = Object.entries(BINARY).map(([kernelName, loops]) => ({
    kernelName,
    backendName,
    kernelFunc: (args: Parameters<tf.KernelFunc>[0]) => {
      const { a, b } = args.inputs;
      const plan = a === undefined || b === undefined ||
          !floatValues(args.backend, a) || !floatValues(args.backend, b)
        ? undefined
        : lineUp(a, b);
      if (plan === undefined) {
        return fallbackKernel(backendName, kernelName).kernelFunc(args);
      }
      const op = DNNL_BINARY[kernelName];
      const onDnnl = dnnl !== undefined && op !== undefined &&
        tf.util.sizeFromShape(plan.shape) >= DNNL_ELEMENTWISE_MIN &&
        (!plan.swap || COMMUTATIVE.has(kernelName));
      const fill = loops[plan.loop];
      return withHeap(args.backend, plan.shape, [a!, b!], (o, av, bv) => {
        const [big, small] = plan.swap ? [bv, av] : [av, bv];
        if (onDnnl && dnnl!.binary(op!, plan.dims, plan.bDims, big, small, o)) {
          return;
        }
        // Block k of the output: block k of `big` with row k of `small`.
        const block = o.length / plan.outer;
        const row = small.length / plan.outer;
        for (let k = 0; k < plan.outer; k++) {
          const out = o.subarray(k * block, (k + 1) * block);
          const bigK = big.subarray(k * block, (k + 1) * block);
          const smallK = small.subarray(k * row, (k + 1) * row);
          if (plan.swap) fill(out, smallK, bigK);
          else fill(out, bigK, smallK);
        }
      });
    },
  }));
  const unary = Object.entries(UNARY).map(([kernelName, map]) => ({
    kernelName,
    backendName,
    kernelFunc: (args: Parameters<tf.KernelFunc>[0]) => {
      const x = args.inputs.x;
      if (x === undefined || !floatValues(args.backend, x)) {
        return fallbackKernel(backendName, kernelName).kernelFunc(args);
      }
      const op = DNNL_UNARY[kernelName];
      return withHeap(args.backend, x.shape, [x], (o, xv) => {
        if (
          dnnl !== undefined && op !== undefined &&
          o.length >= DNNL_ELEMENTWISE_MIN &&
          dnnl.eltwise(op[0], op[1], op[2], xv, o)
        ) {
          return;
        }
        map(o, xv, args.attrs ?? {});
      });
    },
  }));
  const reluGrad: tf.KernelConfig = {
    kernelName: RELU_GRAD_KERNEL,
    backendName,
    kernelFunc: (args) => {
      const { dy, x } = args.inputs;
      if (
        dy === undefined || x === undefined ||
        !floatValues(args.backend, dy) || !floatValues(args.backend, x) ||
        !tf.util.arraysEqual(dy.shape, x.shape)
      ) {
        throw new TypeError(
          `${RELU_GRAD_KERNEL}: expected float32 dy and x of one shape`,
        );
      }
      return withHeap(args.backend, x.shape, [x, dy], (o, xv, dyv) => {
        if (
          dnnl === undefined || o.length < DNNL_ELEMENTWISE_MIN ||
          !dnnl.reluBackward(xv, dyv, o)
        ) {
          for (let i = 0; i < o.length; i++) {
            o[i] = xv[i] > 0 ? dyv[i] : dyv[i] * 0;
          }
        }
      });
    },
  };
  return [...binary, ...unary, reluGrad];
}
