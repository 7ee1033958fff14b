import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "./backend.ts";
import { GRADIENT_KERNELS, registerKernelGradients } from "./gradients.ts";
import { Rng } from "./random.ts";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  ignoreUnless,
  loadableBackends,
} from "./testing.ts";

await useBackend("cpu");

/** One kernel's case: a function of float inputs that runs the kernel. */
interface GradCase {
  kernel: string;
  shapes: number[][];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
  /** Inputs strictly positive (log, sqrt, division). */
  positive?: boolean;
}

const s4 = (x: tf.Tensor) => x as tf.Tensor4D;
const CASES: GradCase[] = [
  { kernel: "Add", shapes: [[2, 3], [3]], f: (a, b) => tf.add(a, b) },
  { kernel: "AddN", shapes: [[2, 3], [2, 3], [2, 3]], f: (...x) => tf.addN(x) },
  { kernel: "Sub", shapes: [[2, 1], [2, 3]], f: (a, b) => tf.sub(a, b) },
  { kernel: "Multiply", shapes: [[2, 3], [1, 3]], f: (a, b) => tf.mul(a, b) },
  {
    kernel: "RealDiv",
    shapes: [[2, 3], [2, 1]],
    f: (a, b) => tf.div(a, b),
    positive: true,
  },
  {
    kernel: "Maximum",
    shapes: [[2, 3], [2, 3]],
    f: (a, b) => tf.maximum(a, b),
  },
  { kernel: "Minimum", shapes: [[2, 3], [3]], f: (a, b) => tf.minimum(a, b) },
  {
    kernel: "SquaredDifference",
    shapes: [[2, 3], [3]],
    f: (a, b) => tf.squaredDifference(a, b),
  },
  // 2-D and broadcast-batch products, each transpose combination.
  {
    kernel: "BatchMatMul",
    shapes: [[2, 3], [3, 4]],
    f: (a, b) => tf.matMul(a, b),
  },
  {
    kernel: "BatchMatMul",
    shapes: [[2, 3], [4, 3]],
    f: (a, b) => tf.matMul(a, b, false, true),
  },
  {
    kernel: "BatchMatMul",
    shapes: [[3, 2], [3, 4]],
    f: (a, b) => tf.matMul(a, b, true, false),
  },
  {
    kernel: "BatchMatMul",
    shapes: [[2, 3, 2], [1, 4, 3]],
    f: (a, b) => tf.matMul(a, b, true, true),
  },
  {
    kernel: "Conv2D",
    shapes: [[2, 5, 5, 2], [3, 3, 2, 3]],
    f: (x, w) => tf.conv2d(s4(x), s4(w), 2, "same"),
  },
  {
    kernel: "Conv2D",
    shapes: [[1, 4, 4, 3], [1, 1, 3, 2]],
    f: (x, w) => tf.conv2d(s4(x), s4(w), 1, "valid"),
  },
  {
    kernel: "MaxPool",
    shapes: [[2, 5, 5, 2]],
    f: (x) => tf.maxPool(s4(x), 3, 2, "same"),
  },
  {
    kernel: "AvgPool",
    shapes: [[1, 4, 4, 2]],
    f: (x) => tf.avgPool(s4(x), 2, 2, "valid"),
  },
  { kernel: "Sum", shapes: [[2, 3, 2]], f: (x) => tf.sum(x, [0, 2]) },
  { kernel: "Sum", shapes: [[2, 3]], f: (x) => tf.sum(x, -1, true) },
  { kernel: "Mean", shapes: [[2, 3, 2]], f: (x) => tf.mean(x, 1) },
  { kernel: "Mean", shapes: [[2, 3]], f: (x) => tf.mean(x) },
  { kernel: "Max", shapes: [[2, 3, 2]], f: (x) => tf.max(x, [1]) },
  {
    kernel: "Concat",
    shapes: [[2, 1], [2, 3]],
    f: (a, b) => tf.concat([a, b], -1),
  },
  { kernel: "Pack", shapes: [[3], [3]], f: (a, b) => tf.stack([a, b], 1) },
  { kernel: "Unpack", shapes: [[2, 3]], f: (x) => tf.unstack(x, 1)[2] },
  { kernel: "SplitV", shapes: [[2, 5]], f: (x) => tf.split(x, [2, 3], 1)[1] },
  { kernel: "Reshape", shapes: [[2, 3]], f: (x) => tf.reshape(x, [3, 2]) },
  {
    kernel: "Transpose",
    shapes: [[2, 3, 4]],
    f: (x) => tf.transpose(x, [2, 0, 1]),
  },
  { kernel: "Slice", shapes: [[3, 4]], f: (x) => tf.slice(x, [1, 1], [2, -1]) },
  { kernel: "PadV2", shapes: [[2, 3]], f: (x) => tf.pad(x, [[1, 0], [0, 2]]) },
  { kernel: "Tile", shapes: [[2, 3]], f: (x) => tf.tile(x, [2, 3]) },
  {
    kernel: "GatherV2",
    shapes: [[4, 3]],
    f: (x) => tf.gather(x, tf.tensor1d([3, 0, 3], "int32")),
  },
  {
    kernel: "GatherV2",
    shapes: [[2, 4, 3]],
    f: (x) => tf.gather(x, tf.tensor2d([[1, 1], [0, 2]], [2, 2], "int32"), 1),
  },
  {
    kernel: "ClipByValue",
    shapes: [[2, 4]],
    f: (x) => tf.clipByValue(x, -0.2, 0.3),
  },
  { kernel: "Identity", shapes: [[3]], f: (x) => tf.clone(x) },
  { kernel: "Cast", shapes: [[3]], f: (x) => tf.cast(x, "float32") },
  { kernel: "Neg", shapes: [[3]], f: (x) => tf.neg(x) },
  { kernel: "Relu", shapes: [[2, 3]], f: (x) => tf.relu(x) },
  { kernel: "Square", shapes: [[2, 3]], f: (x) => tf.square(x) },
  { kernel: "Sqrt", shapes: [[2, 3]], f: (x) => tf.sqrt(x), positive: true },
  { kernel: "Rsqrt", shapes: [[2, 3]], f: (x) => tf.rsqrt(x), positive: true },
  { kernel: "Exp", shapes: [[2, 3]], f: (x) => tf.exp(x) },
  { kernel: "Log", shapes: [[2, 3]], f: (x) => tf.log(x), positive: true },
  { kernel: "Abs", shapes: [[2, 3]], f: (x) => tf.abs(x) },
  { kernel: "Sigmoid", shapes: [[2, 3]], f: (x) => tf.sigmoid(x) },
  { kernel: "Tanh", shapes: [[2, 3]], f: (x) => tf.tanh(x) },
];

