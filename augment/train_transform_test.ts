import * as tf from "@tensorflow/tfjs-core";
import { type RgbImage, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { IMAGENET_MEAN, IMAGENET_STD } from "./color.ts";
import { randomResizedCropBox } from "./params.ts";
import { TrainTransform } from "./train_transform.ts";
import { setHostPathForTesting } from "./_batch.ts";

await useBackend("cpu");

function pattern(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 11) % 256;
  return { width, height, data };
}

function rate(values: boolean[]): number {
  return values.filter(Boolean).length / values.length;
}

// 4000 draws: a binomial rate's standard error is ≤ 0.008, so ±0.03 is ~4σ.
const sizes = Array.from({ length: 4000 }, (_, i) => ({
  width: 200 + (i % 7) * 20,
  height: 180 + (i % 5) * 30,
}));

Deno.test("TrainTransform.sample() draws the paper's probabilities (fixed seed)", () => {
  const [p1, p2] = new TrainTransform().sample(sizes, new Rng(7));
  const near = (got: number, want: number, what: string) =>
    assertTrue(Math.abs(got - want) < 0.03, `${what}: ${got} vs ${want}`);
  for (const [p, blur, sol] of [[p1, 1.0, 0], [p2, 0.1, 0.2]] as const) {
    near(rate(p.map((v) => v.flip)), 0.5, "flip");
    near(rate(p.map((v) => v.jitter.applied)), 0.8, "jitter");
    near(rate(p.map((v) => v.grayscale)), 0.2, "grayscale");
    near(rate(p.map((v) => v.blurSigma !== null)), blur, "blur");
    near(rate(p.map((v) => v.solarize)), sol, "solarize");
    assertTrue(p.every((v) => v.rotation === null), "no rotation by default");
  }
  assertEquals(rate(p1.map((v) => v.blurSigma !== null)), 1);
  assertEquals(rate(p1.map((v) => v.solarize)), 0);
  for (const v of [...p1, ...p2]) {
    const area = v.crop.width * v.crop.height /
      (v.sourceWidth * v.sourceHeight);
    // Rounding the crop sides to integers moves the area by < 1 %.
    assertTrue(area >= 0.2 * 0.99 && area <= 1, `area ${area}`);
    assertTrue(v.crop.x + v.crop.width <= v.sourceWidth);
    assertTrue(v.crop.y + v.crop.height <= v.sourceHeight);
    assertClose(v.box, [
      v.crop.x / v.sourceWidth,
      v.crop.y / v.sourceHeight,
      (v.crop.x + v.crop.width) / v.sourceWidth,
      (v.crop.y + v.crop.height) / v.sourceHeight,
    ]);
    if (v.blurSigma !== null) {
      assertTrue(v.blurSigma >= 0.1 && v.blurSigma <= 2);
    }
    const j = v.jitter;
    if (j.applied) {
      assertEquals([...j.order].sort(), [0, 1, 2, 3]);
      for (const f of [j.brightness, j.contrast, j.saturation]) {
        assertTrue(f >= 0.2 && f <= 1.8, `factor ${f}`);
      }
      assertTrue(Math.abs(j.hue) <= 0.2, `hue ${j.hue}`);
    }
  }
  // Area fractions spread over [0.2, 1]; large ones are rarer because a large
  // crop with a random aspect ratio often does not fit and is redrawn, as in
  // torchvision (mean ≈ 0.51 here, not 0.6).
  const areas = p1.map((v) =>
    v.crop.width * v.crop.height / (v.sourceWidth * v.sourceHeight)
  );
  assertTrue(rate(areas.map((a) => a < 0.3)) > 0.1);
  assertTrue(rate(areas.map((a) => a > 0.9)) > 0.01);
});

Deno.test("TrainTransform 'paper-code' preset adds ±10° rotations with p = 0.3", () => {
  const [p1] = new TrainTransform({ preset: "paper-code" }).sample(
    sizes,
    new Rng(3),
  );
  const rotated = p1.filter((v) => v.rotation !== null);
  assertTrue(Math.abs(rotated.length / p1.length - 0.3) < 0.03);
  assertTrue(rotated.every((v) => Math.abs(v.rotation as number) <= 10));
  assertEquals(
    new TrainTransform({ preset: "paper-code", rotationP: 0 }).options
      .rotationP,
    0,
  );
});

