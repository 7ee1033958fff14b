import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
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
import {
  multiViewLocalLoss,
  type MultiViewLocalOptions,
  multiViewLoss,
  type MultiViewOptions,
  viewPairs,
} from "./multi_view.ts";
import { vicregLoss, type VicregTerms } from "./vicreg.ts";
import { localLoss, type LocalMatching, type ViewGeometry } from "./local.ts";
import { makeViewEmbeddings, makeViewMap } from "./testdata/fixture_inputs.ts";
import fixture from "./testdata/multi_view.json" with { type: "json" };

await useBackend("cpu");

const RTOL = 1e-5;
const VIEWS = fixture.globalViews + fixture.localViews;
const TERMS = ["loss", "invariance", "variance", "covariance"] as const;

interface Case {
  name: string;
  variant?: string;
  matching?: string;
  loss: number;
  invariance: number;
  variance: number;
  covariance: number;
  grads: number[][];
}

function embeddingData(): Float32Array[] {
  return Array.from(
    { length: VIEWS },
    (_, v) => makeViewEmbeddings(v, fixture.n, fixture.d, fixture.globalViews),
  );
}

function mapData(): Float32Array[] {
  return fixture.grids.map((g, v) =>
    makeViewMap(v, fixture.n, g.h * g.w, fixture.localDim)
  );
}

const geometries = fixture.geometries as unknown as ViewGeometry[][];

/** The terms of `loss` on tensors made from `data`, and d(loss)/d(each view). */
function evaluate<T extends tf.Tensor>(
  data: Float32Array[],
  shapes: number[][],
  loss: (views: T[]) => VicregTerms,
): { terms: Record<(typeof TERMS)[number], number>; grads: Float32Array[] } {
  return tf.tidy(() => {
    const views = data.map((d, v) => tf.tensor(d, shapes[v]) as T);
    const terms = loss(views);
    const grads = tf.grads((...xs: tf.Tensor[]) => loss(xs as T[]).loss)(
      views,
    );
    return {
      terms: Object.fromEntries(
        TERMS.map((k) => [k, terms[k].dataSync()[0]]),
      ) as Record<(typeof TERMS)[number], number>,
      grads: grads.map((g) => g.dataSync() as Float32Array),
    };
  });
}

function maxAbs(values: number[][]): number {
  return Math.max(...values.flat().map(Math.abs));
}

/** Terms to 1e-5 relative; gradients to 1e-5 of the largest entry. */
function checkCase(
  actual: ReturnType<typeof evaluate>,
  expected: Case,
): void {
  for (const key of TERMS) {
    assertClose(actual.terms[key], expected[key], {
      rtol: RTOL,
      atol: 1e-7,
      message: `${expected.name} ${key}`,
    });
  }
  const scale = maxAbs(expected.grads);
  assertEquals(actual.grads.length, expected.grads.length);
  actual.grads.forEach((g, v) =>
    assertClose(g, expected.grads[v], {
      rtol: RTOL,
      atol: RTOL * scale,
      message: `${expected.name} d(loss)/d(view ${v})`,
    })
  );
}

const embeddingShapes = Array(VIEWS).fill([fixture.n, fixture.d]);
const mapShapes = fixture.grids.map((g) => [
  fixture.n,
  g.h * g.w,
  fixture.localDim,
]);

function globalRun(c: Case) {
  const options: MultiViewOptions = {
    globalViews: fixture.globalViews,
    variant: c.variant as "vicreg" | "paper-code",
  };
  return evaluate<tf.Tensor2D>(
    embeddingData(),
    embeddingShapes,
    (z) => multiViewLoss(z, options),
  );
}

function localRun(c: Case) {
  const options: MultiViewLocalOptions = {
    globalViews: fixture.globalViews,
    matching: c.matching as LocalMatching,
    topK: fixture.topK,
    grids: fixture.grids,
    geometries,
  };
  return evaluate<tf.Tensor3D>(
    mapData(),
    mapShapes,
    (m) => multiViewLocalLoss(m, options),
  );
}

