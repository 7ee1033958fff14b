import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import type { Communicator } from "@scaling-vicreg/distributed/communicator";
import { resolveConfig } from "./config.ts";
import { stepGradients } from "./step.ts";
import type { StepMode } from "./step_options.ts";
import { createVicregModel } from "./vicreg_model.ts";
import { captureFirstView, OnlineProbe } from "./online_probe.ts";

await useBackend("cpu-fast");

Deno.test("OnlineProbe.step() makes two hand-computed SGD steps with momentum", async () => {
  // x = [[1, 2], [0, 1]], labels [0, 1], C = 2, lr 0.1, momentum 0.9.
  // Step 1: W = 0, b = 0, logits 0, p = ½ everywhere; loss ln 2; argmax is
  // class 0 for both rows: one hit. dL/dlogits = (p − y)/2 =
  // [[−¼, ¼], [¼, −¼]]; dW = xᵀ·that = [[−¼, ¼], [−¼, ¼]]; db = [0, 0].
  // μ = g; W = −0.1·g = [[0.025, −0.025], [0.025, −0.025]].
  const probe = new OnlineProbe(2, 2);
  const x = tf.tensor2d([[1, 2], [0, 1]]);
  const labels = Int32Array.of(0, 1);
  const first = await probe.step(x, labels, 0.1);
  assertClose(first.loss, Math.LN2, { rtol: 1e-6 });
  assertEquals([first.correct, first.count], [1, 2]);
  assertClose(probe.weight.dataSync(), [0.025, -0.025, 0.025, -0.025], {
    atol: 1e-8,
  });
  assertClose(probe.bias.dataSync(), [0, 0], { atol: 1e-8 });
  // Step 2, in float64: logits row 0 = [0.075, −0.075], row 1 =
  // [0.025, −0.025]; both rows still say class 0: one hit.
  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
  const loss = (-Math.log(sigmoid(0.15)) - Math.log(1 - sigmoid(0.05))) / 2;
  // dlogits = (p − y)/2: row 0 [d, −d], row 1 [e, −e]
  const d = (sigmoid(0.15) - 1) / 2, e = sigmoid(0.05) / 2;
  const g = [d, -d, 2 * d + e, -2 * d - e]; // dW = xᵀ·dlogits
  const gb = [d + e, -d - e];
  const mu1 = [-0.25, 0.25, -0.25, 0.25];
  const w = [0.025, -0.025, 0.025, -0.025].map((v, i) =>
    v - 0.1 * (0.9 * mu1[i] + g[i])
  );
  const b = gb.map((v) => -0.1 * v);
  const second = await probe.step(x, labels, 0.1);
  assertClose(second.loss, loss, { rtol: 1e-6 });
  assertEquals(second.correct, 1);
  assertClose(probe.weight.dataSync(), w, { rtol: 1e-5, atol: 1e-8 });
  assertClose(probe.bias.dataSync(), b, { rtol: 1e-5, atol: 1e-8 });
  assertEquals(probe.optimizerState().step, 2);
  tf.dispose(x);
  probe.dispose();
});

Deno.test("OnlineProbe learns three separable classes from scratch, and leaks no tensors", async () => {
  const rng = new Rng(5);
  const centres = [[3, 0, 0, 1], [0, 3, 0, 1], [0, 0, 3, 1]];
  const batch = () => {
    const labels = Int32Array.from({ length: 24 }, () => rng.int(3));
    const rows = Array.from(
      labels,
      (c) => centres[c].map((v) => v + rng.normal(0, 0.5)),
    );
    return { x: tf.tensor2d(rows), labels };
  };
  const probe = new OnlineProbe(4, 3);
  const first = batch();
  const before = await probe.step(first.x, first.labels, 0.05);
  tf.dispose(first.x);
  for (let i = 0; i < 40; i++) {
    const { x, labels } = batch();
    await probe.step(x, labels, 0.05);
    tf.dispose(x);
  }
  const last = batch();
  await assertNoLeak(async () => {
    await probe.step(last.x, last.labels, 0);
  });
  const after = await probe.step(last.x, last.labels, 0);
  tf.dispose(last.x);
  // At zero weights every row is called class 0: about a third right.
  assertTrue(before.correct / before.count < 0.6, `${before.correct}`);
  assertEquals(after.correct, after.count);
  assertTrue(after.loss < 0.2 * before.loss, `${before.loss} → ${after.loss}`);
  probe.dispose();
});

