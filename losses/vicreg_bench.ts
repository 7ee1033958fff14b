/**
 * Benchmarks of the VICReg losses on the active backend (cpu here): the
 * global loss at N = 1024, D = 1024 (forward + gradient) and the local loss
 * on 9216 × 512 descriptors (1024 images × 3×3 cells; forward, and forward +
 * gradient for the default index matching).
 *
 * Run: `deno bench -A losses/vicreg_bench.ts` (cpu), or pick a backend with
 * `VICREG_BACKEND=wasm deno bench -A losses/vicreg_bench.ts`. The pure-JS cpu
 * backend needs seconds per iteration at these sizes, so each bench runs
 * twice without warm-up.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, useBackend } from "@scaling-vicreg/backend";
import { localLoss, type ViewGeometry } from "./local.ts";
import { vicregLoss } from "./vicreg.ts";

await useBackend(
  (Deno.env.get("VICREG_BACKEND") ?? "cpu") as BackendName,
);

const x = tf.randomNormal([1024, 1024], 0, 1, "float32", 1) as tf.Tensor2D;
const y = tf.randomNormal([1024, 1024], 0, 1, "float32", 2) as tf.Tensor2D;
const z1 = tf.randomNormal([1024, 9, 512], 0, 1, "float32", 3) as tf.Tensor3D;
const z2 = tf.randomNormal([1024, 9, 512], 0, 1, "float32", 4) as tf.Tensor3D;
const geometry1: ViewGeometry[] = Array(1024).fill({
  box: [0, 0, 0.6, 0.6],
  flip: false,
});
const geometry2: ViewGeometry[] = Array(1024).fill({
  box: [0.2, 0.1, 0.8, 0.7],
  flip: true,
});
const paperLocal = { variant: "paper-code", covDivisor: 1024 } as const;

function read(t: tf.Tensor): number {
  return t.dataSync()[0];
}

Deno.bench("vicregLoss() forward + grad, N = 1024, D = 1024", {
  n: 2,
  warmup: 0,
}, () => {
  tf.tidy(() => {
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      vicregLoss(a as tf.Tensor2D, b as tf.Tensor2D).loss
    )([x, y]);
    read(tf.sum(g[0]));
  });
});

Deno.bench("localLoss() index forward, 9216 × 512", {
  n: 2,
  warmup: 0,
}, () => {
  tf.tidy(() => read(localLoss(z1, z2, paperLocal).loss));
});

Deno.bench("localLoss() index forward + grad, 9216 × 512", {
  n: 2,
  warmup: 0,
}, () => {
  tf.tidy(() => {
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      localLoss(a as tf.Tensor3D, b as tf.Tensor3D, paperLocal).loss
    )([z1, z2]);
    read(tf.sum(g[0]));
  });
});

Deno.bench("localLoss() location (topK 4) forward, 9216 × 512", {
  n: 2,
  warmup: 0,
}, () => {
  tf.tidy(() =>
    read(
      localLoss(z1, z2, {
        ...paperLocal,
        matching: "location",
        grid: { h: 3, w: 3 },
        geometry1,
        geometry2,
      }).loss,
    )
  );
});

Deno.bench("localLoss() feature (topK 4) forward, 9216 × 512", {
  n: 2,
  warmup: 0,
}, () => {
  tf.tidy(() =>
    read(localLoss(z1, z2, { ...paperLocal, matching: "feature" }).loss)
  );
});
