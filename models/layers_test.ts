import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
} from "@scaling-vicreg/backend/testing";
import { Conv2d, Linear } from "./layers.ts";
import { countParameters, splitWeightDecay } from "./module.ts";
import { createProjector } from "./projector.ts";

await useBackend("cpu");

Deno.test("Conv2d.forward() pads symmetrically as PyTorch for stride 2 (not TF's 'same')", () => {
  const conv = new Conv2d(1, 1, 3, new Rng(0), { stride: 2, padding: 1 });
  conv.weight.assign(tf.ones([3, 3, 1, 1]));
  // x = arange(16) as [1, 4, 4, 1]; windows start at row/col −1 and 1.
  const y = conv.forward(
    tf.reshape(tf.range(0, 16), [1, 4, 4, 1]) as tf.Tensor4D,
  );
  assertEquals(y.shape, [1, 2, 2, 1]);
  assertClose(y, [
    0 + 1 + 4 + 5,
    1 + 2 + 3 + 5 + 6 + 7,
    4 + 5 + 8 + 9 + 12 + 13,
    90,
  ]);
  tf.dispose(y);
  conv.dispose();
});

Deno.test("Conv2d.forward() floors the output size as PyTorch for odd inputs", () => {
  const conv = new Conv2d(2, 3, 7, new Rng(0), { stride: 2, padding: 3 });
  tf.tidy(() => {
    assertEquals(conv.forward(tf.zeros([1, 33, 32, 2])).shape, [1, 17, 16, 3]);
  });
  assertThrows(
    () => conv.forward(tf.zeros([1, 8, 8, 3])),
    TypeError,
    "[N, H, W, 2]",
  );
  conv.dispose();
});

Deno.test("Linear.forward() computes x·W + b with W as [in, out]", () => {
  const fc = new Linear(2, 3, new Rng(0));
  fc.weight.assign(tf.tensor2d([[1, 2, 3], [4, 5, 6]]));
  fc.bias!.assign(tf.tensor1d([0.5, 0, -1]));
  const y = fc.forward(tf.tensor2d([[1, 1], [0, 2]]));
  assertClose(y, [5.5, 7, 8, 8.5, 10, 11]);
  tf.dispose(y);
  fc.dispose();
});

Deno.test("Conv2d and Linear forwards leak no tensors", async () => {
  const conv = new Conv2d(3, 4, 3, new Rng(0), { padding: 1 });
  const fc = new Linear(3, 2, new Rng(0), { bias: false });
  const x = tf.zeros([1, 5, 5, 3]) as tf.Tensor4D;
  const v = tf.zeros([2, 3]) as tf.Tensor2D;
  await assertNoLeak(() => conv.forward(x));
  await assertNoLeak(() => fc.forward(v));
  tf.dispose([x, v]);
  conv.dispose();
  fc.dispose();
});

Deno.test("splitWeightDecay() separates weights from biases and BatchNorm parameters", () => {
  const p = createProjector(4, "8-2", new Rng(0));
  const { decay, noDecay } = splitWeightDecay(p);
  assertEquals([...decay.keys()], ["0.weight", "3.weight"]);
  assertEquals([...noDecay.keys()], ["0.bias", "1.weight", "1.bias"]);
  assertEquals(countParameters(p), 4 * 8 + 8 + 8 + 8 + 8 * 2);
  p.dispose();
});

Deno.test("Conv2d.forwardAffine() folds a per-channel scale and shift, then ReLU", async () => {
  const conv = new Conv2d(1, 2, 1, new Rng(0));
  // Output channel 0 doubles x, channel 1 negates it.
  conv.weight.assign(tf.tensor4d([2, -1], [1, 1, 1, 2]));
  const x = tf.tensor4d([1, -2, 3, 0.5], [1, 2, 2, 1]);
  const scale = tf.tensor1d([3, 10]);
  const shift = tf.tensor1d([-1, 4]);
  // channel 0: 2x·3 − 1; channel 1: −x·10 + 4.
  const linear = [5, -6, -13, 24, 17, -26, 2, -1];
  assertClose(
    Array.from(conv.forwardAffine(x, scale, shift, false).dataSync()),
    linear,
  );
  assertClose(
    Array.from(conv.forwardAffine(x, scale, shift, true).dataSync()),
    linear.map((v) => Math.max(v, 0)),
  );
  tf.dispose([x, scale, shift]);
  const ones = tf.ones([1, 2, 2, 1]) as tf.Tensor4D;
  const s = tf.ones([2]) as tf.Tensor1D;
  await assertNoLeak(() => conv.forwardAffine(ones, s, s, true));
  tf.dispose([ones, s]);
  conv.dispose();
});
