import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
  ignoreUnless,
} from "@scaling-vicreg/backend/testing";
import {
  DEFAULT_VICREG_OPTIONS,
  resolveVicregOptions,
  vicregLoss,
  type VicregOptions,
  type VicregTerms,
} from "./vicreg.ts";
import { makeInputs } from "./testdata/fixture_inputs.ts";
import small from "./testdata/vicreg_4x3.json" with { type: "json" };
import medium from "./testdata/vicreg_64x32.json" with { type: "json" };
import large from "./testdata/vicreg_256x512.json" with { type: "json" };

await useBackend("cpu");

/** Whether the wasm backend loads here (the numeric specs run on it too). */
const WASM = await useBackend("wasm").then(() => true, () => false);
await useBackend("cpu");

/** Runs `fn` with the wasm backend active, then restores cpu. */
async function onWasm(fn: () => void): Promise<void> {
  await useBackend("wasm");
  try {
    fn();
  } finally {
    await useBackend("cpu");
  }
}

interface FixtureCase {
  name: string;
  options: VicregOptions;
  loss: number;
  invariance: number;
  variance: number;
  covariance: number;
  gradX?: number[];
  gradY?: number[];
  gradXStride?: number;
  gradXStrided?: number[];
  gradXSum?: number;
  gradXAbsSum?: number;
  gradXNorm?: number;
  gradYStride?: number;
  gradYStrided?: number[];
  gradYSum?: number;
  gradYAbsSum?: number;
  gradYNorm?: number;
}

interface Fixture {
  n: number;
  d: number;
  x?: number[];
  y?: number[];
  cases: FixtureCase[];
}

const RTOL = 1e-5;

/** Terms and gradients wrt x and y, read back as plain arrays. */
function evaluate(
  xs: Float32Array,
  ys: Float32Array,
  n: number,
  d: number,
  options: VicregOptions,
) {
  return tf.tidy(() => {
    const x = tf.tensor2d(xs, [n, d]);
    const y = tf.tensor2d(ys, [n, d]);
    const terms = vicregLoss(x, y, options);
    const [gx, gy] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      vicregLoss(a as tf.Tensor2D, b as tf.Tensor2D, options).loss
    )([x, y]);
    return {
      loss: terms.loss.dataSync()[0],
      invariance: terms.invariance.dataSync()[0],
      variance: terms.variance.dataSync()[0],
      covariance: terms.covariance.dataSync()[0],
      gradX: gx.dataSync() as Float32Array,
      gradY: gy.dataSync() as Float32Array,
    };
  });
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

function checkTerms(
  actual: {
    loss: number;
    invariance: number;
    variance: number;
    covariance: number;
  },
  expected: FixtureCase,
  label: string,
) {
  for (const key of ["loss", "invariance", "variance", "covariance"] as const) {
    assertClose(actual[key], expected[key], {
      rtol: RTOL,
      atol: 1e-7,
      message: `${label} ${key}`,
    });
  }
}

/**
 * Gradient check: element-wise |g − g_ref| ≤ 1e-5·|g_ref| + 1e-5·max|g_ref|
 * (the absolute part covers entries that are near zero by cancellation).
 */
function checkGradient(
  actual: ArrayLike<number>,
  expected: number[],
  label: string,
) {
  assertClose(actual, expected, {
    rtol: RTOL,
    atol: RTOL * maxAbs(expected),
    message: label,
  });
}

for (const fixture of [small, medium] as Fixture[]) {
  const { n, d } = fixture;
  Deno.test(`fixture inputs for (${n}, ${d}) match make_fixtures.py bit for bit`, () => {
    const { x, y } = makeInputs(n, d);
    // 9 significant digits identify a float32 exactly
    assertEquals(Array.from(x), Array.from(Float32Array.from(fixture.x!)));
    assertEquals(Array.from(y), Array.from(Float32Array.from(fixture.y!)));
  });
  for (const c of fixture.cases) {
    Deno.test(`vicregLoss() matches the float64 reference at (${n}, ${d}), ${c.name}: terms and gradients`, () => {
      const r = evaluate(
        Float32Array.from(fixture.x!),
        Float32Array.from(fixture.y!),
        n,
        d,
        c.options,
      );
      checkTerms(r, c, c.name);
      checkGradient(r.gradX, c.gradX!, `${c.name} dL/dx`);
      checkGradient(r.gradY, c.gradY!, `${c.name} dL/dy`);
    });
  }
}

