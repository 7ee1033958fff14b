import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertNoLeak,
  assertThrows,
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

Deno.test("runProbeProtocol() equals baseline + sweep + TTA sweep on 10-crop train/test + kNN run separately", () => {
  const train = make(1, 20), test = make(2, 10);
  // 10-crop stand-ins: other rows with the same labels in the same order.
  const trainTta = make(5, 20), tta = make(3, 10);
  const sweepOptions = { trials: 3, maxEpochs: 3, seed: 4 };
  const baselineOptions = { epochs: 3 };
  const report = runProbeProtocol({ train, test, trainTta, testTta: tta }, {
    sweep: sweepOptions,
    baseline: baselineOptions,
    meta: { source: "toy" },
  });
  const swept = sweep(train, test, sweepOptions);
  const sweptTta = sweep(trainTta, tta, sweepOptions);
  assertEquals(
    report.baseline.top1,
    baselineProbe(train, test, baselineOptions).test.top1,
  );
  assertEquals(report.sweep.top1, swept.test.top1);
  // The TTA row is fitted and selected on the 10-crop train features.
  assertEquals(report.ttaOn, "all");
  assertEquals(report.sweepTta?.top1, sweptTta.test.top1);
  assertEquals(
    report.sweepTta?.perClassAccuracy,
    sweptTta.test.perClassAccuracy,
  );
  assertEquals(
    report.ttaSweep?.trials.map((t) => t.validationTop1),
    sweptTta.trials.map((t) => t.validationTop1),
  );
  assertEquals(report.ttaSweep?.bestTrial, sweptTta.bestTrial);
  assertEquals(report.knn?.top1, knnAccuracy(train, test).top1);
  assertEquals(report.meta, { source: "toy" });
  // The test-only variant, on request: the plain sweep applied to 10-crop test rows.
  const testOnly = runProbeProtocol({ train, test, trainTta, testTta: tta }, {
    sweep: sweepOptions,
    baseline: baselineOptions,
    ttaOn: "test",
  });
  const sweptExtra = sweep(train, test, {
    ...sweepOptions,
    extraTestSets: { tta },
  });
  assertEquals(testOnly.ttaOn, "test");
  assertEquals(testOnly.ttaSweep, null);
  assertEquals(testOnly.sweepTta?.top1, sweptExtra.extra.tta.top1);
  assertThrows(
    () => runProbeProtocol({ train, test, testTta: tta }),
    TypeError,
    "trainTta",
  );
  assertThrows(
    () => runProbeProtocol({ train, test, trainTta: test, testTta: tta }),
    TypeError,
    "same labels",
  );
  const plain = runProbeProtocol({ train, test }, {
    sweep: sweepOptions,
    knn: false,
  });
  assertTrue(plain.sweepTta === null && plain.knn === null);
  tf.dispose([train.features, test.features, trainTta.features, tta.features]);
});

Deno.test("runProbeProtocol() leaks no tensors", async () => {
  const train = make(1, 6), test = make(2, 3);
  await assertNoLeak(() => {
    runProbeProtocol({ train, test, trainTta: train, testTta: test }, {
      sweep: { trials: 1, maxEpochs: 1 },
      baseline: { epochs: 1 },
    });
  });
  tf.dispose([train.features, test.features]);
});
