import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { scheduledLr, trainLinearClassifier } from "./linear.ts";
import {
  blobs,
  ceGrad,
  flat,
  logisticOptimum,
  type PlainData,
} from "./testdata/reference.ts";

await useBackend("cpu");

function tensors(data: PlainData): [tf.Tensor2D, Int32Array] {
  return [
    tf.tensor2d(flat(data.x), [data.x.length, data.x[0].length]),
    Int32Array.from(data.y),
  ];
}

function argmaxRows(logits: tf.Tensor2D): number[] {
  const a = tf.argMax(logits, 1);
  const out = Array.from(a.dataSync());
  a.dispose();
  return out;
}

/** Overlapping 3-class blobs in 3-D: not separable, so the optimum is finite. */
function overlapping(): PlainData {
  return blobs([[1, 0, 0], [0, 1, 0], [0, 0, 1]], 20, 0.8, new Rng(3));
}

Deno.test("trainLinearClassifier() reaches 100 % on linearly separable features", () => {
  const centres = Array.from(
    { length: 4 },
    (_, c) => Array.from({ length: 8 }, (_, k) => (k === c ? 4 : 0)),
  );
  const train = blobs(centres, 25, 0.5, new Rng(1));
  const test = blobs(centres, 10, 0.5, new Rng(2));
  for (const optimizer of ["sgd", "adamw"] as const) {
    const [x, y] = tensors(train);
    const [xt, yt] = tensors(test);
    const clf = trainLinearClassifier(x, y, {
      optimizer,
      lr: optimizer === "sgd" ? 0.1 : 0.01,
      epochs: 10,
      batchSize: 16,
    });
    const logits = clf.predictLogits(xt);
    assertEquals(argmaxRows(logits), Array.from(yt), optimizer);
    tf.dispose([x, xt, logits]);
    clf.dispose();
  }
});

Deno.test("trainLinearClassifier() full-batch GD converges to the float64 L2-regularised logistic-regression optimum", () => {
  const data = overlapping();
  const wd = 0.1;
  const ref = logisticOptimum(data, 3, wd);
  const [x, y] = tensors(data);
  const clf = trainLinearClassifier(x, y, {
    lr: 1,
    momentum: 0,
    weightDecay: wd,
    scheduler: "constant",
    epochs: 100,
    batchSize: 60,
    standardize: false,
  });
  assertClose(clf.weights, ref.w, { atol: 1e-4, rtol: 0 });
  assertClose(clf.bias, ref.b, { atol: 1e-4, rtol: 0 });
  x.dispose();
  clf.dispose();
});

Deno.test("trainLinearClassifier() with SGD momentum 0.9 and cosine also approaches the optimum", () => {
  const data = overlapping();
  const wd = 0.1;
  const ref = logisticOptimum(data, 3, wd);
  const [x, y] = tensors(data);
  const clf = trainLinearClassifier(x, y, {
    lr: 0.5,
    weightDecay: wd,
    epochs: 100,
    batchSize: 60,
    standardize: false,
  });
  assertClose(clf.weights, ref.w, { atol: 2e-2, rtol: 0 });
  assertClose(clf.bias, ref.b, { atol: 2e-2, rtol: 0 });
  x.dispose();
  clf.dispose();
});

Deno.test("trainLinearClassifier() SGD steps follow PyTorch: v = μv + g + wd·w, w −= lr·v", () => {
  const data = overlapping();
  const [lr, mu, wd] = [0.3, 0.9, 0.01];
  // Reference: three full-batch steps in float64.
  let w = [[0, 0, 0], [0, 0, 0], [0, 0, 0]], b = [0, 0, 0];
  let vw = w.map((r) => r.map(() => 0)), vb = [0, 0, 0];
  for (let t = 0; t < 3; t++) {
    const { gw, gb } = ceGrad(data, w, b);
    vw = vw.map((r, k) => r.map((v, j) => mu * v + gw[k][j] + wd * w[k][j]));
    vb = vb.map((v, j) => mu * v + gb[j] + wd * b[j]);
    w = w.map((r, k) => r.map((v, j) => v - lr * vw[k][j]));
    b = b.map((v, j) => v - lr * vb[j]);
  }
  const [x, y] = tensors(data);
  const clf = trainLinearClassifier(x, y, {
    lr,
    momentum: mu,
    weightDecay: wd,
    scheduler: "constant",
    epochs: 3,
    batchSize: 60,
    standardize: false,
  });
  assertClose(clf.weights, w, { atol: 1e-5, rtol: 1e-4 });
  assertClose(clf.bias, b, { atol: 1e-5, rtol: 1e-4 });
  x.dispose();
  clf.dispose();
});

