import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertRejects,
} from "@scaling-vicreg/backend/testing";
import { createResNet } from "./resnet.ts";
import { embedImages } from "./embed.ts";

await useBackend("cpu");

Deno.test("embedImages() equals one eval-mode forward regardless of batch size", async () => {
  const net = createResNet("tiny", new Rng(0), { widthMultiplier: 0.25 });
  const rng = new Rng(1);
  const data = rng.fillNormal(new Float32Array(5 * 8 * 8 * 3));
  const images = { shape: [5, 8, 8, 3], dtype: "float32" as const, data };
  const expected = tf.tidy(() =>
    net.forward(tf.tensor4d(data, [5, 8, 8, 3])).embedding.dataSync()
  );
  const done: number[] = [];
  await assertNoLeak(async () => {
    const out = await embedImages(net, images, {
      batchSize: 2,
      onProgress: (d) => done.push(d),
    });
    assertEquals(out.shape, [5, 32]);
    assertClose(out.data as Float32Array, expected, { rtol: 1e-5, atol: 1e-6 });
  });
  assertEquals(done, [2, 4, 5]);
  net.dispose();
});

Deno.test("embedImages() rejects non-image arrays and bad batch sizes", async () => {
  const net = createResNet("tiny", new Rng(0), { widthMultiplier: 0.25 });
  await assertRejects(
    () =>
      embedImages(net, {
        shape: [2, 4, 4, 1],
        dtype: "float32",
        data: new Float32Array(32),
      }),
    TypeError,
    "[N, H, W, 3]",
  );
  await assertRejects(
    () =>
      embedImages(net, {
        shape: [1, 1, 1, 3],
        dtype: "uint8",
        data: new Uint8Array(3),
      }),
    TypeError,
    "float32",
  );
  await assertRejects(
    () =>
      embedImages(net, {
        shape: [1, 1, 1, 3],
        dtype: "float32",
        data: new Float32Array(3),
      }, { batchSize: 0 }),
    RangeError,
    "batchSize",
  );
  net.dispose();
});
