// The `native` backend's own kernels (element-wise loops and their oneDNN
// primitives on large tensors, the float32 Cast) against values computed
// here element by element in float64 and rounded once to float32.
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../random.ts";
import {
  assertEquals,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "../testing.ts";
import { DNNL_ELEMENTWISE_MIN } from "./_native_elementwise_kernels.ts";
import { RELU_GRAD_KERNEL } from "../kernel_names.ts";
import { assertNear } from "./_conv_test_util.ts";
import { referencePool, routedTo } from "./_pool_test_util.ts";

const [[, nativeLoads]] = await loadableBackends(["native"]);
const ignore = ignoreUnless(nativeLoads, "native");

const BINARY: [string, (a: number, b: number) => number][] = [
  ["add", (a, b) => a + b],
  ["sub", (a, b) => a - b],
  ["mul", (a, b) => a * b],
  ["div", (a, b) => a / b],
  ["maximum", (a, b) => Math.max(a, b)],
  ["minimum", (a, b) => Math.min(a, b)],
];

function random(rng: Rng, n: number): Float32Array {
  return rng.fillNormal(new Float32Array(n), 0, 2);
}

/** Indices that differ (−0 and +0 count as equal), at most 3, for messages. */
function differences(got: Float32Array, want: Float32Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < want.length && out.length < 3; i++) {
    if (got[i] !== want[i]) out.push(`[${i}] ${got[i]} vs ${want[i]}`);
  }
  return out;
}

// Rows × columns: below the oneDNN threshold (loops) and above it.
const SIZES: [number, number][] = [[3, 5], [
  Math.ceil(DNNL_ELEMENTWISE_MIN / 80) + 7,
  80,
]];

for (const [rows, cols] of SIZES) {
  const n = rows * cols;
  for (const [name, f] of BINARY) {
    Deno.test({
      name:
        `native ${name} on [${rows}, ${cols}]: same shape, a [${cols}] row tiled on either side and a scalar give the element-wise float32 results`,
      ignore,
      async fn() {
        const rng = new Rng(n + name.length);
        const a = random(rng, n);
        const b = random(rng, n);
        const row = random(rng, cols);
        const scalar = random(rng, 1);
        const cases: [
          string,
          Float32Array,
          number[],
          Float32Array,
          number[],
        ][] = [
          ["same", a, [rows, cols], b, [rows, cols]],
          ["row on the right", a, [rows, cols], row, [cols]],
          ["row on the left", row, [1, cols], b, [rows, cols]],
          ["scalar", a, [rows, cols], scalar, []],
        ];
        const op = name as "add";
        const got = await withBackend(
          "native",
          () =>
            cases.map(([, x, xs, y, ys]) => {
              const tx = tf.tensor(x, xs);
              const ty = tf.tensor(y, ys);
              const out = name === "maximum"
                ? tf.maximum(tx, ty)
                : name === "minimum"
                ? tf.minimum(tx, ty)
                : name === "div"
                ? tf.div(tx, ty)
                : tf[op](tx, ty);
              const values = out.dataSync() as Float32Array;
              tf.dispose([tx, ty, out]);
              return values;
            }),
        );
        cases.forEach(([label, x, , y], k) => {
          const want = new Float32Array(n);
          for (let i = 0; i < n; i++) {
            const xi = x.length === n ? x[i] : x[i % x.length];
            const yi = y.length === n ? y[i] : y[i % y.length];
            want[i] = f(xi, yi);
          }
          assertEquals(got[k].length, n, label);
          assertEquals(differences(got[k], want), [], `${name}, ${label}`);
        });
      },
    });
  }

  Deno.test({
    name:
      `native relu, step, neg, square and sqrt on ${n} floats give the element-wise float32 results`,
    ignore,
    async fn() {
      const x = random(new Rng(n), n);
      x[0] = 0;
      x[1] = -0;
      const abs = x.map(Math.abs);
      const got = await withBackend("native", () => {
        const t = tf.tensor(x, [rows, cols]);
        const u = tf.tensor(abs, [rows, cols]);
        const outs = [
          tf.relu(t),
          tf.step(t, 0.25),
          tf.neg(t),
          tf.square(t),
          tf.sqrt(u),
        ];
        const values = outs.map((o) => o.dataSync() as Float32Array);
        tf.dispose([t, u, ...outs]);
        return values;
      });
      const expect = (g: (v: number) => number, input = x) =>
        Float32Array.from(input, g);
      const wants = [
        expect((v) => Math.max(0, v)),
        expect((v) => v > 0 ? 1 : 0.25),
        expect((v) => -v),
        expect((v) => v * v),
        expect(Math.sqrt, abs),
      ];
      ["relu", "step", "neg", "square", "sqrt"].forEach((name, k) =>
        assertEquals(differences(got[k], wants[k]), [], name)
      );
    },
  });
}

