import * as tf from "@tensorflow/tfjs-core";
import { type MemoryBudget, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
} from "@scaling-vicreg/backend/testing";
import { createResNet } from "@scaling-vicreg/models";
import { createOptimizer } from "@scaling-vicreg/optim";
import { resolveConfig } from "./config.ts";
import { stepGradients } from "./step.ts";
import type { StepMode } from "./step_options.ts";
import { createVicregModel } from "./vicreg_model.ts";
import {
  estimateStepBytes,
  measureStepMemory,
  measureViewBackward,
  planStep,
  type StepMemoryProfile,
  viewsOf,
} from "./step_plan.ts";

const backends = await loadableBackends(
  ["cpu-fast", "blas", "native"],
  "cpu-fast",
);
await useBackend("cpu-fast");

const MIB = 2 ** 20;
// 10 MiB of tape and 1 MiB of block inputs per image and view; inputs free.
const PROFILE: StepMemoryProfile = {
  tapeBytesPerImage: 10 * MIB,
  checkpointBytesPerImage: 1 * MIB,
  largestTensorBytesPerImage: 1 * MIB,
  inputBytesPerImage: 0,
  parameterBytes: 0,
  largestParameterBytes: 0,
  // 1.2 × 2.5 MiB = 3 MiB per image for one block's re-run and backward.
  blockBackwardBytesPerImage: 2.5 * MIB,
  blockBackwardFixedBytes: 0,
};
const BUDGET: MemoryBudget = {
  totalBytes: 3 * 2 ** 30,
  tensorBytes: Infinity,
  source: "the test's budget",
  reuses: false,
};

Deno.test("estimateStepBytes() is the joint tape, half of it for mixed, the kept block inputs for view by view, plus both views", () => {
  // joint: 1.2 · 10 MiB · 2 views · 64 = 1536 MiB.
  assertEquals(estimateStepBytes(PROFILE, "joint", 64, 64, false), 1536 * MIB);
  assertEquals(estimateStepBytes(PROFILE, "joint", 64, 64, true), 2304 * MIB);
  assertEquals(
    estimateStepBytes(PROFILE, "mixed", 64, 64, false),
    (768 + 64) * MIB,
  );
  assertEquals(
    estimateStepBytes(PROFILE, "view-by-view", 64, 64, false),
    (2 * 64 + 192) * MIB,
  );
  // The two views of the whole batch, whatever the slices; the weights,
  // gradient sums and a slice's gradients (3 copies of the parameters), the
  // optimizer's slots, and its update's temporaries of the largest
  // parameter: AdamW (the default) 2 slots and 18, LARS 1 and 11.
  const withInputs = {
    ...PROFILE,
    inputBytesPerImage: MIB,
    parameterBytes: 10 * MIB,
    largestParameterBytes: 2 * MIB,
  };
  assertEquals(
    estimateStepBytes(withInputs, "joint", 8, 64, false) -
      estimateStepBytes(PROFILE, "joint", 8, 64, false),
    128 * MIB + 50 * MIB + 36 * MIB,
  );
  assertEquals(
    estimateStepBytes(withInputs, "joint", 8, 64, false, 1, "lars") -
      estimateStepBytes(PROFILE, "joint", 8, 64, false, 1, "lars"),
    128 * MIB + 40 * MIB + 22 * MIB,
  );
});

Deno.test("planStep() keeps what the keys set and, for auto, takes the plan with the fewest extra forward passes that fits, the largest slices first", () => {
  const plan = (
    step: "auto" | "joint" | "mixed" | "view-by-view",
    microBatch: "auto" | number,
    batch: number,
    local = false,
  ) => planStep({ step, microBatch, batch, local }, PROFILE, BUDGET);
  assertEquals(plan("mixed", 8, 64), {
    mode: "mixed",
    microBatch: 8,
    keptSlices: 0,
    reason: "as set",
  });
  // A micro-batch above the batch is one slice.
  assertEquals(plan("joint", 100, 64).microBatch, 64);
  // 1.5 GiB fits.
  const fits = plan("auto", "auto", 64);
  assertEquals([fits.mode, fits.microBatch], ["joint", 64]);
  assertEquals(
    fits.reason,
    "joint, one slice of the whole batch: an estimated 1.5 GiB fits 3.0 GiB of the test's budget",
  );
  // Batch 160: joint 3.75 GiB does not fit; mixed (1.9 + 0.2) does.
  assertEquals(
    [plan("auto", "auto", 160).mode, plan("auto", "auto", 160).microBatch],
    ["mixed", 160],
  );
  // Batch 1024: nothing fits in one slice; joint in slices of 128 (1.5 GiB).
  const paper = plan("auto", "auto", 1024);
  assertEquals([paper.mode, paper.microBatch], ["joint", 128]);
  assertTrue(paper.reason.includes("micro-batches of 128"), paper.reason);
  // A fixed mode: the largest halving of the batch that fits it.
  assertEquals(plan("view-by-view", "auto", 1024).microBatch, 512);
  assertEquals(plan("joint", "auto", 1000).microBatch, 125);
  // A fixed micro-batch: the fastest mode that fits it.
  assertEquals(plan("auto", 256, 1024).mode, "view-by-view");
  // The local loss counts 1.5× on the tape.
  assertEquals(plan("auto", "auto", 128, true).mode, "mixed");
});

