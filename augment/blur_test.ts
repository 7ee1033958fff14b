import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { blurMatrix, gaussianBlur, pilBoxRadius } from "./blur.ts";

await useBackend("cpu");

const resizeFixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/resize.json", import.meta.url)),
);
const colorFixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/color.json", import.meta.url)),
);

Deno.test("gaussianBlur() 'pil' matches Pillow's GaussianBlur(radius) up to its uint8 rounding", () => {
  const { width, height, data } = resizeFixture.blurSource;
  const x = tf.div(
    tf.tensor4d(data, [1, height, width, 3]),
    255,
  ) as tf.Tensor4D;
  for (const { radius, data: expected } of resizeFixture.blur) {
    const y = gaussianBlur(x, [radius]);
    const got = y.dataSync();
    let sum = 0, worst = 0;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i] * 255 - expected[i]);
      sum += d;
      worst = Math.max(worst, d);
    }
    // Pillow rounds to uint8 after each of its six box passes (an integer
    // emulation of those passes with this linear map reproduces Pillow exactly).
    assertTrue(worst <= 2.5, `radius ${radius}: max |Δ| ${worst} > 2.5/255`);
    assertTrue(
      sum / got.length < 0.5,
      `radius ${radius}: mean |Δ| ${sum / got.length}`,
    );
    y.dispose();
  }
  x.dispose();
});

Deno.test("gaussianBlur() 'gaussian' matches torchvision's gaussian_blur to 1e-5", () => {
  const { height, width, input } = colorFixture;
  const x = tf.tensor4d(input, [1, height, width, 3]);
  for (const { kernelSize, sigma, out } of colorFixture.gaussianBlur) {
    const y = gaussianBlur(x, [sigma], { method: "gaussian", kernelSize });
    assertClose(y.dataSync(), out, { atol: 1e-5, rtol: 0 });
    y.dispose();
  }
  x.dispose();
});

Deno.test("pilBoxRadius() gives boxes of the requested variance", () => {
  // Three passes of a box of radius l + α (taps 2l+1 of weight 1/(2r+1) and two
  // end taps of α/(2r+1)) have variance 3·Var(box) = σ².
  for (const sigma of [0.3, 1, 1.7, 2]) {
    const r = pilBoxRadius(sigma);
    const l = Math.trunc(r), a = r - l;
    let v = 0;
    for (let k = 1; k <= l; k++) v += 2 * k * k;
    v = (v + 2 * a * (l + 1) ** 2) / (2 * r + 1);
    assertClose(3 * v, sigma * sigma, { rtol: 1e-5 });
  }
});

Deno.test("blurMatrix() rows sum to 1 and a null sigma leaves images unchanged", () => {
  for (const method of ["pil", "gaussian"] as const) {
    const m = blurMatrix(9, 1.2, { method });
    for (let i = 0; i < 9; i++) {
      assertClose(m.slice(i * 9, i * 9 + 9).reduce((s, v) => s + v, 0), 1);
    }
  }
  const x = tf.randomUniform([2, 5, 4, 3]) as tf.Tensor4D;
  const y = gaussianBlur(x, [null, 0.8]);
  assertClose(tf.slice(y, 0, 1), tf.slice(x, 0, 1), { atol: 1e-7 });
  assertThrows(() => gaussianBlur(x, [1]), TypeError, "one sigma");
  assertThrows(() => blurMatrix(5, 0), RangeError, "sigma");
  tf.dispose([x, y]);
});

Deno.test("gaussianBlur() does not leak tensors", async () => {
  const x = tf.randomUniform([2, 6, 6, 3]) as tf.Tensor4D;
  await assertNoLeak(() => {
    gaussianBlur(x, [1, null]).dispose();
  });
  x.dispose();
});
