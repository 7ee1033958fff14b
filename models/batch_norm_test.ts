import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
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
