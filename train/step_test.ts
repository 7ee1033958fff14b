import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "@scaling-vicreg/backend/testing";
import { viewMix } from "@scaling-vicreg/augment";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import { type PretrainConfig, resolveConfig } from "./config.ts";
import { stepGradients } from "./step.ts";
import { sliceRanges, type StepMode } from "./step_options.ts";
import {
  createVicregModel,
  type Projections,
  VicregModel,
} from "./vicreg_model.ts";

await useBackend("cpu-fast");

// blas (with oneDNN: its fused BatchNorm kernels) takes the same paths.
const stepBackends = await loadableBackends(
  ["cpu-fast", "blas", "native"],
  "cpu-fast",
);

function tinyConfig(flags: Record<string, unknown> = {}): PretrainConfig {
  return resolveConfig({
    flags: {
      preset: "tiny",
      "exp-dir": "unused",
      size: 16,
      mlp: "32-32",
      "local-mlp": "16-8",
      "local-matching": "location",
      ...flags,
    },
  });
}

function randomViews(n: number, size: number, seed: number) {
  const rng = new Rng(seed);
  const view = () =>
    tf.tensor4d(
      rng.fillNormal(new Float32Array(n * size * size * 3), 0, 1),
      [n, size, size, 3],
    );
  return [view(), view()] as [tf.Tensor4D, tf.Tensor4D];
}

// Overlapping crops, the second flipped: the location matching pairs cells.
function geometryOf(n: number): [ViewGeometry[], ViewGeometry[]] {
  return [
    Array.from({ length: n }, (_, i) => ({
      box: [0, 0.01 * i, 0.8, 0.8] as const,
      flip: false,
    })),
    Array(n).fill({ box: [0.1, 0.2, 0.9, 0.7], flip: true }),
  ];
}

interface StepResult {
  total: Float32Array;
  terms: Record<string, Float32Array>;
  grads: Map<string, Float32Array>;
  buffers: Float32Array[];
}

/** Runs stepGradients on a fresh model and reads everything back. */
async function runStep(
  config: PretrainConfig,
  views: [tf.Tensor4D, tf.Tensor4D],
  options: {
    mode?: StepMode;
    microBatch?: number;
    keptSlices?: number;
    frozen?: boolean;
  },
): Promise<StepResult> {
  const model = createVicregModel(config);
  const frozen = options.frozen
    ? new VicregModel(model, { ...model.settings, frozenBatchNorm: true })
    : model;
  const out = stepGradients(frozen, views, {
    geometry: geometryOf(views[0].shape[0]),
    mode: options.mode,
    microBatch: options.microBatch,
    keptSlices: options.keptSlices,
  });
  const result: StepResult = {
    total: await out.loss.total.data() as Float32Array,
    terms: Object.fromEntries(
      await Promise.all(
        Object.entries(out.loss.terms).map(async (
          [k, t],
        ) => [k, await t!.data() as Float32Array]),
      ),
    ),
    grads: new Map(
      await Promise.all(
        [...out.grads].map(async (
          [k, g],
        ) => [k, await g.data() as Float32Array] as const),
      ),
    ),
    buffers: await Promise.all(
      [...model.buffers().values()].map(async (b) =>
        await b.data() as Float32Array
      ),
    ),
  };
  tf.dispose([out.loss, ...out.grads.values()]);
  model.dispose();
  return result;
}

function assertSameStep(
  actual: StepResult,
  expected: StepResult,
  what: string,
  options: { buffers?: boolean } = {},
): void {
  assertClose(actual.total, expected.total, { rtol: 1e-5, message: what });
  assertEquals(
    Object.keys(actual.terms).sort(),
    Object.keys(expected.terms).sort(),
  );
  for (const [k, t] of Object.entries(expected.terms)) {
    assertClose(actual.terms[k], t, { rtol: 1e-5, message: `${what}: ${k}` });
  }
  assertEquals(
    [...actual.grads.keys()].sort(),
    [...expected.grads.keys()].sort(),
  );
  for (const [k, g] of expected.grads) {
    assertClose(actual.grads.get(k)!, g, {
      rtol: 1e-5,
      atol: 1e-7,
      message: `${what}: grad of ${k}`,
    });
  }
  if (options.buffers ?? true) {
    expected.buffers.forEach((b, i) =>
      assertClose(actual.buffers[i], b, { rtol: 1e-5, atol: 1e-7 })
    );
  }
}

