import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import { writeNpy } from "@scaling-vicreg/backend/npy";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertRejects,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  extractFeatures,
  featureCacheKey,
  loadOrComputeFeatures,
  readLabelledFeatures,
  sha256Hex,
  toLabelledFeatures,
} from "./features.ts";

await useBackend("cpu");

/** Toy embedding: each image's 1×1×D "pixel" as its feature. */
const flatten = (x: tf.Tensor4D) =>
  tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
/** Translation- and flip-invariant toy embedding: the mean colour. */
const meanColour = (x: tf.Tensor4D) => tf.mean(x, [1, 2]) as tf.Tensor2D;

Deno.test("extractFeatures() averages each image's ten consecutive crop rows", async () => {
  // Two batches: 2 images × 10 crops, then 1 image × 10 crops; D = 3.
  // Crop j of image n has feature [100n + j, -j, n].
  const make = (images: number, first: number) =>
    tf.tensor4d(
      Array.from({ length: images * 10 }, (_, r) => {
        const n = first + Math.floor(r / 10), j = r % 10;
        return [100 * n + j, -j, n];
      }).flat(),
      [images * 10, 1, 1, 3],
    );
  const out = await extractFeatures(flatten, [make(2, 0), make(1, 2)], {
    crops: 10,
  });
  assertEquals(out.shape, [3, 3]);
  // mean of j over 0..9 is 4.5
  assertClose(out.data, [4.5, -4.5, 0, 104.5, -4.5, 1, 204.5, -4.5, 2]);
});

Deno.test("extractFeatures() 10-crop TTA equals the plain feature for a translation/flip-invariant embed", async () => {
  // A 12×12 image that repeats with period 4: every 8×8 crop at any offset,
  // and its mirror image, has the same mean colour as the centre crop.
  const rng = new Rng(4);
  const tile = Array.from({ length: 4 * 4 * 3 }, () => rng.uniform());
  const pixels: number[] = [];
  for (let y = 0; y < 12; y++) {
    for (let x = 0; x < 12; x++) {
      for (let c = 0; c < 3; c++) {
        pixels.push(tile[((y % 4) * 4 + (x % 4)) * 3 + c]);
      }
    }
  }
  const image = tf.tensor4d(pixels, [1, 12, 12, 3]);
  const offsets = [[0, 0], [0, 3], [3, 0], [3, 4], [2, 2]];
  const crops = offsets.map(([y, x]) =>
    tf.slice(image, [0, y, x, 0], [1, 8, 8, 3])
  );
  const flipped = crops.map((c) => tf.reverse(c, 2));
  const tenCrop = tf.concat([...crops, ...flipped], 0) as tf.Tensor4D; // [10, 8, 8, 3]
  const centre = tf.clone(crops[4]) as tf.Tensor4D;
  // The crops really differ, pixel for pixel.
  const d = tf.sum(tf.abs(tf.sub(crops[0], crops[1])));
  assertTrue(d.dataSync()[0] > 1);
  const tta = await extractFeatures(meanColour, [tenCrop], { crops: 10 });
  const plain = await extractFeatures(meanColour, [centre]);
  assertClose(tta.data, plain.data, { atol: 1e-6 });
  tf.dispose([image, ...crops, ...flipped, d]);
});

Deno.test("extractFeatures() takes async iterables, disposes inputs and leaks nothing", async () => {
  await assertNoLeak(async () => {
    async function* batches() {
      for (let i = 0; i < 3; i++) yield tf.fill([2, 4, 4, 3], i) as tf.Tensor4D;
    }
    const out = await extractFeatures(meanColour, batches());
    assertEquals(out.shape, [6, 3]);
    assertClose(out.data, [
      0,
      0,
      0,
      0,
      0,
      0,
      1,
      1,
      1,
      1,
      1,
      1,
      2,
      2,
      2,
      2,
      2,
      2,
    ]);
  });
  const kept = tf.ones([2, 2, 2, 1]) as tf.Tensor4D;
  await extractFeatures(meanColour, [kept], { disposeInputs: false });
  assertTrue(!kept.isDisposed);
  kept.dispose();
});

