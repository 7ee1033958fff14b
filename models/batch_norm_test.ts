import * as tf from "@tensorflow/tfjs-core";
import {
  activeBackendHas,
  BATCH_NORM_TRAIN_KERNEL,
  Rng,
  useBackend,
} from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "@scaling-vicreg/backend/testing";
import { BatchNorm } from "./batch_norm.ts";

await useBackend("cpu");

Deno.test("BatchNorm.forward() in training mode normalises with the biased batch variance and updates running stats with the unbiased one", () => {
  const bn = new BatchNorm(2);
  // Channel 0: [1, 3, 5, 7] mean 4, biased var 5, unbiased 20/3.
  // Channel 1: [0, 0, 2, 2] mean 1, biased var 1, unbiased 4/3.
  const x = tf.tensor4d([1, 0, 3, 0, 5, 2, 7, 2], [2, 1, 2, 2]);
  const y = bn.forward(x, { training: true });
  const s0 = 1 / Math.sqrt(5 + 1e-5);
  const s1 = 1 / Math.sqrt(1 + 1e-5);
  assertClose(y, [-3 * s0, -s1, -s0, -s1, s0, s1, 3 * s0, s1]);
  assertClose(bn.runningMean, [0.4, 0.1]);
  assertClose(bn.runningVar, [0.9 + 0.1 * 20 / 3, 0.9 + 0.1 * 4 / 3]);
  // A second step compounds: running = 0.9·running + 0.1·batch.
  tf.dispose(bn.forward(x, { training: true }));
  assertClose(bn.runningMean, [0.9 * 0.4 + 0.4, 0.9 * 0.1 + 0.1]);
  tf.dispose([x, y]);
  bn.dispose();
});

Deno.test("BatchNorm.forward() in eval mode uses the running statistics, γ and β", () => {
  const bn = new BatchNorm(2, { eps: 1e-3 });
  bn.runningMean.assign(tf.tensor1d([1, -1]));
  bn.runningVar.assign(tf.tensor1d([4, 0.25]));
  bn.weight.assign(tf.tensor1d([2, 1]));
  bn.bias.assign(tf.tensor1d([0.5, 0]));
  const y = bn.forward(tf.tensor2d([[3, 0], [1, -1]]));
  assertClose(y, [
    2 * 2 / Math.sqrt(4.001) + 0.5,
    1 / Math.sqrt(0.251),
    0.5,
    0,
  ]);
  // Eval mode leaves the running statistics alone.
  assertClose(bn.runningMean, [1, -1]);
  tf.dispose(y);
  bn.dispose();
});

Deno.test("BatchNorm.forward() gives gradients to weight and bias only, inside tf.variableGrads", () => {
  const bn = new BatchNorm(1);
  const x = tf.tensor2d([[1], [2], [6]]);
  const { value, grads } = tf.variableGrads(
    () =>
      tf.sum(
        tf.mul(bn.forward(x, { training: true }), tf.tensor2d([[1], [0], [0]])),
      ) as tf.Scalar,
  );
  assertEquals(
    Object.keys(grads).sort(),
    [bn.bias.name, bn.weight.name].sort(),
  );
  // d/dβ = Σ r = 1; d/dγ = x̂₀ = (1 − 3) / √(14/3 + eps).
  assertClose(grads[bn.bias.name], [1]);
  assertClose(grads[bn.weight.name], [-2 / Math.sqrt(14 / 3 + 1e-5)], {
    rtol: 1e-4,
  });
  assertClose(bn.runningMean, [0.3]);
  assertClose(bn.runningVar, [0.9 + 0.1 * 7]);
  tf.dispose([x, value, ...Object.values(grads)]);
  bn.dispose();
});

Deno.test("BatchNorm.forward() leaks no tensors in either mode, under tf.tidy and tf.variableGrads", async () => {
  const bn = new BatchNorm(3);
  const x = tf.randomNormal([4, 2, 2, 3]);
  await assertNoLeak(() => bn.forward(x));
  await assertNoLeak(() => bn.forward(x, { training: true }));
  await assertNoLeak(() => {
    tf.tidy(() => {
      bn.forward(x, { training: true });
    });
  });
  await assertNoLeak(() =>
    tf.variableGrads(() =>
      tf.sum(bn.forward(x, { training: true })) as tf.Scalar
    )
  );
  x.dispose();
  bn.dispose();
});

