import { Rng } from "../random.ts";
import {
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
} from "../testing.ts";
import { BN_ELEMENTS_PER_THREAD, loadDnnl } from "./dnnl.ts";
import { openOpenMp } from "./_openmp.ts";
import { referencePool, routedTo } from "./_pool_test_util.ts";
import {
  assertNear,
  CONV_CASES,
  loadedDnnl,
  random,
  reference,
  shape,
} from "./_conv_test_util.ts";

const dnnl = loadedDnnl();
const ignore = ignoreUnless(dnnl !== undefined, "dnnl");
if (ignore) {
  console.warn(
    "dnnl_test: no oneDNN 2.x here (apt-get install libdnnl2); skipping",
  );
}

for (const [name, g] of CONV_CASES) {
  Deno.test({
    name: `dnnl conv: ${name} matches direct float64 loops`,
    ignore,
    fn() {
      const rng = new Rng(11);
      const x = random(rng, g.n * g.h * g.w * g.ci);
      const w = random(rng, g.kh * g.kw * g.ci * g.co);
      const dy = random(rng, g.n * g.oh * g.ow * g.co);
      const expected = reference(g, x, w, dy);
      for (const direction of ["forward", "input", "filter"] as const) {
        assertTrue(dnnl!.implementation(g, direction) !== undefined);
      }
      // Outputs start as NaN: every element must be written. Twice: the
      // second call runs the cached primitives on the same geometry.
      for (let round = 0; round < 2; round++) {
        const y = new Float32Array(expected.y.length).fill(NaN);
        assertTrue(dnnl!.conv2d(g, x, w, y));
        assertNear(y, expected.y, "forward");
        const dx = new Float32Array(x.length).fill(NaN);
        assertTrue(dnnl!.conv2dBackpropInput(g, dy, w, dx));
        assertNear(dx, expected.dx, "input gradient");
        const dw = new Float32Array(w.length).fill(NaN);
        assertTrue(dnnl!.conv2dBackpropFilter(g, x, dy, dw));
        assertNear(dw, expected.dw, "filter gradient");
      }
    },
  });
}

Deno.test({
  name: "dnnl conv: the fused inference conv adds the bias and applies ReLU",
  ignore,
  fn() {
    for (const [name, g] of CONV_CASES) {
      const rng = new Rng(5);
      const x = random(rng, g.n * g.h * g.w * g.ci);
      const w = random(rng, g.kh * g.kw * g.ci * g.co);
      const bias = random(rng, g.co);
      const { y } = reference(
        g,
        x,
        w,
        new Float32Array(g.n * g.oh * g.ow * g.co),
      );
      for (const withBias of [true, false]) {
        for (const relu of [true, false]) {
          const expected = y.map((v, i) => {
            const z = v + (withBias ? bias[i % g.co] : 0);
            return relu ? Math.max(z, 0) : z;
          });
          const out = new Float32Array(y.length).fill(NaN);
          assertTrue(
            dnnl!.conv2dFused(g, x, w, withBias ? bias : undefined, relu, out),
          );
          assertNear(out, expected, `${name}, bias ${withBias}, relu ${relu}`);
        }
      }
      // A bias of the wrong length is refused, not read past its end.
      assertEquals(
        dnnl!.conv2dFused(
          g,
          x,
          w,
          bias.subarray(1),
          false,
          new Float32Array(y.length),
        ),
        false,
      );
    }
  },
});

Deno.test({
  name: "dnnl conv: views at offsets into a larger buffer",
  ignore,
  fn() {
    const g = shape(2, 6, 6, 8, 4, 3, 1, [1, 1, 1, 1]);
    const rng = new Rng(3);
    const heap = random(rng, 10_000);
    const x = heap.subarray(17, 17 + g.n * g.h * g.w * g.ci);
    const w = heap.subarray(3001, 3001 + 9 * g.ci * g.co);
    const dy = heap.subarray(5003, 5003 + g.n * g.oh * g.ow * g.co);
    const expected = reference(g, x, w, dy);
    const outputs = new Float32Array(20_000).fill(NaN);
    const y = outputs.subarray(5, 5 + expected.y.length);
    assertTrue(dnnl!.conv2d(g, x, w, y));
    assertNear(y, expected.y, "forward");
    const dw = outputs.subarray(9001, 9001 + w.length);
    assertTrue(dnnl!.conv2dBackpropFilter(g, x, dy, dw));
    assertNear(dw, expected.dw, "filter gradient");
    // Nothing outside the two outputs was written.
    assertTrue(Number.isNaN(outputs[4]) && Number.isNaN(outputs[9000]));
    assertTrue(Number.isNaN(outputs[5 + expected.y.length]));
  },
});