Deno.test("a measured view peak replaces the tape margin in memory that reuses freed bytes, and only there", () => {
  // 6 MiB per image and view measured, local loss or not: 1.2 · 6 · 2 · 64.
  const measured = { ...PROFILE, viewBackwardBytesPerImage: 6 * MIB };
  assertClose(
    estimateStepBytes(measured, "joint", 64, 64, false),
    921.6 * MIB,
    { rtol: 1e-12 },
  );
  assertClose(estimateStepBytes(measured, "joint", 64, 64, true), 921.6 * MIB, {
    rtol: 1e-12,
  });
  // mixed: view 2's tape and view 1's kept block inputs.
  assertClose(
    estimateStepBytes(measured, "mixed", 64, 64, true),
    (460.8 + 64) * MIB,
    { rtol: 1e-12 },
  );
  // Batch 128 with the local loss: joint in one slice is 1.8 GiB measured,
  // 4.5 GiB by the margin; so in 3 GiB that reuses freed bytes the step is
  // joint, and in the heap's 3 GiB it keeps the margin's plan: mixed
  // (1.2 · 10 · 1.5 · 128 MiB of view 2's tape + 128 of view 1's inputs).
  const request = {
    step: "auto",
    microBatch: "auto",
    batch: 128,
    local: true,
  } as const;
  const reusing = planStep(request, measured, { ...BUDGET, reuses: true });
  assertEquals(
    [reusing.mode, reusing.microBatch, reusing.reason],
    [
      "joint",
      128,
      "joint, one slice of the whole batch: an estimated 1.8 GiB fits 3.0 GiB of the test's budget",
    ],
  );
  const heap = planStep(request, measured, BUDGET);
  assertEquals(planStep(request, PROFILE, BUDGET), heap);
  assertEquals([heap.mode, heap.microBatch], ["mixed", 128]);
  assertTrue(heap.reason.includes("an estimated 2.4 GiB"), heap.reason);
});

Deno.test("planStep() keeps as many slices on the loss's tape as fit, at least one, or as many as set", () => {
  const plan = (
    microBatch: number,
    keptSlices: "auto" | number,
    budget = BUDGET,
    step: "joint" | "mixed" = "joint",
  ) =>
    planStep(
      { step, microBatch, keptSlices, batch: 64, local: false },
      PROFILE,
      budget,
    );
  // A slice of 8 images: 1.2 · 10 MiB · 2 views · 8 = 192 MiB of tape.
  assertEquals(estimateStepBytes(PROFILE, "joint", 8, 64, false, 3), 576 * MIB);
  // 3 GiB holds all 8 slices.
  const all = plan(8, "auto");
  assertEquals(all.keptSlices, 8);
  assertEquals(all.reason, "as set, 8 of 8 slices kept on the loss's tape");
  // 500 MiB holds two.
  assertEquals(
    plan(8, "auto", { ...BUDGET, totalBytes: 500 * MIB })
      .keptSlices,
    2,
  );
  // Even when one does not fit, one is kept: it takes what re-running it would.
  assertEquals(plan(8, "auto", { ...BUDGET, totalBytes: MIB }).keptSlices, 1);
  // As set, at most every slice; none outside joint; one slice is kept.
  assertEquals(plan(8, 3).keptSlices, 3);
  assertEquals(
    plan(8, 3).reason,
    "as set, 3 of 8 slices kept on the loss's tape (as set)",
  );
  assertEquals(plan(8, 100).keptSlices, 8);
  assertEquals(plan(8, 0).keptSlices, 0);
  assertEquals(plan(8, "auto", BUDGET, "mixed").keptSlices, 0);
  assertEquals(plan(64, "auto").keptSlices, 1);
  // A rank's shard re-runs every slice.
  const shard = planStep(
    {
      step: "joint",
      microBatch: 8,
      batch: 64,
      local: false,
      distributed: true,
    },
    PROFILE,
    BUDGET,
  );
  assertEquals(shard.keptSlices, 0);
  assertEquals(shard.reason, "as set, every slice re-run (distributed)");
});