Deno.test("BatchNorm rejects bad channels, one value per channel in training, and bad options", () => {
  const bn = new BatchNorm(2);
  assertThrows(() => bn.forward(tf.zeros([2, 3])), TypeError, "2 channels");
  assertThrows(
    () => bn.forward(tf.zeros([1, 2]), { training: true }),
    RangeError,
    "more than 1 value",
  );
  assertThrows(() => new BatchNorm(0), RangeError, "numFeatures");
  assertThrows(() => new BatchNorm(2, { momentum: 2 }), RangeError, "momentum");
  bn.dispose();
});

/** Training-mode BatchNorm (+ ReLU) in plain ops, differentiated by autodiff. */
function plainBatchNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  relu: boolean,
): tf.Tensor {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.add(
    tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma),
    beta,
  );
  return relu ? tf.relu(y) : y;
}

for (const shape of [[3, 4, 5, 6], [7, 5]]) {
  for (const relu of [false, true]) {
    Deno.test(`BatchNorm.forward() custom gradient matches autodiff of plain ops for x, γ, β (shape [${shape}], relu ${relu})`, () => {
      const rng = new Rng(3);
      const make = (s: number[]) =>
        tf.tensor(
          rng.fillNormal(new Float32Array(s.reduce((a, b) => a * b)), 0.5, 2),
          s,
        );
      const c = shape[shape.length - 1];
      const [x, gamma, beta, r] = [
        make(shape),
        make([c]),
        make([c]),
        make(
          shape,
        ),
      ];
      const bn = new BatchNorm(c);
      bn.weight.assign(gamma);
      bn.bias.assign(beta);
      const xv = tf.variable(x);
      const vars = [xv, bn.weight, bn.bias];
      // loss = Σ r · BN(x; γ, β): an arbitrary upstream gradient r.
      const ours = tf.variableGrads(
        () => tf.sum(tf.mul(bn.forward(xv, { training: true, relu }), r)),
        vars,
      );
      const ref = tf.variableGrads(
        () => tf.sum(tf.mul(plainBatchNorm(xv, bn.weight, bn.bias, relu), r)),
        vars,
      );
      ["x", "γ", "β"].forEach((name, i) =>
        assertClose(ours.grads[vars[i].name], ref.grads[vars[i].name], {
          rtol: 1e-5,
          atol: 1e-5,
          message: name,
        })
      );
      tf.dispose([
        xv,
        ours.value,
        ref.value,
        ...Object.values(ours.grads),
        ...Object.values(ref.grads),
      ]);
      const y = bn.forward(x, { training: true, relu });
      const yRef = plainBatchNorm(x, gamma, beta, relu);
      assertClose(y, yRef, { rtol: 1e-5, atol: 1e-6 });
      tf.dispose([x, gamma, beta, r, y, yRef]);
      bn.dispose();
    });
  }
}

Deno.test("BatchNorm.forward() with updateRunningStats false normalises the same and leaves the running statistics alone", async () => {
  const bn = new BatchNorm(2);
  const x = tf.tensor2d([[1, 0], [3, 2], [8, -1]]);
  const y = bn.forward(x, { training: true, updateRunningStats: false });
  assertClose(bn.runningMean, [0, 0]);
  assertClose(bn.runningVar, [1, 1]);
  const z = bn.forward(x, { training: true, relu: true });
  assertClose(z, tf.relu(y));
  assertTrue(bn.runningMean.dataSync()[0] > 0);
  await assertNoLeak(() =>
    tf.variableGrads(() =>
      tf.sum(
        bn.forward(x, {
          training: true,
          relu: true,
          updateRunningStats: false,
        }),
      ) as tf.Scalar
    )
  );
  tf.dispose([x, y, z]);
  bn.dispose();
});

