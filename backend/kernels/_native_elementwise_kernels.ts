/**
 * The `native` backend's element-wise kernels: the binary ops a training
 * step runs on whole activation maps (`Add`, `Sub`, `Multiply`, `RealDiv`,
 * `Maximum`, `Minimum`) when both inputs have one shape or one of them is a
 * scalar or a vector over the last axis, and the unary `Relu`, `Step`,
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

/** How a binary op's inputs line up, or `undefined` for `cpu`'s kernel. */
function lineUp(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
): { shape: number[]; loop: keyof BinaryLoops } | undefined {
  if (tf.util.arraysEqual(a.shape, b.shape)) {
    return { shape: a.shape, loop: "same" };
  }
  if (tiles(b.shape, a.shape)) return { shape: a.shape, loop: "tileB" };
  if (tiles(a.shape, b.shape)) return { shape: b.shape, loop: "tileA" };
  return undefined;
}

/**
 * Whether `small` broadcasts onto `big` as a scalar or as a vector over its
 * last axis (`[C]`, `[1, …, 1, C]`), with the result of `big`'s shape.
 */
function tiles(small: number[], big: number[]): boolean {
  if (small.length > big.length) return false;
  const size = tf.util.sizeFromShape(small);
  if (size === 1) return tf.util.sizeFromShape(big) >= 1;
  const last = small[small.length - 1];
  return big.length >= 1 && last === big[big.length - 1] && size === last;
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
      return withHeap(args.backend, plan.shape, [a!, b!], (o, av, bv) => {
        if (
          dnnl !== undefined && op !== undefined &&
          o.length >= DNNL_ELEMENTWISE_MIN
        ) {
          const ran = plan.loop === "same"
            ? dnnl.binary(op, 1, o.length, false, av, bv, o)
            : plan.loop === "tileB"
            ? dnnl.binary(op, o.length / bv.length, bv.length, true, av, bv, o)
            : COMMUTATIVE.has(kernelName) &&
              dnnl.binary(op, o.length / av.length, av.length, true, bv, av, o);
          if (ran) return;
        }
        loops[plan.loop](o, av, bv);
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