for (const [backend, loads] of stepBackends) {
  for (const local of [false, true]) {
    Deno.test({
      name:
        `stepGradients() mixed and view by view give the joint step's loss, gradients and running statistics (${backend}, local loss ${local})`,
      ignore: ignoreUnless(loads, backend),
      fn: () =>
        withBackend(backend, async () => {
          const config = tinyConfig({
            "batch-size": 6,
            "use-local-loss": local,
          });
          const views = randomViews(6, 16, 7);
          const joint = await runStep(config, views, { mode: "joint" });
          assertEquals(Object.keys(joint.terms).length, local ? 6 : 5);
          for (const mode of ["mixed", "view-by-view"] as const) {
            await assertNoLeak(async () => {
              assertSameStep(
                await runStep(config, views, { mode }),
                joint,
                mode,
              );
            });
          }
          tf.dispose(views);
        }, "cpu-fast"),
    });
  }
}

// With BatchNorm on its running statistics nothing depends on how the batch
// is sliced, so every slicing gives the one-slice step exactly.
for (
  const [local, matching] of [
    [false, "index"],
    [true, "index"],
    [true, "location"],
    [true, "feature"],
  ] as const
) {
  Deno.test(`stepGradients() in micro-batches of B/4 gives the one-slice loss and gradients with frozen BatchNorm (local loss ${local}, ${matching} matching, ViewMix)`, async () => {
    const config = tinyConfig({
      "batch-size": 8,
      "use-local-loss": local,
      "local-matching": matching,
    });
    const raw = randomViews(8, 16, 3);
    const mixed = viewMix(raw[0], raw[1], new Rng(5));
    const views: [tf.Tensor4D, tf.Tensor4D] = [mixed.x, mixed.y];
    const whole = await runStep(config, views, { frozen: true });
    // joint: every slice re-run, the last one kept on the loss's tape (the
    // default), all four kept.
    for (
      const [mode, keptSlices] of [
        ["joint", 0],
        ["joint", 1],
        ["joint", 4],
        ["view-by-view", 1],
      ] as const
    ) {
      await assertNoLeak(async () => {
        const sliced = await runStep(config, views, {
          frozen: true,
          microBatch: 2,
          keptSlices,
          mode,
        });
        assertSameStep(sliced, whole, `M = 2, ${mode}, ${keptSlices} kept`);
      });
    }
    // Slices of 3 leave a last slice of 2.
    assertSameStep(
      await runStep(config, views, { frozen: true, microBatch: 3 }),
      whole,
      "M = 3",
    );
    tf.dispose([raw, views]);
  });
}

/**
 * The reference of a step in slices with training-mode BatchNorm, computed
 * by hand on one tape: each view's slices embedded separately (per-slice
 * batch statistics), their projections concatenated, the loss of the whole
 * batch.
 */
function handReference(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  ranges: [number, number][],
  geometry: [ViewGeometry[], ViewGeometry[]],
) {
  const params = model.parameters();
  const { value, grads } = tf.variableGrads(() => {
    const [p1, p2] = views.map((view): Projections => {
      const parts = ranges.map(([start, size]) =>
        model.embed(tf.slice(view, start, size), {
          updateRunningStats: false,
        })
      );
      return {
        z: tf.concat(parts.map((p) => p.z)),
        local: parts[0].local && tf.concat(parts.map((p) => p.local!)),
        grid: parts[0].grid,
      };
    });
    return model.criterion([p1, p2], geometry).total;
  }, [...params.values()]);
  return {
    value,
    grads: new Map([...params].map(([k, v]) => [k, grads[v.name]])),
  };
}

