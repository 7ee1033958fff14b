import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertNoLeak,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { baselineProbe, sampleHyperparams, sweep } from "./sweep.ts";
import { blobs, flat, type PlainData } from "./testdata/reference.ts";

await useBackend("cpu");

const rng = new Rng(21);
const CENTRES = Array.from(
  { length: 4 },
  () => Array.from({ length: 8 }, () => rng.normal(0, 1)),
);
const TRAIN = blobs(CENTRES, 30, 0.7, new Rng(22));
const TEST = blobs(CENTRES, 15, 0.7, new Rng(23));

function labelled(d: PlainData, labels = d.y) {
  return {
    features: tf.tensor2d(flat(d.x), [d.x.length, d.x[0].length]),
    labels: Int32Array.from(labels),
  };
}

const QUICK = { trials: 6, maxEpochs: 4, batchSize: 32, seed: 3 };

Deno.test("sweep() selection is unchanged when the test labels are adversarially permuted", () => {
  const train = labelled(TRAIN);
  const test = labelled(TEST);
  // Every test label moved to the next class: a probe that is right on the
  // true labels is wrong on all of these.
  const adversarial = labelled(TEST, TEST.y.map((y) => (y + 1) % 4));
  const honest = sweep(train, test, QUICK);
  const attacked = sweep(train, adversarial, QUICK);
  assertEquals(
    attacked.trials.map((t) => [t.params, t.validationTop1]),
    honest.trials.map((t) => [t.params, t.validationTop1]),
  );
  assertEquals(attacked.bestTrial, honest.bestTrial);
  assertEquals(attacked.best, honest.best);
  assertTrue(honest.test.top1 > 0.6, `honest test top-1 ${honest.test.top1}`);
  assertTrue(
    attacked.test.top1 < 0.3,
    `attacked test top-1 ${attacked.test.top1}`,
  );
  tf.dispose([train.features, test.features, adversarial.features]);
});

Deno.test("sweep() reports every trial, picks the best validation top-1 and is reproducible", () => {
  const train = labelled(TRAIN);
  const test = labelled(TEST);
  const seen: number[] = [];
  const a = sweep(train, test, {
    ...QUICK,
    onTrial: (t) => seen.push(t.index),
  });
  const b = sweep(train, test, QUICK);
  assertEquals(seen, [0, 1, 2, 3, 4, 5]);
  assertEquals(a.trials.length, 6);
  const bestVal = Math.max(...a.trials.map((t) => t.validationTop1));
  assertEquals(a.trials[a.bestTrial].validationTop1, bestVal);
  assertTrue(
    a.trials.slice(0, a.bestTrial).every((t) => t.validationTop1 < bestVal),
  ); // first on ties
  assertEquals(a.sizes, { train: 96, validation: 24, full: 120, test: 60 });
  assertEquals(a.numClasses, 4);
  assertEquals(
    b.trials.map((t) => t.validationTop1),
    a.trials.map((t) => t.validationTop1),
  );
  assertEquals(b.test, a.test);
  tf.dispose([train.features, test.features]);
});

Deno.test("sweep() evaluates extra test sets once and can hand back the classifier", () => {
  const train = labelled(TRAIN);
  const test = labelled(TEST);
  const r = sweep(train, test, {
    ...QUICK,
    trials: 2,
    extraTestSets: { same: test },
    keepClassifier: true,
  });
  assertEquals(r.extra.same, r.test);
  assertTrue(r.classifier !== undefined);
  assertEquals([r.classifier!.dim, r.classifier!.numClasses], [8, 4]);
  // The final probe was fit on the whole training set (not the 80 % split):
  // its standardisation mean is the mean of all 120 training rows.
  const fullMean = TRAIN.x[0].map((_, k) =>
    TRAIN.x.reduce((s, row) => s + row[k], 0) / TRAIN.x.length
  );
  assertClose(r.classifier!.mean!, fullMean, { atol: 1e-5 });
  r.classifier!.dispose();
  tf.dispose([train.features, test.features]);
});

Deno.test("sampleHyperparams() draws from the paper's search space", () => {
  const draws = sampleHyperparams(new Rng(0), { trials: 400, maxEpochs: 60 });
  assertTrue(draws.every((d) => d.lr >= 1e-4 && d.lr < 1e-1));
  assertTrue(draws.every((d) => d.weightDecay >= 1e-6 && d.weightDecay < 1e-3));
  assertEquals(
    new Set(draws.map((d) => d.optimizer)),
    new Set(["sgd", "adamw"]),
  );
  assertEquals(
    new Set(draws.map((d) => d.scheduler)),
    new Set(["cosine", "step"]),
  );
  assertEquals(new Set(draws.map((d) => d.epochs)), new Set([10, 25, 50, 60]));
  // log-uniform: about half the lrs fall below the geometric midpoint √(1e-4·1e-1).
  const below = draws.filter((d) => d.lr < Math.sqrt(1e-5)).length / 400;
  assertTrue(below > 0.4 && below < 0.6, `fraction below midpoint ${below}`);
});

Deno.test("sweep() validates its options", () => {
  const train = labelled(TRAIN);
  assertThrows(() => sweep(train, train, { trials: 0 }), RangeError, "trials");
  assertThrows(
    () => sweep(train, train, { maxEpochs: 101 }),
    RangeError,
    "maxEpochs",
  );
  assertThrows(
    () => sweep(train, train, { epochChoices: [200] }),
    RangeError,
    "epochChoices",
  );
  assertThrows(
    () => sweep(train, train, { lrRange: [0, 1] }),
    RangeError,
    "lrRange",
  );
  assertThrows(
    () => sweep(train, train, { validationFraction: 1 }),
    RangeError,
    "validationFraction",
  );
  const narrow = {
    features: tf.zeros([2, 3]) as tf.Tensor2D,
    labels: Int32Array.of(0, 1),
  };
  assertThrows(() => sweep(train, narrow), TypeError, "width 8");
  tf.dispose([train.features, narrow.features]);
});

Deno.test("baselineProbe() trains with the fixed parameters and scores the test set", () => {
  const train = labelled(TRAIN);
  const test = labelled(TEST);
  const r = baselineProbe(train, test, {
    epochs: 5,
    lr: 0.05,
    batchSize: 32,
    extraTestSets: { again: test },
  });
  assertEquals(r.params, {
    optimizer: "sgd",
    scheduler: "cosine",
    lr: 0.05,
    weightDecay: 1e-4,
    epochs: 5,
  });
  assertTrue(r.test.top1 > 0.6, `baseline top-1 ${r.test.top1}`);
  assertEquals(r.extra.again, r.test);
  tf.dispose([train.features, test.features]);
});

Deno.test("sweep() and baselineProbe() leak no tensors", async () => {
  const train = labelled(TRAIN);
  const test = labelled(TEST);
  await assertNoLeak(() => {
    sweep(train, test, { ...QUICK, trials: 2, maxEpochs: 1 });
    baselineProbe(train, test, { epochs: 1 });
  });
  tf.dispose([train.features, test.features]);
});