{
  const fixture = large as Fixture;
  const { n, d } = fixture;
  const { x, y } = makeInputs(n, d);
  for (const c of fixture.cases) {
    Deno.test(`vicregLoss() matches the float64 reference at (${n}, ${d}), ${c.name}: terms and gradients`, () => {
      const r = evaluate(x, y, n, d, c.options);
      checkTerms(r, c, c.name);
      for (const key of ["gradX", "gradY"] as const) {
        const g = r[key];
        const stride = c[`${key}Stride`]!;
        const strided = Array.from(g.filter((_, i) => i % stride === 0));
        const expected = c[`${key}Strided`]!;
        assertEquals(strided.length, expected.length);
        assertClose(strided, expected, {
          rtol: RTOL,
          atol: RTOL * c[`${key}Norm`]! / Math.sqrt(n * d) * 10,
          message: `${c.name} ${key} (every ${stride}th)`,
        });
        let sum = 0, absSum = 0, sq = 0;
        for (const v of g) {
          sum += v;
          absSum += Math.abs(v);
          sq += v * v;
        }
        assertClose(Math.sqrt(sq), c[`${key}Norm`]!, {
          rtol: RTOL,
          message: `${key} norm`,
        });
        assertClose(absSum, c[`${key}AbsSum`]!, {
          rtol: RTOL,
          message: `${key} abs sum`,
        });
        assertClose(sum, c[`${key}Sum`]!, {
          rtol: 0,
          atol: RTOL * absSum,
          message: `${key} sum`,
        });
      }
    });
  }
}

for (const fixture of [medium, large] as Fixture[]) {
  const { n, d } = fixture;
  const c = fixture.cases[0];
  Deno.test({
    name: `vicregLoss() matches the float64 reference at (${n}, ${d}) on wasm`,
    ignore: ignoreUnless(WASM, "wasm"),
    fn: () =>
      onWasm(() => {
        const { x, y } = makeInputs(n, d);
        const r = evaluate(x, y, n, d, c.options);
        checkTerms(r, c, `wasm ${c.name}`);
        if (c.gradX) {
          checkGradient(r.gradX, c.gradX, "wasm dL/dx");
          checkGradient(r.gradY, c.gradY!, "wasm dL/dy");
        } else {
          let sq = 0;
          for (const v of r.gradX) sq += v * v;
          assertClose(Math.sqrt(sq), c.gradXNorm!, { message: "wasm norm" });
          const strided = Array.from(
            r.gradX.filter((_, i) => i % c.gradXStride! === 0),
          );
          assertClose(strided, c.gradXStrided!, {
            atol: RTOL * maxAbs(c.gradXStrided!),
            message: "wasm dL/dx (strided)",
          });
        }
      }),
  });
}

/** A hand-computed case: N = 2, D = 2, every term by pencil. */
Deno.test("vicregLoss() gives the hand-computed terms for N = 2", () => {
  // x rows (0, 0), (2, 1): centred ±(1, 0.5); unbiased var = (2, 0.5),
  // std = sqrt(2 + 1e-4), sqrt(0.5 + 1e-4); hinge = (0 + 1 − sqrt(0.5001))/2.
  // C = [[2, 1], [1, 0.5]]; off-diagonal Σ = 2·1² = 2, /D = 1.
  // y = x + 1 everywhere: invariance 1, same stats as x.
  const x = tf.tensor2d([[0, 0], [2, 1]]);
  const y = tf.tensor2d([[1, 1], [3, 2]]);
  const t = vicregLoss(x, y);
  const hinge = (1 - Math.sqrt(0.5001)) / 2;
  assertClose(t.invariance, 1);
  assertClose(t.variance, hinge);
  assertClose(t.covariance, 2);
  assertClose(t.loss, 25 + 25 * hinge + 2);
  // paper-code: biased var = (1, 0.25) -> std sqrt(1.0001) > 1, sqrt(0.2501)
  const p = vicregLoss(x, y, { variant: "paper-code", covDivisor: 4 });
  assertClose(p.variance, (1 - Math.sqrt(0.2501)) / 2);
  assertClose(p.covariance, 1);
  tf.dispose([x, y, t, p]);
});

Deno.test("vicregLoss() gives zero invariance for identical views", () => {
  const { x } = makeInputs(16, 8);
  const a = tf.tensor2d(x, [16, 8]);
  const t = vicregLoss(a, a);
  assertEquals(t.invariance.dataSync()[0], 0);
  assertTrue(t.variance.dataSync()[0] > 0);
  tf.dispose([a, t]);
});

/**
 * Rows of a scaled orthogonal design: the columns of a 2^k Hadamard matrix
 * (minus the constant one) are centred and mutually orthogonal, so the batch
 * is exactly white.
 */
function hadamardBatch(n: number, d: number, scale: number): tf.Tensor2D {
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      // Sylvester Hadamard entry H[i][j+1] = (−1)^popcount(i & (j+1))
      let bits = i & (j + 1), parity = 0;
      while (bits) {
        parity ^= bits & 1;
        bits >>= 1;
      }
      data[i * d + j] = (parity ? -1 : 1) * scale;
    }
  }
  return tf.tensor2d(data, [n, d]);
}

