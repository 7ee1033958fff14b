import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { selectRows, stratifiedSplit } from "./split.ts";

await useBackend("cpu");

// 50 rows of class 0, 30 of class 1, 20 of class 2, 1 of class 3, interleaved.
const LABELS = Int32Array.from(
  [
    ...new Array(50).fill(0),
    ...new Array(30).fill(1),
    ...new Array(20).fill(2),
    3,
  ].map((v, i, a) => a[(i * 37) % a.length] ?? v),
);

function count(labels: Int32Array, rows: Int32Array, c: number): number {
  return Array.from(rows).filter((r) => labels[r] === c).length;
}

Deno.test("stratifiedSplit() keeps each class's proportion and partitions the rows", () => {
  const { train, validation } = stratifiedSplit(LABELS, 0.2, new Rng(0));
  assertEquals([
    count(LABELS, validation, 0),
    count(LABELS, validation, 1),
    count(LABELS, validation, 2),
  ], [10, 6, 4]);
  assertEquals(count(LABELS, validation, 3), 0); // a single-row class stays in train
  const all = [...train, ...validation].sort((a, b) => a - b);
  assertEquals(all, Array.from({ length: LABELS.length }, (_, i) => i));
  assertTrue(train.every((v, i) => i === 0 || v > train[i - 1])); // ascending
});

Deno.test("stratifiedSplit() is reproducible from the seed and differs across seeds", () => {
  const a = stratifiedSplit(LABELS, 0.2, new Rng(5));
  const b = stratifiedSplit(LABELS, 0.2, new Rng(5));
  const c = stratifiedSplit(LABELS, 0.2, new Rng(6));
  assertEquals(a, b);
  assertTrue(
    Array.from(a.validation).join() !== Array.from(c.validation).join(),
  );
});

Deno.test("stratifiedSplit() gives every class of ≥ 2 rows one validation row, and validates", () => {
  const labels = Int32Array.of(0, 0, 1, 1, 1);
  const { validation } = stratifiedSplit(labels, 0.01, new Rng(0));
  assertEquals([count(labels, validation, 0), count(labels, validation, 1)], [
    1,
    1,
  ]);
  assertEquals(stratifiedSplit(labels, 0, new Rng(0)).validation.length, 0);
  assertThrows(
    () => stratifiedSplit(labels, 1, new Rng(0)),
    RangeError,
    "fraction",
  );
  assertThrows(
    () => stratifiedSplit(Int32Array.of(-1), 0.5, new Rng(0)),
    RangeError,
    "labels[0]",
  );
});

Deno.test("selectRows() gathers features and labels and leaks nothing", async () => {
  const features = tf.tensor2d([[1, 10], [2, 20], [3, 30]]);
  const data = { features, labels: Int32Array.of(5, 6, 7) };
  const part = selectRows(data, Int32Array.of(2, 0));
  assertClose(part.features, [[3, 30], [1, 10]]);
  assertEquals(Array.from(part.labels), [7, 5]);
  assertThrows(() => selectRows(data, Int32Array.of(3)), RangeError, "[0, 3)");
  await assertNoLeak(() => selectRows(data, Int32Array.of(1)).features);
  tf.dispose([features, part.features]);
});
