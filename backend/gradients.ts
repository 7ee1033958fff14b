/**
 * The gradient functions of the TF.js kernels this project differentiates,
 * registered into tfjs-core's gradient registry.
 *
 * tfjs-core ships its gradients as a separate side-effect module
 * (`dist/register_all_gradients.js`) whose ES-module imports have no file
 * extension, which Deno's npm resolver rejects; its CommonJS bundle, the one
 * Deno loads, has none of them. The `@tensorflow/tfjs` bundle carries a copy,
 * but with it come layers, converter, data and WebGL (~220 MB that no run
 * here uses). TF.js's own custom builds register only the gradients a model
 * needs; this module does the same for the kernels that the models, losses,
 * training step and probe record on a tape (found by recording which
 * gradients their tests call), plus the common element-wise, shape and
 * pooling kernels a user's model may add. Each gradient is the textbook
 * derivative written against tfjs-core's public ops; the convolution and
 * pooling ones run the backward kernels every backend registers
 * (`Conv2DBackpropInput`, `Conv2DBackpropFilter`, `MaxPoolGrad`,
 * `AvgPoolGrad`). Differentiating a kernel outside {@linkcode GRADIENT_KERNELS}
 * fails with TF.js's "gradient function not found for <kernel>".
 *
 * Tensors are NHWC where shapes appear; each gradient saves the same inputs
 * and outputs as TF.js's own, so a tape's memory is unchanged.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { activeBackendHas, RELU_GRAD_KERNEL } from "./kernel_names.ts";

type Grads = Record<string, () => tf.Tensor>;
type Attrs = tf.NamedAttrMap;

/** `dy` summed over the axes it was broadcast along, reshaped to `shape`. */
function reduceTo(dy: tf.Tensor, shape: number[]): tf.Tensor {
  // dy: [..., d_i, ...] (the broadcast output) -> shape (an input's).
  const lead = dy.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    const inShape = i < lead ? 1 : shape[i - lead];
    if (i < lead || (inShape === 1 && dy.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(summed, shape);
}

/** The reduced axes of a `Sum`/`Mean`/`Max` kernel, non-negative, sorted. */
function reducedAxes(axis: unknown, rank: number): number[] {
  if (axis === null || axis === undefined) {
    return Array.from({ length: rank }, (_, i) => i);
  }
  const list = Array.isArray(axis) ? axis as number[] : [axis as number];
  return list.map((a) => a < 0 ? a + rank : a).sort((a, b) => a - b);
}

/** `x`'s shape with the reduced axes set to 1 (`keepDims`). */
function keptShape(shape: number[], axes: number[]): number[] {
  const out = shape.slice();
  for (const a of axes) out[a] = 1;
  return out;
}

function float(x: tf.Tensor): tf.Tensor {
  return tf.cast(x, "float32");
}

function inversePermutation(perm: number[]): number[] {
  const out = new Array<number>(perm.length);
  perm.forEach((p, i) => out[p] = i);
  return out;
}

/** A binary element-wise kernel's gradient, each input's summed to its shape. */
function binary(
  kernelName: string,
  da: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  db: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved) => {
      const [a, b] = saved;
      const g = dy as tf.Tensor;
      return {
        a: () => reduceTo(da(g, a, b), a.shape),
        b: () => reduceTo(db(g, a, b), b.shape),
      };
    },
  };
}

/** A unary kernel's gradient from its input `x` or its output `y`. */
function unary(
  kernelName: string,
  save: "x" | "y" | "none",
  dx: (dy: tf.Tensor, saved: tf.Tensor) => tf.Tensor,
): tf.GradConfig {
  return {
    kernelName,
    ...(save === "x" ? { inputsToSave: ["x"] } : {}),
    ...(save === "y" ? { outputsToSave: [true] } : {}),
    gradFunc: (dy, saved) => ({ x: () => dx(dy as tf.Tensor, saved[0]) }),
  };
}

