import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertNoLeak,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { runProbeProtocol } from "./protocol.ts";
import { baselineProbe, sweep } from "./sweep.ts";
import { knnAccuracy } from "./knn.ts";
import { blobs, flat } from "./testdata/reference.ts";

await useBackend("cpu");

const rng = new Rng(8);
const CENTRES = Array.from(
  { length: 3 },
  () => Array.from({ length: 5 }, () => rng.normal(0, 1.5)),
);
function make(seed: number, n: number) {
  const d = blobs(CENTRES, n, 0.6, new Rng(seed));
  return {
    features: tf.tensor2d(flat(d.x), [d.x.length, 5]),
    labels: Int32Array.from(d.y),
  };
}

Deno.test("runProbeProtocol() equals baseline + sweep (+TTA) + kNN run separately", () => {
  const train = make(1, 20), test = make(2, 10), tta = make(3, 10);
  const sweepOptions = { trials: 3, maxEpochs: 3, seed: 4 };
  const baselineOptions = { epochs: 3 };
  const report = runProbeProtocol({ train, test, testTta: tta }, {
    sweep: sweepOptions,
    baseline: baselineOptions,
    meta: { source: "toy" },
  });
  const swept = sweep(train, test, { ...sweepOptions, extraTestSets: { tta } });
  assertEquals(
    report.baseline.top1,
    baselineProbe(train, test, baselineOptions).test.top1,
  );
  assertEquals(report.sweep.top1, swept.test.top1);
  assertEquals(report.sweepTta?.top1, swept.extra.tta.top1);
  assertEquals(report.knn?.top1, knnAccuracy(train, test).top1);
  assertEquals(report.meta, { source: "toy" });
  const plain = runProbeProtocol({ train, test }, {
    sweep: sweepOptions,
    knn: false,
  });
  assertTrue(plain.sweepTta === null && plain.knn === null);
  tf.dispose([train.features, test.features, tta.features]);
});

Deno.test("runProbeProtocol() leaks no tensors", async () => {
  const train = make(1, 6), test = make(2, 3);
  await assertNoLeak(() => {
    runProbeProtocol({ train, test, testTta: test }, {
      sweep: { trials: 1, maxEpochs: 1 },
      baseline: { epochs: 1 },
    });
  });
  tf.dispose([train.features, test.features]);
});
