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
  gridCenters,
  localLoss,
  matchByLocation,
  nearestMatches,
  type ViewGeometry,
} from "./local.ts";
import { vicregLoss } from "./vicreg.ts";

await useBackend("cpu");

function randomDescriptors(rng: Rng, shape: [number, number, number]) {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  rng.fillNormal(data, 0, 1);
  return data;
}

/** Mirrors each image's h×w grid left-right: cell (r, c) <- (r, w−1−c). */
function mirrorCells(
  data: Float32Array,
  n: number,
  h: number,
  w: number,
  d: number,
): Float32Array {
  const out = new Float32Array(data.length);
  for (let k = 0; k < n; k++) {
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const from = ((k * h + r) * w + (w - 1 - c)) * d;
        out.set(data.subarray(from, from + d), ((k * h + r) * w + c) * d);
      }
    }
  }
  return out;
}

Deno.test("gridCenters() gives cell centres in image coordinates, flip respected", () => {
  const box = [0.2, 0.4, 0.6, 0.8] as const;
  // cell width = cell height = 0.2; centres at 0.3, 0.5 (x) and 0.5, 0.7 (y)
  assertClose(
    gridCenters({ box, flip: false }, 2, 2),
    [0.3, 0.5, 0.5, 0.5, 0.3, 0.7, 0.5, 0.7],
  );
  assertClose(
    gridCenters({ box, flip: true }, 2, 2),
    [0.5, 0.5, 0.3, 0.5, 0.5, 0.7, 0.3, 0.7],
  );
  // 1×3 grid over a non-square box
  assertClose(
    gridCenters({ box: [0, 0, 0.6, 0.5], flip: false }, 1, 3),
    [0.1, 0.25, 0.3, 0.25, 0.5, 0.25],
  );
  assertThrows(
    () => gridCenters({ box: [0.5, 0, 0.5, 1], flip: false }, 2, 2),
    RangeError,
    "x0 < x1",
  );
  assertThrows(
    () => gridCenters({ box: [0, 0, 1, 1], flip: false }, 0, 2),
    RangeError,
    "grid.h",
  );
});

Deno.test("matchByLocation() pairs the geometrically nearest cells of two known crops", () => {
  // a: left-top quarter; b: shifted right by a quarter, overlapping a's
  // right column. Centres: a (.125|.375, .125|.375); b (.375|.625, …).
  const a: ViewGeometry = { box: [0, 0, 0.5, 0.5], flip: false };
  const b: ViewGeometry = { box: [0.25, 0, 0.75, 0.5], flip: false };
  const grid = { h: 2, w: 2 };
  const all = matchByLocation(a, b, { grid, topK: 4 });
  // a0 (.125,.125) -> b0 (.375,.125) at .25; a1 -> b0 at 0; a2 -> b2 at .25; a3 -> b2 at 0
  assertEquals(Array.from(all.source), [0, 1, 2, 3]);
  assertEquals(Array.from(all.target), [0, 0, 2, 2]);
  assertClose(all.distance, [0.25, 0, 0.25, 0]);
  const best = matchByLocation(a, b, { grid, topK: 2 });
  assertEquals(Array.from(best.source), [1, 3]);
  assertEquals(Array.from(best.target), [0, 2]);
  // b flipped: its cell 0 now shows the right half (.625), cell 1 the left (.375)
  const flipped = matchByLocation(a, { ...b, flip: true }, { grid, topK: 2 });
  assertEquals(Array.from(flipped.source), [1, 3]);
  assertEquals(Array.from(flipped.target), [1, 3]);
  // the other direction: b0 (.375) sits on a1, b1 (.625) is nearest a1 at .25
  const back = matchByLocation(b, a, { grid, topK: 4 });
  assertEquals(Array.from(back.target), [1, 1, 3, 3]);
  // maxDistance drops cells with no counterpart
  const near = matchByLocation(b, a, { grid, topK: 4, maxDistance: 0.1 });
  assertEquals(Array.from(near.source), [0, 2]);
});

