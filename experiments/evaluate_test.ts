import * as tf from "@tensorflow/tfjs-core";
import { type RgbImage, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertNoLeak,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { evalTransform } from "@scaling-vicreg/augment";
import { type ImageSource, proceduralDataset } from "@scaling-vicreg/data";
import { createResNet, type ResNet } from "@scaling-vicreg/models";
import { readNpy } from "@scaling-vicreg/backend/npy";
import { probeBackbone } from "./evaluate.ts";

Deno.test("probeBackbone() with probeBackend runs the probes there and restores the active backend", async () => {
  await useBackend("cpu");
  const backbone = createResNet("tiny", new Rng(0), { stem: "cifar" });
  const data = {
    train: proceduralDataset({ n: 60, size: 20, seed: 1 }),
    test: proceduralDataset({ n: 30, size: 20, seed: 2 }),
  };
  const options = {
    size: 16,
    tta: false,
    trials: 1,
    maxEpochs: 3,
    baselineEpochs: 3,
    batchSize: 16,
  };
  const same = await probeBackbone(backbone, data, options);
  await useBackend("cpu-fast");
  let moved: Awaited<ReturnType<typeof probeBackbone>> | undefined;
  await assertNoLeak(async () => {
    moved = await probeBackbone(backbone, data, {
      ...options,
      probeBackend: "cpu",
    });
  });
  assertEquals(tf.getBackend(), "cpu-fast");
  // Features from cpu-fast equal cpu's here (same kernels for a forward
  // pass), so the probes on cpu give the same report.
  // Everything but the trials' timings.
  const results = (r: typeof same) => ({
    baseline: r.baseline,
    sweep: r.sweep,
    knn: r.knn,
    trials: r.trials.map(({ seconds: _, ...t }) => t),
    confusion: r.confusion,
  });
  assertEquals(results(moved!), results(same));
  backbone.dispose();
  await useBackend("cpu");
});

// A labelled source of 24 × 24 images in four quadrants of flat colour: the
// top-left quadrant has class c's colour, the top-right the next class's, so
// a view's top-left pixel tells the class while the mean over TenCrop (five
// crops and their mirror images, whose top-left pixel is a box's top-right)
// is the mean of two classes' colours. A crop-sensitive toy "backbone"
// returns each view's top-left pixel, so plain and 10-crop features differ.
const PALETTE = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]];
function quadrantSource(n: number, seed: number): ImageSource {
  const rng = new Rng(seed);
  const images: RgbImage[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    const shift = [0, 1, 2].map(() => rng.uniform(-0.08, 0.08));
    const data = new Uint8Array(24 * 24 * 3);
    for (let y = 0; y < 24; y++) {
      for (let x = 0; x < 24; x++) {
        const colour = y >= 12
          ? [0.5, 0.5, 0.5]
          : PALETTE[x < 12 ? c : (c + 1) % 4];
        for (let k = 0; k < 3; k++) {
          const v = 0.15 + 0.7 * colour[k] + shift[k];
          data[(y * 24 + x) * 3 + k] = Math.round(255 * v);
        }
      }
    }
    images.push({ width: 24, height: 24, data });
    labels.push(c);
  }
  return {
    length: n,
    get: (i) => Promise.resolve(images[i]),
    label: (i) => labels[i],
    describe: () => `quadrants n=${n} seed=${seed}`,
  };
}

const topLeftPixel = (x: tf.Tensor4D) =>
  tf.reshape(tf.slice(x, [0, 0, 0, 0], [x.shape[0], 1, 1, 3]), [
    x.shape[0],
    3,
  ]) as tf.Tensor2D;

/** A stand-in backbone whose embedding is each view's top-left pixel. */
function topLeftBackbone(): ResNet {
  const fake = {
    arch: "tiny",
    stem: "cifar",
    embeddingDim: 3,
    forward: (x: tf.Tensor4D) => ({ embedding: topLeftPixel(x) }),
  };
  return fake as unknown as ResNet;
}

/**
 * The paper's 10-crop mean feature of each image, computed here without
 * `tenCrop`: bicubic resize to ⌊size / 0.875⌋ squared, torchvision FiveCrop
 * of the image and of its mirror image, the mean of the ten embeddings.
 */
function tenCropMean(images: RgbImage[], size: number): Float32Array {
  const r = Math.floor(size / 0.875);
  return tf.tidy(() => {
    const resized = evalTransform(images, { size: r });
    const mirrored = tf.reverse(resized, 2);
    const c = Math.round((r - size) / 2);
    const offsets = [[0, 0], [0, r - size], [r - size, 0], [
      r - size,
      r - size,
    ], [c, c]];
    const embeddings = [resized, mirrored].flatMap((img) =>
      offsets.map(([y, x]) =>
        topLeftPixel(
          tf.slice(img, [0, y, x, 0], [images.length, size, size, 3]),
        )
      )
    );
    return tf.div(tf.addN(embeddings), 10).dataSync() as Float32Array;
  });
}

Deno.test("probeBackbone() TTA fits on 10-crop mean train features and is not below the plain probe", async () => {
  await useBackend("cpu");
  const data = {
    train: quadrantSource(96, 1),
    test: quadrantSource(48, 2),
  };
  const size = 12; // ⌊12 / 0.875⌋ = 13, where round() would give 14
  const cacheDir = await Deno.makeTempDir();
  try {
    const report = await probeBackbone(topLeftBackbone(), data, {
      size,
      trials: 2,
      maxEpochs: 30,
      baselineEpochs: 30,
      batchSize: 16,
      cacheDir,
    });
    // The plain probe reads the class off the top-left colour; with 10-crop
    // features on every split the mean of two colours is as telling, so TTA
    // must not cost more than noise (one test image in 12 here).
    assertTrue(report.sweep.top1 > 0.9, `sweep ${report.sweep.top1}`);
    assertTrue(
      report.sweepTta !== null &&
        report.sweepTta.top1 >= report.sweep.top1 - 1 / 12,
      `sweep ${report.sweep.top1}, sweep + TTA ${report.sweepTta?.top1}`,
    );
    // Some cached feature file holds exactly the train split's 10-crop means.
    const images = await Promise.all(
      Array.from({ length: data.train.length }, (_, i) => data.train.get(i)),
    );
    const expected = tenCropMean(images, size);
    let found = 0;
    for await (const entry of Deno.readDir(cacheDir)) {
      const array = readNpy(await Deno.readFile(`${cacheDir}/${entry.name}`));
      const got = array.data as Float32Array;
      if (
        got.length === expected.length &&
        got.every((v, i) => Math.abs(v - expected[i]) < 1e-4)
      ) found++;
    }
    assertEquals(found, 1);
    assertEquals(report.ttaOn, "all");
    assertEquals(report.splits[2].train, "10-crop mean");
    assertTrue(
      report.transforms.tta.startsWith(
        "bicubic resize to 13 × 13 (⌊12 / 0.875⌋)",
      ),
      report.transforms.tta,
    );
    // The test-only variant, on request, is reported as such (and shows the
    // shift: the plain classifier on 10-crop means of two colours).
    const testOnly = await probeBackbone(topLeftBackbone(), data, {
      size,
      ttaOn: "test",
      trials: 2,
      maxEpochs: 30,
      baselineEpochs: 30,
      batchSize: 16,
      cacheDir,
    });
    assertEquals(testOnly.ttaOn, "test");
    assertEquals(testOnly.splits[2].train, "single view");
    assertTrue(testOnly.sweepTta!.top1 < report.sweepTta!.top1 - 0.2);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});
