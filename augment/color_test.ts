import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertNoLeak,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
  withBackend,
} from "@scaling-vicreg/backend/testing";
import {
  ADJUST_HUE_KERNEL,
  CHANNEL_AFFINE_KERNEL,
} from "@scaling-vicreg/backend/augment-kernels";
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  denormalize,
  LUMA_TORCHVISION,
  normalize,
  randomGrayscale,
  rgbToGrayscale,
  solarize,
} from "./color.ts";

await useBackend("cpu");

interface ColorFixture {
  height: number;
  width: number;
  input: number[];
  ops: { op: string; factor: number; out: number[] }[];
}

const fixture: ColorFixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/color.json", import.meta.url)),
);
const luma = { luma: LUMA_TORCHVISION };

function input(): tf.Tensor4D {
  return tf.tensor4d(fixture.input, [1, fixture.height, fixture.width, 3]);
}

Deno.test("colour ops match torchvision's functional tensor ops to 1e-5", () => {
  const x = input();
  for (const { op, factor, out } of fixture.ops) {
    const y = op === "brightness"
      ? adjustBrightness(x, [factor])
      : op === "contrast"
      ? adjustContrast(x, [factor], luma)
      : op === "saturation"
      ? adjustSaturation(x, [factor], luma)
      : op === "hue"
      ? adjustHue(x, [factor])
      : op === "grayscale"
      ? rgbToGrayscale(x, luma)
      : solarize(x, [true], { threshold: factor });
    assertClose(y.dataSync(), out, { atol: 1e-5, rtol: 0 });
    y.dispose();
  }
  x.dispose();
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
      `adjustHue() on ${name} (one fused kernel) matches torchvision and the cpu backend's tensor ops`,
    ignore: ignoreUnless(loads, name),
    async fn() {
      // Random pixels plus greys, pure colours and ties between channels.
      const rng = new Rng(3);
      const pixels = Array.from({ length: 400 * 3 }, () => rng.uniform());
      pixels.push(0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0.3, 0.3, 0.1);
      pixels.push(0.7, 0.2, 0.7, 0.5, 0.5, 0.5);
      const n = pixels.length / 3 / 2;
      const shifts = Array.from({ length: 2 }, (_, i) => [0.5, -0.37][i]);
      const expected = tf.tidy(() =>
        adjustHue(tf.tensor4d(pixels, [2, n, 1, 3]), shifts).dataSync()
      );
      await withBackend(name, async () => {
        assertTrue(tf.getKernel(ADJUST_HUE_KERNEL, name) !== undefined);
        const x = tf.tensor4d(pixels, [2, n, 1, 3]);
        const y = adjustHue(x, shifts);
        assertClose(await y.data(), expected, { atol: 2e-6, rtol: 0 });
        tf.dispose([x, y]);
        const f = input();
        for (
          const { factor, out } of fixture.ops.filter((o) => o.op === "hue")
        ) {
          const h = adjustHue(f, [factor]);
          assertClose(await h.data(), out, { atol: 1e-5, rtol: 0 });
          h.dispose();
        }
        f.dispose();
      });
    },
  });
}

Deno.test("colour ops apply a separate factor to each image of a batch", () => {
  const one = input();
  const x = tf.concat([one, one, one]) as tf.Tensor4D;
  const hue = fixture.ops.filter((o) => o.op === "hue").slice(0, 3);
  const y = adjustHue(x, hue.map((o) => o.factor));
  const n = fixture.input.length;
  const data = y.dataSync();
  hue.forEach((o, i) =>
    assertClose(data.slice(i * n, (i + 1) * n), o.out, { atol: 1e-5, rtol: 0 })
  );
  const s = solarize(x, [false, true, false]);
  const solar = fixture.ops.find((o) => o.op === "solarize")!.out;
  assertClose(s.dataSync().slice(0, n), fixture.input, { atol: 0, rtol: 0 });
  assertClose(s.dataSync().slice(n, 2 * n), solar, { atol: 1e-6, rtol: 0 });
  const g = randomGrayscale(x, [false, false, true], luma);
  const gray = fixture.ops.find((o) => o.op === "grayscale")!.out;
  assertClose(g.dataSync().slice(2 * n), gray, { atol: 1e-6, rtol: 0 });
  assertClose(g.dataSync().slice(0, n), fixture.input, { atol: 0, rtol: 0 });
  tf.dispose([one, x, y, s, g]);
});

Deno.test("normalize() and denormalize() invert each other", () => {
  const x = input();
  const y = normalize(x);
  // Hand-computed: (x − mean) / std for the first pixel.
  const first = fixture.input.slice(0, 3);
  assertClose(y.dataSync().slice(0, 3), [
    (first[0] - 0.485) / 0.229,
    (first[1] - 0.456) / 0.224,
    (first[2] - 0.406) / 0.225,
  ]);
  assertClose(denormalize(y), x, { atol: 1e-6 });
  tf.dispose([x, y]);
});

Deno.test("colour ops reject bad shapes, factor counts and hue ranges", () => {
  const x = tf.zeros([2, 2, 2, 3]) as tf.Tensor4D;
  assertThrows(() => adjustBrightness(x, [1]), TypeError, "one factor");
  assertThrows(() => adjustHue(x, [0.6, 0]), RangeError, "[-0.5, 0.5]");
  assertThrows(
    () => normalize(tf.zeros([2, 2, 3]) as unknown as tf.Tensor4D),
    TypeError,
    "[N, H, W, 3]",
  );
  x.dispose();
});

Deno.test("colour ops do not leak tensors", async () => {
  const x = input();
  await assertNoLeak(() => {
    tf.dispose([
      adjustBrightness(x, [1.2]),
      adjustContrast(x, [0.5]),
      adjustSaturation(x, [0.5]),
      adjustHue(x, [0.1]),
      rgbToGrayscale(x),
      randomGrayscale(x, [true]),
      solarize(x, [true]),
      normalize(x),
      denormalize(x),
    ]);
  });
  x.dispose();
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
      `normalize() and denormalize() on ${name} (one fused kernel) match the cpu backend's tensor ops`,
    ignore: ignoreUnless(loads, name),
    async fn() {
      const rng = new Rng(4);
      const pixels = Array.from({ length: 3 * 7 * 5 * 3 }, () => rng.uniform());
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor4d(pixels, [3, 7, 5, 3]);
          const y = normalize(x);
          return [y, denormalize(y)];
        });
      const reference = run();
      const expected = await Promise.all(reference.map((t) => t.data()));
      tf.dispose(reference);
      await withBackend(name, async () => {
        assertTrue(tf.getKernel(CHANNEL_AFFINE_KERNEL, name) !== undefined);
        const got = run();
        assertClose(await got[0].data(), expected[0], { atol: 1e-6, rtol: 0 });
        assertClose(await got[1].data(), pixels, { atol: 1e-6, rtol: 0 });
        tf.dispose(got);
      });
    },
  });
}