/** A `Sum` or `Mean`: `dy` spread back over the reduced axes (÷ their size). */
function reduction(kernelName: string, mean: boolean): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved;
      const axes = reducedAxes(attrs.axis, x.rank);
      return {
        x: () => {
          // dy: reduced shape -> [.., 1, ..] -> x.shape
          const spread = tf.mul(
            tf.reshape(dy as tf.Tensor, keptShape(x.shape, axes)),
            tf.ones(x.shape, "float32"),
          );
          if (!mean) return spread;
          const count = axes.reduce((n, a) => n * x.shape[a], 1);
          return tf.div(spread, count);
        },
      };
    },
  };
}

/** Each input's slice of `dy` along `axis`, in order. */
function splitAlong(dy: tf.Tensor, inputs: tf.Tensor[], axis: number): Grads {
  const rank = inputs[0].rank;
  const a = axis < 0 ? axis + rank : axis;
  const parts = tf.split(dy, inputs.map((t) => t.shape[a]), a);
  return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
}

/** Begin and size of a `Slice` kernel, with numbers and `-1` resolved. */
function sliceBox(
  shape: number[],
  begin: number | number[],
  size: number | number[] | undefined,
): { begin: number[]; size: number[] } {
  const b = shape.map((_, i) =>
    Array.isArray(begin) ? begin[i] ?? 0 : i === 0 ? begin : 0
  );
  const s = shape.map((d, i) => {
    const v = size === undefined
      ? -1
      : Array.isArray(size)
      ? size[i] ?? -1
      : i === 0
      ? size
      : -1;
    return v === -1 ? d - b[i] : v;
  });
  return { begin: b, size: s };
}

const add = binary(
  "Add",
  (dy) => dy,
  (dy) => dy,
);

const sub = binary(
  "Sub",
  (dy) => dy,
  (dy) => tf.neg(dy),
);

const multiply = binary(
  "Multiply",
  (dy, _a, b) => tf.mul(dy, float(b)),
  (dy, a) => tf.mul(dy, float(a)),
);

// d(a/b)/da = 1/b, d(a/b)/db = −a/b².
const realDiv = binary(
  "RealDiv",
  (dy, _a, b) => tf.div(dy, float(b)),
  (dy, a, b) => tf.neg(tf.div(tf.mul(dy, float(a)), float(tf.square(b)))),
);

// Ties go to `a`, as in TF.js and TensorFlow.
const maximum = binary(
  "Maximum",
  (dy, a, b) => tf.mul(dy, float(tf.greaterEqual(a, b))),
  (dy, a, b) => tf.mul(dy, float(tf.less(a, b))),
);

const minimum = binary(
  "Minimum",
  (dy, a, b) => tf.mul(dy, float(tf.lessEqual(a, b))),
  (dy, a, b) => tf.mul(dy, float(tf.greater(a, b))),
);

// d(a−b)²/da = 2(a−b) = −d/db.
const squaredDifference = binary(
  "SquaredDifference",
  (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(a, b), 2)),
  (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(b, a), 2)),
);

const addN: tf.GradConfig = {
  kernelName: "AddN",
  saveAllInputs: true,
  gradFunc: (dy, saved) =>
    Object.fromEntries(
      saved.map((_, i) => [String(i), () => tf.clone(dy as tf.Tensor)]),
    ),
};