Deno.test("matchByLocation() finds the nearest cell in brute force over random crops", () => {
  const rng = new Rng(7);
  const crop = (): ViewGeometry => {
    const s = rng.uniform(0.3, 0.9);
    const x0 = rng.uniform(0, 1 - s), y0 = rng.uniform(0, 1 - s);
    return { box: [x0, y0, x0 + s, y0 + s], flip: rng.bernoulli(0.5) };
  };
  for (let trial = 0; trial < 20; trial++) {
    const a = crop(), b = crop();
    const m = matchByLocation(a, b, { grid: { h: 3, w: 3 }, topK: 9 });
    // independent geometry: centre of cell (r, c) directly from the box
    const centre = (g: ViewGeometry, k: number) => {
      const r = Math.floor(k / 3), c = k % 3;
      const col = g.flip ? 2 - c : c;
      return [
        g.box[0] + (col + 0.5) / 3 * (g.box[2] - g.box[0]),
        g.box[1] + (r + 0.5) / 3 * (g.box[3] - g.box[1]),
      ];
    };
    for (let i = 0; i < 9; i++) {
      const [px, py] = centre(a, i);
      let best = Infinity;
      for (let j = 0; j < 9; j++) {
        const [qx, qy] = centre(b, j);
        best = Math.min(best, Math.hypot(px - qx, py - qy));
      }
      const [qx, qy] = centre(b, m.target[i]);
      assertClose(Math.hypot(px - qx, py - qy), best, { atol: 1e-6 });
    }
  }
});

Deno.test("nearestMatches() keeps the topK smallest distances in source order", () => {
  // 3 sources × 2 targets; nearest: s0->t1 (2), s1->t0 (1), s2->t1 (0.5)
  const d = Float32Array.of(4, 2, 1, 3, 6, 0.5);
  const m = nearestMatches(d, 2, { topK: 2 });
  assertEquals(Array.from(m.source), [1, 2]);
  assertEquals(Array.from(m.target), [0, 1]);
  assertClose(m.distance, [1, 0.5]);
  assertEquals(nearestMatches(d, 2, { topK: 10 }).source.length, 3);
  assertThrows(() => nearestMatches(d, 4), RangeError, "targets");
  assertThrows(() => nearestMatches(d, 2, { topK: 0 }), RangeError, "topK");
});

Deno.test("localLoss() with index matching is vicregLoss on [N·L, D] at the same grid index", () => {
  const rng = new Rng(1);
  const shape: [number, number, number] = [3, 4, 5];
  const a = randomDescriptors(rng, shape), b = randomDescriptors(rng, shape);
  const z1 = tf.tensor3d(a, shape), z2 = tf.tensor3d(b, shape);
  const x = tf.tensor2d(a, [12, 5]), y = tf.tensor2d(b, [12, 5]);
  const opts = { variant: "paper-code" as const, covDivisor: 1024 };
  const got = localLoss(z1, z2, opts);
  const want = vicregLoss(x, y, opts);
  for (const key of ["loss", "invariance", "variance", "covariance"] as const) {
    assertClose(got[key], want[key], { rtol: 1e-6, message: key });
  }
  tf.dispose([z1, z2, x, y, got, want]);
});

Deno.test("localLoss() with location matching compares the cells that see the same place", () => {
  const n = 6, h = 3, w = 3, d = 4;
  const rng = new Rng(2);
  const a = randomDescriptors(rng, [n, h * w, d]);
  // view 2 is the same crop, flipped: its cell (r, c) shows view 1's (r, w−1−c)
  const b = mirrorCells(a, n, h, w, d);
  const z1 = tf.tensor3d(a, [n, h * w, d]), z2 = tf.tensor3d(b, [n, h * w, d]);
  const geometry1 = Array.from(
    { length: n },
    (_, k): ViewGeometry => ({ box: [0.1 * k / n, 0, 0.5, 0.7], flip: false }),
  );
  const geometry2 = geometry1.map((g) => ({ ...g, flip: true }));
  const loc = localLoss(z1, z2, {
    matching: "location",
    grid: { h, w },
    geometry1,
    geometry2,
    topK: 9,
  });
  assertEquals(loc.invariance.dataSync()[0], 0);
  const index = localLoss(z1, z2);
  assertTrue(index.invariance.dataSync()[0] > 0.5);
  // with every cell matched to its mirror, both directions pool the same
  // rows as vicregLoss(z1, z1) does
  const x = tf.tensor2d(a, [n * h * w, d]);
  const self = vicregLoss(x, x);
  assertClose(loc.loss, self.loss, { rtol: 1e-6 });
  tf.dispose([z1, z2, x, loc, index, self]);
});