const cases = fixture.cases as Case[];

Deno.test("multi-view fixture inputs match make_multi_view_fixtures.py bit for bit", () => {
  const sum = (xs: Float32Array[]) =>
    xs.reduce((s, x) => x.reduce((t, v) => t + v, s), 0);
  const z = embeddingData();
  const m = mapData();
  assertEquals(z[0][0], fixture.checks.firstEmbedding);
  assertEquals(m[VIEWS - 1].at(-1), fixture.checks.lastMap);
  // one float32 ulp anywhere moves a sum by far more than 1e-12 of it
  assertClose(sum(z), fixture.checks.embeddingSum, { rtol: 1e-12, atol: 0 });
  assertClose(sum(m), fixture.checks.mapSum, { rtol: 1e-12, atol: 0 });
});

for (const c of cases.filter((c) => c.variant !== undefined)) {
  Deno.test(`multiViewLoss() matches VICRegL's global_loss in PyTorch float64, 2 global + 4 local views, ${c.variant}: terms and gradients`, () => {
    checkCase(globalRun(c), c);
  });
}

for (const c of cases.filter((c) => c.matching !== undefined)) {
  Deno.test(`multiViewLocalLoss() matches the PyTorch float64 reference, 2 global (4×4) + 4 local (3×3) maps, ${c.matching} matching: terms and gradients`, () => {
    checkCase(localRun(c), c);
  });
}

Deno.test("multiViewLoss() fails the fixture when local views are also compared with each other (negative control)", () => {
  // Every pair of views compared (G = V): a different invariance, so the
  // fixture check can tell which pairs the loss compares.
  const r = evaluate<tf.Tensor2D>(
    embeddingData(),
    embeddingShapes,
    (z) => multiViewLoss(z, { globalViews: VIEWS }),
  );
  const c = cases.find((c) => c.variant === "vicreg")!;
  assertTrue(Math.abs(r.terms.invariance - c.invariance) > 1e-3 * c.invariance);
});

Deno.test("multiViewLocalLoss() fails the location fixture when the crops' flips are ignored (negative control)", () => {
  const c = cases.find((c) => c.matching === "location")!;
  const unflipped = geometries.map((g) =>
    g.map((x) => ({ ...x, flip: false }))
  );
  const r = evaluate<tf.Tensor3D>(
    mapData(),
    mapShapes,
    (m) =>
      multiViewLocalLoss(m, {
        matching: "location",
        topK: fixture.topK,
        grids: fixture.grids,
        geometries: unflipped,
      }),
  );
  assertTrue(Math.abs(r.terms.loss - c.loss) > 1e-3 * c.loss);
});

/** Random `[N, D]` or `[N, L, D]` data from a seeded generator. */
function random(rng: Rng, shape: number[]): tf.Tensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillNormal(data, 0, 1);
  return tf.tensor(data, shape);
}

function bits(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

Deno.test("multiViewLoss() with 2 global views and no local ones is vicregLoss() exactly, terms and gradients", () => {
  const rng = new Rng(3);
  for (const variant of ["vicreg", "paper-code"] as const) {
    for (const [n, d] of [[2, 3], [16, 8], [64, 128]]) {
      tf.tidy(() => {
        const x = random(rng, [n, d]) as tf.Tensor2D;
        const y = tf.add(x, tf.mul(random(rng, [n, d]), 0.3)) as tf.Tensor2D;
        const o = { variant, simCoeff: 10 };
        const two = vicregLoss(x, y, o);
        const multi = multiViewLoss([x, y], o);
        for (const key of TERMS) {
          // the same floats; 1e-7 is the bound
          assertEquals(bits(multi[key]), bits(two[key]), `${variant} ${key}`);
          assertClose(multi[key], two[key], { rtol: 1e-7, atol: 0 });
        }
        const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          vicregLoss(a as tf.Tensor2D, b as tf.Tensor2D, o).loss
        )([x, y]);
        const gm = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          multiViewLoss([a as tf.Tensor2D, b as tf.Tensor2D], o).loss
        )([x, y]);
        gm.forEach((g, i) => assertClose(g, g2[i], { rtol: 1e-7, atol: 0 }));
      });
    }
  }
});

