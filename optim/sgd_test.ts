import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
} from "@scaling-vicreg/backend/testing";
import { DEFAULT_SGD_OPTIONS, sgdUpdate } from "./sgd.ts";
import { referenceMomentum } from "./_reference_test_util.ts";

await useBackend("cpu");

const P0 = [0.5, -1.25, 2, 0];
const GRADS = [
  [0.1, -0.4, 0.3, 1],
  [-0.2, 0.5, 0.05, 0],
  [0.7, 0.1, -0.6, -1],
  [0, 0.3, 0.2, 0.5],
];
const LRS = [0.1, 0.08, 0.05, 0.02];

function runSgd(
  options: { momentum: number; weightDecay: number },
): number[][] {
  let p = tf.tensor1d(P0);
  let mu = tf.zerosLike(p);
  const out: number[][] = [];
  GRADS.forEach((g, s) => {
    const next = tf.tidy(() =>
      sgdUpdate(
        { param: p, grad: tf.tensor1d(g), momentumBuffer: mu },
        LRS[s],
        options,
      )
    );
    tf.dispose([p, mu]);
    p = next.param as tf.Tensor1D;
    mu = next.momentumBuffer as tf.Tensor1D;
    out.push([...p.dataSync(), ...mu.dataSync()]);
  });
  tf.dispose([p, mu]);
  return out;
}

Deno.test("sgdUpdate() follows a float64 PyTorch SGD loop over four steps (momentum, weight decay)", () => {
  for (
    const options of [
      { momentum: 0.9, weightDecay: 0 },
      { momentum: 0.9, weightDecay: 0.05 },
      { momentum: 0, weightDecay: 0.1 },
    ]
  ) {
    const actual = runSgd(options);
    const expected = referenceMomentum(P0, GRADS, LRS, options);
    actual.forEach((row, s) =>
      assertClose(row, expected[s], {
        rtol: 1e-6,
        message: `step ${s + 1} of ${JSON.stringify(options)}`,
      })
    );
  }
});

Deno.test("sgdUpdate() defaults to PyTorch's SGD (no momentum, no decay)", () => {
  assertEquals({ ...DEFAULT_SGD_OPTIONS }, { momentum: 0, weightDecay: 0 });
  const next = tf.tidy(() =>
    sgdUpdate(
      {
        param: tf.tensor1d([1, 2]),
        grad: tf.tensor1d([1, -1]),
        momentumBuffer: tf.tensor1d([5, 5]),
      },
      0.5,
    )
  );
  // μ = 0·μ + g, p = p − 0.5·g: the old buffer is ignored.
  assertClose(next.param, [0.5, 2.5]);
  assertClose(next.momentumBuffer, [1, -1]);
  tf.dispose([next.param, next.momentumBuffer]);
});

Deno.test("sgdUpdate() leaves no tensors behind inside tf.tidy", async () => {
  const p = tf.ones([3]), g = tf.ones([3]), mu = tf.zeros([3]);
  await assertNoLeak(() =>
    tf.tidy(() =>
      sgdUpdate({ param: p, grad: g, momentumBuffer: mu }, 0.1, {
        momentum: 0.9,
        weightDecay: 0.1,
      })
    )
  );
  tf.dispose([p, g, mu]);
});