Deno.test("trainLinearClassifier() AdamW steps follow PyTorch (decoupled decay, bias correction)", () => {
  // Unbalanced classes, so no gradient is 0 (Adam's first step is ±lr·sign(g)).
  const full = overlapping();
  const keep = full.y.map((_, i) => i).filter((i) =>
    i % 7 !== 0 || full.y[i] !== 0
  );
  const data = { x: keep.map((i) => full.x[i]), y: keep.map((i) => full.y[i]) };
  const [lr, wd, b1, b2, eps] = [0.05, 0.1, 0.9, 0.999, 1e-8];
  let w = [[0, 0, 0], [0, 0, 0], [0, 0, 0]], b = [0, 0, 0];
  let mw = w.map((r) => r.map(() => 0)), vw = w.map((r) => r.map(() => 0));
  let mb = [0, 0, 0], vb = [0, 0, 0];
  const step = (p: number, g: number, m: number, v: number, t: number) => {
    const nm = b1 * m + (1 - b1) * g;
    const nv = b2 * v + (1 - b2) * g * g;
    const mh = nm / (1 - b1 ** t), vh = nv / (1 - b2 ** t);
    return [p * (1 - lr * wd) - lr * mh / (Math.sqrt(vh) + eps), nm, nv];
  };
  for (let t = 1; t <= 4; t++) {
    const { gw, gb } = ceGrad(data, w, b);
    const nw = w.map((r, k) =>
      r.map((p, j) => step(p, gw[k][j], mw[k][j], vw[k][j], t))
    );
    const nb = b.map((p, j) => step(p, gb[j], mb[j], vb[j], t));
    w = nw.map((r) => r.map((s) => s[0]));
    mw = nw.map((r) => r.map((s) => s[1]));
    vw = nw.map((r) => r.map((s) => s[2]));
    b = nb.map((s) => s[0]);
    mb = nb.map((s) => s[1]);
    vb = nb.map((s) => s[2]);
  }
  const [x, y] = tensors(data);
  const clf = trainLinearClassifier(x, y, {
    optimizer: "adamw",
    lr,
    weightDecay: wd,
    scheduler: "constant",
    epochs: 4,
    batchSize: data.y.length,
    standardize: false,
  });
  assertClose(clf.weights, w, { atol: 1e-5, rtol: 1e-4 });
  assertClose(clf.bias, b, { atol: 1e-5, rtol: 1e-4 });
  x.dispose();
  clf.dispose();
});

Deno.test("trainLinearClassifier() standardisation makes the probe invariant to feature scale and shift", () => {
  const data = overlapping();
  const scaled: PlainData = {
    x: data.x.map((r) => r.map((v, k) => 1000 * (k + 1) * v + 50 * k)),
    y: data.y,
  };
  const opts = { lr: 0.1, epochs: 5, batchSize: 8, seed: 7 };
  const [x, y] = tensors(data);
  const [xs] = tensors(scaled);
  const a = trainLinearClassifier(x, y, opts);
  const b = trainLinearClassifier(xs, y, opts);
  const la = a.predictLogits(x), lb = b.predictLogits(xs);
  assertClose(lb, la, { atol: 1e-3, rtol: 1e-3 });
  // The stored statistics are the population mean / std of the training set.
  const m0 = data.x.reduce((s, r) => s + r[0], 0) / 60;
  const v0 = data.x.reduce((s, r) => s + (r[0] - m0) ** 2, 0) / 60;
  assertClose(a.mean!.dataSync()[0], m0, { rtol: 1e-5 });
  assertClose(a.std!.dataSync()[0], Math.sqrt(v0), { rtol: 1e-5 });
  tf.dispose([x, xs, la, lb]);
  a.dispose();
  b.dispose();
});

