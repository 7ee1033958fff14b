import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { viewMix } from "./view_mix.ts";

await useBackend("cpu");

Deno.test("viewMix() mixes each sample with its own λ: x' = λx + (1 − λ)y", () => {
  const x = tf.randomUniform([3, 2, 2, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.randomUniform([3, 2, 2, 3], 0, 1, "float32", 2) as tf.Tensor4D;
  const out = viewMix(x, y, new Rng(0), { p: 1 });
  const lambdas = out.lambdas!;
  assertEquals(lambdas.length, 3);
  const xs = x.dataSync(), ys = y.dataSync(), per = 12;
  const mx = out.x.dataSync(), my = out.y.dataSync();
  for (let i = 0; i < xs.length; i++) {
    const l = lambdas[Math.floor(i / per)];
    assertClose(mx[i], l * xs[i] + (1 - l) * ys[i], { atol: 1e-6 });
    assertClose(my[i], l * ys[i] + (1 - l) * xs[i], { atol: 1e-6 });
  }
  tf.dispose([x, y, out.x, out.y]);
});

Deno.test("viewMix() mixes about half of the batches, with Beta(1, 1) λ", () => {
  const x = tf.zeros([4, 1, 1, 1]) as tf.Tensor4D;
  const rng = new Rng(11);
  let mixed = 0;
  const lambdas: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const out = viewMix(x, x, rng);
    if (out.lambdas) {
      mixed++;
      lambdas.push(...out.lambdas);
    }
    tf.dispose([out.x, out.y]);
  }
  assertTrue(Math.abs(mixed / 1000 - 0.5) < 0.05, `rate ${mixed / 1000}`);
  const mean = lambdas.reduce((s, v) => s + v, 0) / lambdas.length;
  const below = lambdas.filter((v) => v < 0.25).length / lambdas.length;
  assertTrue(Math.abs(mean - 0.5) < 0.03 && Math.abs(below - 0.25) < 0.03);
  x.dispose();
});

Deno.test("viewMix() validates and does not leak", async () => {
  const x = tf.zeros([2, 2, 2, 3]) as tf.Tensor4D;
  const y = tf.ones([2, 2, 2, 3]) as tf.Tensor4D;
  const same = viewMix(x, y, new Rng(0), { p: 0 });
  assertEquals(same.lambdas, null);
  assertClose(same.x, x);
  tf.dispose([same.x, same.y]);
  assertThrows(
    () => viewMix(x, y, new Rng(0), { alpha: 0 }),
    RangeError,
    "alpha",
  );
  assertThrows(
    () => viewMix(x, tf.zeros([1, 2, 2, 3]) as tf.Tensor4D, new Rng(0)),
    TypeError,
    "same",
  );
  await assertNoLeak(() => {
    const out = viewMix(x, y, new Rng(3), { p: 1 });
    tf.dispose([out.x, out.y]);
  });
  tf.dispose([x, y]);
});

Deno.test("viewMix() on shards of a batch mixes each row as the whole batch does", async () => {
  const rng = new Rng(3);
  const x = tf.randomNormal([6, 2, 2, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.randomNormal([6, 2, 2, 3], 0, 1, "float32", 2) as tf.Tensor4D;
  const whole = viewMix(x, y, rng.fork("b"), { p: 1 });
  const shards = [[0, 2], [2, 4]].map(([start, size]) => {
    const cut = (t: tf.Tensor4D) =>
      tf.slice(t, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D;
    return viewMix(cut(x), cut(y), rng.fork("b"), {
      p: 1,
      rows: { start, total: 6 },
    });
  });
  assertEquals(
    Array.from(shards.flatMap((s) => Array.from(s.lambdas!))),
    Array.from(whole.lambdas!),
  );
  const joined = tf.concat(shards.map((s) => s.x));
  assertEquals(
    Array.from(await joined.data()),
    Array.from(await whole.x.data()),
  );
  assertThrows(
    () => viewMix(x, y, rng, { p: 1, rows: { start: 2, total: 6 } }),
    RangeError,
    "rows",
  );
  tf.dispose([x, y, whole, shards, joined] as tf.TensorContainer);
});
