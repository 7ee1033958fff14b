/**
 * `deno bench -A augment/` — TrainTransform throughput at 96 px.
 *
 * The backend comes from `AUGMENT_BENCH_BACKEND` (default `cpu`). The paper's
 * batch is 256, but one such batch takes ~15 s on the pure-JS CPU backend, so
 * the default batch here is 32 (`AUGMENT_BENCH_BATCH` overrides it). Sources
 * are 128 × 128 (a packed-cache size); images/s = batch / time per iteration.
 * `deno task bench:augment` (`bench/augment_compare.ts`) compares the same
 * transform with torchvision's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, Rng, useBackend } from "@scaling-vicreg/backend";
import { TrainTransform } from "./train_transform.ts";

const backend = (Deno.env.get("AUGMENT_BENCH_BACKEND") ?? "cpu") as BackendName;
const batch = Number(Deno.env.get("AUGMENT_BENCH_BATCH") ?? 32);
await useBackend(backend);

const side = 128;
const images = Array.from({ length: batch }, (_, k) => ({
  width: side,
  height: side,
  data: new Uint8Array(side * side * 3).map((_, i) => (i * 7 + k * 13) % 256),
}));
const transform = new TrainTransform();
let seed = 0;

Deno.bench({
  name: `TrainTransform 96 px, batch ${batch} of ${side}² images (${backend})`,
  n: 3,
  warmup: 1,
  async fn() {
    const { view1, view2 } = transform.apply(images, new Rng(seed++));
    await view1.data();
    await view2.data();
    tf.dispose([view1, view2]);
  },
});
