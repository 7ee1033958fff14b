/**
 * Weighted k-nearest-neighbour accuracy of frozen features: a second,
 * hyper-parameter-free measure beside the linear probe.
 *
 * @module
 */
import {
  DEFAULT_KNN_VOTE_OPTIONS,
  knnVote,
} from "@scaling-vicreg/backend/knn-vote";
import { checkFeatures, checkLabels, type LabelledFeatures } from "./linear.ts";

/** Options of {@linkcode knnAccuracy}. */
export interface KnnOptions {
  /** Neighbours per test row (clipped to the training-set size). @default {20} */
  k?: number;
  /** Temperature T of the vote weights exp(s/T). @default {0.07} */
  temperature?: number;
  /** Number of classes C; 0 means max(label) + 1 over both sets. @default {0} */
  numClasses?: number;
  /** Test rows per similarity batch (bounds memory at batchSize × Ntrain). @default {256} */
  batchSize?: number;
}

/** The defaults of {@linkcode KnnOptions}: DINO's k = 20, T = 0.07. */
export const DEFAULT_KNN_OPTIONS: Readonly<Required<KnnOptions>> = Object
  .freeze({
    k: DEFAULT_KNN_VOTE_OPTIONS.k,
    temperature: DEFAULT_KNN_VOTE_OPTIONS.temperature,
    numClasses: 0,
    batchSize: DEFAULT_KNN_VOTE_OPTIONS.batchSize,
  });

/** What {@linkcode knnAccuracy} measures; accuracies in [0, 1]. */
export interface KnnResult {
  /** Fraction of test rows whose highest-voted class is the label. */
  top1: number;
  /** Fraction whose label is among the 5 highest-voted classes (ties: lower class first). */
  top5: number;
  /** The k used (after clipping). */
  k: number;
  /** The temperature used. */
  temperature: number;
  /** The predicted class of each test row. */
  predictions: Int32Array;
}

function maxLabel(labels: Int32Array): number {
  let m = -1;
  for (const v of labels) m = Math.max(m, v);
  return m;
}

/**
 * kNN classification accuracy with cosine similarity and temperature-weighted
 * votes, as in InstDisc (Wu et al. 2018) and DINO's `eval_knn.py`: each test
 * row's k most cosine-similar training rows vote for their class with weight
 * exp(s/T); the class scores are the summed weights.
 *
 * The vote is `knnVote` (`@scaling-vicreg/backend/knn-vote`), the rule the
 * online kNN of pretraining uses too. Runs on the active backend,
 * `batchSize` test rows at a time (similarities `[B, Ntrain]`).
 *
 * @param train Training features `[Ntrain, D]` and labels.
 * @param test Test features `[Ntest, D]` and labels.
 * @param options See {@linkcode KnnOptions}.
 * @returns Top-1 and top-5 accuracy and the predictions.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { knnAccuracy } from "@scaling-vicreg/probe/knn";
 * await useBackend("cpu");
 * const train = { features: tf.tensor2d([[1, 0], [0, 1]]), labels: Int32Array.of(0, 1) };
 * const test = { features: tf.tensor2d([[2, 0.1]]), labels: Int32Array.of(0) };
 * knnAccuracy(train, test, { k: 2 }).top1; // 1
 * tf.dispose([train.features, test.features]);
 * ```
 */
export function knnAccuracy(
  train: LabelledFeatures,
  test: LabelledFeatures,
  options: KnnOptions = {},
): KnnResult {
  const o = { ...DEFAULT_KNN_OPTIONS, ...options };
  checkFeatures(train.features, train.labels, "train.features");
  checkFeatures(test.features, test.labels, "test.features");
  if (train.features.shape[1] !== test.features.shape[1]) {
    throw new TypeError(
      `Expected train and test features of the same width: ${
        train.features.shape[1]
      } vs ${test.features.shape[1]}`,
    );
  }
  const numClasses = o.numClasses ||
    Math.max(maxLabel(train.labels), maxLabel(test.labels)) + 1;
  checkLabels(train.labels, numClasses, "train.labels");
  checkLabels(test.labels, numClasses, "test.labels");
  if (train.features.shape[0] === 0) {
    throw new RangeError("Expected a non-empty training set");
  }
  const k = Math.min(o.k, train.features.shape[0]);
  const nTest = test.features.shape[0];
  const top = Math.min(5, numClasses);
  const ranked = knnVote(
    { features: train.features, labels: train.labels, numClasses },
    test.features,
    { k: o.k, temperature: o.temperature, top, batchSize: o.batchSize },
  ); // [Ntest, top]
  const best = ranked.dataSync();
  ranked.dispose();
  const predictions = new Int32Array(nTest);
  let hits1 = 0, hits5 = 0;
  for (let i = 0; i < nTest; i++) {
    const label = test.labels[i];
    predictions[i] = best[i * top];
    if (best[i * top] === label) hits1++;
    for (let j = 0; j < top; j++) {
      if (best[i * top + j] === label) {
        hits5++;
        break;
      }
    }
  }
  return {
    top1: nTest === 0 ? 0 : hits1 / nTest,
    top5: nTest === 0 ? 0 : hits5 / nTest,
    k,
    temperature: o.temperature,
    predictions,
  };
}
