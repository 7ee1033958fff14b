import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertNoLeak,
  assertThrows,
} from "@scaling-vicreg/backend/testing";
import { embeddingStd } from "./monitor.ts";

await useBackend("cpu");

Deno.test("embeddingStd() gives the hand-computed mean std and collapsed fraction", () => {
  // columns: (0, 2, 4) std 2; (0, 0, 0.001) std 0.001/√3 ≈ 5.8e-4; (1, 1, 1) std 0
  const z = tf.tensor2d([[0, 0, 1], [2, 0, 1], [4, 0.001, 1]]);
  const r = embeddingStd(z);
  const small = 0.001 / Math.sqrt(3);
  assertClose(r.meanStd, (2 + small) / 3, { rtol: 1e-5 });
  assertClose(r.fractionBelow, 2 / 3);
  // a threshold below the small column's std counts only the constant one
  const t = embeddingStd(z, { threshold: 1e-4 });
  assertClose(t.fractionBelow, 1 / 3);
  tf.dispose([z, r, t]);
});

Deno.test("embeddingStd() leaks no tensors", async () => {
  const z = tf.tensor2d([[1, 2], [3, 5], [0, 1]]);
  await assertNoLeak(() => embeddingStd(z));
  tf.dispose(z);
});

Deno.test("embeddingStd() rejects bad input", () => {
  const one = tf.tensor2d([[1, 2]]);
  const r3 = tf.zeros([2, 2, 2]) as unknown as tf.Tensor2D;
  assertThrows(() => embeddingStd(one), RangeError, "N >= 2");
  assertThrows(() => embeddingStd(r3), TypeError, '"z"');
  const z = tf.zeros([3, 2]) as tf.Tensor2D;
  assertThrows(
    () => embeddingStd(z, { threshold: -1 }),
    RangeError,
    '"threshold"',
  );
  tf.dispose([one, r3, z]);
});
