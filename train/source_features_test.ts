import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import { assertClose, assertEquals } from "@scaling-vicreg/backend/testing";
import { evalTransform, tenCrop } from "@scaling-vicreg/augment";
import { proceduralDataset } from "@scaling-vicreg/data";
import { createResNet } from "@scaling-vicreg/models";
import { embedSource } from "./source_features.ts";

await useBackend("cpu");

Deno.test("embedSource() gives each image's eval-mode embedding (and its 10-crop mean), in source order across batches, leaving BatchNorm's statistics alone", async () => {
  const backbone = createResNet("tiny", new Rng(3), { stem: "cifar" });
  const source = proceduralDataset({ n: 5, size: 20, seed: 4 });
  const images = await Promise.all([0, 1, 2, 3, 4].map((i) => source.get(i)));
  const before = [...backbone.buffers().values()].map((v) => v.dataSync());
  const plain = await embedSource(backbone, source, { size: 16, batchSize: 2 });
  const tta = await embedSource(backbone, source, {
    size: 16,
    batchSize: 3,
    tta: true,
  });
  const dim = backbone.embeddingDim;
  // One image at a time, by hand: its eval view, and the mean over its ten crops.
  for (let i = 0; i < 5; i++) {
    const [one, ten] = tf.tidy(() => [
      backbone.forward(evalTransform([images[i]], { size: 16 }), {
        training: false,
      }).embedding,
      tf.mean(
        backbone.forward(tenCrop([images[i]], { size: 16 }), {
          training: false,
        }).embedding,
        0,
      ),
    ]);
    assertClose(
      plain.features.slice(i * dim, (i + 1) * dim),
      one.dataSync(),
      { rtol: 1e-5, atol: 1e-6 },
    );
    assertClose(
      tta.features.slice(i * dim, (i + 1) * dim),
      ten.dataSync(),
      { rtol: 1e-5, atol: 1e-6 },
    );
    tf.dispose([one, ten]);
  }
  assertEquals([plain.count, plain.dim], [5, dim]);
  assertEquals(Array.from(plain.labels), [0, 1, 2, 3, 4]);
  const after = [...backbone.buffers().values()].map((v) => v.dataSync());
  assertEquals(after, before);
  backbone.dispose();
});
