import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { createProjector, parseMlpSpec } from "./projector.ts";
import { countParameters } from "./module.ts";
import { fromTorchvision, loadStateDict } from "./weights.ts";
import { readFixture, withPrefix } from "./_fixtures_test_util.ts";

await useBackend("cpu");

Deno.test("parseMlpSpec() parses widths and names the spec in errors", () => {
  assertEquals(parseMlpSpec("2048-2048-1024"), [2048, 2048, 1024]);
  assertEquals(parseMlpSpec("512"), [512]);
  for (
    const bad of ["2048--x", "", "  ", "0-8", "8-", "-8", "8-2.5", "8-1e3"]
  ) {
    const error = assertThrows(() => parseMlpSpec(bad), RangeError);
    assertTrue(
      error.message.includes(JSON.stringify(bad)) ||
        error.message.includes(`"${bad}"`),
      error.message,
    );
  }
});

Deno.test("createProjector() builds VICReg's layers with nn.Sequential names", () => {
  const p = createProjector(32, "2048-2048-1024", new Rng(0));
  const shapes = [...p.parameters()].map(([n, v]) => [n, v.shape]);
  assertEquals(shapes, [
    ["0.weight", [32, 2048]],
    ["0.bias", [2048]],
    ["1.weight", [2048]],
    ["1.bias", [2048]],
    ["3.weight", [2048, 2048]],
    ["3.bias", [2048]],
    ["4.weight", [2048]],
    ["4.bias", [2048]],
    ["6.weight", [2048, 1024]],
  ]);
  assertEquals([...p.buffers().keys()], [
    "1.running_mean",
    "1.running_var",
    "4.running_mean",
    "4.running_var",
  ]);
  assertEquals(p.outputDim, 1024);
  assertEquals(
    countParameters(p),
    32 * 2048 + 2048 + 2 * 2048 + 2048 * 2048 + 2048 + 2 * 2048 + 2048 * 1024,
  );
  p.dispose();
  const single = createProjector(8, "4", new Rng(0));
  assertEquals([...single.parameters().keys()], ["0.weight"]);
  single.dispose();
});

Deno.test("createProjector() initialises Linear layers as PyTorch: U(−1/√in, 1/√in)", () => {
  const p = createProjector(64, "256-16", new Rng(1));
  const w = Array.from(p.parameters().get("0.weight")!.dataSync());
  const bound = 1 / 8;
  assertTrue(w.every((v) => Math.abs(v) <= bound));
  const variance = w.reduce((a, v) => a + v * v, 0) / w.length;
  assertClose(variance, bound * bound / 3, { rtol: 0.05 });
  const b = Array.from(p.parameters().get("0.bias")!.dataSync());
  assertTrue(b.every((v) => Math.abs(v) <= bound) && b.some((v) => v !== 0));
  p.dispose();
});

Deno.test("Projector.forward() matches a PyTorch nn.Sequential in eval and train mode", () => {
  const p = createProjector(12, "16-16-8", new Rng(0));
  loadStateDict(
    p,
    fromTorchvision(readFixture("projector.weights.safetensors")),
  );
  const io = readFixture("projector.io.safetensors");
  const x = tf.tensor2d(
    io.input.data as Float32Array,
    io.input.shape as [number, number],
  );
  const r = tf.tensor(io.r.data as Float32Array, io.r.shape);
  const yEval = p.forward(x);
  assertClose(yEval, io["eval.output"].data as Float32Array, {
    rtol: 1e-4,
    atol: 1e-5,
  });
  let y: tf.Tensor | undefined;
  const params = p.parameters();
  const { value, grads } = tf.variableGrads(() => {
    y = tf.keep(p.forward(x, { training: true }));
    return tf.sum(tf.mul(y, r)) as tf.Scalar;
  }, [...params.values()]);
  assertClose(y!, io["train.output"].data as Float32Array, {
    rtol: 1e-4,
    atol: 1e-5,
  });
  const after = withPrefix(io, "after.");
  for (const [name, buffer] of p.buffers()) {
    assertClose(buffer, after[name].data as Float32Array, {
      rtol: 1e-4,
      atol: 1e-6,
      message: name,
    });
  }
  const expected = fromTorchvision(withPrefix(io, "grad."));
  for (const [name, v] of params) {
    assertClose(grads[v.name], expected[name].data as Float32Array, {
      rtol: 1e-3,
      atol: 1e-5,
      message: name,
    });
  }
  tf.dispose([x, r, yEval, y!, value, ...Object.values(grads)]);
  p.dispose();
});

Deno.test("Projector.forward() leaks no tensors and rejects wrong widths", async () => {
  const p = createProjector(6, "4-4-2", new Rng(0));
  const x = tf.randomNormal([3, 6]) as tf.Tensor2D;
  await assertNoLeak(() => p.forward(x));
  await assertNoLeak(() => p.forward(x, { training: true }));
  assertThrows(
    () => p.forward(tf.zeros([3, 5]) as tf.Tensor2D),
    TypeError,
    "[N, 6]",
  );
  x.dispose();
  p.dispose();
});
