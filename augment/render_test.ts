import * as tf from "@tensorflow/tfjs-core";
import { type RgbImage, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  COLOR_JITTER_KERNEL,
  CROP_RESIZE_KERNEL,
} from "@scaling-vicreg/backend/augment-kernels";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "@scaling-vicreg/backend/testing";
import { LUMA_TORCHVISION } from "./color.ts";
import type { ViewParams } from "./params.ts";
import {
  colorJitter,
  cropResize,
  renderViews,
  rotateNearest,
  uploadImages,
} from "./render.ts";
import { setHostPathForTesting, takeRows } from "./_batch.ts";

await useBackend("cpu");

const resizeFixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/resize.json", import.meta.url)),
);
const colorFixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/color.json", import.meta.url)),
);
const source: RgbImage = {
  width: resizeFixture.source.width,
  height: resizeFixture.source.height,
  data: Uint8Array.from(resizeFixture.source.data),
};

function plainParams(
  crop: { x: number; y: number; width: number; height: number },
  flip = false,
): ViewParams {
  return {
    sourceWidth: source.width,
    sourceHeight: source.height,
    crop,
    box: [0, 0, 1, 1],
    flip,
    rotation: null,
    jitter: {
      applied: false,
      brightness: 1,
      contrast: 1,
      saturation: 1,
      hue: 0,
      order: [0, 1, 2, 3],
    },
    grayscale: false,
    blurSigma: null,
    solarize: false,
  };
}

function maxByteError(got: ArrayLike<number>, expected: number[]): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] * 255 - expected[i]));
  }
  return worst;
}

for (const host of [true, false]) {
  const path = host ? "host" : "device";
  Deno.test(`cropResize() matches Pillow's crop + BICUBIC resize within 1/255 (${path} path)`, () => {
    setHostPathForTesting(host);
    try {
      cropResizeMatchesPillow();
    } finally {
      setHostPathForTesting(null);
    }
  });
}

function cropResizeMatchesPillow(): void {
  // A second, larger image in the batch checks that zero padding is never read.
  const other: RgbImage = {
    width: 45,
    height: 33,
    data: new Uint8Array(45 * 33 * 3).fill(255),
  };
  const batch = uploadImages([source, other]);
  for (const c of resizeFixture.crop) {
    const crop = { x: c.x, y: c.y, width: c.width, height: c.height };
    const out = cropResize(batch, [crop, crop], [false, true], c.size, c.size);
    const data = out.dataSync();
    const n = c.size * c.size * 3;
    const worst = maxByteError(data.slice(0, n), c.data);
    assertTrue(
      worst <= 1,
      `crop ${JSON.stringify(crop)}: max |Δ| ${worst}/255`,
    );
    // The second image is all 255: its resize is exactly 1 everywhere.
    assertClose(data.slice(n), new Float32Array(n).fill(1), { atol: 1e-6 });
    out.dispose();
  }
  batch.pixels.dispose();
}

for (
  const [name, loads] of await loadableBackends([
    "cpu-fast",
    "wasm",
    "blas",
    "native",
  ])
) {
  Deno.test({
    name:
      `cropResize() on ${name} (one fused kernel) matches Pillow and the cpu backend's tensor path`,
    ignore: ignoreUnless(loads, name),
    async fn() {
      // Random images of several sizes, crops up- and downscaled, mirrored
      // or not.
      const rng = new Rng(5);
      const images: RgbImage[] = [[40, 30], [64, 64], [23, 57], [90, 70]].map((
        [w, h],
      ) => ({
        width: w,
        height: h,
        data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)),
      }));
      const crops = images.map((im) => {
        const width = 1 + rng.int(im.width), height = 1 + rng.int(im.height);
        return {
          x: rng.int(im.width - width + 1),
          y: rng.int(im.height - height + 1),
          width,
          height,
        };
      });
      const flips = [false, true, true, false];
      const batchCpu = uploadImages(images);
      const expected = cropResize(batchCpu, crops, flips, 24, 20).dataSync();
      batchCpu.pixels.dispose();
      await withBackend(name, async () => {
        assertTrue(tf.getKernel(CROP_RESIZE_KERNEL, name) !== undefined);
        const batch = uploadImages(images);
        const out = cropResize(batch, crops, flips, 24, 20);
        assertEquals(out.shape, [4, 20, 24, 3]);
        assertClose(await out.data(), expected, { atol: 2e-6, rtol: 0 });
        tf.dispose([out, batch.pixels]);
        cropResizeMatchesPillow();
      });
    },
  });
}