Deno.test("multiViewLocalLoss() with 2 views is localLoss() exactly, for every matching", () => {
  const rng = new Rng(4);
  const n = 6, h = 3, w = 3, d = 5;
  const g = (k: number): ViewGeometry[] =>
    Array.from({ length: n }, (_, i) => ({
      box: [0.05 * i, 0.1 * k, 0.5 + 0.05 * i, 0.6 + 0.1 * k],
      flip: (i + k) % 2 === 0,
    }));
  tf.tidy(() => {
    const a = random(rng, [n, h * w, d]) as tf.Tensor3D;
    const b = random(rng, [n, h * w, d]) as tf.Tensor3D;
    for (const matching of ["index", "location", "feature"] as const) {
      const grid = { h, w };
      const two = localLoss(a, b, {
        matching,
        grid,
        geometry1: g(0),
        geometry2: g(1),
      });
      const multi = multiViewLocalLoss([a, b], {
        matching,
        grids: [grid, grid],
        geometries: [g(0), g(1)],
      });
      for (const key of TERMS) {
        assertEquals(bits(multi[key]), bits(two[key]), `${matching} ${key}`);
      }
    }
  });
});

Deno.test("multiViewLoss() averages over the global-to-every-view pairs and over the views", () => {
  // The terms from vicregLoss() pair by pair: invariance is the mean over
  // the ordered pairs (i < G, j ≠ i); variance the mean over views of each
  // view's hinge (vicregLoss(z, z) gives hinge(z)); covariance 2/V × the
  // sum of each view's term (vicregLoss(z, z) gives 2 × it).
  const rng = new Rng(5);
  tf.tidy(() => {
    const z = [0, 1, 2, 3, 4].map(() => random(rng, [12, 6]) as tf.Tensor2D);
    const multi = multiViewLoss(z, { globalViews: 2 });
    const value = (t: tf.Scalar) => t.dataSync()[0];
    let inv = 0, pairs = 0;
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 5; j++) {
        if (j === i) continue;
        inv += value(vicregLoss(z[i], z[j]).invariance);
        pairs++;
      }
    }
    assertEquals(pairs, 8);
    const self = z.map((x) => vicregLoss(x, x));
    const variance = self.reduce((s, t) => s + value(t.variance), 0) / 5;
    const covariance = self.reduce((s, t) => s + value(t.covariance), 0) / 5;
    assertClose(value(multi.invariance), inv / pairs, { rtol: 1e-6 });
    assertClose(value(multi.variance), variance, { rtol: 1e-6 });
    assertClose(value(multi.covariance), covariance, { rtol: 1e-6 });
  });
});

Deno.test("viewPairs() lists each global view with every later view, global pairs counted twice", () => {
  assertEquals(viewPairs(4, 2), [
    { first: 0, second: 1, weight: 2 },
    { first: 0, second: 2, weight: 1 },
    { first: 0, second: 3, weight: 1 },
    { first: 1, second: 2, weight: 1 },
    { first: 1, second: 3, weight: 1 },
  ]);
  for (const [v, g] of [[2, 2], [8, 2], [5, 1], [4, 4], [10, 3]]) {
    const weight = viewPairs(v, g).reduce((s, p) => s + p.weight, 0);
    assertEquals(weight, g * (v - 1), `V = ${v}, G = ${g}`);
  }
  assertThrows(() => viewPairs(1, 1), RangeError, "at least 2 views");
  assertThrows(() => viewPairs(4, 0), RangeError, '"globalViews"');
  assertThrows(() => viewPairs(4, 5), RangeError, "[1, 4]");
  assertThrows(() => viewPairs(4, 1.5), RangeError, '"globalViews"');
});