// The fused training kernel (blas and native with oneDNN) against the cpu
// reference path: output, running statistics and gradients, with and
// without ReLU.
for (const [backend, loads] of await loadableBackends(["blas", "native"])) {
  const fusedHere = loads &&
    await withBackend(backend, () => activeBackendHas(BATCH_NORM_TRAIN_KERNEL));
  for (const shape of [[6, 5], [2, 3, 4, 8]]) {
    for (const relu of [false, true]) {
      Deno.test({
        name:
          `BatchNorm.forward() on ${backend}'s fused kernel equals the cpu path (shape [${shape}], relu ${relu})`,
        ignore: ignoreUnless(loads, backend) ||
          ignoreUnless(fusedHere, "dnnl"),
        async fn() {
          const run = () => {
            const c = shape[shape.length - 1];
            const rng = new Rng(c + (relu ? 1 : 0));
            const size = shape.reduce((a, b) => a * b);
            const bn = new BatchNorm(c, { momentum: 0.3 });
            bn.weight.assign(
              tf.tensor1d(rng.fillNormal(new Float32Array(c), 1, 0.5)),
            );
            bn.bias.assign(
              tf.tensor1d(rng.fillNormal(new Float32Array(c), 0, 0.5)),
            );
            const x = tf.tensor(
              rng.fillNormal(new Float32Array(size), 2, 3),
              shape,
            );
            const w = tf.tensor(
              rng.fillNormal(new Float32Array(size), 0, 1),
              shape,
            );
            const { value, grads } = tf.variableGrads(
              () => tf.sum(tf.mul(bn.forward(x, { training: true, relu }), w)),
              [bn.weight, bn.bias],
            );
            const dx = tf.grad((t: tf.Tensor) =>
              tf.sum(
                tf.mul(
                  bn.forward(t, {
                    training: true,
                    relu,
                    updateRunningStats: false,
                  }),
                  w,
                ),
              )
            )(x);
            const out = [value, grads[bn.weight.name], grads[bn.bias.name], dx]
              .map((t) => Array.from(t.dataSync()));
            out.push(Array.from(bn.runningMean.dataSync()));
            out.push(Array.from(bn.runningVar.dataSync()));
            tf.dispose([value, dx, x, w, ...Object.values(grads)]);
            bn.dispose();
            return out;
          };
          const fused = await withBackend(backend, run);
          const reference = run();
          const names = [
            "loss",
            "dγ",
            "dβ",
            "dx",
            "running mean",
            "running var",
          ];
          fused.forEach((v, i) =>
            assertClose(v, reference[i], {
              rtol: 1e-4,
              atol: 1e-5,
              message: names[i],
            })
          );
        },
      });
    }
  }
}

Deno.test("BatchNorm.forward() with syncStatistics over one process gives the plain training pass, its running statistics and gradients", async () => {
  const x = tf.randomNormal([4, 3, 3, 5], 2, 3, "float32", 7) as tf.Tensor4D;
  const dy = tf.randomNormal([4, 3, 3, 5], 0, 1, "float32", 8);
  const run = async (sync?: (s: Float64Array) => Float64Array) => {
    const bn = new BatchNorm(5);
    bn.weight.assign(tf.linspace(0.5, 1.5, 5));
    const calls: number[] = [];
    const syncStatistics = sync && ((s: Float64Array) => {
      calls.push(s[0]);
      return sync(s);
    });
    const f = (input: tf.Tensor) =>
      tf.sum(
        tf.mul(
          bn.forward(input, { training: true, relu: true, syncStatistics }),
          dy,
        ),
      );
    const { value, grads } = tf.variableGrads(
      () => f(x) as tf.Scalar,
      [bn.weight, bn.bias],
    );
    const dx = tf.grad((input: tf.Tensor) => f(input))(x);
    const out = {
      value: await value.data(),
      dGamma: await grads[bn.weight.name].data(),
      dBeta: await grads[bn.bias.name].data(),
      dx: await dx.data(),
      mean: await bn.runningMean.data(),
      variance: await bn.runningVar.data(),
      calls,
    };
    tf.dispose([value, dx, Object.values(grads)]);
    bn.dispose();
    return out;
  };
  const plain = await run();
  const synced = await run((s) => s);
  for (const k of ["value", "dGamma", "dBeta", "dx", "mean", "variance"]) {
    assertClose(
      synced[k as keyof typeof synced] as Float32Array,
      plain[k as keyof typeof plain] as Float32Array,
      { rtol: 1e-5, atol: 1e-6, message: k },
    );
  }
  // Two reductions forward (Σx with the count 36, then Σ(x − μ)²) and two
  // backward, per pass: the loss pass and the dx pass.
  assertEquals(synced.calls, [36, 0, 0, 0, 36, 0, 0, 0]);
  tf.dispose([x, dy]);
});
