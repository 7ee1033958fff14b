import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "./backend.ts";
import { assertEquals, assertNoLeak, assertThrows } from "./testing.ts";
import { knnVote } from "./knn_vote.ts";

await useBackend("cpu");

// Query q = (0.6, 0.8). Bank rows (scaled: only their direction counts) and
// their cosine similarity to q:
//   (4.8, 3.6) class 1: 0.96    (0, 2) class 0: 0.80
//   (3, 0)     class 0: 0.60    (-1, 0) class 2: -0.60
// With k = 3 the neighbours are class 1 (0.96) and class 0 twice (0.8, 0.6).
// T = 0.07: class 1 scores e^(0.96/0.07) = e^13.71 ≈ 9.0e5, class 0
// e^11.43 + e^8.57 ≈ 9.7e4: class 1 wins. T = 10: class 1 e^0.096 ≈ 1.10,
// class 0 e^0.08 + e^0.06 ≈ 2.15: class 0 wins. Class 2 gets no vote.
const BANK_ROWS = [[4.8, 3.6], [0, 2], [3, 0], [-1, 0]];
const BANK_LABELS = Int32Array.of(1, 0, 0, 2);

function bank() {
  return {
    features: tf.tensor2d(BANK_ROWS),
    labels: BANK_LABELS,
    numClasses: 3,
  };
}

Deno.test("knnVote() weights votes by exp(similarity / T): the temperature decides a hand-computed case", () => {
  const b = bank();
  const q = tf.tensor2d([[0.6, 0.8], [1.2, 1.6]]);
  const sharp = knnVote(b, q, { k: 3, temperature: 0.07, top: 3 });
  const flat = knnVote(b, q, { k: 3, temperature: 10, top: 3 });
  // Class 2 has score 0 in both: last.
  assertEquals(Array.from(sharp.dataSync()), [1, 0, 2, 1, 0, 2]);
  assertEquals(Array.from(flat.dataSync()), [0, 1, 2, 0, 1, 2]);
  assertEquals(sharp.shape, [2, 3]);
  assertEquals(sharp.dtype, "int32");
  tf.dispose([b.features, q, sharp, flat]);
});

Deno.test("knnVote() clips k to the bank, splits the queries into batches, and ties go to the lower class", () => {
  const b = bank();
  // (-1, 0.001): nearest is class 2; (0, -1): (3, 0) of class 0 and (-1, 0)
  // of class 2 tie at similarity 0, the lower row wins. With k = 4 (clipped
  // from 20) every row votes at T = 100 (almost uniform): class 0 (two rows)
  // first, then the class of the larger remaining similarity: class 1 for
  // (0.6, 0.8) (0.96 vs -0.6), class 2 for the others (1 vs -0.80; 0 vs -0.6).
  const q = tf.tensor2d([[0.6, 0.8], [-1, 0.001], [0, -1]]);
  const one = knnVote(b, q, { k: 1 });
  assertEquals(Array.from(one.dataSync()), [1, 2, 0]);
  const all = knnVote(b, q, { temperature: 100, top: 2, batchSize: 2 });
  assertEquals(Array.from(all.dataSync()), [0, 1, 0, 2, 0, 2]);
  // Two classes with one equal vote each: the lower class first.
  const tie = {
    features: tf.tensor2d([[1, 0], [1, 0]]),
    labels: Int32Array.of(1, 0),
    numClasses: 2,
  };
  const t = knnVote(tie, tf.tensor2d([[1, 0]]), { k: 2, top: 2 });
  assertEquals(Array.from(t.dataSync()), [0, 1]);
  tf.dispose([b.features, q, one, all, tie.features, t]);
});

Deno.test("knnVote() validates its inputs", () => {
  const b = bank();
  const q = tf.tensor2d([[1, 0]]);
  assertThrows(() => knnVote(b, q, { k: 0 }), RangeError, "k");
  assertThrows(
    () => knnVote(b, q, { temperature: 0 }),
    RangeError,
    "temperature",
  );
  assertThrows(() => knnVote(b, q, { top: 4 }), RangeError, "top");
  const wide = tf.tensor2d([[1, 0, 0]]);
  assertThrows(() => knnVote(b, wide), TypeError, "same width");
  assertThrows(
    () => knnVote({ ...b, labels: Int32Array.of(0) }, q),
    TypeError,
    "one bank label per row",
  );
  tf.dispose([b.features, q, wide]);
});

Deno.test("knnVote() leaks no tensors", async () => {
  const b = bank();
  const q = tf.tensor2d([[0.6, 0.8], [1, 0], [0, 1]]);
  await assertNoLeak(() => {
    knnVote(b, q, { batchSize: 2 }).dispose();
  });
  tf.dispose([b.features, q]);
});