Deno.test("planStep() keeps every tensor under WebGPU's binding limit", () => {
  const plan = planStep(
    { step: "joint", microBatch: "auto", batch: 64, local: false },
    PROFILE,
    { ...BUDGET, tensorBytes: 16 * MIB },
  );
  // Two views of 8 images of 1 MiB each fill 16 MiB.
  assertEquals(plan.microBatch, 8);
});

Deno.test("planStep() names the estimate and the flags to change when even slices of two images do not fit", () => {
  assertThrows(
    () =>
      planStep(
        { step: "auto", microBatch: "auto", batch: 1024, local: true },
        {
          ...PROFILE,
          tapeBytesPerImage: 2 ** 30,
          checkpointBytesPerImage: 2 ** 30,
        },
        { ...BUDGET, totalBytes: 2 ** 30 },
      ),
    RangeError,
    "--micro-batch 2",
  );
});

Deno.test("measureStepMemory() grows with the image area and changes no state", async () => {
  const net = createResNet("tiny", new Rng(0), { stem: "cifar" });
  const before = tf.memory().numTensors;
  const stats = await Promise.all(
    [...net.buffers().values()].map(async (v) => Array.from(await v.data())),
  );
  const small = await measureStepMemory(net, 16);
  const large = await measureStepMemory(net, 32);
  assertTrue(small.tapeBytesPerImage > 0, `small ${small.tapeBytesPerImage}`);
  // 4× the pixels: every map is 4× larger (the pooled embedding is not).
  const ratio = large.tapeBytesPerImage / small.tapeBytesPerImage;
  assertTrue(ratio > 3 && ratio <= 4, `${ratio}`);
  // The block inputs are a part of the tape; the input is 32·32·3 floats.
  assertTrue(
    large.checkpointBytesPerImage > 0 &&
      large.checkpointBytesPerImage < large.tapeBytesPerImage,
    JSON.stringify(large),
  );
  assertEquals(large.inputBytesPerImage, 32 * 32 * 3 * 4);
  const params = [...net.parameters().values()];
  assertEquals(
    large.parameterBytes,
    4 * params.reduce((n, v) => n + v.size, 0),
  );
  assertEquals(
    large.largestParameterBytes,
    4 * Math.max(...params.map((v) => v.size)),
  );
  // One block's backward holds part of what a whole view's tape holds.
  assertTrue(
    large.blockBackwardBytesPerImage > 0 &&
      large.blockBackwardBytesPerImage < 2 * large.tapeBytesPerImage,
    JSON.stringify(large),
  );
  assertEquals(tf.memory().numTensors, before);
  const after = await Promise.all(
    [...net.buffers().values()].map(async (v) => Array.from(await v.data())),
  );
  assertEquals(after, stats);
  net.dispose();
});

Deno.test("measureViewBackward() grows with the image area, below the tape margin, and changes no state", async () => {
  const config = resolveConfig({
    flags: { preset: "tiny", size: 32, mlp: "64-64", "local-mlp": "32-16" },
  });
  const model = createVicregModel(config);
  const state = () =>
    Promise.all(
      [...model.backbone.buffers().values()].map(async (v) =>
        Array.from(await v.data())
      ),
    );
  const before = [tf.memory().numTensors, await state()];
  const at = (size: number) => measureViewBackward(model, size);
  const [small, large] = [await at(16), await at(32)];
  // 4× the pixels: the maps and their gradients grow 4×, not the
  // projections.
  assertTrue(
    small > 0 && large / small > 2.5 && large / small <= 4,
    `${small} ${large}`,
  );
  const margin =
    (await measureStepMemory(model.backbone, 32)).tapeBytesPerImage * 1.5;
  assertTrue(large < margin, `${large} ${margin}`);
  assertEquals([tf.memory().numTensors, await state()], before);
  model.dispose();
});

