import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
} from "@scaling-vicreg/backend/testing";
import { knnAccuracy } from "./knn.ts";
import { blobs, flat, type PlainData } from "./testdata/reference.ts";

await useBackend("cpu");

/** Brute force in float64: full sort of cosine similarities, weighted votes. */
function bruteForceKnn(
  train: PlainData,
  test: PlainData,
  k: number,
  t: number,
  classes: number,
): { top1: number; top5: number; predictions: number[] } {
  const norm = (v: number[]) => {
    const n = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
    return v.map((x) => x / n);
  };
  const bank = train.x.map(norm);
  let hits1 = 0, hits5 = 0;
  const predictions: number[] = [];
  test.x.forEach((row, i) => {
    const q = norm(row);
    const sims = bank.map((b, j) => ({
      s: b.reduce((a, v, d) => a + v * q[d], 0),
      j,
    }));
    sims.sort((a, b) => b.s - a.s);
    const scores = new Array(classes).fill(0);
    for (const { s, j } of sims.slice(0, k)) {
      scores[train.y[j]] += Math.exp(s / t);
    }
    const order = scores.map((s, c) => ({ s, c })).sort((a, b) =>
      b.s - a.s || a.c - b.c
    );
    predictions.push(order[0].c);
    if (order[0].c === test.y[i]) hits1++;
    if (order.slice(0, 5).some((o) => o.c === test.y[i])) hits5++;
  });
  return {
    top1: hits1 / test.x.length,
    top5: hits5 / test.x.length,
    predictions,
  };
}

function labelled(d: PlainData) {
  return {
    features: tf.tensor2d(flat(d.x), [d.x.length, d.x[0].length]),
    labels: Int32Array.from(d.y),
  };
}

// Eight overlapping classes in 6-D so that kNN makes mistakes and top-5 ≠ top-1.
const rng = new Rng(11);
const centres = Array.from(
  { length: 8 },
  () => Array.from({ length: 6 }, () => rng.normal(0, 1)),
);
const TRAIN = blobs(centres, 12, 0.9, new Rng(12));
const TEST = blobs(centres, 5, 0.9, new Rng(13));

Deno.test("knnAccuracy() matches a brute-force float64 reference", () => {
  const train = labelled(TRAIN), test = labelled(TEST);
  for (const [k, t] of [[20, 0.07], [5, 0.5], [1, 1]]) {
    const ref = bruteForceKnn(TRAIN, TEST, k, t, 8);
    const got = knnAccuracy(train, test, { k, temperature: t, batchSize: 7 });
    assertEquals(Array.from(got.predictions), ref.predictions, `k=${k}`);
    assertClose(got.top1, ref.top1);
    assertClose(got.top5, ref.top5);
    assertEquals(got.k, k);
  }
  tf.dispose([train.features, test.features]);
});

Deno.test("knnAccuracy() is 100 % when test rows are scaled copies of training rows (k = 1)", () => {
  const train = labelled(TRAIN);
  const test = labelled({
    x: TRAIN.x.map((r) => r.map((v) => 3 * v)),
    y: TRAIN.y,
  });
  assertEquals(knnAccuracy(train, test, { k: 1 }).top1, 1);
  tf.dispose([train.features, test.features]);
});

Deno.test("knnAccuracy() clips k to the training set and validates inputs", () => {
  const train = {
    features: tf.tensor2d([[1, 0], [0, 1]]),
    labels: Int32Array.of(0, 1),
  };
  const test = { features: tf.tensor2d([[1, 0.2]]), labels: Int32Array.of(0) };
  assertEquals(knnAccuracy(train, test).k, 2);
  assertThrows(
    () => knnAccuracy(train, test, { temperature: 0 }),
    RangeError,
    "temperature",
  );
  assertThrows(() => knnAccuracy(train, test, { k: 0 }), RangeError, "k");
  const wide = { features: tf.tensor2d([[1, 0, 0]]), labels: Int32Array.of(0) };
  assertThrows(() => knnAccuracy(train, wide), TypeError, "same width");
  tf.dispose([train.features, test.features, wide.features]);
});

Deno.test("knnAccuracy() leaks no tensors", async () => {
  const train = labelled(TRAIN), test = labelled(TEST);
  await assertNoLeak(() => {
    knnAccuracy(train, test, { batchSize: 9 });
  });
  tf.dispose([train.features, test.features]);
});
