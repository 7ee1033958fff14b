import * as tf from "@tensorflow/tfjs-core";
import { type RgbImage, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { evalTransform, tenCrop, tenCropBoxes } from "./eval_transform.ts";

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

function maxByteError(got: ArrayLike<number>, expected: number[]): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] * 255 - expected[i]));
  }
  return worst;
}

Deno.test("evalTransform() 'resize' matches Pillow's BICUBIC resize within 1/255", () => {
  const full = resizeFixture.crop.find((c: { x: number; width: number }) =>
    c.x === 0 && c.width === source.width
  );
  const x = evalTransform([source], { size: full.size, mean: null });
  const worst = maxByteError(x.dataSync(), full.data);
  assertTrue(worst <= 1, `max |Δ| ${worst}/255`);
  x.dispose();
});

Deno.test("evalTransform() 'center-crop' matches Resize + CenterCrop on PIL within 1/255", () => {
  for (const c of resizeFixture.shorterCenterCrop) {
    // cropFraction 1: the shorter side goes to `size` itself.
    const x = evalTransform([source], {
      size: c.size,
      mode: "center-crop",
      cropFraction: 1,
      mean: null,
    });
    const worst = maxByteError(x.dataSync(), c.data);
    assertTrue(worst <= 1, `size ${c.size}: max |Δ| ${worst}/255`);
    x.dispose();
  }
});

Deno.test("tenCropBoxes() are torchvision's TenCrop boxes", () => {
  for (const { width, height, size, crops } of colorFixture.tenCrop) {
    const boxes = tenCropBoxes(width, height, size);
    assertEquals(
      boxes.map((b) => ({
        x0: b.flip ? b.x + b.width - 1 : b.x,
        y0: b.y,
        x1: b.flip ? b.x : b.x + b.width - 1,
        y1: b.y + b.height - 1,
      })),
      crops,
      `${width}×${height} → ${size}`,
    );
  }
  assertThrows(() => tenCropBoxes(5, 5, 6), RangeError, "crop size");
});

Deno.test("tenCrop() cuts the ten boxes out of the ⌊size / 0.875⌋² resize, image by image", () => {
  const other: RgbImage = {
    width: 20,
    height: 26,
    data: new Uint8Array(20 * 26 * 3).map((_, i) => (i * 13) % 256),
  };
  // ⌊12 / 0.875⌋ = 13 (the paper's int()), where round() would give 14.
  const size = 12, r = Math.floor(size / 0.875);
  const crops = tenCrop([source, other], { size, mean: null });
  assertEquals(crops.shape, [20, size, size, 3]);
  const resized = evalTransform([source, other], { size: r, mean: null });
  const boxes = tenCropBoxes(r, r, size);
  for (let n = 0; n < 2; n++) {
    boxes.forEach((b, k) => {
      let expected = tf.slice(resized, [n, b.y, b.x, 0], [1, size, size, 3]);
      if (b.flip) expected = tf.reverse(expected, 2);
      const got = tf.slice(crops, [n * 10 + k, 0, 0, 0], [1, size, size, 3]);
      assertClose(got, expected, { atol: 1e-6 });
      tf.dispose([expected, got]);
    });
  }
  tf.dispose([crops, resized]);
});

Deno.test("evalTransform() and tenCrop() normalise and do not leak", async () => {
  const x = evalTransform([source], { size: 6 });
  const raw = evalTransform([source], { size: 6, mean: null });
  assertClose(
    x.dataSync()[0],
    (raw.dataSync()[0] - 0.485) / 0.229,
    { atol: 1e-5 },
  );
  tf.dispose([x, raw]);
  await assertNoLeak(() => {
    evalTransform([source], { size: 6, mode: "center-crop" }).dispose();
    tenCrop([source], { size: 5 }).dispose();
  });
  assertThrows(
    () => evalTransform([source], { cropFraction: 0 }),
    RangeError,
    "cropFraction",
  );
});
