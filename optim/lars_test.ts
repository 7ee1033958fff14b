import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
} from "@scaling-vicreg/backend/testing";
import { DEFAULT_LARS_OPTIONS, larsUpdate } from "./lars.ts";
import { referenceMomentum } from "./_reference_test_util.ts";

await useBackend("cpu");

Deno.test("larsUpdate() follows a float64 loop of VICReg's LARS over four steps", () => {
  const p0 = [3, -4, 0.5, 1];
  const grads = [
    [0.6, 0.8, -0.1, 0],
    [-0.3, 0.2, 0.4, 0.1],
    [0, 0, 0, 0],
    [1, -1, 0.5, 0.25],
  ];
  const lrs = [1, 0.8, 0.5, 0.3];
  for (
    const options of [
      { momentum: 0.9, weightDecay: 0, eta: 0.001 },
      { momentum: 0.9, weightDecay: 0.1, eta: 0.02 },
    ]
  ) {
    let p: tf.Tensor = tf.tensor1d(p0);
    let mu: tf.Tensor = tf.zerosLike(p);
    const expected = referenceMomentum(p0, grads, lrs, options);
    grads.forEach((g, s) => {
      const next = tf.tidy(() =>
        larsUpdate(
          { param: p, grad: tf.tensor1d(g), momentumBuffer: mu },
          lrs[s],
          options,
        )
      );
      tf.dispose([p, mu]);
      ({ param: p, momentumBuffer: mu } = next);
      assertClose([...p.dataSync(), ...mu.dataSync()], expected[s], {
        rtol: 1e-5,
        message: `step ${s + 1} of ${JSON.stringify(options)}`,
      });
    });
    tf.dispose([p, mu]);
  }
});

Deno.test("larsUpdate() keeps the factor 1 when ‖p‖ or ‖d‖ is 0", () => {
  // ‖p‖ = 0: the plain momentum step.
  const a = tf.tidy(() =>
    larsUpdate(
      {
        param: tf.zeros([2]),
        grad: tf.tensor1d([1, 2]),
        momentumBuffer: tf.zeros([2]),
      },
      0.5,
    )
  );
  assertClose(a.param, [-0.5, -1]);
  // ‖d‖ = 0: nothing moves, and no NaN from 0/0.
  const b = tf.tidy(() =>
    larsUpdate(
      {
        param: tf.tensor1d([1, 2]),
        grad: tf.zeros([2]),
        momentumBuffer: tf.zeros([2]),
      },
      0.5,
    )
  );
  assertClose(b.param, [1, 2]);
  assertClose(b.momentumBuffer, [0, 0]);
  tf.dispose([a.param, a.momentumBuffer, b.param, b.momentumBuffer]);
});

Deno.test("larsUpdate() defaults to VICReg's LARS class (momentum 0.9, η 0.001, no decay)", () => {
  assertEquals({ ...DEFAULT_LARS_OPTIONS }, {
    momentum: 0.9,
    weightDecay: 0,
    eta: 0.001,
  });
});

Deno.test("larsUpdate() leaves no tensors behind inside tf.tidy", async () => {
  const p = tf.ones([3]), g = tf.ones([3]), mu = tf.zeros([3]);
  await assertNoLeak(() =>
    tf.tidy(() => larsUpdate({ param: p, grad: g, momentumBuffer: mu }, 0.1))
  );
  tf.dispose([p, g, mu]);
});
