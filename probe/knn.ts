/**
 * Weighted k-nearest-neighbour accuracy of frozen features: a second,
 * hyper-parameter-free measure beside the linear probe.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
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
  .freeze({ k: 20, temperature: 0.07, numClasses: 0, batchSize: 256 });

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
 * Runs on the active backend, `batchSize` test rows at a time
 * (similarities `[B, Ntrain]`).
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
  if (!Number.isInteger(o.k) || o.k < 1) {
    throw new RangeError(
      `Expected k to be a positive integer: received ${o.k}`,
    );
  }
  if (!(o.temperature > 0)) {
    throw new RangeError(
      `Expected temperature > 0: received ${o.temperature}`,
    );
  }
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
    throw new RangeError(
      `Expected batchSize to be a positive integer: received ${o.batchSize}`,
    );
  }
  const numClasses = o.numClasses ||
    Math.max(maxLabel(train.labels), maxLabel(test.labels)) + 1;
  checkLabels(train.labels, numClasses, "train.labels");
  checkLabels(test.labels, numClasses, "test.labels");
  const nTrain = train.features.shape[0];
  const nTest = test.features.shape[0];
  if (nTrain === 0) throw new RangeError("Expected a non-empty training set");
  const k = Math.min(o.k, nTrain);
  const top = Math.min(5, numClasses);
  const predictions = new Int32Array(nTest);
  let hits1 = 0, hits5 = 0;

  const bank = tf.tidy(() => tf.transpose(l2Normalize(train.features))); // [D, Ntrain]
  const bankLabels = tf.tensor1d(train.labels, "int32");
  try {
    for (let s = 0; s < nTest; s += o.batchSize) {
      const rows = Math.min(o.batchSize, nTest - s);
      const ranked = tf.tidy(() => {
        const q = l2Normalize(tf.slice(test.features, [s, 0], [rows, -1])); // [B, D]
        const sim = tf.matMul(q, bank); // [B, D]·[D, Ntrain] -> [B, Ntrain]
        const { values, indices } = tf.topk(sim, k); // [B, k]
        const weights = tf.exp(tf.div(values, o.temperature)); // [B, k]
        const votes = tf.oneHot(tf.gather(bankLabels, indices), numClasses); // [B, k, C]
        // Σ_k weight · onehot: [B, k, C] -> [B, C]
        const scores = tf.sum(tf.mul(votes, tf.expandDims(weights, 2)), 1);
        return tf.topk(scores, top).indices; // [B, top]
      });
      const best = ranked.dataSync();
      ranked.dispose();
      for (let i = 0; i < rows; i++) {
        const label = test.labels[s + i];
        predictions[s + i] = best[i * top];
        if (best[i * top] === label) hits1++;
        for (let j = 0; j < top; j++) {
          if (best[i * top + j] === label) {
            hits5++;
            break;
          }
        }
      }
    }
  } finally {
    tf.dispose([bank, bankLabels]);
  }
  return {
    top1: nTest === 0 ? 0 : hits1 / nTest,
    top5: nTest === 0 ? 0 : hits5 / nTest,
    k,
    temperature: o.temperature,
    predictions,
  };
}

/** Rows scaled to unit L2 norm (zero rows stay zero): `[N, D]`. */
function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), 1, true)); // [N, 1]
    return tf.div(x, tf.maximum(norm, 1e-12));
  });
}
