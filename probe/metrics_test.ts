import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
} from "@scaling-vicreg/backend/testing";
import {
  classificationMetrics,
  confusionMatrix,
  evaluateClassifier,
  perClassAccuracy,
  topKAccuracy,
} from "./metrics.ts";
import { trainLinearClassifier } from "./linear.ts";

await useBackend("cpu");

// Six classes, class 4 absent from the labels. By hand:
// row 0 (label 0): ranking 0,1,2,3,4 → top-1 hit.
// row 1 (label 0): ranking 1,2,3,4,5 → miss, not in top-5.
// row 2 (label 1): ranking 2,3,4,5,1 → miss, in top-5 (5th).
// row 3 (label 2): ranking 2,5,4,3,1 → top-1 hit.
// row 4 (label 3): ranking 0,5,4,3,2 → miss, in top-5 (4th).
// row 5 (label 5): ranking 5,4,3,2,1 → top-1 hit.
const LOGITS = [
  [5, 4, 3, 2, 1, 0],
  [0, 5, 4, 3, 2, 1],
  [1, 2, 6, 5, 4, 3],
  [0, 1, 9, 2, 3, 4],
  [9, 0, 1, 2, 3, 4],
  [0, 1, 2, 3, 4, 9],
];
const LABELS = Int32Array.of(0, 0, 1, 2, 3, 5);

Deno.test("classificationMetrics() matches hand-computed top-1, top-5, per-class and confusion", () => {
  const logits = tf.tensor2d(LOGITS);
  const m = classificationMetrics(logits, LABELS);
  assertClose(m.top1, 3 / 6);
  assertClose(m.top5, 5 / 6);
  assertEquals(m.perClass, [0.5, 0, 1, 0, null, 1]);
  assertClose(m.perClassAccuracy, 2.5 / 5);
  assertEquals(m.confusion, [
    [1, 1, 0, 0, 0, 0],
    [0, 0, 1, 0, 0, 0],
    [0, 0, 1, 0, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 1],
  ]);
  assertEquals(m.count, 6);
  logits.dispose();
});

Deno.test("topKAccuracy() counts a hit when the label is among the k best", () => {
  const logits = tf.tensor2d(LOGITS);
  assertClose(topKAccuracy(logits, LABELS, 1), 3 / 6);
  assertClose(topKAccuracy(logits, LABELS, 2), 3 / 6);
  assertClose(topKAccuracy(logits, LABELS, 4), 4 / 6);
  assertClose(topKAccuracy(logits, LABELS, 5), 5 / 6);
  assertClose(topKAccuracy(logits, LABELS, 6), 1);
  assertClose(topKAccuracy(logits, LABELS, 60), 1); // clipped to C
  assertThrows(() => topKAccuracy(logits, LABELS, 0), RangeError, "k");
  logits.dispose();
});

Deno.test("confusionMatrix() and perClassAccuracy() on a hand example", () => {
  const m = confusionMatrix(
    Int32Array.of(0, 1, 1, 2),
    Int32Array.of(0, 0, 1, 1),
    3,
  );
  assertEquals(m, [[1, 1, 0], [0, 1, 1], [0, 0, 0]]);
  assertEquals(perClassAccuracy(m), { perClass: [0.5, 0.5, null], mean: 0.5 });
  assertThrows(
    () => confusionMatrix(Int32Array.of(3), Int32Array.of(0), 3),
    RangeError,
    "predictions[0]",
  );
  assertThrows(
    () => confusionMatrix(Int32Array.of(0), Int32Array.of(0, 1), 3),
    TypeError,
    "as many",
  );
});

Deno.test("classificationMetrics() with fewer than 5 classes has top-5 = 1", () => {
  const logits = tf.tensor2d([[1, 0], [1, 0]]);
  const m = classificationMetrics(logits, Int32Array.of(0, 1));
  assertEquals([m.top1, m.top5, m.perClassAccuracy], [0.5, 1, 0.5]);
  assertThrows(
    () => classificationMetrics(logits, Int32Array.of(0, 1), { numClasses: 3 }),
    TypeError,
    "numClasses",
  );
  logits.dispose();
});

Deno.test("evaluateClassifier() gives the same metrics in batches and leaks nothing", async () => {
  const features = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2], [1, 1]]);
  const labels = Int32Array.of(0, 1, 0, 1, 0);
  const clf = trainLinearClassifier(features, labels, { epochs: 5, lr: 0.5 });
  const whole = evaluateClassifier(clf, { features, labels });
  const batched = evaluateClassifier(clf, { features, labels }, 2);
  assertEquals(batched, whole);
  await assertNoLeak(() => {
    evaluateClassifier(clf, { features, labels }, 2);
    const logits = tf.tensor2d(LOGITS);
    classificationMetrics(logits, LABELS);
    topKAccuracy(logits, LABELS, 3);
    logits.dispose();
  });
  clf.dispose();
  features.dispose();
});