const H = 1e-2;

/**
 * Distinct values 0.1 apart, 0.05 away from 0 and the clip bounds, and each
 * further input shifted by 0.03 (no ties between two inputs), so that no
 * finite difference step (±H) crosses a kink of relu, abs, max, maximum,
 * max pooling or clip.
 */
function inputValues(
  n: number,
  positive: boolean,
  offset: number,
  rng: Rng,
): Float32Array {
  const values = rng.permutation(n).map((i) =>
    offset + (positive ? 0.5 + 0.1 * i : 0.1 * (i - Math.floor(n / 2)) + 0.05)
  );
  return Float32Array.from(values);
}

/** Inputs and the weights `w` of the scalar `Σ f(xs)·w`, from a seed. */
function caseData(c: GradCase, seed: number) {
  const rng = new Rng(seed);
  const xs = c.shapes.map((s, k) =>
    inputValues(
      s.reduce((p, d) => p * d, 1),
      c.positive ?? false,
      0.03 * k,
      rng,
    )
  );
  return { xs, rng };
}

/** `Σ f(xs)·w` evaluated on the active backend (forward ops only). */
function objective(c: GradCase, xs: Float32Array[], w: Float32Array): number {
  return tf.tidy(() => {
    const y = c.f(...xs.map((v, i) => tf.tensor(v, c.shapes[i])));
    return tf.sum(tf.mul(y, tf.tensor(w, y.shape))).dataSync()[0];
  });
}

/**
 * Central differences of the objective on the cpu backend, in float32: the
 * reference, independent of any registered gradient.
 */
