import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "@scaling-vicreg/backend/testing";
import {
  DivergenceGuard,
  firstSuspectStep,
  gradientNorm,
} from "./divergence.ts";

await useBackend("cpu");
const [[, webgpu]] = await loadableBackends(["webgpu"], "cpu");

Deno.test("DivergenceGuard.observe() passes a noisy falling loss and flags a 100× jump over the recent median", () => {
  const guard = new DivergenceGuard({ window: 4, factor: 100 });
  const losses = [30, 28, 29, 25, 24, 26, 22, 21];
  losses.forEach((loss, i) =>
    assertEquals(guard.observe(i + 1, { loss }), undefined)
  );
  // The median of the last 4 (24, 26, 22, 21) is 23; 100× is 2300.
  assertEquals(guard.observe(9, { loss: 2299 }), undefined);
  const d = guard.observe(10, { loss: 2400 * 100 });
  assertEquals(d?.step, 10);
  assertEquals(d?.quantity, "loss");
  // The window now holds 26, 22, 21, 2299: median 24.
  assertEquals(d?.median, 24);
  assertTrue(
    d!.reason.includes("the median 24 of the last 4 steps"),
    d!.reason,
  );
  assertEquals(firstSuspectStep(d!), 9);
});

Deno.test("DivergenceGuard.observe() flags non-finite values at once and gradient-norm jumps", () => {
  const guard = new DivergenceGuard();
  assertEquals(guard.observe(1, { loss: NaN })?.reason, "loss NaN");
  const g = new DivergenceGuard();
  assertEquals(
    g.observe(1, { loss: 20, gradNorm: Infinity })?.quantity,
    "gradient norm",
  );
  const h = new DivergenceGuard();
  h.observe(1, { loss: 20, gradNorm: 50 });
  h.observe(2, { loss: 21, gradNorm: 40 });
  // Loss sane, gradient norm 1000× its median 45.
  const d = h.observe(3, { loss: 22, gradNorm: 45_000 });
  assertEquals([d?.quantity, d?.median], ["gradient norm", 45]);
  // A step that blew up is not remembered: the median is unchanged.
  assertEquals(h.observe(4, { loss: 22, gradNorm: 46 }), undefined);
  assertEquals(h.observe(5, { loss: 22, gradNorm: 4700 })?.median, 46);
});

Deno.test("DivergenceGuard rejects out-of-range options naming them", () => {
  assertThrows(() => new DivergenceGuard({ factor: 1 }), RangeError, "factor");
  assertThrows(() => new DivergenceGuard({ window: 0 }), RangeError, "window");
  assertThrows(
    () => new DivergenceGuard({ minHistory: 0.5 }),
    RangeError,
    "minHistory",
  );
});

Deno.test("gradientNorm() is the L2 norm over every element of every tensor and leaks nothing", async () => {
  const grads = [tf.tensor1d([1, -2]), tf.tensor2d([[2, 0], [0, 4]])];
  const before = tf.memory().numTensors;
  const norm = gradientNorm(grads);
  assertClose(Array.from(await norm.data()), [5]);
  norm.dispose();
  assertEquals(tf.memory().numTensors, before);
  tf.dispose(grads);
});

Deno.test({
  name:
    "gradientNorm() of a model's many gradients on webgpu, where an AddN of 8 or more inputs writes nothing",
  ignore: ignoreUnless(webgpu, "webgpu"),
  fn: () =>
    withBackend("webgpu", async () => {
      // Tensor m = 1..40 holds m elements equal to m: Σ g² = Σ m³.
      const grads = Array.from(
        { length: 40 },
        (_, n) => tf.fill([n + 1], n + 1),
      );
      let expected = 0;
      for (let n = 1; n <= 40; n++) expected += n * n * n;
      const norm = gradientNorm(grads);
      assertClose(Array.from(await norm.data()), [Math.sqrt(expected)], {
        rtol: 1e-6,
      });
      tf.dispose([norm, grads]);
    }, "cpu"),
});