Deno.test("localLoss() with location matching uses exactly the topK nearest pairs of each direction", () => {
  const n = 4, d = 3, h = 2, w = 2;
  const rng = new Rng(3);
  const a = randomDescriptors(rng, [n, 4, d]),
    b = randomDescriptors(rng, [n, 4, d]);
  const z1 = tf.tensor3d(a, [n, 4, d]), z2 = tf.tensor3d(b, [n, 4, d]);
  const g1: ViewGeometry[] = Array(n).fill({
    box: [0, 0, 0.5, 0.5],
    flip: false,
  });
  const g2: ViewGeometry[] = Array(n).fill({
    box: [0.25, 0, 0.75, 0.5],
    flip: false,
  });
  const got = localLoss(z1, z2, {
    matching: "location",
    grid: { h, w },
    geometry1: g1,
    geometry2: g2,
    topK: 2,
  });
  // hand matches (see the matchByLocation test): 1→2: a1-b0, a3-b2;
  // 2→1: b0-a1, b2-a3 (b1, b3 are a quarter away from a1, a3).
  const rows = (cells: number[]) =>
    Array.from({ length: n }, (_, k) => cells.map((c) => k * 4 + c)).flat();
  const fa = tf.tensor2d(a, [n * 4, d]), fb = tf.tensor2d(b, [n * 4, d]);
  const pick = (t: tf.Tensor2D, cells: number[]) =>
    tf.gather(t, tf.tensor1d(rows(cells), "int32")) as tf.Tensor2D;
  const want1 = vicregLoss(pick(fa, [1, 3]), pick(fb, [0, 2]));
  const want2 = vicregLoss(pick(fb, [0, 2]), pick(fa, [1, 3]));
  for (const key of ["loss", "invariance", "variance", "covariance"] as const) {
    const mean = (want1[key].dataSync()[0] + want2[key].dataSync()[0]) / 2;
    assertClose(got[key], mean, { rtol: 1e-6, message: key });
  }
  tf.dispose([z1, z2, fa, fb, got, want1, want2]);
});

Deno.test("localLoss() with feature matching finds shuffled copies of every cell", () => {
  const n = 5, l = 9, d = 6;
  const rng = new Rng(4);
  const a = randomDescriptors(rng, [n, l, d]);
  const b = new Float32Array(a.length);
  for (let k = 0; k < n; k++) {
    const perm = rng.permutation(l);
    for (let c = 0; c < l; c++) {
      b.set(
        a.subarray((k * l + perm[c]) * d, (k * l + perm[c] + 1) * d),
        (k * l + c) * d,
      );
    }
  }
  const z1 = tf.tensor3d(a, [n, l, d]), z2 = tf.tensor3d(b, [n, l, d]);
  const feat = localLoss(z1, z2, { matching: "feature", topK: 4 });
  assertClose(feat.invariance, 0, { atol: 1e-10 });
  const index = localLoss(z1, z2);
  assertTrue(index.invariance.dataSync()[0] > 0.5);
  tf.dispose([z1, z2, feat, index]);
});

Deno.test("localLoss() gradients flow through the matched cells only", () => {
  const n = 3, d = 2;
  const rng = new Rng(5);
  const z1 = tf.tensor3d(randomDescriptors(rng, [n, 4, d]), [n, 4, d]);
  const z2 = tf.tensor3d(randomDescriptors(rng, [n, 4, d]), [n, 4, d]);
  const g1: ViewGeometry[] = Array(n).fill({
    box: [0, 0, 0.5, 0.5],
    flip: false,
  });
  const g2: ViewGeometry[] = Array(n).fill({
    box: [0.25, 0, 0.75, 0.5],
    flip: false,
  });
  const [ga] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    localLoss(x as tf.Tensor3D, y as tf.Tensor3D, {
      matching: "location",
      grid: { h: 2, w: 2 },
      geometry1: g1,
      geometry2: g2,
      topK: 2,
    }).loss
  )([z1, z2]);
  // only cells 1 and 3 of view 1 take part in either direction
  const g = ga.arraySync() as number[][][];
  for (let k = 0; k < n; k++) {
    for (const c of [0, 2]) assertEquals(g[k][c], [0, 0]);
    assertTrue(g[k][1].some((v) => v !== 0));
  }
  tf.dispose([z1, z2, ga]);
});