for (const local of [false, true]) {
  Deno.test(`stepGradients() in two micro-batches with training-mode BatchNorm equals a hand reference with per-half statistics and the whole batch's loss (local loss ${local})`, async () => {
    const config = tinyConfig({ "batch-size": 8, "use-local-loss": local });
    const views = randomViews(8, 16, 11);
    const geometry = geometryOf(8);
    const halves: [number, number][] = [[0, 4], [4, 4]];
    const model = createVicregModel(config);
    const reference = handReference(model, views, halves, geometry);
    // Both halves re-run, the second kept on the loss's tape, both kept.
    let sliced: StepResult | undefined;
    for (const keptSlices of [0, 1, 2]) {
      sliced = await runStep(config, views, { microBatch: 4, keptSlices });
      const what = `${keptSlices} kept`;
      assertClose(sliced.total, await reference.value.data(), {
        rtol: 1e-5,
        message: what,
      });
      for (const [k, g] of reference.grads) {
        assertClose(sliced.grads.get(k)!, await g.data(), {
          rtol: 1e-5,
          atol: 1e-7,
          message: `${what}: grad of ${k}`,
        });
      }
    }
    // The comparison can fail: back-propagating each half with the other
    // half's rows of the loss gradient gives other parameter gradients.
    const params = model.parameters();
    const [p1, p2] = views.map((v) =>
      halves.map(([s, n]) =>
        model.embed(tf.slice(v, s, n), { updateRunningStats: false })
      )
    );
    const cat = (ps: Projections[]): Projections => ({
      z: tf.concat(ps.map((p) => p.z)),
      local: ps[0].local && tf.concat(ps.map((p) => p.local!)),
      grid: ps[0].grid,
    });
    const inputs = [cat(p1), cat(p2)];
    const dz = tf.grads((z1: tf.Tensor, z2: tf.Tensor) =>
      model.criterion([{ ...inputs[0], z: z1 as tf.Tensor2D }, {
        ...inputs[1],
        z: z2 as tf.Tensor2D,
      }], geometry).total
    )([inputs[0].z, inputs[1].z]);
    const swapped = tf.variableGrads(() =>
      tf.addN(
        halves.flatMap(([s, n], h) =>
          views.map((v, i) => {
            const [os, on] = halves[1 - h];
            const z = model.embed(tf.slice(v, s, n), {
              updateRunningStats: false,
            }).z;
            return tf.sum(tf.mul(z, tf.slice(dz[i], os, on)));
          })
        ),
      ) as tf.Scalar, [...params.values()]);
    const name = "backbone.conv1.weight";
    assertThrows(() =>
      assertClose(
        swapped.grads[params.get(name)!.name].dataSync(),
        sliced!.grads.get(name)!,
        { rtol: 1e-5, atol: 1e-7 },
      ), Error);
    tf.dispose([
      reference.value,
      [...reference.grads.values()],
      swapped.value,
      Object.values(swapped.grads),
      dz,
      p1.map((p) => Object.values(p)),
      p2.map((p) => Object.values(p)),
      inputs.map((p) => [p.z, p.local]),
      views,
    ] as tf.TensorContainer);
    model.dispose();
  });
}

Deno.test("stepGradients() in micro-batches updates the running statistics once per slice and view, in the first pass only", async () => {
  const config = tinyConfig({ "batch-size": 8, "use-local-loss": false });
  const views = randomViews(12, 16, 13);
  // Expected: a fresh model run on the slices in the step's order, view 1
  // then view 2 of each slice, with no other forward pass updating them.
  const model = createVicregModel(config);
  tf.tidy(() => {
    for (const [start, size] of sliceRanges(12, 4)) {
      for (const view of views) model.embed(tf.slice(view, start, size));
    }
  });
  const expected = await Promise.all(
    [...model.buffers().values()].map((b) => b.data()),
  );
  // Whichever slices are kept on the loss's tape.
  for (const keptSlices of [0, 1, 2, 3]) {
    const sliced = await runStep(config, views, { microBatch: 4, keptSlices });
    expected.forEach((b, i) =>
      assertClose(sliced.buffers[i], b, {
        rtol: 1e-6,
        atol: 1e-7,
        message: `${keptSlices} kept`,
      })
    );
  }
  model.dispose();
  tf.dispose(views);
});

