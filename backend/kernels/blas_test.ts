import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "../backend.ts";
import { Rng } from "../random.ts";
import { assertEquals, assertThrows, ignoreUnless } from "../testing.ts";
import { type Blas, loadBlas } from "./blas.ts";
import {
  conv2d,
  conv2dBackpropFilter,
  conv2dBackpropInput,
  convPaths,
} from "./blas_conv.ts";
import { Scratch } from "./scratch.ts";
import {
  assertNear,
  CONV_CASES,
  random,
  reference,
} from "./_conv_test_util.ts";

function tryLoad(): Blas | undefined {
  try {
    return loadBlas();
  } catch {
    return undefined;
  }
}

const blas = tryLoad();
const ignore = ignoreUnless(blas !== undefined, "blas");
if (ignore) {
  console.warn(
    "blas_test: no BLAS library here (apt-get install libopenblas0-pthread); skipping",
  );
}

for (const [name, g, paths] of CONV_CASES) {
  for (const maxFloats of [1 << 24, 700]) {
    const chunked = maxFloats < 1000 ? ", chunked" : "";
    Deno.test({
      name: `blas conv: ${name} (${paths.forward}/${paths.input}${chunked}) ` +
        "matches direct float64 loops",
      ignore,
      fn() {
        assertEquals(convPaths(g), paths);
        const rng = new Rng(7);
        const x = random(rng, g.n * g.h * g.w * g.ci);
        const w = random(rng, g.kh * g.kw * g.ci * g.co);
        const dy = random(rng, g.n * g.oh * g.ow * g.co);
        const expected = reference(g, x, w, dy);
        const scratch = new Scratch(maxFloats);
        // Outputs start as NaN: every element must be written.
        const y = new Float32Array(expected.y.length).fill(NaN);
        conv2d(blas!, scratch, g, x, w, y);
        assertNear(y, expected.y, "forward");
        const dx = new Float32Array(x.length).fill(NaN);
        conv2dBackpropInput(blas!, scratch, g, dy, w, dx);
        assertNear(dx, expected.dx, "input gradient");
        const dw = new Float32Array(w.length).fill(NaN);
        conv2dBackpropFilter(blas!, scratch, g, x, dy, dw);
        assertNear(dw, expected.dw, "filter gradient");
      },
    });
  }
}

Deno.test({
  name: "blas sgemm: transposes and offsets, checked by hand",
  ignore,
  fn() {
    // A = [[1, 2, 3], [4, 5, 6]], B = [[1, 0], [0, 1], [1, 1]].
    const a = new Float32Array([9, 1, 2, 3, 4, 5, 6]);
    const b = new Float32Array([1, 0, 0, 1, 1, 1]);
    const c = new Float32Array(4).fill(1);
    blas!.sgemm(false, false, 2, 2, 3, 1, a.subarray(1), 3, b, 2, 2, c, 2);
    assertEquals(Array.from(c), [4 + 2, 5 + 2, 10 + 2, 11 + 2]);
    // Aᵀ·A = [[17, 22, 27], [22, 29, 36], [27, 36, 45]], from A stored [2, 3].
    const ata = new Float32Array(9);
    blas!.sgemm(
      true,
      false,
      3,
      3,
      2,
      1,
      a.subarray(1),
      3,
      a.subarray(1),
      3,
      0,
      ata,
      3,
    );
    assertEquals(Array.from(ata), [17, 22, 27, 22, 29, 36, 27, 36, 45]);
    // k = 0 with beta = 0 clears C, even of NaN.
    const z = new Float32Array(2).fill(NaN);
    blas!.sgemm(false, true, 1, 2, 0, 1, a, 1, b, 1, 0, z, 2);
    assertEquals(Array.from(z), [0, 0]);
  },
});

Deno.test({
  name:
    "blas backend: conv2d and its input gradient see a variable's new value after assign (the reordered filter is not reused)",
  ignore,
  async fn() {
    // Forward and input gradient of one geometry, run with one filter, then
    // another assigned to the same variable, then a third tensor: each
    // result must be that filter's, on blas as on cpu.
    const run = (rng: Rng) => {
      const x = tensor(rng, [2, 8, 8, 16]) as tf.Tensor4D;
      const dy = tensor(rng, [2, 8, 8, 16]) as tf.Tensor4D;
      const w = tf.variable(tensor(rng, [3, 3, 16, 16]));
      const outs: tf.Tensor[] = [];
      const both = (filter: tf.Tensor4D) => {
        outs.push(tf.conv2d(x, filter, 1, "same"));
        outs.push(tf.conv2d(x, filter, 1, "same")); // the same filter again
        outs.push(
          tf.conv2dTranspose(dy, filter, x.shape, 1, "same"),
        );
      };
      both(w as tf.Tensor as tf.Tensor4D);
      w.assign(tensor(rng, [3, 3, 16, 16]));
      both(w as tf.Tensor as tf.Tensor4D);
      both(tensor(rng, [3, 3, 16, 16]) as tf.Tensor4D);
      const kept = outs.map((t) => tf.keep(t));
      w.dispose();
      return kept;
    };
    assertSame(
      await onBackend("blas", 8, run),
      await onBackend("cpu", 8, run),
      "conv after assign",
    );
  },
});