Deno.test("OnlineProbe.step() on two ranks, each with half the batch and its gradients all-reduced, equals one process with the whole batch", async () => {
  // Two ranks in this process: allReduce waits for both and sums.
  const pending: { buf: Float32Array; done: () => void }[] = [];
  const comm = (rank: number) =>
    ({
      rank,
      size: 2,
      allReduce(buf: Float32Array) {
        return new Promise<Float32Array>((resolve) => {
          pending.push({ buf, done: () => resolve(buf) });
          if (pending.length < 2) return;
          const sum = pending[0].buf.map((v, i) => v + pending[1].buf[i]);
          for (const p of pending.splice(0)) {
            p.buf.set(sum);
            p.done();
          }
        });
      },
    }) as unknown as Communicator;
  const rng = new Rng(9);
  const one = new OnlineProbe(3, 4);
  const ranks = [new OnlineProbe(3, 4), new OnlineProbe(3, 4)];
  for (let step = 0; step < 3; step++) {
    const rows = Array.from(
      { length: 6 },
      () => [0, 0, 0].map(() => rng.normal(0, 1)),
    );
    const labels = Int32Array.from({ length: 6 }, () => rng.int(4));
    const x = tf.tensor2d(rows);
    const halves = [tf.tensor2d(rows.slice(0, 3)), tf.tensor2d(rows.slice(3))];
    const whole = await one.step(x, labels, 0.5);
    const shards = await Promise.all(
      ranks.map((p, r) =>
        p.step(halves[r], labels.slice(3 * r, 3 * r + 3), 0.5, {
          comm: comm(r),
        })
      ),
    );
    for (const s of shards) {
      assertClose(s.loss, whole.loss, { rtol: 1e-6 });
      assertEquals([s.correct, s.count], [whole.correct, whole.count]);
    }
    tf.dispose([x, ...halves]);
  }
  for (const p of ranks) {
    assertClose(p.weight.dataSync(), one.weight.dataSync(), {
      rtol: 1e-5,
      atol: 1e-7,
    });
    assertClose(p.bias.dataSync(), one.bias.dataSync(), {
      rtol: 1e-5,
      atol: 1e-7,
    });
    p.dispose();
  }
  assertTrue(one.weight.dataSync().some((v) => v !== 0));
  one.dispose();
});

Deno.test("OnlineProbe.load() restores weights and momentum, so the next step is the same", async () => {
  const x = tf.tensor2d([[1, -1], [2, 0.5], [0, 1]]);
  const labels = Int32Array.of(0, 1, 2);
  const a = new OnlineProbe(2, 3);
  await a.step(x, labels, 0.3);
  const b = new OnlineProbe(2, 3);
  b.load(a.parameters(), a.optimizerState());
  await a.step(x, labels, 0.3);
  await b.step(x, labels, 0.3);
  assertEquals(b.weight.dataSync(), a.weight.dataSync());
  assertEquals(b.bias.dataSync(), a.bias.dataSync());
  assertThrows(
    () => new OnlineProbe(3, 3).load(a.parameters(), a.optimizerState()),
    TypeError,
    'online probe\'s "weight" of shape [3,3]',
  );
  tf.dispose(x);
  a.dispose();
  b.dispose();
});

Deno.test("OnlineProbe checks its features and labels", () => {
  const probe = new OnlineProbe(2, 3);
  const x = tf.tensor2d([[1, 2]]);
  assertThrows(
    () => probe.gradients(x, Int32Array.of(3)),
    RangeError,
    "[0, 3)",
  );
  assertThrows(
    () => probe.gradients(x, Int32Array.of(0, 1)),
    TypeError,
    "one label per",
  );
  const wide = tf.tensor2d([[1, 2, 3]]);
  assertThrows(
    () => probe.gradients(wide, Int32Array.of(0)),
    TypeError,
    "[N, 2]",
  );
  assertThrows(() => new OnlineProbe(2, 1), RangeError, "≥ 2");
  tf.dispose([x, wide]);
  probe.dispose();
});

function tinyModel(local: boolean) {
  return createVicregModel(resolveConfig({
    flags: {
      preset: "tiny",
      size: 16,
      mlp: "32-32",
      "local-mlp": "16-8",
      "use-local-loss": local,
    },
  }));
}

function randomViews(n: number, seed: number): [tf.Tensor4D, tf.Tensor4D] {
  return randomCrops(n, seed, [8, 8]) as [tf.Tensor4D, tf.Tensor4D];
}

/** Views of `n` images, one per size (multi-crop: 2 global, then local). */
function randomCrops(n: number, seed: number, sizes: number[]): tf.Tensor4D[] {
  const rng = new Rng(seed);
  return sizes.map((s) =>
    tf.tensor4d(rng.fillNormal(new Float32Array(n * s * s * 3), 0, 1), [
      n,
      s,
      s,
      3,
    ])
  );
}

/** Every value of a map of tensors, read back. */
function read(grads: Map<string, tf.Tensor>): Map<string, Float32Array> {
  return new Map([...grads].map(([k, g]) => [k, g.dataSync() as Float32Array]));
}

