import * as tf from "@tensorflow/tfjs-core";
import { type RgbImage, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { type ImageSource, proceduralDataset } from "@scaling-vicreg/data";
import type { ResNet } from "@scaling-vicreg/models";
import { onlineKnnSplit, onlineKnnTop1, sourceLabels } from "./online_knn.ts";

await useBackend("cpu");

/** Solid 4×4 images of the given colours and labels. */
function solid(
  colours: [number, number, number][],
  labels: (number | undefined)[],
): ImageSource {
  const image = (c: [number, number, number]): RgbImage => ({
    width: 4,
    height: 4,
    data: Uint8Array.from({ length: 48 }, (_, i) => c[i % 3]),
  });
  return {
    length: colours.length,
    get: (i) => Promise.resolve(image(colours[i])),
    label: (i) => labels[i],
    describe: () => "solid colours",
  };
}

/**
 * A stand-in backbone whose embedding is each image's mean colour
 * (normalised), recording the mode of every pass.
 */
function meanColourBackbone(modes: boolean[]): ResNet {
  return {
    embeddingDim: 3,
    forward: (x: tf.Tensor4D, o: { training?: boolean }) => {
      modes.push(o.training ?? true);
      return { embedding: tf.mean(x, [1, 2]) };
    },
  } as unknown as ResNet;
}

const RED: [number, number, number] = [255, 0, 0];
const GREEN: [number, number, number] = [0, 255, 0];
const BLUE: [number, number, number] = [0, 0, 255];

Deno.test("onlineKnnTop1() classifies each held-back image by its nearest pretraining images in eval mode: a hand-computed case", async () => {
  // After ImageNet normalisation red, green and blue point apart (pairwise
  // cosine < 0): each query's 3 same-colour bank images have similarity 1
  // and outvote the 6 others (k = 20 clipped to 9; weights e^(1/0.07) ≫
  // e^(s/0.07), s < 0). Queries: red labelled 0 (right), green labelled 1
  // (right), blue labelled 0 (wrong: blue is class 2): top-1 = 2/3.
  const bank = solid(
    [RED, RED, RED, GREEN, GREEN, GREEN, BLUE, BLUE, BLUE],
    [0, 0, 0, 1, 1, 1, 2, 2, 2],
  );
  const queries = solid([RED, GREEN, BLUE], [0, 1, 0]);
  const modes: boolean[] = [];
  const split = { pretrain: bank, heldOut: queries, numClasses: 3 };
  const top1 = await onlineKnnTop1(meanColourBackbone(modes), split, {
    size: 4,
    batchSize: 4,
  });
  assertEquals(top1, 2 / 3);
  // 9 bank images in batches of 4, then 3 queries: 4 passes, all eval mode.
  assertEquals(modes, [false, false, false, false]);
  // The labels of the queries are what is scored: all right when relabelled.
  const right = solid([RED, GREEN, BLUE], [0, 1, 2]);
  assertEquals(
    await onlineKnnTop1(meanColourBackbone([]), {
      ...split,
      heldOut: right,
    }, { size: 4 }),
    1,
  );
  await assertNoLeak(async () => {
    await onlineKnnTop1(meanColourBackbone([]), split, { size: 4 });
  });
});

Deno.test("onlineKnnSplit() holds a fixed stratified fraction of each class back, disjoint from the pretraining images", async () => {
  const source = proceduralDataset({ n: 200, size: 8 });
  const split = onlineKnnSplit(source, { fraction: 0.1, seed: 3 });
  assertEquals([split.pretrain.length, split.heldOut.length], [180, 20]);
  assertEquals(split.numClasses, 10);
  // Two per class (classes cycle, 20 images each).
  const held = Array.from({ length: 20 }, (_, i) => split.heldOut.label(i)!);
  for (let c = 0; c < 10; c++) {
    assertEquals(held.filter((l) => l === c).length, 2);
  }
  assertTrue(split.heldOut.describe().includes("held back for the online kNN"));
  // The same seed, the same split; another seed, another one.
  const again = onlineKnnSplit(source, { fraction: 0.1, seed: 3 });
  const other = onlineKnnSplit(source, { fraction: 0.1, seed: 4 });
  const rows = async (s: ImageSource) =>
    await Promise.all(
      Array.from({ length: s.length }, async (_, i) =>
        (await s.get(i)).data.join()),
    );
  const [a, b, c, p] = await Promise.all([
    rows(split.heldOut),
    rows(again.heldOut),
    rows(other.heldOut),
    rows(split.pretrain),
  ]);
  assertEquals(a, b);
  assertTrue(a.join("|") !== c.join("|"));
  const pretrain = new Set(p);
  assertTrue(a.every((r) => !pretrain.has(r)));
  assertEquals(new Set([...a, ...p]).size, 200);
});

Deno.test("onlineKnnSplit() and sourceLabels() refuse data without labels", () => {
  const unlabelled = solid([RED, GREEN, BLUE], [0, undefined, 1]);
  assertEquals(sourceLabels(unlabelled), undefined);
  assertEquals(sourceLabels(solid([RED, GREEN], [0, 4]))?.numClasses, 5);
  assertThrows(
    () => onlineKnnSplit(unlabelled),
    RangeError,
    "solid colours has images without a label",
  );
  assertThrows(
    () => onlineKnnSplit(solid([RED, GREEN], [0, 1])),
    RangeError,
    "every class has fewer than two",
  );
});