// On blas when it loads: the same tensors, a fraction of cpu-fast's time.
const fastest = stepBackends.find(([name, loads]) => name === "blas" && loads)
  ?.[0] ?? "cpu-fast";

Deno.test(`stepGradients() in micro-batches of 16 peaks at the same tensor memory for batches of 64 and 256 (${fastest})`, () =>
  withBackend(fastest, async () => {
    const config = tinyConfig({ size: 32, "use-local-loss": false });
    const model = createVicregModel(config);
    const peakOf = async (b: number) => {
      const views = randomViews(b, 32, 17);
      const before = tf.memory().numBytes;
      const info = await tf.profile(() => {
        const out = stepGradients(model, views, { microBatch: 16 });
        tf.dispose([out.loss, ...out.grads.values()]);
      });
      tf.dispose(views);
      return info.peakBytes - before;
    };
    const small = await peakOf(64);
    const large = await peakOf(256);
    assertTrue(
      large <= 1.2 * small,
      `peak above the views: ${small} bytes at B = 64, ${large} at B = 256`,
    );
    // One slice of the whole batch grows with it: the test can tell.
    const views = randomViews(64, 32, 17);
    const before = tf.memory().numBytes;
    const whole = await tf.profile(() => {
      const out = stepGradients(model, views, {});
      tf.dispose([out.loss, ...out.grads.values()]);
    });
    tf.dispose(views);
    assertTrue(whole.peakBytes - before > 2 * small, `${whole.peakBytes}`);
    model.dispose();
  }, "cpu-fast"));

Deno.test("sliceRanges() covers the batch in order, the last slice smaller", () => {
  assertEquals(sliceRanges(8, 4), [[0, 4], [4, 4]]);
  assertEquals(sliceRanges(10, 4), [[0, 4], [4, 4], [8, 2]]);
  assertEquals(sliceRanges(3, 8), [[0, 3]]);
  assertEquals(sliceRanges(9, 4), [[0, 4], [4, 5]]);
});

Deno.test("stepGradients() rejects a micro-batch that is not an integer ≥ 2, and kept slices that are not an integer ≥ 0", () => {
  const model = createVicregModel(tinyConfig({ "use-local-loss": false }));
  const views = randomViews(2, 16, 1);
  for (const microBatch of [0, 1, -2, 2.5, NaN]) {
    assertThrows(
      () => stepGradients(model, views, { microBatch }),
      RangeError,
      "microBatch",
    );
  }
  for (const keptSlices of [-1, 1.5, NaN]) {
    assertThrows(
      () => stepGradients(model, views, { microBatch: 2, keptSlices }),
      RangeError,
      "keptSlices",
    );
  }
  tf.dispose(views);
  model.dispose();
});

Deno.test("stepGradients() in micro-batches reports each slice of both passes through onSlice", () => {
  const model = createVicregModel(tinyConfig({ "use-local-loss": false }));
  const views = randomViews(5, 16, 2);
  const callsOf = (keptSlices: number) => {
    const calls: [number, number][] = [];
    const out = stepGradients(model, views, {
      microBatch: 2,
      keptSlices,
      onSlice: (done, total) => calls.push([done, total]),
    });
    tf.dispose([out.loss, [...out.grads.values()]]);
    return calls;
  };
  // Slices of 2 and 3 (a last slice of one joins the one before), embedded,
  // then back-propagated, however many are kept on the loss's tape.
  for (const keptSlices of [0, 1, 2]) {
    assertEquals(callsOf(keptSlices), [1, 2, 3, 4].map((d) => [d, 4]));
  }
  tf.dispose(views);
  model.dispose();
});