Deno.test("multiViewLoss() and multiViewLocalLoss() reject bad views with errors naming them", () => {
  const z = tf.zeros([4, 3]) as tf.Tensor2D;
  const wide = tf.zeros([4, 5]) as tf.Tensor2D;
  const one = tf.zeros([1, 3]) as tf.Tensor2D;
  const big = tf.zeros([2, 9, 3]) as tf.Tensor3D;
  const small = tf.zeros([2, 4, 3]) as tf.Tensor3D;
  assertThrows(() => multiViewLoss([z]), RangeError, "at least 2 views");
  assertThrows(() => multiViewLoss([z, wide]), TypeError, "embeddings[1]");
  assertThrows(
    () => multiViewLoss([z, big as unknown as tf.Tensor2D]),
    TypeError,
    '"embeddings[1]" of rank 2',
  );
  assertThrows(() => multiViewLoss([one, one]), RangeError, "N = 1");
  assertThrows(
    () => multiViewLoss([z, z], { globalViews: 3 }),
    RangeError,
    '"globalViews"',
  );
  assertThrows(
    () => multiViewLocalLoss([big, big, small]),
    TypeError,
    "Views 0 and 2 of the multi-view local loss",
  );
  assertThrows(
    () => multiViewLocalLoss([big, small], { grids: [{ h: 3, w: 3 }] }),
    TypeError,
    '"grids" with one entry per view (2)',
  );
  assertThrows(
    () =>
      multiViewLocalLoss([big, small], {
        matching: "location",
        grids: [{ h: 3, w: 3 }, { h: 3, w: 3 }],
        geometries: [[], []],
      }),
    TypeError,
    '"grid2" with h·w = L = 4',
  );
  tf.dispose([z, wide, one, big, small]);
});

Deno.test("multiViewLoss() and multiViewLocalLoss() leak no tensors for loss and gradient inside tf.tidy", async () => {
  const rng = new Rng(6);
  const z = [0, 1, 2, 3].map(() => random(rng, [8, 4]) as tf.Tensor2D);
  const m = [9, 9, 4, 4].map((l) => random(rng, [8, l, 4]) as tf.Tensor3D);
  await assertNoLeak(() => multiViewLoss(z));
  await assertNoLeak(() =>
    tf.tidy(() =>
      tf.grads((...xs: tf.Tensor[]) => multiViewLoss(xs as tf.Tensor2D[]).loss)(
        z,
      )
    )
  );
  for (const matching of ["feature", "location"] as const) {
    const box = (k: number): ViewGeometry[] =>
      Array(8).fill({ box: [0.1 * k, 0, 0.5 + 0.1 * k, 0.6], flip: false });
    const o: MultiViewLocalOptions = {
      matching,
      grids: [{ h: 3, w: 3 }, { h: 3, w: 3 }, { h: 2, w: 2 }, { h: 2, w: 2 }],
      geometries: [box(0), box(1), box(2), box(3)],
    };
    await assertNoLeak(() => multiViewLocalLoss(m, o));
    await assertNoLeak(() =>
      tf.tidy(() =>
        tf.grads((...xs: tf.Tensor[]) =>
          multiViewLocalLoss(xs as tf.Tensor3D[], o).loss
        )(m)
      )
    );
  }
  tf.dispose([...z, ...m]);
});

// The same fixture on the other backends that load here.
for (
  const [name, loads] of await loadableBackends(["wasm", "blas", "native"])
) {
  Deno.test({
    name:
      `multiViewLoss() and multiViewLocalLoss() match the PyTorch fixture on ${name}`,
    ignore: ignoreUnless(loads, name),
    fn: () =>
      withBackend(name, () => {
        for (const c of cases) {
          checkCase(c.variant ? globalRun(c) : localRun(c), c);
        }
      }),
  });
}
