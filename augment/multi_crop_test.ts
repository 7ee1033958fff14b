import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { multiCrop } from "./multi_crop.ts";

await useBackend("cpu");

const image = {
  width: 40,
  height: 36,
  data: new Uint8Array(40 * 36 * 3).map((_, i) => (i * 7) % 256),
};

Deno.test("multiCrop() makes global and local views of the requested sizes and scales", () => {
  const v = multiCrop([image, image], new Rng(0), {
    globalSize: 12,
    localSize: 6,
    numLocal: 3,
  });
  assertEquals(v.global.map((t) => t.shape), [[2, 12, 12, 3], [2, 12, 12, 3]]);
  assertEquals(v.local.map((t) => t.shape), Array(3).fill([2, 6, 6, 3]));
  const area = (p: { crop: { width: number; height: number } }) =>
    p.crop.width * p.crop.height / (40 * 36);
  // Integer crop sides move the area fraction a little off the range.
  for (const p of v.params.global.flat()) {
    assertTrue(area(p) >= 0.45 && area(p) <= 1);
  }
  for (const p of v.params.local.flat()) {
    assertTrue(area(p) >= 0.03 && area(p) <= 0.55);
  }
  // The first global view follows view 1 (blur always).
  assertTrue(v.params.global[0].every((p) => p.blurSigma !== null));
  tf.dispose([...v.global, ...v.local]);
});

Deno.test("multiCrop() is reproducible, validates and does not leak", async () => {
  const a = multiCrop([image], new Rng(5), {
    globalSize: 8,
    localSize: 4,
    numLocal: 2,
  });
  const b = multiCrop([image], new Rng(5), {
    globalSize: 8,
    localSize: 4,
    numLocal: 2,
  });
  assertEquals(a.params, b.params);
  assertEquals(
    Array.from(a.local[1].dataSync()),
    Array.from(b.local[1].dataSync()),
  );
  tf.dispose([...a.global, ...a.local, ...b.global, ...b.local]);
  assertThrows(
    () => multiCrop([image], new Rng(0), { numLocal: -1 }),
    RangeError,
    "numLocal",
  );
  await assertNoLeak(() => {
    const v = multiCrop([image], new Rng(1), {
      globalSize: 8,
      localSize: 4,
      numLocal: 1,
    });
    tf.dispose([...v.global, ...v.local]);
  });
});