const batchMatMul: tf.GradConfig = {
  kernelName: "BatchMatMul",
  inputsToSave: ["a", "b"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    // a: [B, M, K] (or [B, K, M] transposed), b: [B, K, N] (or [B, N, K]),
    // dy: [B, M, N]; batch dimensions may broadcast.
    const [a, b] = saved;
    const g = dy as tf.Tensor;
    const ta = attrs.transposeA as boolean;
    const tb = attrs.transposeB as boolean;
    const mm = (x: tf.Tensor, y: tf.Tensor, tx: boolean, ty: boolean) =>
      tf.matMul(x, y, tx, ty);
    let da: () => tf.Tensor;
    let db: () => tf.Tensor;
    if (!ta && !tb) {
      da = () => mm(g, b, false, true); // dy·bᵀ
      db = () => mm(a, g, true, false); // aᵀ·dy
    } else if (!ta && tb) {
      da = () => mm(g, b, false, false); // dy·b
      db = () => mm(g, a, true, false); // dyᵀ·a
    } else if (ta && !tb) {
      da = () => mm(b, g, false, true); // b·dyᵀ
      db = () => mm(a, g, false, false); // a·dy
    } else {
      da = () => mm(b, g, true, true); // bᵀ·dyᵀ
      db = () => mm(g, a, true, true); // dyᵀ·aᵀ
    }
    return {
      a: () => reduceTo(da(), a.shape),
      b: () => reduceTo(db(), b.shape),
    };
  },
};

function checkNoDilation(kernel: string, dilations: unknown): void {
  const d = dilations ?? 1;
  const list = Array.isArray(d) ? d : [d, d];
  if (list.some((v) => v !== 1)) {
    throw new RangeError(
      `Gradient of ${kernel}: expected dilations of 1: received ${
        JSON.stringify(d)
      }`,
    );
  }
}

const conv2d: tf.GradConfig = {
  kernelName: "Conv2D",
  inputsToSave: ["x", "filter"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    // x: [N, H, W, Cin], filter: [kh, kw, Cin, Cout], dy: [N, H', W', Cout].
    const [x, filter] = saved;
    checkNoDilation("Conv2D", attrs.dilations);
    const { strides, pad, dataFormat, dimRoundingMode } = attrs;
    const common = { strides, pad, dataFormat, dimRoundingMode } as Attrs;
    return {
      x: () =>
        tf.engine().runKernel(
          "Conv2DBackpropInput",
          { dy: dy as tf.Tensor, filter },
          { ...common, inputShape: x.shape },
        ) as tf.Tensor,
      filter: () =>
        tf.engine().runKernel(
          "Conv2DBackpropFilter",
          { x, dy: dy as tf.Tensor },
          { ...common, filterShape: filter.shape },
        ) as tf.Tensor,
    };
  },
};

const maxPool: tf.GradConfig = {
  kernelName: "MaxPool",
  inputsToSave: ["x"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs: Attrs) => {
    // x: [N, H, W, C], y: [N, H', W', C]; dy goes to each window's maximum.
    const [x, y] = saved;
    const { filterSize, strides, pad, dimRoundingMode } = attrs;
    return {
      x: () =>
        tf.engine().runKernel(
          "MaxPoolGrad",
          { dy: dy as tf.Tensor, input: x, output: y },
          { filterSize, strides, pad, dimRoundingMode } as Attrs,
        ) as tf.Tensor,
    };
  },
};

const avgPool: tf.GradConfig = {
  kernelName: "AvgPool",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    const [x] = saved;
    const { filterSize, strides, pad, dimRoundingMode } = attrs;
    return {
      x: () =>
        tf.engine().runKernel(
          "AvgPoolGrad",
          { dy: dy as tf.Tensor, input: x },
          { filterSize, strides, pad, dimRoundingMode } as Attrs,
        ) as tf.Tensor,
    };
  },
};

const max: tf.GradConfig = {
  kernelName: "Max",
  inputsToSave: ["x"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs: Attrs) => {
    // Every element equal to its slice's maximum gets dy, as in TF.js.
    const [x, y] = saved;
    const kept = keptShape(
      x.shape,
      reducedAxes(attrs.reductionIndices, x.rank),
    );
    return {
      x: () =>
        tf.mul(
          tf.reshape(dy as tf.Tensor, kept),
          float(tf.equal(x, tf.reshape(y, kept))),
        ),
    };
  },
};