Deno.test("vicregLoss() gives zero variance and covariance for a whitened batch with std >= 1", () => {
  const n = 32, d = 16;
  // Unbiased var of ±s columns is s²·N/(N−1); s = 1.2 keeps std above 1.
  const x = hadamardBatch(n, d, 1.2);
  const t = vicregLoss(x, x);
  assertEquals(t.variance.dataSync()[0], 0);
  assertClose(t.covariance, 0, { atol: 1e-5 });
  assertEquals(t.invariance.dataSync()[0], 0);
  // and the same batch scaled to std 0.5 pays the hinge on every dimension
  const small = hadamardBatch(n, d, 0.5);
  const s = vicregLoss(small, small);
  const std = Math.sqrt(0.25 * n / (n - 1) + 1e-4);
  assertClose(s.variance, 1 - std);
  tf.dispose([x, t, small, s]);
});

Deno.test("vicregLoss() is unchanged when the batch rows are permuted", () => {
  const n = 24, d = 10;
  const { x, y } = makeInputs(n, d);
  const perm = [...Array(n).keys()].map((i) => (i * 7 + 3) % n);
  const a = tf.tensor2d(x, [n, d]);
  const b = tf.tensor2d(y, [n, d]);
  const idx = tf.tensor1d(perm, "int32");
  const pa = tf.gather(a, idx) as tf.Tensor2D;
  const pb = tf.gather(b, idx) as tf.Tensor2D;
  const t = vicregLoss(a, b);
  const p = vicregLoss(pa, pb);
  for (const key of ["loss", "invariance", "variance", "covariance"] as const) {
    assertClose(p[key], t[key], { rtol: 1e-6, message: key });
  }
  tf.dispose([a, b, idx, pa, pb, t, p]);
});

Deno.test("vicregLoss() leaks no tensors for loss and gradient inside tf.tidy", async () => {
  const { x, y } = makeInputs(8, 5);
  const a = tf.tensor2d(x, [8, 5]);
  const b = tf.tensor2d(y, [8, 5]);
  await assertNoLeak(() =>
    tf.tidy(() => {
      const t = vicregLoss(a, b, { variant: "paper-code" });
      const g = tf.grads((u: tf.Tensor, v: tf.Tensor) =>
        vicregLoss(u as tf.Tensor2D, v as tf.Tensor2D).loss
      )([a, b]);
      return [t.loss, ...g];
    })
  );
  // returned terms are the only survivors
  await assertNoLeak(() => vicregLoss(a, b));
  tf.dispose([a, b]);
});

Deno.test("vicregLoss() rejects N = 1 with a RangeError and works at N = 2", () => {
  const one = tf.tensor2d([[1, 2, 3]]);
  assertThrows(() => vicregLoss(one, one), RangeError, "N = 1");
  const two = tf.tensor2d([[1, 2, 3], [3, 2, 1]]);
  const t: VicregTerms = vicregLoss(two, two);
  assertTrue(Number.isFinite(t.loss.dataSync()[0]));
  tf.dispose([one, two, t]);
});

Deno.test("vicregLoss() rejects wrong shapes with a TypeError naming the argument", () => {
  const a = tf.zeros([4, 3]) as tf.Tensor2D;
  const b = tf.zeros([4, 2]) as tf.Tensor2D;
  const r3 = tf.zeros([4, 3, 1]) as unknown as tf.Tensor2D;
  const i32 = tf.zeros([4, 3], "int32") as tf.Tensor2D;
  assertThrows(() => vicregLoss(a, b), TypeError, "same shape");
  assertThrows(() => vicregLoss(r3, a), TypeError, '"x" of rank 2');
  assertThrows(() => vicregLoss(a, r3), TypeError, '"y" of rank 2');
  assertThrows(() => vicregLoss(a, i32), TypeError, '"y" of dtype float32');
  tf.dispose([a, b, r3, i32]);
});

Deno.test("resolveVicregOptions() fills the paper's defaults and rejects bad values", () => {
  assertEquals(resolveVicregOptions(), DEFAULT_VICREG_OPTIONS);
  assertEquals(resolveVicregOptions({ simCoeff: 1 }).simCoeff, 1);
  assertThrows(() => resolveVicregOptions({ eps: 0 }), RangeError, '"eps"');
  assertThrows(
    () => resolveVicregOptions({ stdCoeff: -1 }),
    RangeError,
    '"stdCoeff"',
  );
  assertThrows(
    () => resolveVicregOptions({ variant: "x" as "vicreg" }),
    RangeError,
    '"variant"',
  );
  assertThrows(
    () => resolveVicregOptions({ covDivisor: 0 }),
    RangeError,
    '"covDivisor"',
  );
});