Deno.test({
  name: "dnnl conv: a geometry oneDNN rejects returns false, writing nothing",
  ignore,
  fn() {
    // Padding that does not match the output size is inconsistent.
    const g = { ...shape(1, 4, 4, 2, 2, 3, 1, [1, 1, 1, 1]), oh: 7 };
    const y = new Float32Array(7 * g.ow * 2).fill(NaN);
    assertEquals(
      dnnl!.conv2d(g, random(new Rng(1), 32), random(new Rng(2), 36), y),
      false,
    );
    assertTrue(y.every(Number.isNaN));
    assertEquals(dnnl!.implementation(g, "forward"), undefined);
  },
});

Deno.test("loadDnnl: a missing library is one clear error", () => {
  assertThrows(
    () => loadDnnl("/nonexistent/libdnnl.so.2"),
    Error,
    "No usable oneDNN found: install oneDNN 2.x",
  );
});

/** Training-mode batch norm (+ ReLU) and its gradients in float64. */
function batchNormReference(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  dy: Float32Array,
  channels: number,
  eps: number,
  relu: boolean,
  mask?: Float32Array,
) {
  const rows = x.length / channels;
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let i = 0; i < x.length; i++) mean[i % channels] += x[i] / rows;
  for (let i = 0; i < x.length; i++) {
    variance[i % channels] += (x[i] - mean[i % channels]) ** 2 / rows;
  }
  const xHat = new Float64Array(x.length);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % channels;
    xHat[i] = (x[i] - mean[c]) / Math.sqrt(variance[c] + eps);
    const v = xHat[i] * gamma[c] + beta[c];
    y[i] = relu ? Math.max(v, 0) : v;
  }
  // g: the gradient reaching the normalisation (the ReLU passes y > 0, or
  // where `mask`, a ReLU's output, is > 0).
  const g = dy.map((v, i) => relu && !((mask ?? y)[i] > 0) ? 0 : v);
  const dBeta = new Float64Array(channels);
  const dGamma = new Float64Array(channels);
  for (let i = 0; i < x.length; i++) {
    dBeta[i % channels] += g[i];
    dGamma[i % channels] += g[i] * xHat[i];
  }
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % channels;
    dx[i] = gamma[c] / Math.sqrt(variance[c] + eps) *
      (g[i] - dBeta[c] / rows - xHat[i] * dGamma[c] / rows);
  }
  return { y, mean, variance, dx, dGamma, dBeta };
}