Deno.test("randomResizedCropBox() falls back to the centre crop like torchvision", () => {
  // A scale range no crop can meet inside a very wide image: ten failures.
  const box = randomResizedCropBox(100, 10, new Rng(0), {
    scale: [1, 1],
    ratio: [3 / 4, 4 / 3],
  });
  // in_ratio 10 > 4/3: h = 10, w = round(10 · 4/3) = 13, centred.
  assertEquals(box, { x: 43, y: 0, width: 13, height: 10 });
});

Deno.test("TrainTransform.apply() gives identical views for the same seed", () => {
  const images = [pattern(40, 30, 1), pattern(25, 35, 2), pattern(40, 30, 3)];
  const t = new TrainTransform({ size: 12, preset: "paper-code" });
  const a = t.apply(images, new Rng(42));
  const b = t.apply(images, new Rng(42));
  const c = t.apply(images, new Rng(43));
  assertEquals(a.view1.shape, [3, 12, 12, 3]);
  assertEquals(a.params, b.params);
  assertEquals(Array.from(a.view1.dataSync()), Array.from(b.view1.dataSync()));
  assertEquals(Array.from(a.view2.dataSync()), Array.from(b.view2.dataSync()));
  assertTrue(
    a.view1.dataSync().some((v, i) => v !== c.view1.dataSync()[i]),
    "another seed gives other views",
  );
  tf.dispose([a.view1, a.view2, b.view1, b.view2, c.view1, c.view2]);
});

Deno.test("TrainTransform with every random op off gives the normalised resized image", () => {
  const gray = {
    width: 20,
    height: 16,
    data: new Uint8Array(20 * 16 * 3).fill(128),
  };
  const t = new TrainTransform({
    size: 8,
    jitterP: 0,
    grayscaleP: 0,
    blurP: [0, 0],
    solarizeP: [0, 0],
  });
  const { view1, view2 } = t.apply([gray], new Rng(0));
  const expected = [0, 1, 2].map((c) =>
    (128 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
  );
  for (const v of [view1, view2]) {
    const data = v.dataSync();
    for (let i = 0; i < data.length; i++) {
      assertClose(data[i], expected[i % 3], { atol: 1e-5 });
    }
  }
  tf.dispose([view1, view2]);
});

Deno.test("TrainTransform validates its options", () => {
  assertThrows(() => new TrainTransform({ flipP: 2 }), RangeError, "flipP");
  assertThrows(
    () => new TrainTransform({ scale: [0.5, 0.2] }),
    RangeError,
    "scale",
  );
  assertThrows(() => new TrainTransform({ hue: 0.7 }), RangeError, "hue");
  assertThrows(() => new TrainTransform({ size: 0 }), RangeError, "size");
  assertThrows(
    // @ts-expect-error: an unknown preset
    () => new TrainTransform({ preset: "simclr" }),
    RangeError,
    "preset",
  );
});

Deno.test("TrainTransform.apply() does not leak tensors", async () => {
  const images = [pattern(30, 30, 1), pattern(20, 28, 2)];
  const t = new TrainTransform({ size: 10, preset: "paper-code" });
  const warm = t.apply(images, new Rng(0));
  tf.dispose([warm.view1, warm.view2]);
  await assertNoLeak(() => {
    for (let seed = 1; seed < 4; seed++) {
      const v = t.apply(images, new Rng(seed));
      tf.dispose([v.view1, v.view2]);
    }
  });
});

Deno.test("TrainTransform renders the same views on the host and device paths", async () => {
  // The host path (cpu, wasm: per-sample 2-D matmuls over crop windows, host
  // gathers) and the device path (GPU backends: padded batched matmuls, slice
  // gathers) are two schedules of the same arithmetic.
  const images = [pattern(40, 30, 1), pattern(25, 35, 2), pattern(40, 30, 3)];
  const t = new TrainTransform({ size: 12, preset: "paper-code" });
  const render = (host: boolean) => {
    setHostPathForTesting(host);
    try {
      return t.apply(images, new Rng(5));
    } finally {
      setHostPathForTesting(null);
    }
  };
  const a = render(true), b = render(false);
  assertClose(a.view1, b.view1, { atol: 1e-5, rtol: 0 });
  assertClose(a.view2, b.view2, { atol: 1e-5, rtol: 0 });
  tf.dispose([a.view1, a.view2, b.view1, b.view2]);
  for (const host of [true, false]) {
    setHostPathForTesting(host);
    try {
      await assertNoLeak(() => {
        const v = t.apply(images, new Rng(6));
        tf.dispose([v.view1, v.view2]);
      });
    } finally {
      setHostPathForTesting(null);
    }
  }
});
