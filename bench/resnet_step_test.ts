import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  batchNormAct,
  makeStepModel,
  STEP_CASES,
  trainStep,
  vicregStepLoss,
} from "./resnet_step.ts";

await useBackend("cpu");

function plainBatchNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  axes: number[],
  relu: boolean,
): tf.Tensor {
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.add(
    tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma),
    beta,
  );
  return relu ? tf.relu(y) : y;
}

for (
  const [shape, axes] of [[[3, 4, 5, 6], [0, 1, 2]], [[7, 5], [0]]] as const
) {
  for (const relu of [false, true]) {
    Deno.test(`batchNormAct() matches autodiff of plain ops, ${shape}, relu ${relu}`, () => {
      const rng = new Rng(3);
      const make = (s: readonly number[]) => {
        const v = new Float32Array(s.reduce((a, b) => a * b, 1));
        rng.fillNormal(v, 0.5, 2);
        return tf.tensor(v, [...s]);
      };
      const c = shape.at(-1)!;
      const [x, gamma, beta, r] = [
        make(shape),
        make([c]),
        make([c]),
        make(shape),
      ];
      const loss =
        (f: typeof plainBatchNorm) =>
        (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(f(a, g, b, [...axes], relu), r));
      const ours = tf.grads(
        loss((a, g, b) =>
          batchNormAct(a, { gamma: g, beta: b }, { axes: [...axes], relu })
        ),
      )([x, gamma, beta]);
      const ref = tf.grads(loss(plainBatchNorm))([x, gamma, beta]);
      assertClose(
        batchNormAct(x, { gamma, beta }, { axes: [...axes], relu }),
        plainBatchNorm(x, gamma, beta, [...axes], relu),
        { rtol: 1e-5, atol: 1e-5 },
      );
      for (let i = 0; i < 3; i++) {
        assertClose(ours[i], ref[i], { rtol: 1e-4, atol: 1e-4 });
      }
      tf.dispose([x, gamma, beta, r, ...ours, ...ref]);
    });
  }
}

Deno.test("vicregStepLoss() of identical, decorrelated unit-variance views is 0", () => {
  // Columns ±1 in a Hadamard pattern: std 1 (> 1 - 1e-4 slack gives ~0), zero covariance.
  const z = tf.tensor2d([[1, 1], [1, -1], [-1, 1], [-1, -1]]);
  const loss = vicregStepLoss(z, z);
  assertClose(loss, 0, { atol: 1e-6 });
  tf.dispose([z, loss]);
});

Deno.test("trainStep() updates every variable and leaks no tensor", async () => {
  const spec = { ...STEP_CASES["tiny-16px-b16"], batch: 4, imageSize: 8 };
  const model = makeStepModel(spec, new Rng(0));
  const x = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 2) as tf.Tensor4D;
  const before = model.variables.map((v) => v.dataSync().slice());
  await assertNoLeak(async () => {
    const loss = trainStep(model, [x, y], { lr: 0.1 });
    assertTrue(Number.isFinite((await loss.data())[0]));
    loss.dispose();
  });
  const changed =
    model.variables.filter((v, i) =>
      v.dataSync().some((value, j) => value !== before[i][j])
    ).length;
  assertEquals(changed, model.variables.length);
  tf.dispose([x, y]);
  model.dispose();
});

Deno.test("trainStep() with viewByView gives the same update as the joint step", async () => {
  const spec = { ...STEP_CASES["tiny-16px-b16"], batch: 4, imageSize: 8 };
  const x = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 2) as tf.Tensor4D;
  const after = async (viewByView: boolean) => {
    const model = makeStepModel(spec, new Rng(0));
    const loss = trainStep(model, [x, y], { lr: 0.1, viewByView });
    const values = [
      await loss.data(),
      ...model.variables.map((v) => v.dataSync()),
    ];
    loss.dispose();
    model.dispose();
    return values;
  };
  const joint = await after(false);
  await assertNoLeak(async () => {
    const split = await after(true);
    joint.forEach((v, i) =>
      assertClose(split[i], v, { rtol: 1e-4, atol: 1e-5 })
    );
  });
  tf.dispose([x, y]);
});