function numericGradients(c: GradCase, seed: number): {
  xs: Float32Array[];
  w: Float32Array;
  grads: Float64Array[];
} {
  const { xs, rng } = caseData(c, seed);
  const outSize = tf.tidy(() =>
    c.f(...xs.map((v, i) => tf.tensor(v, c.shapes[i]))).size
  );
  const w = rng.fillNormal(new Float32Array(outSize));
  const grads = xs.map((x, k) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const plus = xs.map((v) => v.slice());
      const minus = xs.map((v) => v.slice());
      plus[k][i] += H;
      minus[k][i] -= H;
      g[i] = (objective(c, plus, w) - objective(c, minus, w)) / (2 * H);
    }
    return g;
  });
  return { xs, w, grads };
}

/** The registered gradients of the objective on the active backend. */
async function analyticGradients(
  c: GradCase,
  xs: Float32Array[],
  w: Float32Array,
): Promise<Float32Array[]> {
  const inputs = xs.map((v, i) => tf.tensor(v, c.shapes[i]));
  const grads = tf.grads((...t: tf.Tensor[]) => {
    const y = c.f(...t);
    return tf.sum(tf.mul(y, tf.tensor(w, y.shape)));
  })(inputs);
  const out = await Promise.all(grads.map(async (g) => await g.data()));
  tf.dispose([...inputs, ...grads]);
  return out as Float32Array[];
}

const REFERENCES = CASES.map((c, i) => numericGradients(c, i + 1));

Deno.test("GRADIENT_KERNELS lists each kernel once, and every one has a case", () => {
  assertEquals(new Set(GRADIENT_KERNELS).size, GRADIENT_KERNELS.length);
  assertEquals(
    [...new Set(CASES.map((c) => c.kernel))].sort(),
    [...GRADIENT_KERNELS].sort(),
  );
});

for (
  const [name, loads] of [
    ["cpu", true] as const,
    ...await loadableBackends(
      ["cpu-fast", "wasm", "blas", "native", "webgpu"] as const,
    ),
  ]
) {
  Deno.test({
    name:
      `registerKernelGradients() matches central differences of the forward ops (${name})`,
    ignore: ignoreUnless(loads, name),
    async fn() {
      await useBackend(name);
      try {
        for (const [i, c] of CASES.entries()) {
          const ref = REFERENCES[i];
          const got = await analyticGradients(c, ref.xs, ref.w);
          for (const [k, g] of got.entries()) {
            // float32 differences of an O(1) objective: ~1e-4 of rounding.
            assertClose(g, ref.grads[k], {
              atol: 2e-3,
              rtol: 2e-3,
              message: `${c.kernel} case ${i}, input ${k} on ${name}`,
            });
          }
        }
      } finally {
        await useBackend("cpu");
      }
    },
  });
}

Deno.test("each case differentiates through its kernel (fails once that gradient is removed)", () => {
  // The negative control: without the kernel's gradient TF.js refuses, so a
  // case that passed above did run the gradient under test.
  for (const c of CASES) {
    const { xs } = caseData(c, 0);
    const inputs = xs.map((v, i) => tf.tensor(v, c.shapes[i]));
    tf.unregisterGradient(c.kernel);
    try {
      assertThrows(
        () => tf.grads((...t: tf.Tensor[]) => tf.sum(c.f(...t)))(inputs),
        Error,
        `gradient function not found for ${c.kernel}`,
      );
    } finally {
      registerKernelGradients();
      tf.dispose(inputs);
    }
  }
});

Deno.test("registered gradients leave no tensor behind", async () => {
  for (const [i, c] of CASES.entries()) {
    await assertNoLeak(() =>
      analyticGradients(c, REFERENCES[i].xs, REFERENCES[i].w)
    );
  }
});

Deno.test("the Conv2D gradient rejects dilations it does not support", () => {
  const x = tf.ones([1, 5, 5, 1]) as tf.Tensor4D;
  const w = tf.ones([2, 2, 1, 1]) as tf.Tensor4D;
  assertThrows(
    () =>
      tf.grad((t: tf.Tensor) =>
        tf.sum(tf.conv2d(s4(t), w, 1, "valid", "NHWC", 2))
      )(x),
    RangeError,
    "Gradient of Conv2D: expected dilations of 1",
  );
  tf.dispose([x, w]);
});
