import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
} from "@scaling-vicreg/backend/testing";
import { adamwUpdate, DEFAULT_ADAMW_OPTIONS } from "./adamw.ts";
import { referenceAdamw } from "./_reference_test_util.ts";

await useBackend("cpu");

Deno.test("adamwUpdate() follows a float64 PyTorch AdamW loop over five steps", () => {
  const p0 = [0.5, -1.5, 2, 0.01];
  const grads = [
    [0.1, -0.4, 0.3, 1],
    [-0.2, 0.5, 0.05, 0],
    [0.7, 0.1, -0.6, -1],
    [0, 0.3, 0.2, 0.5],
    [0.05, -0.05, 0.4, 2],
  ];
  const lrs = [0.1, 0.1, 0.05, 0.05, 0.01];
  for (
    const options of [
      { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 },
      { beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1 },
    ]
  ) {
    let p = tf.tensor1d(p0) as tf.Tensor;
    let m = tf.zerosLike(p);
    let v = tf.zerosLike(p);
    const expected = referenceAdamw(p0, grads, lrs, options);
    grads.forEach((g, s) => {
      const next = tf.tidy(() =>
        adamwUpdate(
          {
            param: p,
            grad: tf.tensor1d(g),
            expAvg: m,
            expAvgSq: v,
            step: s + 1,
          },
          lrs[s],
          options,
        )
      );
      tf.dispose([p, m, v]);
      ({ param: p, expAvg: m, expAvgSq: v } = next);
      assertClose(
        [...p.dataSync(), ...m.dataSync(), ...v.dataSync()],
        expected[s],
        {
          rtol: 1e-5,
          atol: 1e-7,
          message: `step ${s + 1} of ${JSON.stringify(options)}`,
        },
      );
    });
    tf.dispose([p, m, v]);
  }
});

Deno.test("adamwUpdate() defaults to PyTorch's AdamW (β 0.9/0.999, ε 1e-8, wd 0.01)", () => {
  assertEquals({ ...DEFAULT_ADAMW_OPTIONS }, {
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    weightDecay: 0.01,
  });
  const next = tf.tidy(() =>
    adamwUpdate(
      {
        param: tf.tensor1d([2]),
        grad: tf.tensor1d([0]),
        expAvg: tf.zeros([1]),
        expAvgSq: tf.zeros([1]),
        step: 1,
      },
      0.5,
    )
  );
  // Zero gradient: only the decoupled decay acts, p·(1 − 0.5·0.01).
  assertClose(next.param, [2 * (1 - 0.005)]);
  tf.dispose([next.param, next.expAvg, next.expAvgSq]);
});

Deno.test("adamwUpdate() leaves no tensors behind inside tf.tidy", async () => {
  const p = tf.ones([3]),
    g = tf.ones([3]),
    m = tf.zeros([3]),
    v = tf.zeros([3]);
  await assertNoLeak(() =>
    tf.tidy(() =>
      adamwUpdate({ param: p, grad: g, expAvg: m, expAvgSq: v, step: 1 }, 0.1)
    )
  );
  tf.dispose([p, g, m, v]);
});
