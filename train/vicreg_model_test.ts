import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  localLoss,
  multiViewLocalLoss,
  multiViewLoss,
  vicregLoss,
  type ViewGeometry,
} from "@scaling-vicreg/losses";
import { resolveConfig } from "./config.ts";
import { createVicregModel, type Projections } from "./vicreg_model.ts";

await useBackend("cpu");

/** Random projections of `views` views: z [N, 8], local [N, h·w, 4]. */
function projections(
  rng: Rng,
  n: number,
  grids: { h: number; w: number }[],
): Projections[] {
  const random = (shape: number[]) =>
    tf.tensor(
      rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b)), 0, 1),
      shape,
    );
  return grids.map((grid) => ({
    z: random([n, 8]) as tf.Tensor2D,
    local: random([n, grid.h * grid.w, 4]) as tf.Tensor3D,
    grid,
  }));
}

function geometry(n: number, views: number): ViewGeometry[][] {
  return Array.from(
    { length: views },
    (_, v) =>
      Array.from({ length: n }, (_, i) => ({
        box: [0.05 * v, 0.03 * i, 0.5 + 0.05 * v, 0.6 + 0.03 * i] as const,
        flip: (i + v) % 2 === 0,
      })),
  );
}

function model(flags: Record<string, unknown>) {
  return createVicregModel(resolveConfig({
    flags: {
      preset: "tiny",
      mlp: "16-8",
      "local-mlp": "8-4",
      ...flags,
    },
  }));
}

const value = (t: tf.Scalar) => t.dataSync()[0];

Deno.test("VicregModel.criterion() of two views is VICReg + α × the local loss of the two-view functions, to the bit", () => {
  for (const matching of ["index", "location", "feature"] as const) {
    const m = model({ "local-matching": matching });
    tf.tidy(() => {
      const p = projections(new Rng(1), 6, [{ h: 2, w: 2 }, { h: 2, w: 2 }]);
      const g = geometry(6, 2);
      const loss = m.criterion(p, g);
      const o = { simCoeff: 10, stdCoeff: 25, covCoeff: 1 };
      const global = vicregLoss(p[0].z, p[1].z, o);
      const local = localLoss(p[0].local!, p[1].local!, {
        ...o,
        matching,
        topK: 4,
        grid: p[0].grid,
        geometry1: g[0],
        geometry2: g[1],
      });
      const total = tf.add(global.loss, tf.mul(local.loss, 0.2));
      assertEquals(value(loss.total), value(total as tf.Scalar), matching);
      assertEquals(value(loss.terms.invariance), value(global.invariance));
      assertEquals(value(loss.terms.variance), value(global.variance));
      assertEquals(value(loss.terms.covariance), value(global.covariance));
      assertEquals(value(loss.terms.local!), value(local.loss));
    });
    m.dispose();
  }
});

Deno.test("VicregModel.criterion() of 2 global + 3 local views: multi-view losses over every pair, index matching over the global maps only", () => {
  const grids = [
    { h: 2, w: 2 },
    { h: 2, w: 2 },
    ...Array(3).fill({ h: 1, w: 1 }),
  ];
  const o = { simCoeff: 10, stdCoeff: 25, covCoeff: 1, globalViews: 2 };
  for (const matching of ["index", "location", "feature"] as const) {
    const m = model({ "local-matching": matching, "local-crops": 3 });
    assertEquals(m.settings.globalViews, 2);
    tf.tidy(() => {
      const p = projections(new Rng(2), 6, grids);
      const g = geometry(6, 5);
      const loss = m.criterion(p, g);
      const global = multiViewLoss(p.map((x) => x.z), o);
      const compared = matching === "index" ? 2 : 5;
      const local = multiViewLocalLoss(
        p.slice(0, compared).map((x) => x.local!),
        {
          ...o,
          matching,
          topK: 4,
          grids: grids.slice(0, compared),
          geometries: g.slice(0, compared),
        },
      );
      assertEquals(value(loss.terms.invariance), value(global.invariance));
      assertClose(
        value(loss.total),
        value(global.loss) + 0.2 * value(local.loss),
        { rtol: 1e-6 },
      );
      if (matching === "index") {
        // the global views' maps only: the two-view local loss
        const two = localLoss(p[0].local!, p[1].local!, { ...o });
        assertEquals(value(loss.terms.local!), value(two.loss));
      } else {
        // the local views' maps enter
        const globalOnly = multiViewLocalLoss(
          p.slice(0, 2).map((x) => x.local!),
          {
            ...o,
            matching,
            grids: grids.slice(0, 2),
            geometries: g.slice(0, 2),
          },
        );
        assertTrue(
          Math.abs(value(loss.terms.local!) - value(globalOnly.loss)) > 1e-4,
        );
      }
    });
    m.dispose();
  }
});
