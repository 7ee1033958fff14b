import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertTrue,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "@scaling-vicreg/backend/testing";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import { resolveConfig } from "./config.ts";
import { buildNetworks, disposeNetworks, namedVariables } from "./pretrain.ts";
import {
  activationBytesPerView,
  chooseStepMode,
  stepGradients,
  type StepMode,
} from "./_step.ts";
import { createResNet } from "@scaling-vicreg/models";

await useBackend("cpu-fast");

// blas (with oneDNN: its fused BatchNorm kernels) takes the same three paths.
const stepBackends = await loadableBackends(["cpu-fast", "blas"], "cpu-fast");

for (
  const [backend, loads, local] of stepBackends.flatMap(([b, loads]) =>
    [[b, loads, false], [b, loads, true]] as const
  )
) {
  Deno.test({
    name:
      `stepGradients() mixed and view by view give the joint step's loss, gradients and running statistics (${backend}, local loss ${local})`,
    ignore: ignoreUnless(loads, backend),
  }, () =>
    withBackend(backend, async () => {
      const config = resolveConfig({
        flags: {
          preset: "tiny",
          "exp-dir": "unused",
          size: 16,
          "batch-size": 6,
          mlp: "32-32",
          "local-mlp": "16-8",
          "use-local-loss": local,
          "local-matching": "location",
        },
      });
      const rng = new Rng(7);
      const view = () =>
        tf.tensor4d(
          rng.fillNormal(new Float32Array(6 * 16 * 16 * 3), 0, 1),
          [6, 16, 16, 3],
        );
      const views: [tf.Tensor4D, tf.Tensor4D] = [view(), view()];
      // Overlapping crops, the second flipped: the location matching pairs cells.
      const geometry: [ViewGeometry[], ViewGeometry[]] = [
        Array(6).fill({ box: [0, 0, 0.8, 0.8], flip: false }),
        Array(6).fill({ box: [0.1, 0.2, 0.9, 0.7], flip: true }),
      ];
      const settings = {
        config,
        lossOptions: {
          simCoeff: 25,
          stdCoeff: 25,
          covCoeff: 1,
          variant: "vicreg" as const,
        },
        projectorDim: 32,
      };
      const run = async (mode: StepMode) => {
        const nets = buildNetworks(config);
        const params = namedVariables(nets, "parameters");
        const out = stepGradients(
          nets,
          params,
          views,
          geometry,
          settings,
          mode,
        );
        const read = async (ts: tf.Tensor[]) =>
          await Promise.all(ts.map((t) => t.data()));
        const result = {
          loss: await out.value.data(),
          metrics: await read(out.metrics),
          names: [...out.grads.keys()],
          order: [...params.keys()],
          grads: await read([...params.keys()].map((k) => out.grads.get(k)!)),
          buffers: await read([...namedVariables(nets, "buffers").values()]),
        };
        tf.dispose([out.value, ...out.metrics, ...out.grads.values()]);
        disposeNetworks(nets);
        return result;
      };
      const joint = await run("joint");
      for (const mode of ["mixed", "view-by-view"] as const) {
        await assertNoLeak(async () => {
          const split = await run(mode);
          assertEquals(split.names.sort(), [...joint.names].sort());
          assertEquals(split.metrics.length, local ? 6 : 5);
          assertClose(split.loss, joint.loss, { rtol: 1e-5 });
          split.metrics.forEach((m, i) =>
            assertClose(m, joint.metrics[i], { rtol: 1e-5 })
          );
          split.grads.forEach((g, i) =>
            assertClose(g, joint.grads[i], {
              rtol: 1e-5,
              atol: 1e-7,
              message: `${mode}: grad of ${joint.order[i]}`,
            })
          );
          split.buffers.forEach((b, i) =>
            assertClose(b, joint.buffers[i], { rtol: 1e-5, atol: 1e-7 })
          );
        });
      }
      tf.dispose(views);
    }, "cpu-fast"));
}

Deno.test("chooseStepMode() keeps an explicit step and, for auto, takes the fastest mode whose estimate fits the wasm heap", () => {
  const mib = 2 ** 20;
  assertEquals(
    chooseStepMode("joint", true, 100 * mib, 1024, true).mode,
    "joint",
  );
  assertEquals(chooseStepMode("mixed", false, 0, 8, false).mode, "mixed");
  assertEquals(
    chooseStepMode("view-by-view", false, 0, 8, false).mode,
    "view-by-view",
  );
  assertEquals(
    chooseStepMode("auto", false, 100 * mib, 1024, true),
    { mode: "joint", reason: "tensors are not in the wasm heap" },
  );
  // 10 MiB per image and view, batch 64 → 1.2 · 10 · 2 · 64 MiB = 1.5 GiB.
  assertEquals(
    chooseStepMode("auto", true, 10 * mib, 64, false),
    { mode: "joint", reason: "an estimated 1.5 GiB fits the 4 GiB wasm heap" },
  );
  assertEquals(
    chooseStepMode("auto", true, 10 * mib, 160, false),
    {
      mode: "mixed",
      reason:
        "a joint step's estimated 3.8 GiB would not fit the 4 GiB wasm heap; one view's 1.9 GiB does",
    },
  );
  // Batch 128 is 3.0 GiB, just within the budget; the local loss counts
  // 1.5×, which makes it 4.5.
  assertEquals(
    chooseStepMode("auto", true, 10 * mib, 128, false).mode,
    "joint",
  );
  assertEquals(chooseStepMode("auto", true, 10 * mib, 128, true).mode, "mixed");
  assertEquals(
    chooseStepMode("auto", true, 10 * mib, 512, false),
    {
      mode: "view-by-view",
      reason: "one view's estimated 6.0 GiB would not fit the 4 GiB wasm heap",
    },
  );
});

Deno.test("activationBytesPerView() grows with the image area and changes no state", async () => {
  const net = createResNet("tiny", new Rng(0), { stem: "cifar" });
  const before = tf.memory().numTensors;
  const stats = await Promise.all(
    [...net.buffers().values()].map(async (v) => Array.from(await v.data())),
  );
  const small = await activationBytesPerView(net, 16);
  const large = await activationBytesPerView(net, 32);
  assertTrue(small > 0, `small ${small}`);
  // 4× the pixels: every map is 4× larger (the pooled embedding is not).
  assertTrue(large / small > 3 && large / small <= 4, `${large / small}`);
  assertEquals(tf.memory().numTensors, before);
  const after = await Promise.all(
    [...net.buffers().values()].map(async (v) => Array.from(await v.data())),
  );
  assertEquals(after, stats);
  net.dispose();
});