// The planner keeps the wasm heap from overflowing only if its estimate is
// not below what a step really holds: measured here with tf.profile over a
// whole training step (gradients and an AdamW update, whose slots it creates).
for (const [backend, loads] of backends) {
  Deno.test({
    name:
      `estimateStepBytes() is at least the measured peak of a training step on ${backend}, for every mode, slicing and local loss`,
    ignore: ignoreUnless(loads, backend),
    async fn() {
      await useBackend(backend);
      try {
        const plans: [StepMode, number, number][] = [
          ["joint", 16, 1],
          ["joint", 4, 1],
          ["joint", 4, 4],
          ["mixed", 16, 0],
          ["mixed", 8, 0],
          ["view-by-view", 16, 0],
          ["view-by-view", 4, 0],
        ];
        const under: string[] = [];
        for (const local of [false, true]) {
          for (const [mode, m, kept] of plans) {
            const base = tf.memory().numBytes;
            const config = resolveConfig({
              flags: {
                preset: "tiny",
                size: 32,
                mlp: "64-64",
                "local-mlp": "32-16",
                "use-local-loss": local,
              },
            });
            const model = createVicregModel(config);
            const optimizer = createOptimizer("adamw", model.parameters());
            const rng = new Rng(3);
            const views = [0, 1].map(() =>
              tf.tensor4d(
                rng.fillNormal(new Float32Array(16 * 32 * 32 * 3), 0, 1),
                [16, 32, 32, 3],
              )
            ) as [tf.Tensor4D, tf.Tensor4D];
            const profile = await measureStepMemory(
              model.backbone,
              32,
              model.parameters().values(),
            );
            // The same profile with the whole model's view peak measured,
            // as native memory plans with it.
            const viewed = {
              ...profile,
              viewBackwardBytesPerImage: await measureViewBackward(model, 32),
            };
            const info = await tf.profile(() => {
              const out = stepGradients(model, views, {
                mode,
                microBatch: m,
                keptSlices: kept,
              });
              optimizer.step(Object.fromEntries(out.grads), 1e-3);
              tf.dispose([out.loss, ...out.grads.values()]);
            });
            const measured = info.peakBytes - base;
            for (const [name, p] of [["margin", profile], ["view", viewed]]) {
              const estimate = estimateStepBytes(
                p as StepMemoryProfile,
                mode,
                m,
                16,
                local,
                kept,
              );
              if (measured > estimate) {
                under.push(
                  `${mode}, slices of ${m}, ${kept} kept, local ${local}, ${name}: measured ${measured} bytes > estimated ${
                    Math.round(estimate)
                  }`,
                );
              }
            }
            tf.dispose(views);
            optimizer.dispose();
            model.dispose();
          }
        }
        assertEquals(under, []);
      } finally {
        await useBackend("cpu-fast");
      }
    },
  });
}

Deno.test("estimateStepBytes() counts multi-crop views in units of a global view; planStep() with local crops slices sooner and names --local-crops", () => {
  // 2 global + 6 local views whose tape is a fifth of a global one's: 3.2
  const views = 2 + 6 * 0.2;
  // joint: 1.2 · 10 MiB · 3.2 · 64 = 2457.6 MiB; mixed: all views but the
  // first on the tape, plus its block inputs; view by view: every view's,
  // plus one block's backward.
  assertClose(
    estimateStepBytes(PROFILE, "joint", 64, 64, false, 1, "adamw", views),
    1.2 * 10 * 3.2 * 64 * MIB,
  );
  assertClose(
    estimateStepBytes(PROFILE, "mixed", 64, 64, false, 1, "adamw", views),
    (1.2 * 10 * 2.2 * 64 + 64) * MIB,
  );
  assertClose(
    estimateStepBytes(
      PROFILE,
      "view-by-view",
      64,
      64,
      false,
      1,
      "adamw",
      views,
    ),
    (3.2 * 64 + 1.2 * 2.5 * 64) * MIB,
  );
  // two views: unchanged by the new argument's default
  assertEquals(
    estimateStepBytes(PROFILE, "mixed", 64, 64, true, 1, "adamw", 2),
    estimateStepBytes(PROFILE, "mixed", 64, 64, true),
  );
  const request = {
    step: "joint",
    microBatch: "auto",
    batch: 256,
    local: false,
  } as const;
  const two = planStep(request, PROFILE, BUDGET);
  const multi = planStep({ ...request, views }, PROFILE, BUDGET);
  assertTrue(
    multi.microBatch < two.microBatch,
    `${multi.microBatch} vs ${two.microBatch}`,
  );
  const tiny = { ...BUDGET, totalBytes: 50 * MIB };
  assertThrows(
    () => planStep({ ...request, views }, PROFILE, tiny),
    RangeError,
    "lower --batch-size or --size, --local-crops or --local-crop-size",
  );
});

Deno.test("viewsOf() weighs local views by their measured tape: a 14 px crop costs a fraction of a 32 px one", async () => {
  const backbone = createResNet("tiny", new Rng(0), { stem: "cifar" });
  const global = await measureStepMemory(backbone, 32);
  const local = await measureStepMemory(backbone, 14);
  const views = viewsOf(2, 4, global, local);
  // (14/32)² = 0.19 of the activations, plus what does not shrink
  assertTrue(views > 2 + 4 * 0.15 && views < 2 + 4 * 0.5, `${views}`);
  assertEquals(viewsOf(2, 0, global), 2);
  backbone.dispose();
});