Deno.test("trainLinearClassifier() is reproducible from its seed and reports the epoch loss", () => {
  const data = overlapping();
  const [x, y] = tensors(data);
  const losses: number[] = [];
  const a = trainLinearClassifier(x, y, {
    epochs: 5,
    batchSize: 8,
    seed: 1,
    lr: 0.1,
    onEpoch: (_e, loss) => losses.push(loss),
  });
  const b = trainLinearClassifier(x, y, {
    epochs: 5,
    batchSize: 8,
    rng: new Rng(1),
    lr: 0.1,
  });
  assertEquals(
    Array.from(a.weights.dataSync()),
    Array.from(b.weights.dataSync()),
  );
  assertEquals(losses.length, 5);
  assertClose(losses[0], Math.log(3), { rtol: 0.2 }); // starts near log C
  assertTrue(losses[4] < losses[0]);
  x.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("trainLinearClassifier() validates its options and inputs", () => {
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const y = Int32Array.of(0, 1);
  assertThrows(
    () => trainLinearClassifier(x, y, { epochs: 101 }),
    RangeError,
    "epochs",
  );
  assertThrows(
    () => trainLinearClassifier(x, y, { epochs: 0 }),
    RangeError,
    "epochs",
  );
  assertThrows(
    // @ts-expect-error: an unknown optimizer
    () => trainLinearClassifier(x, y, { optimizer: "lbfgs" }),
    RangeError,
    "optimizer",
  );
  assertThrows(
    () => trainLinearClassifier(x, Int32Array.of(0)),
    TypeError,
    "one label per row",
  );
  assertThrows(
    () => trainLinearClassifier(x, Int32Array.of(0, 2), { numClasses: 2 }),
    RangeError,
    "labels[1]",
  );
  const x3 = tf.zeros([2, 2, 1]);
  assertThrows(
    () => trainLinearClassifier(x3 as tf.Tensor2D, y),
    TypeError,
    "rank 2",
  );
  tf.dispose([x, x3]);
});

Deno.test("trainLinearClassifier() and predictLogits() leak no tensors", async () => {
  const x = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2]]);
  const y = Int32Array.of(0, 1, 0, 1);
  for (const optimizer of ["sgd", "adamw"] as const) {
    for (const standardize of [true, false]) {
      await assertNoLeak(() => {
        const clf = trainLinearClassifier(x, y, {
          optimizer,
          standardize,
          epochs: 2,
          batchSize: 3,
          onEpoch: () => {},
        });
        const logits = clf.predictLogits(x);
        clf.dispose();
        return logits;
      });
    }
  }
  x.dispose();
});

Deno.test("scheduledLr() gives PyTorch's per-epoch cosine and StepLR rates", () => {
  assertClose(
    scheduledLr(0, { lr: 0.1, scheduler: "cosine", epochs: 10 }),
    0.1,
  );
  assertClose(
    scheduledLr(5, { lr: 0.1, scheduler: "cosine", epochs: 10 }),
    0.05,
  );
  assertClose(
    scheduledLr(9, { lr: 1, scheduler: "cosine", epochs: 10 }),
    (1 + Math.cos(0.9 * Math.PI)) / 2,
  );
  // StepLR default step size ⌈epochs/3⌉ = 4 for 10 epochs.
  assertClose(scheduledLr(3, { lr: 1, scheduler: "step", epochs: 10 }), 1);
  assertClose(scheduledLr(4, { lr: 1, scheduler: "step", epochs: 10 }), 0.1);
  assertClose(
    scheduledLr(9, {
      lr: 1,
      scheduler: "step",
      epochs: 10,
      stepSize: 3,
      gamma: 0.5,
    }),
    0.125,
  );
  assertClose(
    scheduledLr(7, { lr: 0.3, scheduler: "constant", epochs: 10 }),
    0.3,
  );
});