Deno.test("renderViews() mirrors the view when flip is set", () => {
  const batch = uploadImages([source, source]);
  const crop = { x: 3, y: 5, width: 20, height: 17 };
  const out = renderViews(batch, [plainParams(crop), plainParams(crop, true)], {
    size: 9,
    mean: null,
  });
  const [a, b] = tf.split(out, 2, 0);
  assertClose(tf.reverse(a, 2), b, { atol: 1e-6 });
  tf.dispose([out, a, b]);
  batch.pixels.dispose();
});

Deno.test("colorJitter() applies each sample's factors in its own order, as torchvision's ColorJitter", () => {
  const { height, width, input, jitter } = colorFixture;
  const one = tf.tensor4d(input, [1, height, width, 3]);
  const x = tf.concat([one, one], 0) as tf.Tensor4D;
  const applied = {
    applied: true,
    brightness: jitter.brightness,
    contrast: jitter.contrast,
    saturation: jitter.saturation,
    hue: jitter.hue,
    order: jitter.order,
  };
  const skipped = { ...applied, applied: false };
  const y = colorJitter(
    x,
    [{ jitter: skipped }, { jitter: applied }],
    LUMA_TORCHVISION,
  );
  const data = y.dataSync();
  const n = input.length;
  assertClose(data.slice(0, n), input, { atol: 0, rtol: 0 });
  assertClose(data.slice(n), jitter.out, { atol: 1e-5, rtol: 0 });
  tf.dispose([one, x, y]);
});

for (
  const [name, loads] of await loadableBackends([
    "cpu-fast",
    "wasm",
    "blas",
    "native",
  ])
) {
  Deno.test({
    name:
      `colorJitter() on ${name} (one fused kernel) matches torchvision and the cpu backend's tensor ops`,
    ignore: ignoreUnless(loads, name),
    async fn() {
      // 24 images of 5×4 random pixels; every order of the four ops once,
      // factors across their ranges, every fourth image not jittered.
      const rng = new Rng(11);
      const orders: number[][] = [];
      const permute = (prefix: number[]) => {
        if (prefix.length === 4) return void orders.push(prefix);
        for (let k = 0; k < 4; k++) {
          if (!prefix.includes(k)) permute([...prefix, k]);
        }
      };
      permute([]);
      const params = orders.map((order, i) => ({
        jitter: {
          applied: i % 4 !== 3,
          order,
          brightness: rng.uniform(0.2, 1.8),
          contrast: rng.uniform(0.2, 1.8),
          saturation: rng.uniform(0.2, 1.8),
          hue: rng.uniform(-0.2, 0.2),
        },
      }));
      const pixels = Array.from({ length: 24 * 20 * 3 }, () => rng.uniform());
      const expected = tf.tidy(() =>
        colorJitter(tf.tensor4d(pixels, [24, 5, 4, 3]), params).dataSync()
      );
      await withBackend(name, async () => {
        assertTrue(tf.getKernel(COLOR_JITTER_KERNEL, name) !== undefined);
        const x = tf.tensor4d(pixels, [24, 5, 4, 3]);
        const y = colorJitter(x, params);
        assertClose(await y.data(), expected, { atol: 2e-6, rtol: 0 });
        tf.dispose([x, y]);
        const { height, width, input, jitter } = colorFixture;
        const one = tf.tensor4d(input, [1, height, width, 3]);
        const z = colorJitter(one, [{
          jitter: { ...jitter, applied: true },
        }], LUMA_TORCHVISION);
        assertClose(await z.data(), jitter.out, { atol: 1e-5, rtol: 0 });
        tf.dispose([one, z]);
      });
    },
  });
}

