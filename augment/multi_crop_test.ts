import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  multiCrop,
  MultiCropTransform,
  paperScaledLocalSize,
  parseScaleRange,
  resolveMultiCropOptions,
  vicreglCrops,
} from "./multi_crop.ts";
import { TrainTransform } from "./train_transform.ts";

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

Deno.test("MultiCropTransform with 2 global views and no local ones is TrainTransform exactly (params and pixels)", () => {
  const options = { size: 16, scale: [0.2, 1] as const };
  const two = new TrainTransform(options);
  const multi = new MultiCropTransform({
    ...options,
    globalSize: 16,
    globalScale: [0.2, 1],
    numLocal: 0,
  });
  const images = [image, { ...image, data: image.data.map((v) => 255 - v) }];
  const [p1, p2] = two.sample(images, new Rng(9));
  const params = multi.sample(images, new Rng(9));
  assertEquals(params, [p1, p2]);
  const { view1, view2 } = two.render(images, [p1, p2]);
  const views = multi.render(images, params);
  assertEquals(Array.from(views[0].dataSync()), Array.from(view1.dataSync()));
  assertEquals(Array.from(views[1].dataSync()), Array.from(view2.dataSync()));
  tf.dispose([view1, view2, ...views]);
});

Deno.test("MultiCropTransform draws local view k from its own fork: adding local views changes no other view", () => {
  const o = { globalSize: 12, localSize: 6 };
  const few = new MultiCropTransform({ ...o, numLocal: 2 });
  const many = new MultiCropTransform({ ...o, numLocal: 5 });
  const a = few.sample([image, image], new Rng(3));
  const b = many.sample([image, image], new Rng(3));
  assertEquals(b.slice(0, 4), a);
  assertEquals(b.length, 7);
  // the local views differ from each other and from image to image
  assertTrue(
    b[2][0].crop.x !== b[3][0].crop.x || b[2][0].crop.y !== b[3][0].crop.y,
  );
  assertTrue(
    b[2][0].crop.x !== b[2][1].crop.x || b[2][0].crop.y !== b[2][1].crop.y,
  );
  // the generator advanced by the global draws only
  const r1 = new Rng(3), r2 = new Rng(3);
  few.sample([image], r1);
  new MultiCropTransform({ ...o, numLocal: 0 }).sample([image], r2);
  assertEquals(r1.nextUint32(), r2.nextUint32());
});

Deno.test("MultiCropTransform gives each view's size, scale and crop geometry", () => {
  const t = new MultiCropTransform({
    globalSize: 16,
    localSize: 8,
    numGlobal: 2,
    numLocal: 4,
    globalScale: [0.4, 1],
    localScale: [0.05, 0.4],
  });
  assertEquals(t.sizes, [16, 16, 8, 8, 8, 8]);
  assertEquals(t.numViews, 6);
  const params = t.sample([image, image, image], new Rng(1));
  const views = t.render([image, image, image], params);
  assertEquals(views.map((v) => v.shape), t.sizes.map((s) => [3, s, s, 3]));
  params.forEach((view, v) =>
    view.forEach((p) => {
      const area = p.crop.width * p.crop.height / (40 * 36);
      // integer crop sides move the fraction a little off the range
      if (v < 2) assertTrue(area >= 0.36 && area <= 1, `global ${area}`);
      else assertTrue(area >= 0.03 && area <= 0.44, `local ${area}`);
      // the box the local loss reads is the crop in source fractions
      assertEquals(p.box, [
        p.crop.x / 40,
        p.crop.y / 36,
        (p.crop.x + p.crop.width) / 40,
        (p.crop.y + p.crop.height) / 36,
      ]);
    })
  );
  // local views: VICRegL's blur p 0.5, no solarization
  assertTrue(params.slice(2).flat().every((p) => !p.solarize));
  assertThrows(
    () => t.render([image], params),
    RangeError,
    "6 views of 1 images",
  );
  tf.dispose(views);
});

Deno.test("resolveMultiCropOptions() rejects scales outside (0, 1] and bad counts", () => {
  assertThrows(
    () => resolveMultiCropOptions({ localScale: [0, 0.4] }),
    RangeError,
    "localScale",
  );
  assertThrows(
    () => resolveMultiCropOptions({ globalScale: [0.5, 1.2] }),
    RangeError,
    "0 < lo ≤ hi ≤ 1",
  );
  assertThrows(
    () => resolveMultiCropOptions({ globalScale: [0.8, 0.5] }),
    RangeError,
    "globalScale",
  );
  assertThrows(
    () => resolveMultiCropOptions({ numGlobal: 1.5 }),
    RangeError,
    "numGlobal",
  );
  assertThrows(
    () => resolveMultiCropOptions({ localBlurP: 2 }),
    RangeError,
    "localBlurP",
  );
  assertEquals(resolveMultiCropOptions().localScale, [0.05, 0.5]);
});

Deno.test("vicreglCrops() is VICRegL's recipe, local crops at its 96/224 ratio", () => {
  assertEquals(vicreglCrops(224), {
    numGlobal: 2,
    numLocal: 6,
    globalSize: 224,
    localSize: 96,
    globalScale: [0.4, 1],
    localScale: [0.08, 0.4],
  });
  assertEquals(
    [96, 64, 32, 2].map(paperScaledLocalSize),
    [41, 27, 14, 1],
  );
});

Deno.test("parseScaleRange() reads lo,hi and rejects text or values outside (0, 1]", () => {
  assertEquals(parseScaleRange("0.08,0.4", "x"), [0.08, 0.4]);
  assertEquals(parseScaleRange(" 0.5 , 1 ", "x"), [0.5, 1]);
  assertThrows(
    () => parseScaleRange("0.4", "--s"),
    RangeError,
    "--s as two numbers",
  );
  assertThrows(() => parseScaleRange("a,1", "--s"), RangeError, "two numbers");
  assertThrows(
    () => parseScaleRange("0,0.4", "--s"),
    RangeError,
    "0 < lo ≤ hi ≤ 1",
  );
  assertThrows(() => parseScaleRange("0.5,1.5", "--s"), RangeError, "--s");
  assertThrows(() => parseScaleRange("0.6,0.5", "--s"), RangeError, "--s");
});
