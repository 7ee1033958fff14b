/**
 * Probe training time (issue 9): the size is 10,000 × 4096 features,
 * 100 classes, 100 epochs. That takes tens of minutes on the pure-JS CPU
 * backend, so the default here is smaller; set
 * `PROBE_BENCH_SIZE=rows,dim,classes,epochs` (e.g. `10000,4096,100,100`) and
 * `PROBE_BENCH_BACKEND` (default `cpu`) to run other sizes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import type { BackendName } from "@scaling-vicreg/backend";
import { trainLinearClassifier } from "./linear.ts";

const [rows, dim, classes, epochs] = (
  Deno.env.get("PROBE_BENCH_SIZE") ?? "2000,512,100,5"
).split(",").map(Number);
const backend = (Deno.env.get("PROBE_BENCH_BACKEND") ?? "cpu") as BackendName;
await useBackend(backend);

const rng = new Rng(0);
const features = tf.tensor2d(
  rng.fillNormal(new Float32Array(rows * dim)),
  [rows, dim],
);
const labels = Int32Array.from({ length: rows }, () => rng.int(classes));

Deno.bench({
  name:
    `trainLinearClassifier() ${rows}×${dim} features, ${classes} classes, ${epochs} epochs, batch 256, sgd (${backend})`,
  n: 1,
  warmup: 0,
  fn() {
    const clf = trainLinearClassifier(features, labels, {
      epochs,
      numClasses: classes,
    });
    clf.weights.dataSync();
    clf.dispose();
  },
});