const concat: tf.GradConfig = {
  kernelName: "Concat",
  saveAllInputs: true,
  gradFunc: (dy, saved, attrs: Attrs) =>
    splitAlong(dy as tf.Tensor, saved, attrs.axis as number),
};

const pack: tf.GradConfig = {
  kernelName: "Pack",
  saveAllInputs: true,
  gradFunc: (dy, saved, attrs: Attrs) => {
    const parts = tf.unstack(dy as tf.Tensor, attrs.axis as number);
    return Object.fromEntries(
      saved.map((_, i) => [String(i), () => parts[i]]),
    );
  },
};

const unpack: tf.GradConfig = {
  kernelName: "Unpack",
  gradFunc: (dy, _saved, attrs: Attrs) => ({
    value: () => tf.stack(dy as tf.Tensor[], attrs.axis as number),
  }),
};

const splitV: tf.GradConfig = {
  kernelName: "SplitV",
  gradFunc: (dy, _saved, attrs: Attrs) => ({
    x: () => tf.concat(dy as tf.Tensor[], attrs.axis as number),
  }),
};

const reshape: tf.GradConfig = {
  kernelName: "Reshape",
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => ({
    x: () => tf.reshape(dy as tf.Tensor, saved[0].shape),
  }),
};

const transpose: tf.GradConfig = {
  kernelName: "Transpose",
  gradFunc: (dy, _saved, attrs: Attrs) => ({
    x: () =>
      tf.transpose(dy as tf.Tensor, inversePermutation(attrs.perm as number[])),
  }),
};

const slice: tf.GradConfig = {
  kernelName: "Slice",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    // dy: the slice's shape -> zeros around it in x's shape.
    const [x] = saved;
    const box = sliceBox(
      x.shape,
      attrs.begin as number | number[],
      attrs.size as number | number[] | undefined,
    );
    const paddings = x.shape.map((d, i) =>
      [box.begin[i], d - box.begin[i] - box.size[i]] as [number, number]
    );
    return { x: () => tf.pad(dy as tf.Tensor, paddings) };
  },
};

const padV2: tf.GradConfig = {
  kernelName: "PadV2",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    const [x] = saved;
    const begin = (attrs.paddings as unknown as [number, number][]).map((p) =>
      p[0]
    );
    return { x: () => tf.slice(dy as tf.Tensor, begin, x.shape) };
  },
};

const tile: tf.GradConfig = {
  kernelName: "Tile",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    // dy: [r0·d0, r1·d1, …] -> [r0, d0, r1, d1, …], summed over the r axes.
    const [x] = saved;
    const reps = attrs.reps as number[];
    const split = x.shape.flatMap((d, i) => [reps[i], d]);
    const repAxes = x.shape.map((_, i) => 2 * i);
    return {
      x: () => tf.sum(tf.reshape(dy as tf.Tensor, split), repAxes),
    };
  },
};

const gatherV2: tf.GradConfig = {
  kernelName: "GatherV2",
  inputsToSave: ["x", "indices"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    const [x, indices] = saved;
    if (((attrs.batchDims as number | undefined) ?? 0) !== 0) {
      throw new RangeError(
        `Gradient of GatherV2: expected batchDims 0: received ${attrs.batchDims}`,
      );
    }
    const axis = reducedAxes(attrs.axis, x.rank)[0];
    return {
      x: () => {
        // x: [O, n, I] around `axis`, dy: [O, m, I] with m = indices.size;
        // each of the m slices is added back at its index (duplicates
        // summed) by scatterND, which every backend here has (wasm lacks
        // the UnsortedSegmentSum of TF.js's own gather gradient).
        const outer = x.shape.slice(0, axis).reduce((p, d) => p * d, 1);
        const inner = x.shape.slice(axis + 1).reduce((p, d) => p * d, 1);
        const n = x.shape[axis];
        const m = indices.size;
        const ids = tf.reshape(indices, [m, 1]);
        const g = tf.reshape(dy as tf.Tensor, [outer, m, inner]);
        const rows = outer === 1
          ? tf.reshape(g, [m, inner])
          : tf.transpose(g, [1, 0, 2]); // [m, O, I]
        const shape = outer === 1 ? [n, inner] : [n, outer, inner];
        const summed = tf.scatterND(ids, rows, shape); // [n, (O,) I]
        const back = outer === 1 ? summed : tf.transpose(summed, [1, 0, 2]);
        return tf.reshape(back, x.shape);
      },
      // Indices are discrete: nothing flows back to them.
      indices: () => tf.zerosLike(indices),
    };
  },
};