Deno.test({
  name:
    "native: an int32 tensor cast to float32 feeds the native kernels as floats (a convolution of it equals the float input's)",
  ignore,
  async fn() {
    const ints = Int32Array.from(
      { length: 2 * 4 * 4 * 3 },
      (_, i) => i % 7 - 3,
    );
    const [fromInts, fromFloats] = await withBackend("native", () => {
      const w = tf.tensor4d(random(new Rng(5), 3 * 3 * 3 * 2), [3, 3, 3, 2]);
      const a = tf.cast(tf.tensor4d(ints, [2, 4, 4, 3], "int32"), "float32");
      const b = tf.tensor4d(Float32Array.from(ints), [2, 4, 4, 3]);
      const ya = tf.conv2d(a as tf.Tensor4D, w, 1, "same");
      const yb = tf.conv2d(b, w, 1, "same");
      const out = [ya.dataSync(), yb.dataSync()] as Float32Array[];
      tf.dispose([w, a, b, ya, yb]);
      return out;
    });
    assertEquals(differences(fromInts, fromFloats), []);
  },
});

for (const n of [15, DNNL_ELEMENTWISE_MIN + 3]) {
  Deno.test({
    name:
      `native: ReLU's gradient on ${n} floats runs VicregReluGrad (no Step) and gives dy where x > 0, 0 elsewhere`,
    ignore,
    async fn() {
      const rng = new Rng(n);
      const x = random(rng, n);
      const dy = random(rng, n);
      x[0] = 0;
      const [kernels, dx] = await withBackend("native", async () => {
        const tx = tf.tensor1d(x);
        const tdy = tf.tensor1d(dy);
        let g: tf.Tensor | undefined;
        const profile = await tf.profile(() => {
          g = tf.grad((t: tf.Tensor) => tf.relu(t))(tx, tdy);
        });
        const values = g!.dataSync() as Float32Array;
        tf.dispose([tx, tdy, g!]);
        return [profile.kernelNames, values] as const;
      });
      assertEquals(kernels.includes(RELU_GRAD_KERNEL), true, `${kernels}`);
      assertEquals(kernels.includes("Step"), false, `${kernels}`);
      assertEquals(
        differences(dx, Float32Array.from(x, (v, i) => v > 0 ? dy[i] : 0)),
        [],
      );
    },
  });
}

for (
  const [size, stride, pad] of [[3, 2, 1], [2, 2, 0], [3, 1, 1]] as const
) {
  Deno.test({
    name:
      `native MaxPool ${size}x${size}/${stride} pad ${pad}: outputs are the windows' maxima and the gradient goes to each window's first maximum (ties of zeros included)`,
    ignore,
    async fn() {
      const shape = [2, 9, 8, 5];
      const x = random(new Rng(size * 10 + stride + pad), 2 * 9 * 8 * 5);
      // ReLU-like ties: a third of the inputs are exactly zero.
      for (let i = 0; i < x.length; i += 3) x[i] = Math.min(0, x[i]) * 0;
      const { out, argmax, oh, ow } = referencePool(
        x,
        shape,
        size,
        stride,
        pad,
      );
      const dy = random(new Rng(7), out.length);
      // Float64 sums: where windows overlap, oneDNN adds a position's
      // gradients in its own order (within an ulp of any other).
      const wantDx = new Float64Array(x.length);
      for (let o = 0; o < out.length; o++) wantDx[argmax[o]] += dy[o];
      const [got, dx, kernels] = await withBackend("native", async () => {
        const tx = tf.tensor4d(x, shape as [number, number, number, number]);
        const tdy = tf.tensor4d(dy, [2, oh, ow, 5]);
        const f = (t: tf.Tensor) =>
          tf.maxPool(t as tf.Tensor4D, size, stride, pad);
        let y: tf.Tensor | undefined;
        let g: tf.Tensor | undefined;
        const profile = await tf.profile(() => {
          y = f(tx);
          g = tf.grad(f)(tx, tdy);
        });
        const values = [y!.dataSync(), g!.dataSync()] as Float32Array[];
        tf.dispose([tx, tdy, y!, g!]);
        return [values[0], values[1], profile.kernelNames] as const;
      });
      assertEquals(kernels.includes("MaxPool"), true, `${kernels}`);
      assertEquals(got.length, out.length);
      assertEquals(differences(got, out), []);
      assertNear(dx, wantDx, "dx", 1e-6);
      // Each gradient lands on its window's first maximum, none elsewhere.
      assertEquals(routedTo(dx), routedTo(wantDx));
    },
  });
}