Deno.test("localLoss() leaks no tensors for loss and gradient inside tf.tidy", async () => {
  const n = 4, h = 2, w = 2, d = 3;
  const rng = new Rng(6);
  const z1 = tf.tensor3d(randomDescriptors(rng, [n, h * w, d]), [n, h * w, d]);
  const z2 = tf.tensor3d(randomDescriptors(rng, [n, h * w, d]), [n, h * w, d]);
  const geometry1: ViewGeometry[] = Array(n).fill({
    box: [0, 0, 1, 1],
    flip: false,
  });
  const geometry2: ViewGeometry[] = Array(n).fill({
    box: [0.2, 0.1, 0.9, 0.8],
    flip: true,
  });
  for (const matching of ["index", "location", "feature"] as const) {
    const opts = { matching, grid: { h, w }, geometry1, geometry2, topK: 3 };
    await assertNoLeak(() =>
      tf.tidy(() => {
        const t = localLoss(z1, z2, opts);
        const g = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
          localLoss(x as tf.Tensor3D, y as tf.Tensor3D, opts).loss
        )([z1, z2]);
        return [t.loss, ...g];
      })
    );
    await assertNoLeak(() => localLoss(z1, z2, opts));
  }
  tf.dispose([z1, z2]);
});

Deno.test("localLoss() rejects bad shapes and missing geometry", () => {
  const z = tf.zeros([2, 4, 3]) as tf.Tensor3D;
  const other = tf.zeros([2, 9, 3]) as tf.Tensor3D;
  const flat = tf.zeros([8, 3]) as unknown as tf.Tensor3D;
  assertThrows(() => localLoss(z, other), TypeError, "same shape");
  assertThrows(() => localLoss(flat, z), TypeError, '"z1" of rank 3');
  assertThrows(
    () => localLoss(z, z, { matching: "location" }),
    TypeError,
    '"grid"',
  );
  assertThrows(
    () => localLoss(z, z, { matching: "location", grid: { h: 3, w: 3 } }),
    TypeError,
    "h·w = L = 4",
  );
  assertThrows(
    () => localLoss(z, z, { matching: "location", grid: { h: 2, w: 2 } }),
    TypeError,
    '"geometry1"',
  );
  assertThrows(
    () => localLoss(z, z, { matching: "feature", topK: 0 }),
    RangeError,
    '"topK"',
  );
  assertThrows(
    () => localLoss(z, z, { matching: "nearest" as "index" }),
    RangeError,
    '"matching"',
  );
  const far: ViewGeometry[] = Array(2).fill({
    box: [0, 0, 0.3, 0.3],
    flip: false,
  });
  const away: ViewGeometry[] = Array(2).fill({
    box: [0.7, 0.7, 1, 1],
    flip: false,
  });
  assertThrows(
    () =>
      localLoss(z, z, {
        matching: "location",
        grid: { h: 2, w: 2 },
        geometry1: far,
        geometry2: away,
        maxDistance: 0.1,
      }),
    RangeError,
    "at least 2 matched cells",
  );
  tf.dispose([z, other, flat]);
});