Deno.test("rotateNearest() rotates counter-clockwise about the centre like Pillow", () => {
  // 90°: out[y][x] = in[x][S − 1 − y]; 0 or null: unchanged.
  const s = 4;
  const values = Array.from({ length: s * s * 3 }, (_, i) => i);
  const x = tf.tensor4d([...values, ...values], [2, s, s, 3]);
  const y = rotateNearest(x, [90, null]);
  const data = y.dataSync();
  for (let r = 0; r < s; r++) {
    for (let c = 0; c < s; c++) {
      for (let ch = 0; ch < 3; ch++) {
        assertEquals(
          data[(r * s + c) * 3 + ch],
          values[(c * s + (s - 1 - r)) * 3 + ch],
        );
      }
    }
  }
  assertClose(data.slice(s * s * 3), values, { atol: 0, rtol: 0 });
  // 45°: the corners come from outside the image and are filled with 0.
  const z = rotateNearest(tf.ones([1, 8, 8, 1]) as tf.Tensor4D, [45]);
  assertEquals(z.dataSync()[0], 0);
  assertEquals(z.dataSync()[4 * 8 + 4], 1);
  tf.dispose([x, y, z]);
});

Deno.test("takeRows() gathers along axis 0", () => {
  const x = tf.tensor2d([[0], [1], [2], [3]]);
  const y = takeRows(x, [2, 3, 0, 0]);
  assertEquals(Array.from(y.dataSync()), [2, 3, 0, 0]);
  tf.dispose([x, y]);
});

Deno.test("uploadImages() and cropResize() reject bad input", () => {
  assertThrows(() => uploadImages([]), RangeError, "at least one");
  const batch = uploadImages([source]);
  assertThrows(
    () =>
      cropResize(batch, [{ x: 30, y: 0, width: 10, height: 5 }], [false], 4, 4),
    RangeError,
    "crops[0]",
  );
  assertThrows(() => cropResize(batch, [], [], 4, 4), TypeError, "one crop");
  batch.pixels.dispose();
});

Deno.test("renderViews() and friends do not leak tensors", async () => {
  const batch = uploadImages([source]);
  const p = plainParams({ x: 0, y: 0, width: 20, height: 20 });
  const full: ViewParams = {
    ...p,
    rotation: 5,
    jitter: { ...p.jitter, applied: true, hue: 0.1, order: [3, 1, 0, 2] },
    grayscale: true,
    blurSigma: 1,
    solarize: true,
  };
  renderViews(batch, [full], { size: 8 }).dispose(); // warm-up
  await assertNoLeak(() => {
    renderViews(batch, [full], { size: 8 }).dispose();
    renderViews(batch, [p], { size: 8 }).dispose();
  });
  batch.pixels.dispose();
});

Deno.test("rotateNearest() matches Pillow's rotate(angle, NEAREST) exactly", () => {
  const { width, height, data } = resizeFixture.rotationSource;
  const x = tf.tensor4d(data, [1, height, width, 3]);
  for (const { angle, data: expected } of resizeFixture.rotation) {
    const y = rotateNearest(x, [angle]);
    assertEquals(Array.from(y.dataSync()), expected, `angle ${angle}`);
    y.dispose();
  }
  x.dispose();
});

Deno.test("cropResize() reads the pixels when a batch has no host copy", () => {
  const batch = uploadImages([source]);
  const crop = { x: 3, y: 2, width: 17, height: 13 };
  const a = cropResize(batch, [crop], [true], 9, 7);
  const b = cropResize({ ...batch, host: undefined }, [crop], [true], 9, 7);
  assertEquals(Array.from(b.dataSync()), Array.from(a.dataSync()));
  tf.dispose([a, b, batch.pixels]);
});