/** `x`'s sum over `axes`, in float64, by walking every element once. */
function referenceSum(
  x: Float32Array,
  shape: number[],
  axes: number[],
): Float64Array {
  const kept = shape.map((_, k) => k).filter((k) => !axes.includes(k));
  const out = new Float64Array(kept.reduce((p, k) => p * shape[k], 1));
  const index = new Array(shape.length).fill(0);
  for (let i = 0; i < x.length; i++) {
    let rest = i;
    for (let k = shape.length - 1; k >= 0; k--) {
      index[k] = rest % shape[k];
      rest = Math.floor(rest / shape[k]);
    }
    const o = kept.reduce((p, k) => p * shape[k] + index[k], 0);
    out[o] += x[i];
  }
  return out;
}

Deno.test({
  name:
    "native Sum and Mean over adjacent axes (leading, middle as a global average pool, trailing) and others equal the float64 sums",
  ignore,
  async fn() {
    const shape = [4, 6, 5, 3];
    const x = random(new Rng(11), 4 * 6 * 5 * 3);
    const cases: [number[], boolean][] = [
      [[0, 1, 2], false],
      [[1, 2], false],
      [[1, 2], true],
      [[3], true],
      [[2, 3], false],
      [[1], false],
      [[0, 2], false],
      [[0, 1, 2, 3], false],
    ];
    const got = await withBackend("native", () => {
      const t = tf.tensor4d(x, shape as [number, number, number, number]);
      const outs = cases.flatMap(([axes]) => [
        tf.sum(t, axes),
        tf.mean(t, axes),
      ]);
      const values = outs.map((o) => o.dataSync() as Float32Array);
      tf.dispose([t, ...outs]);
      return values;
    });
    cases.forEach(([axes], k) => {
      const sum = referenceSum(x, shape, axes);
      const m = axes.reduce((p, a) => p * shape[a], 1);
      assertNear(got[2 * k], sum, `sum over ${axes}`, 1e-6);
      assertNear(
        got[2 * k + 1],
        sum.map((v) => v / m),
        `mean over ${axes}`,
        1e-6,
      );
    });
  },
});

// [O, M, C] with an [O, 1, C] map repeated along M, as a global average
// pool's gradient broadcasts [N, 1, 1, C] over [N, H, W, C]: below the oneDNN
// threshold and above it.
for (
  const [o, m, c] of [[2, 3, 5], [
    4,
    Math.ceil(DNNL_ELEMENTWISE_MIN / 4 / 48) + 5,
    48,
  ]]
) {
  Deno.test({
    name:
      `native binary ops on [${o}, ${m}, ${c}] with an [${o}, 1, ${c}] map on either side (and as [${o}, 1, 1, ${c}] over [${o}, ${m}, 1, ${c}]) give the element-wise float32 results`,
    ignore,
    async fn() {
      const rng = new Rng(o * m * c);
      const big = random(rng, o * m * c);
      const small = random(rng, o * c);
      const got = await withBackend("native", () => {
        const tb = tf.tensor3d(big, [o, m, c]);
        const ts = tf.tensor3d(small, [o, 1, c]);
        const outs = BINARY.flatMap(([name]) => {
          const op = (name === "div" ? "div" : name) as "add";
          const f = (x: tf.Tensor, y: tf.Tensor) => tf[op](x, y);
          return [
            f(tb, ts),
            f(ts, tb),
            f(tf.reshape(tb, [o, m, 1, c]), tf.reshape(ts, [o, 1, 1, c])),
          ];
        });
        const values = outs.map((t) => t.dataSync() as Float32Array);
        tf.dispose([tb, ts, ...outs]);
        return values;
      });
      BINARY.forEach(([name, f], k) => {
        const right = new Float32Array(o * m * c);
        const left = new Float32Array(o * m * c);
        for (let i = 0; i < right.length; i++) {
          const s = small[Math.floor(i / (m * c)) * c + i % c];
          right[i] = f(big[i], s);
          left[i] = f(s, big[i]);
        }
        assertEquals(differences(got[3 * k], right), [], `${name}, right`);
        assertEquals(differences(got[3 * k + 1], left), [], `${name}, left`);
        assertEquals(differences(got[3 * k + 2], right), [], `${name}, rank 4`);
      });
    },
  });
}

Deno.test({
  name:
    "native MaxPool without oneDNN (VICREG_DNNL=off): the one-pass loops pass the same pool tests",
  ignore: ignore || Deno.env.get("VICREG_DNNL") === "off",
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "-A",
        "--filter",
        "native MaxPool ",
        new URL(import.meta.url).pathname,
      ],
      env: { VICREG_DNNL: "off", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    // The three geometries ran (this test, filtered in too, is ignored there).
    assertEquals(
      /ok \| 3 passed \| 0 failed \| 1 ignored/.test(text),
      true,
      text,
    );
  },
});