Deno.test("localLoss() gradients equal autodiff through tf.gather, duplicate matches included", () => {
  const n = 3, d = 3;
  const rng = new Rng(8);
  const a = randomDescriptors(rng, [n, 4, d]),
    b = randomDescriptors(rng, [n, 4, d]);
  const z1 = tf.tensor3d(a, [n, 4, d]), z2 = tf.tensor3d(b, [n, 4, d]);
  const g1: ViewGeometry[] = Array(n).fill({
    box: [0, 0, 0.5, 0.5],
    flip: false,
  });
  const g2: ViewGeometry[] = Array(n).fill({
    box: [0.25, 0, 0.75, 0.5],
    flip: false,
  });
  const opts = {
    matching: "location" as const,
    grid: { h: 2, w: 2 },
    geometry1: g1,
    geometry2: g2,
    topK: 4,
  };
  const got = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    localLoss(x as tf.Tensor3D, y as tf.Tensor3D, opts).loss
  )([z1, z2]);
  // hand matches with topK 4: 1→2 a0-b0, a1-b0, a2-b2, a3-b2 (b0, b2 twice);
  // 2→1 b0-a1, b1-a1, b2-a3, b3-a3
  const rows = (cells: number[]) =>
    tf.tensor1d(
      Array.from({ length: n }, (_, k) => cells.map((c) => k * 4 + c)).flat(),
      "int32",
    );
  const want = tf.grads((x: tf.Tensor, y: tf.Tensor) => {
    const fx = tf.reshape(x, [n * 4, d]), fy = tf.reshape(y, [n * 4, d]);
    const pick = (t: tf.Tensor, c: number[]) =>
      tf.gather(t, rows(c)) as tf.Tensor2D;
    const l1 = vicregLoss(pick(fx, [0, 1, 2, 3]), pick(fy, [0, 0, 2, 2])).loss;
    const l2 = vicregLoss(pick(fy, [0, 1, 2, 3]), pick(fx, [1, 1, 3, 3])).loss;
    return tf.mul(tf.add(l1, l2), 0.5);
  })([z1, z2]);
  assertClose(got[0], want[0], { rtol: 1e-5, atol: 1e-6 });
  assertClose(got[1], want[1], { rtol: 1e-5, atol: 1e-6 });
  tf.dispose([z1, z2, ...got, ...want]);
});

/** Feature-matching loss terms and both gradients, read back. */
async function featureRun(
  a: Float32Array,
  b: Float32Array,
  shape: [number, number, number],
  maxDistance: number,
): Promise<number[][]> {
  const z1 = tf.tensor3d(a, shape), z2 = tf.tensor3d(b, shape);
  const opts = { matching: "feature" as const, topK: 3, maxDistance };
  const terms = localLoss(z1, z2, opts);
  const grads = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    localLoss(x as tf.Tensor3D, y as tf.Tensor3D, opts).loss
  )([z1, z2]);
  const out = await Promise.all(
    [terms.loss, terms.invariance, terms.variance, terms.covariance, ...grads]
      .map(async (t) => Array.from(await t.data())),
  );
  tf.dispose([z1, z2, terms, grads]);
  return out;
}

Deno.test("localLoss() feature matching on the device (maxDistance ∞) equals the host matching of nearestMatches", async () => {
  const shape: [number, number, number] = [4, 9, 5];
  const rng = new Rng(12);
  const a = randomDescriptors(rng, shape);
  const b = randomDescriptors(rng, shape);
  // A finite maxDistance no pair reaches takes the host path (read back,
  // nearestMatches per image); ∞ takes the device path (argMin + topk).
  const host = await featureRun(a, b, shape, 1e30);
  const device = await featureRun(a, b, shape, Infinity);
  const names = ["loss", "invariance", "variance", "covariance", "dz1", "dz2"];
  device.forEach((v, i) =>
    assertClose(v, host[i], { rtol: 1e-5, atol: 1e-7, message: names[i] })
  );
  // The matching matters: index matching gives another loss.
  const z1 = tf.tensor3d(a, shape), z2 = tf.tensor3d(b, shape);
  const index = localLoss(z1, z2);
  assertTrue(Math.abs(index.loss.dataSync()[0] - device[0][0]) > 1e-3);
  tf.dispose([z1, z2, index]);
});

// The device path on the other backends (WebGPU cannot read back
// synchronously in Deno, so the host path would fail there).
for (
  const [name, loads] of await loadableBackends([
    "wasm",
    "blas",
    "native",
    "webgpu",
  ])
) {
  Deno.test({
    name: `localLoss() feature matching on ${name} equals the cpu result`,
    ignore: ignoreUnless(loads, name),
    async fn() {
      // 16 images: wasm's gather with batchDims read past its input here.
      const shape: [number, number, number] = [16, 9, 4];
      const rng = new Rng(13);
      const a = randomDescriptors(rng, shape);
      const b = randomDescriptors(rng, shape);
      const cpu = await featureRun(a, b, shape, Infinity);
      const other = await withBackend(
        name,
        () => featureRun(a, b, shape, Infinity),
      );
      other.forEach((v, i) =>
        assertClose(v, cpu[i], { rtol: 1e-3, atol: 1e-5 })
      );
    },
  });
}