Deno.test("extractFeatures() rejects a batch that is not whole groups of crops", async () => {
  const batch = tf.ones([7, 2, 2, 1]) as tf.Tensor4D;
  await assertRejects(
    () => extractFeatures(meanColour, [batch], { crops: 10 }),
    TypeError,
    "multiple of crops (10)",
  );
  assertTrue(batch.isDisposed);
  const bad = (x: tf.Tensor4D) => tf.ones([x.shape[0] + 1, 2]) as tf.Tensor2D;
  await assertRejects(
    () => extractFeatures(bad, [tf.ones([2, 2, 2, 1]) as tf.Tensor4D]),
    TypeError,
    "embed()",
  );
});

Deno.test("toLabelledFeatures() wraps a matrix and checks the label count", () => {
  const m = {
    data: Float32Array.of(1, 2, 3, 4, 5, 6),
    shape: [3, 2] as [number, number],
  };
  const d = toLabelledFeatures(m, Int32Array.of(0, 1, 0));
  assertClose(d.features, [[1, 2], [3, 4], [5, 6]]);
  d.features.dispose();
  assertThrows(
    () => toLabelledFeatures(m, Int32Array.of(0)),
    TypeError,
    "one label per feature row",
  );
});

Deno.test("featureCacheKey() is a SHA-256 of canonical JSON, independent of key order", async () => {
  assertEquals(
    await sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  const a = await featureCacheKey({ weights: "w1", split: "test", crops: 10 });
  const b = await featureCacheKey({ crops: 10, split: "test", weights: "w1" });
  const c = await featureCacheKey({ weights: "w1", split: "test", crops: 1 });
  assertEquals(a, b);
  assertTrue(a !== c);
  assertEquals(
    a,
    await sha256Hex('[["crops",10],["split","test"],["weights","w1"]]'),
  );
  await assertRejects(() => featureCacheKey({ x: NaN }), TypeError, '"x"');
});

Deno.test("loadOrComputeFeatures() computes once, then reads the .npy cache", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let calls = 0;
    const compute = () => {
      calls++;
      return {
        shape: [2, 2],
        dtype: "float32" as const,
        data: Float32Array.of(1, 2, 3, 4),
      };
    };
    const first = await loadOrComputeFeatures(`${dir}/cache`, "abc", compute);
    const second = await loadOrComputeFeatures(`${dir}/cache`, "abc", compute);
    assertEquals([calls, first.cached, second.cached], [1, false, true]);
    assertEquals(second.array.shape, [2, 2]);
    assertClose(second.array.data as Float32Array, [1, 2, 3, 4]);
    assertEquals(second.path, `${dir}/cache/abc.npy`);
    const names = [...Deno.readDirSync(`${dir}/cache`)].map((e) => e.name);
    assertEquals(names, ["abc.npy"]); // no temporary file left
    await assertRejects(
      () => loadOrComputeFeatures(dir, "../x", compute),
      RangeError,
      "cache key",
    );
    await Deno.writeTextFile(`${dir}/cache/bad.npy`, "not npy");
    await assertRejects(
      () => loadOrComputeFeatures(`${dir}/cache`, "bad", compute),
      TypeError,
      "delete it",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readLabelledFeatures() reads .npy features and int64 labels", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(
      `${dir}/x.npy`,
      writeNpy({
        shape: [2, 3],
        dtype: "float64",
        data: Float64Array.of(1, 2, 3, 4, 5, 6),
      }),
    );
    await Deno.writeFile(
      `${dir}/y.npy`,
      writeNpy({ shape: [2], dtype: "int64", data: BigInt64Array.of(4n, 1n) }),
    );
    const d = await readLabelledFeatures(`${dir}/x.npy`, `${dir}/y.npy`);
    assertEquals(d.features.dtype, "float32");
    assertClose(d.features, [[1, 2, 3], [4, 5, 6]]);
    assertEquals(Array.from(d.labels), [4, 1]);
    d.features.dispose();
    await assertRejects(
      () => readLabelledFeatures(`${dir}/y.npy`, `${dir}/y.npy`),
      TypeError,
      "rank 2",
    );
    await assertRejects(
      () => readLabelledFeatures(`${dir}/x.npy`, `${dir}/x.npy`),
      TypeError,
      "integer labels",
    );
    await assertRejects(
      () => readLabelledFeatures(`${dir}/none.npy`, `${dir}/y.npy`),
      Deno.errors.NotFound,
      "none.npy",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