const clipByValue: tf.GradConfig = {
  kernelName: "ClipByValue",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs: Attrs) => {
    const [x] = saved;
    const inside = tf.logicalAnd(
      tf.greaterEqual(x, attrs.clipValueMin as number),
      tf.lessEqual(x, attrs.clipValueMax as number),
    );
    return {
      x: () => tf.where(inside, dy as tf.Tensor, tf.zerosLike(dy as tf.Tensor)),
    };
  },
};

const GRADIENTS: readonly tf.GradConfig[] = [
  add,
  addN,
  sub,
  multiply,
  realDiv,
  maximum,
  minimum,
  squaredDifference,
  batchMatMul,
  conv2d,
  maxPool,
  avgPool,
  reduction("Sum", false),
  reduction("Mean", true),
  max,
  concat,
  pack,
  unpack,
  splitV,
  reshape,
  transpose,
  slice,
  padV2,
  tile,
  gatherV2,
  clipByValue,
  unary("Identity", "none", (dy) => float(dy)),
  unary("Cast", "none", (dy) => tf.clone(dy)),
  unary("Neg", "none", (dy) => tf.neg(dy)),
  // d relu(x) = step(x): 0 at x = 0, as in TF.js and PyTorch.
  // One kernel where the backend has it (see RELU_GRAD_KERNEL).
  unary(
    "Relu",
    "x",
    (dy, x) =>
      activeBackendHas(RELU_GRAD_KERNEL)
        ? tf.engine().runKernel(RELU_GRAD_KERNEL, {
          dy,
          x: float(x),
        }) as tf.Tensor
        : tf.mul(dy, float(tf.step(float(x)))),
  ),
  unary("Square", "x", (dy, x) => tf.mul(dy, tf.mul(float(x), 2))),
  unary("Sqrt", "x", (dy, x) => tf.div(dy, tf.mul(tf.sqrt(float(x)), 2))),
  // d x^(-1/2) = −x^(-3/2) / 2.
  unary("Rsqrt", "x", (dy, x) => tf.div(dy, tf.mul(tf.pow(x, 1.5), -2))),
  unary("Exp", "y", (dy, y) => tf.mul(dy, y)),
  unary("Log", "x", (dy, x) => tf.div(dy, float(x))),
  unary("Abs", "x", (dy, x) => tf.mul(dy, tf.sign(float(x)))),
  unary("Sigmoid", "y", (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  unary("Tanh", "y", (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
];

/**
 * The kernels whose gradients {@linkcode registerKernelGradients} registers.
 *
 * @example
 * ```ts
 * import { GRADIENT_KERNELS } from "@scaling-vicreg/backend";
 * console.log(GRADIENT_KERNELS.includes("Conv2D")); // true
 * ```
 */
export const GRADIENT_KERNELS: readonly string[] = GRADIENTS.map((g) =>
  g.kernelName
);

/**
 * Registers the gradient of every kernel in {@linkcode GRADIENT_KERNELS}
 * into tfjs-core's (process-global) gradient registry; calling it again
 * registers the same functions again. `useBackend` calls it.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { registerKernelGradients } from "@scaling-vicreg/backend";
 * registerKernelGradients();
 * console.log(tf.getGradient("Relu") !== undefined); // true
 * ```
 */
export function registerKernelGradients(): void {
  for (const config of GRADIENTS) tf.registerGradient(config);
}