Deno.test("loadBlas: a missing library is one clear error", () => {
  assertThrows(
    () => loadBlas("/nonexistent/libnothing.so"),
    Error,
    "No BLAS library found: install OpenBLAS",
  );
});

async function onBackend(
  name: "cpu" | "blas",
  seed: number,
  run: (rng: Rng) => tf.Tensor[],
): Promise<Float32Array[]> {
  await useBackend(name);
  const outs = tf.tidy(() => run(new Rng(seed)));
  const values = await Promise.all(
    outs.map(async (t) => (await t.data()) as Float32Array),
  );
  tf.dispose(outs);
  return values;
}

function tensor(rng: Rng, dims: number[]): tf.Tensor {
  return tf.tensor(random(rng, tf.util.sizeFromShape(dims)), dims);
}

function assertSame(a: Float32Array[], b: Float32Array[], what: string) {
  assertEquals(a.length, b.length);
  a.forEach((values, i) =>
    assertNear(values, Float64Array.from(b[i]), `${what} #${i}`)
  );
}

Deno.test({
  name: "blas backend: conv2d, its gradients and matMul equal the cpu backend",
  ignore,
  async fn() {
    const convStep = (rng: Rng) => {
      const x = tensor(rng, [3, 10, 10, 16]) as tf.Tensor4D;
      const w1 = tensor(rng, [3, 3, 16, 16]) as tf.Tensor4D;
      const w2 = tensor(rng, [3, 3, 16, 8]) as tf.Tensor4D;
      const w3 = tensor(rng, [1, 1, 8, 4]) as tf.Tensor4D;
      const w4 = tensor(rng, [3, 3, 4, 4]) as tf.Tensor4D;
      // 10×10 → 10×10 → 5×5 → 5×5 → 3×3 pixels, shallow filters: oneDNN.
      const f = (...args: tf.Tensor[]) => {
        const [xa, a, b, c, d] = args as tf.Tensor4D[];
        const h1 = tf.relu(tf.conv2d(xa, a, 1, "same"));
        const h2 = tf.relu(tf.conv2d(h1, b, 2, "same"));
        const h3 = tf.conv2d(h2, c, 1, "valid");
        const h4 = tf.conv2d(h3, d, 2, "same");
        return tf.sum(tf.square(h4));
      };
      return [f(x, w1, w2, w3, w4), ...tf.grads(f)([x, w1, w2, w3, w4])];
    };
    assertSame(
      await onBackend("blas", 3, convStep),
      await onBackend("cpu", 3, convStep),
      "conv step",
    );
    // A 3×3 filter of 1024 input channels over 3×3 output pixels: the
    // forward pass and the filter gradient take the BLAS (BLAS_MAX_PIXELS,
    // BLAS_MIN_DEPTH), the input gradient oneDNN.
    const deepStep = (rng: Rng) => {
      const x = tensor(rng, [2, 3, 3, 1024]) as tf.Tensor4D;
      const w = tensor(rng, [3, 3, 1024, 4]) as tf.Tensor4D;
      const f = (xa: tf.Tensor, wa: tf.Tensor) =>
        tf.sum(
          tf.square(tf.conv2d(xa as tf.Tensor4D, wa as tf.Tensor4D, 1, "same")),
        );
      return [f(x, w), ...tf.grads(f)([x, w])];
    };
    assertSame(
      await onBackend("blas", 4, deepStep),
      await onBackend("cpu", 4, deepStep),
      "deep conv step",
    );
    const fused = (rng: Rng) => {
      const x = tensor(rng, [2, 9, 9, 16]) as tf.Tensor4D;
      const w = tensor(rng, [3, 3, 16, 8]) as tf.Tensor4D;
      const bias = tensor(rng, [8]);
      return [
        tf.fused.conv2d({ x, filter: w, strides: 1, pad: "same", bias }),
        tf.fused.conv2d({
          x,
          filter: w,
          strides: 2,
          pad: "same",
          bias,
          activation: "relu",
        }),
        tf.fused.conv2d({
          x,
          filter: w,
          strides: 1,
          pad: 1,
          activation: "relu",
        }),
        // Not a oneDNN post-op here: wasm's kernel.
        tf.fused.conv2d({
          x,
          filter: w,
          strides: 1,
          pad: 0,
          activation: "elu",
        }),
      ];
    };
    assertSame(
      await onBackend("blas", 6, fused),
      await onBackend("cpu", 6, fused),
      "fused conv2d",
    );
    const matmuls = (rng: Rng) => {
      const a = tensor(rng, [5, 7]);
      const b = tensor(rng, [7, 3]);
      const bt = tensor(rng, [3, 7]);
      const at = tensor(rng, [7, 5]);
      const batched = tensor(rng, [2, 4, 5, 7]);
      return [
        tf.matMul(a, b),
        tf.matMul(a, bt, false, true),
        tf.matMul(at, b, true, false),
        tf.matMul(at, bt, true, true),
        tf.matMul(batched, b), // b broadcast over the batch
        tf.matMul(batched, tensor(rng, [2, 4, 7, 2])),
      ];
    };
    assertSame(
      await onBackend("blas", 4, matmuls),
      await onBackend("cpu", 4, matmuls),
      "matMul",
    );
    const reductions = (rng: Rng) => {
      const x = tensor(rng, [4, 6, 5, 3]);
      return [
        tf.sum(x, [0, 1, 2]), // BatchNorm's axes: one BLAS product
        tf.mean(x, [0, 1, 2]),
        tf.mean(x, [2, 0, 1], true), // any order, keepDims
        tf.sum(x), // every axis
        tf.mean(x, 0),
        tf.sum(x, [1, 2]), // middle axes: one product per image
        tf.mean(x, [2, 1], true),
        tf.mean(x, -1), // trailing: one product
        tf.sum(x, [2, 3]),
        tf.sum(x, [0, 2]), // not adjacent: left to wasm
        tf.sum(tf.cast(x, "int32"), [0, 1]), // int32: left to wasm
      ];
    };
    const [blasReductions, cpuReductions] = [
      await onBackend("blas", 5, reductions),
      await onBackend("cpu", 5, reductions),
    ];
    assertSame(blasReductions, cpuReductions, "Sum/Mean");
    const pools = (rng: Rng) => {
      const x = tensor(rng, [2, 9, 9, 5]);
      // Ties: two zero columns, where the first maximum gets the gradient.
      const flat = tf.concat([
        tf.zeros([2, 9, 2, 5]),
        tf.slice(x, [0, 0, 2, 0], [2, 9, 7, 5]),
      ], 2);
      const weights = tf.reshape(tf.range(1, 1 + 2 * 5 * 5 * 5), [2, 5, 5, 5]);
      const f = (a: tf.Tensor) =>
        tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 3, 2, 1), weights));
      const g = (a: tf.Tensor) =>
        tf.sum(tf.square(tf.maxPool(a as tf.Tensor4D, 2, 2, "valid")));
      return [
        tf.grad(f)(x),
        tf.grad(f)(flat),
        tf.grad(g)(x),
        tf.cast(x, "float32"),
      ];
    };
    assertSame(
      await onBackend("blas", 6, pools),
      await onBackend("cpu", 6, pools),
      "MaxPoolGrad/Cast",
    );
    // A dilated conv (no BLAS path) runs wasm's kernel.
    const dilated = (rng: Rng) => [
      tf.conv2d(
        tensor(rng, [2, 9, 9, 4]) as tf.Tensor4D,
        tensor(rng, [3, 3, 4, 5]) as tf.Tensor4D,
        1,
        "same",
        "NHWC",
        2,
      ),
    ];
    assertSame(
      await onBackend("blas", 8, dilated),
      await onBackend("cpu", 8, dilated),
      "dilated Conv2D",
    );
    // Identity shares the buffer: a clone outlives its original.
    await useBackend("blas");
    const original = tf.tensor1d([1, 2, 3]);
    const copy = tf.clone(original);
    original.dispose();
    assertEquals(Array.from(await copy.data()), [1, 2, 3]);
    copy.dispose();
    assertEquals(blasReductions[2].length, 3);
    await useBackend("cpu");
  },
});

Deno.test({
  name:
    "blas and wasm tensors alive at once keep their own values (one id counter for the shared module)",
  ignore,
  async fn() {
    await useBackend("wasm");
    const a = tf.tensor1d([1, 2, 3]);
    const a2 = tf.tensor1d([7, 8, 9]);
    await useBackend("blas");
    const b = tf.tensor1d([4, 5, 6]);
    const b2 = tf.tensor1d([10, 20, 30]);
    const onBlas = tf.add(b, b2);
    assertEquals(Array.from(await onBlas.data()), [14, 25, 36]);
    await useBackend("wasm");
    const onWasm = tf.add(a, a2);
    assertEquals(Array.from(await onWasm.data()), [8, 10, 12]);
    tf.dispose([a, a2, onWasm]);
    await useBackend("blas");
    tf.dispose([b, b2, onBlas]);
    await useBackend("cpu");
  },
});