Deno.test({
  name:
    "dnnl batch norm: forward, statistics and gradients match float64 loops, on one thread and on several, leaving OpenMP's thread count as it was",
  ignore,
  fn() {
    const openMp = openOpenMp();
    const threads = openMp?.maxThreads();
    // The last one has enough elements for two threads.
    const sizes = [[50, 7], [2 * 5 * 5, 16], [3, 64], [
      2 * BN_ELEMENTS_PER_THREAD / 64,
      64,
    ]];
    for (const [rows, channels] of sizes) {
      for (const relu of [false, true]) {
        const rng = new Rng(rows + channels);
        // A mean far from 0 checks the variance does not cancel.
        const x = random(rng, rows * channels).map((v) => 3 * v + 20);
        const gamma = random(rng, channels);
        const beta = random(rng, channels);
        const dy = random(rng, rows * channels);
        const eps = 1e-5;
        const referenceFor = (mask?: Float32Array) =>
          batchNormReference(x, gamma, beta, dy, channels, eps, relu, mask);
        const expected = referenceFor();
        const floats = dnnl!.batchNormWorkspaceFloats(
          rows,
          channels,
          eps,
          relu,
        );
        assertTrue(floats !== undefined && (floats > 0) === relu);
        const workspace = relu ? new Float32Array(floats!) : undefined;
        const nan = (n: number) => new Float32Array(n).fill(NaN);
        const out = {
          y: nan(x.length),
          mean: nan(channels),
          variance: nan(channels),
        };
        assertTrue(
          dnnl!.batchNormForward(rows, channels, eps, relu, {
            x,
            gamma,
            beta,
            workspace,
            ...out,
          }),
        );
        const what = `${rows}×${channels}, relu ${relu}`;
        // Sums of 10⁵ float32 rows round at ~1e-5 of their scale.
        const sums = rows > 1000 ? 1e-4 : 1e-5;
        assertNear(out.y, expected.y, `y, ${what}`, sums);
        assertNear(out.mean, expected.mean, `mean, ${what}`, sums);
        assertNear(out.variance, expected.variance, `variance, ${what}`, sums);
        const grads = {
          dx: nan(x.length),
          dGamma: nan(channels),
          dBeta: nan(channels),
        };
        assertTrue(
          dnnl!.batchNormBackward(rows, channels, eps, relu, {
            x,
            dy,
            mean: out.mean,
            variance: out.variance,
            gamma,
            beta,
            workspace,
            ...grads,
          }),
        );
        // Where the pre-activation rounds across zero (a few of 10⁶ values)
        // the ReLU's mask differs: the gradients are checked against the
        // mask the forward pass applied.
        let flips = 0;
        for (let i = 0; relu && i < x.length; i++) {
          if ((out.y[i] > 0) === (expected.y[i] > 0)) continue;
          assertTrue(Math.max(out.y[i], expected.y[i]) < 1e-4, `y[${i}]`);
          flips++;
        }
        assertTrue(flips <= 1e-5 * x.length, `${flips} masks differ`);
        const backward = referenceFor(out.y);
        // dx is a difference of nearly equal terms (three rows, a mean of
        // 20 and a deviation of 3): float32 rounding shows at ~1e-5.
        assertNear(grads.dx, backward.dx, `dx, ${what}`, 1e-4);
        assertNear(grads.dGamma, backward.dGamma, `dγ, ${what}`, sums);
        assertNear(grads.dBeta, backward.dBeta, `dβ, ${what}`, sums);
        assertEquals(openMp?.maxThreads(), threads);
      }
    }
  },
});

for (
  const [size, stride, pad, n, h, w, c] of [
    [3, 2, 1, 2, 9, 8, 5],
    [2, 2, 0, 2, 9, 8, 5],
    [3, 1, 1, 2, 9, 8, 5],
    [3, 2, 1, 2, 24, 24, 64], // a ResNet stem's pool, vector-wide channels
  ] as const
) {
  Deno.test({
    name:
      `dnnl max pool ${size}x${size}/${stride} pad ${pad} on [${n}, ${h}, ${w}, ${c}]: every output is its window's maximum and the gradient goes to its first maximum`,
    ignore,
    fn() {
      const x = random(new Rng(h * c + size), n * h * w * c);
      // ReLU-like ties: a third of the inputs are exactly zero.
      for (let i = 0; i < x.length; i += 3) x[i] = 0;
      const want = referencePool(x, [n, h, w, c], size, stride, pad);
      const { oh, ow } = want;
      const g = {
        n,
        h,
        w,
        ci: c,
        co: c,
        oh,
        ow,
        kh: size,
        kw: size,
        sh: stride,
        sw: stride,
        top: pad,
        left: pad,
        bottom: pad,
        right: pad,
      };
      const y = new Float32Array(n * oh * ow * c).fill(NaN);
      assertTrue(dnnl!.maxPool(g, x, y), "maxPool ran");
      assertEquals(Array.from(y), Array.from(want.out));
      const dy = random(new Rng(3), y.length);
      const wantDx = new Float64Array(x.length);
      for (let o = 0; o < y.length; o++) wantDx[want.argmax[o]] += dy[o];
      // Written whole, twice (the primitive is cached between calls).
      for (let run = 0; run < 2; run++) {
        const dx = new Float32Array(x.length).fill(NaN);
        assertTrue(dnnl!.maxPoolBackward(g, x, dy, dx), "maxPoolBackward ran");
        assertNear(dx, wantDx, `dx, run ${run}`, 1e-6);
        assertEquals(routedTo(dx), routedTo(wantDx));
      }
    },
  });
}
