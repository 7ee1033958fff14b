import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import { assertEquals, assertNoLeak } from "@scaling-vicreg/backend/testing";
import { proceduralDataset } from "@scaling-vicreg/data";
import { createResNet } from "@scaling-vicreg/models";
import { probeBackbone } from "./evaluate.ts";

Deno.test("probeBackbone() with probeBackend runs the probes there and restores the active backend", async () => {
  await useBackend("cpu");
  const backbone = createResNet("tiny", new Rng(0), { stem: "cifar" });
  const data = {
    train: proceduralDataset({ n: 60, size: 20, seed: 1 }),
    test: proceduralDataset({ n: 30, size: 20, seed: 2 }),
  };
  const options = {
    size: 16,
    tta: false,
    trials: 1,
    maxEpochs: 3,
    baselineEpochs: 3,
    batchSize: 16,
  };
  const same = await probeBackbone(backbone, data, options);
  await useBackend("cpu-fast");
  let moved: Awaited<ReturnType<typeof probeBackbone>> | undefined;
  await assertNoLeak(async () => {
    moved = await probeBackbone(backbone, data, {
      ...options,
      probeBackend: "cpu",
    });
  });
  assertEquals(tf.getBackend(), "cpu-fast");
  // Features from cpu-fast equal cpu's here (same kernels for a forward
  // pass), so the probes on cpu give the same report.
  // Everything but the trials' timings.
  const results = (r: typeof same) => ({
    baseline: r.baseline,
    sweep: r.sweep,
    knn: r.knn,
    trials: r.trials.map(({ seconds: _, ...t }) => t),
    confusion: r.confusion,
  });
  assertEquals(results(moved!), results(same));
  backbone.dispose();
  await useBackend("cpu");
});