/** 2 global views of 16 px and 2 local ones of 8 px (1×1 maps), seeded. */
function multiCropViews(n: number, seed: number): tf.Tensor4D[] {
  const rng = new Rng(seed);
  return [16, 16, 8, 8].map((size) =>
    tf.tensor4d(
      rng.fillNormal(new Float32Array(n * size * size * 3), 0, 1),
      [n, size, size, 3],
    )
  );
}

/** Each view's crop boxes: global views large, local ones small. */
function multiCropGeometry(n: number): ViewGeometry[][] {
  const [g1, g2] = geometryOf(n);
  const local = (x: number): ViewGeometry[] =>
    Array.from({ length: n }, (_, i) => ({
      box: [x, 0.02 * i, x + 0.3, 0.3 + 0.02 * i] as const,
      flip: i % 2 === 1,
    }));
  return [g1, g2, local(0.1), local(0.5)];
}

/** stepGradients on a fresh model with multi-crop views, read back. */
async function runMultiCropStep(
  config: PretrainConfig,
  views: tf.Tensor4D[],
  options: { mode?: StepMode; microBatch?: number; frozen?: boolean },
): Promise<StepResult> {
  const model = createVicregModel(config);
  const used = options.frozen
    ? new VicregModel(model, { ...model.settings, frozenBatchNorm: true })
    : model;
  const out = stepGradients(used, views, {
    geometry: multiCropGeometry(views[0].shape[0]),
    mode: options.mode,
    microBatch: options.microBatch,
  });
  const read = async (t: tf.Tensor) => await t.data() as Float32Array;
  const result: StepResult = {
    total: await read(out.loss.total),
    terms: Object.fromEntries(
      await Promise.all(
        Object.entries(out.loss.terms).map(async (
          [k, t],
        ) => [k, await read(t!)]),
      ),
    ),
    grads: new Map(
      await Promise.all(
        [...out.grads].map(async ([k, g]) => [k, await read(g)] as const),
      ),
    ),
    buffers: await Promise.all([...model.buffers().values()].map(read)),
  };
  tf.dispose([out.loss, ...out.grads.values()]);
  model.dispose();
  return result;
}

for (
  const [local, matching] of [
    [false, "index"],
    [true, "location"],
    [true, "feature"],
  ] as const
) {
  Deno.test(`stepGradients() with 2 global + 2 local views: mixed, view by view and micro-batches (frozen BatchNorm) give the joint step (local loss ${local}, ${matching} matching)`, async () => {
    const config = tinyConfig({
      "batch-size": 8,
      "use-local-loss": local,
      "local-matching": matching,
      "local-crops": 2,
      "local-crop-size": 8,
    });
    const views = multiCropViews(8, 21);
    const joint = await runMultiCropStep(config, views, {});
    for (const mode of ["mixed", "view-by-view"] as const) {
      assertSameStep(
        await runMultiCropStep(config, views, { mode }),
        joint,
        mode,
      );
    }
    const frozen = await runMultiCropStep(config, views, { frozen: true });
    for (const mode of ["joint", "view-by-view"] as const) {
      await assertNoLeak(async () => {
        assertSameStep(
          await runMultiCropStep(config, views, {
            frozen: true,
            microBatch: 2,
            mode,
          }),
          frozen,
          `M = 2, ${mode}`,
        );
      });
    }
    // The local views count: the two-view step of the same global views
    // gives another loss and other gradients.
    const two = await runStep(
      tinyConfig({
        "batch-size": 8,
        "use-local-loss": local,
        "local-matching": matching,
      }),
      [views[0], views[1]],
      {},
    );
    assertTrue(Math.abs(two.total[0] - joint.total[0]) > 1e-4);
    tf.dispose(views);
  });
}