const CASES: { mode: StepMode; microBatch: number; keptSlices: number }[] = [
  { mode: "joint", microBatch: Infinity, keptSlices: 1 },
  { mode: "joint", microBatch: 3, keptSlices: 0 },
  { mode: "joint", microBatch: 3, keptSlices: 2 },
  { mode: "mixed", microBatch: Infinity, keptSlices: 1 },
  { mode: "view-by-view", microBatch: 4, keptSlices: 1 },
];

Deno.test("captureFirstView() gives view 1's training-mode embeddings of each slice, in batch order, and leaves the step's loss, gradients and running statistics bit for bit as they are (two views, and 2 global + 2 local crops)", () => {
  const crops = [[8, 8], [8, 8, 4, 4]];
  for (
    const c of CASES.flatMap((c) => crops.map((sizes) => ({ ...c, sizes })))
  ) {
    const name = JSON.stringify(c);
    const views = randomCrops(8, 1, c.sizes);
    // Without the capture.
    const plain = tinyModel(true);
    const bare = stepGradients(plain, views, c);
    const expected = {
      loss: bare.loss.total.dataSync()[0],
      grads: read(bare.grads),
      buffers: read(plain.buffers()),
    };
    // Each slice's view 1 through the backbone in training mode (BatchNorm on
    // the slice's statistics; the step applied no update, so these are the
    // weights the step saw), and, as a negative control, view 2's.
    const slices = c.microBatch === 3
      ? [[0, 3], [3, 3], [6, 2]]
      : c.microBatch === 4
      ? [[0, 4], [4, 4]]
      : [[0, 8]];
    const [ref, other] = [0, 1].map((v) =>
      tf.tidy(() =>
        tf.concat(
          slices.map(([start, size]) =>
            plain.backbone.forward(tf.slice(views[v], start, size), {
              training: true,
              updateRunningStats: false,
            }).embedding
          ),
        )
      )
    );
    tf.dispose([bare.loss, [...bare.grads.values()]]);
    plain.dispose();
    const model = tinyModel(true);
    const { result, features } = captureFirstView(
      model,
      () => stepGradients(model, views, c),
      views.length,
    );
    assertEquals(result.loss.total.dataSync()[0], expected.loss, name);
    assertEquals(read(result.grads), expected.grads, name);
    assertEquals(read(model.buffers()), expected.buffers, name);
    assertEquals(features.shape, [8, model.backbone.embeddingDim], name);
    assertClose(features.dataSync(), ref.dataSync(), {
      rtol: 1e-5,
      atol: 1e-6,
      message: name,
    });
    assertTrue(
      features.dataSync().some((v, i) =>
        Math.abs(v - other.dataSync()[i]) > 1e-3
      ),
      name,
    );
    assertEquals(model.onEmbedding, undefined);
    tf.dispose([views, ref, other, features, result.loss, [
      ...result.grads.values(),
    ]]);
    model.dispose();
  }
});

Deno.test("captureFirstView()'s features are detached: no gradient reaches the backbone through them", () => {
  const model = tinyModel(false);
  const views = randomViews(4, 2);
  const { result, features } = captureFirstView(
    model,
    () => stepGradients(model, views),
  );
  tf.dispose([result.loss, [...result.grads.values()]]);
  const backbone = [...model.backbone.parameters().values()];
  assertThrows(
    () => tf.variableGrads(() => tf.sum(tf.square(features)), backbone),
    Error,
    "Cannot find a connection between any variable and the result of the loss function",
  );
  // Control: the same function of features computed inside the tape has
  // gradients.
  const { value, grads } = tf.variableGrads(
    () =>
      tf.sum(
        tf.square(
          model.backbone.forward(views[0], { training: true }).embedding,
        ),
      ),
    backbone,
  );
  assertTrue(
    Object.values(grads).some((g) => g.dataSync().some((v) => v !== 0)),
  );
  tf.dispose([value, Object.values(grads), features, views]);
  model.dispose();
});

Deno.test("captureFirstView() leaks no tensors and clears the model's hook when the step throws", async () => {
  const model = tinyModel(false);
  const views = randomViews(4, 3);
  await assertNoLeak(() => {
    const { result, features } = captureFirstView(
      model,
      () => stepGradients(model, views, { microBatch: 2, keptSlices: 0 }),
    );
    tf.dispose([result.loss, [...result.grads.values()], features]);
  });
  assertThrows(
    () =>
      captureFirstView(model, () => {
        tf.dispose(model.embed(views[0]) as unknown as tf.TensorContainer);
        throw new RangeError("boom");
      }),
    RangeError,
    "boom",
  );
  assertEquals(model.onEmbedding, undefined);
  tf.dispose(views);
  model.dispose();
});
