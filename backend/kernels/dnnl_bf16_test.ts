import { Rng } from "../random.ts";
import {
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
} from "../testing.ts";
import { cpuHasBf16 } from "../cpu_features.ts";
import { roundToBf16 } from "./_bf16_test_util.ts";
import {
  assertNear,
  CONV_CASES,
  loadedDnnl,
  random,
  reference,
} from "./_conv_test_util.ts";
import { activePrecision, setActivePrecision } from "../precision.ts";

const dnnl = loadedDnnl();
const ignore = ignoreUnless(
  dnnl !== undefined && cpuHasBf16(),
  "dnnl-bf16",
  dnnl === undefined ? "no oneDNN 2.x" : "the CPU has no AVX512-BF16/AMX-BF16",
);

Deno.test("roundToBf16: keeps 8 significant bits, ties to even", () => {
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to 1 + 2^-6.
  const x = new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.0009765625]);
  assertEquals(Array.from(roundToBf16(x)), [1, 1, 1 + 2 ** -6, -3]);
});

for (const [name, g] of CONV_CASES) {
  Deno.test({
    name: `dnnl bf16 conv: ${name}, three directions, = float64 on bf16 inputs`,
    ignore,
    fn() {
      const rng = new Rng(23);
      const x = random(rng, g.n * g.h * g.w * g.ci);
      const w = random(rng, g.kh * g.kw * g.ci * g.co);
      const dy = random(rng, g.n * g.oh * g.ow * g.co);
      // bf16 × bf16 products are exact in float32 and summed in float32, so
      // the float64 sums of the rounded inputs are met to float32 accuracy.
      const rounded = reference(
        g,
        roundToBf16(x),
        roundToBf16(w),
        roundToBf16(dy),
      );
      const exact = reference(g, x, w, dy);
      for (const direction of ["forward", "input", "filter"] as const) {
        const impl = dnnl!.implementation(g, direction, "bf16") ?? "none";
        assertTrue(!impl.startsWith("ref"), `${direction}: ${impl}`);
      }
      for (let round = 0; round < 2; round++) {
        const y = new Float32Array(exact.y.length).fill(NaN);
        assertTrue(dnnl!.conv2d(g, x, w, y, "bf16"));
        assertNear(y, rounded.y, "forward");
        assertNear(y, exact.y, "forward vs float32", 1e-2);
        const dx = new Float32Array(x.length).fill(NaN);
        assertTrue(dnnl!.conv2dBackpropInput(g, dy, w, dx, "bf16"));
        assertNear(dx, rounded.dx, "input gradient");
        assertNear(dx, exact.dx, "input gradient vs float32", 1e-2);
        const dw = new Float32Array(w.length).fill(NaN);
        assertTrue(dnnl!.conv2dBackpropFilter(g, x, dy, dw, "bf16"));
        assertNear(dw, rounded.dw, "filter gradient");
        assertNear(dw, exact.dw, "filter gradient vs float32", 1e-2);
      }
    },
  });
}

Deno.test({
  name: "dnnl bf16 conv: the fused inference conv rounds x and w, not the bias",
  ignore,
  fn() {
    for (const [name, g] of CONV_CASES) {
      const rng = new Rng(7);
      const x = random(rng, g.n * g.h * g.w * g.ci);
      const w = random(rng, g.kh * g.kw * g.ci * g.co);
      const bias = random(rng, g.co);
      const { y } = reference(
        g,
        roundToBf16(x),
        roundToBf16(w),
        new Float32Array(g.n * g.oh * g.ow * g.co),
      );
      const expected = y.map((v, i) => Math.max(v + bias[i % g.co], 0));
      const out = new Float32Array(y.length).fill(NaN);
      assertTrue(dnnl!.conv2dFused(g, x, w, bias, true, out, "bf16"));
      assertNear(out, expected, name);
    }
  },
});

Deno.test({
  name: "dnnl bf16 conv: calls without a precision follow activePrecision()",
  ignore,
  fn() {
    const g = CONV_CASES[0][1];
    const rng = new Rng(9);
    const x = random(rng, g.n * g.h * g.w * g.ci);
    const w = random(rng, g.kh * g.kw * g.ci * g.co);
    const run = () => {
      const y = new Float32Array(g.n * g.oh * g.ow * g.co);
      assertTrue(dnnl!.conv2d(g, x, w, y));
      return y;
    };
    const zero = new Float32Array(g.n * g.oh * g.ow * g.co);
    const before = activePrecision();
    try {
      setActivePrecision("bf16");
      assertNear(
        run(),
        reference(g, roundToBf16(x), roundToBf16(w), zero).y,
        "bf16",
      );
      // Negative control: bf16 rounding is visible at float32 tolerance.
      assertThrows(
        () => assertNear(run(), reference(g, x, w, zero).y, "y"),
        Error,
        "max error",
      );
      setActivePrecision("fp32");
      assertNear(run(), reference(g, x, w, zero).y, "fp32");
    } finally {
      setActivePrecision(before);
    }
  },
});
