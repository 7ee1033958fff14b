/**
 * Classification metrics of a probe: top-1, top-5, mean per-class accuracy and
 * the confusion matrix. Accuracies are fractions in [0, 1].
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  checkFeatures,
  checkLabels,
  type LabelledFeatures,
  type LinearClassifier,
} from "./linear.ts";

/** What {@linkcode classificationMetrics} measures; accuracies in [0, 1]. */
export interface ClassificationMetrics {
  /** Fraction of rows whose top-scoring class is the label. */
  top1: number;
  /** Fraction of rows whose label is among the 5 top-scoring classes (all if C ≤ 5). */
  top5: number;
  /** Mean over the classes present in the labels of each class's top-1 accuracy. */
  perClassAccuracy: number;
  /** Top-1 accuracy of each class, `null` for classes absent from the labels. */
  perClass: (number | null)[];
  /** `confusion[label][prediction]` counts, `[C, C]`. */
  confusion: number[][];
  /** Number of rows evaluated. */
  count: number;
}

/** Options of {@linkcode classificationMetrics}. */
export interface MetricsOptions {
  /** Number of classes C; 0 means the logits' width. @default {0} */
  numClasses?: number;
}

/** The defaults of {@linkcode MetricsOptions}. */
export const DEFAULT_METRICS_OPTIONS: Readonly<Required<MetricsOptions>> =
  Object.freeze({ numClasses: 0 });

function checkLogits(logits: tf.Tensor, labels: Int32Array): void {
  checkFeatures(logits, labels, "logits");
}

/**
 * The indices of the `k` largest scores of each row (ties: lower index first).
 *
 * @param scores Scores `[N, C]`.
 * @param k How many, ≤ C.
 * @returns Row-major `[N, k]` class indices, best first.
 */
function topIndices(scores: tf.Tensor2D, k: number): Int32Array {
  const { values, indices } = tf.topk(scores, k);
  const out = indices.dataSync() as Int32Array;
  tf.dispose([values, indices]);
  return Int32Array.from(out);
}

/**
 * Top-k accuracy: the fraction of rows whose label is among the `k` highest
 * logits (k is clipped to the number of classes).
 *
 * @param logits Scores `[N, C]`.
 * @param labels Class indices, length N.
 * @param k How many top classes count as a hit. @default {1}
 * @returns The accuracy in [0, 1] (0 for N = 0).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { topKAccuracy } from "@scaling-vicreg/probe/metrics";
 * await useBackend("cpu");
 * const logits = tf.tensor2d([[0.1, 0.9], [0.8, 0.2]]);
 * topKAccuracy(logits, Int32Array.of(1, 1)); // 0.5
 * logits.dispose();
 * ```
 */
export function topKAccuracy(
  logits: tf.Tensor2D,
  labels: Int32Array,
  k = 1,
): number {
  checkLogits(logits, labels);
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(`Expected k to be a positive integer: received ${k}`);
  }
  const [n, c] = logits.shape;
  if (n === 0) return 0;
  const kk = Math.min(k, c);
  const top = topIndices(logits, kk);
  let hits = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < kk; j++) {
      if (top[i * kk + j] === labels[i]) {
        hits++;
        break;
      }
    }
  }
  return hits / n;
}

/**
 * The confusion matrix `[C, C]`: entry [t][p] counts rows of label t predicted p.
 *
 * @param predictions Predicted class indices, length N.
 * @param labels True class indices, length N.
 * @param numClasses C.
 * @returns Counts, rows = true class, columns = predicted class.
 *
 * @example
 * ```ts
 * import { confusionMatrix } from "@scaling-vicreg/probe/metrics";
 * confusionMatrix(Int32Array.of(0, 1, 1), Int32Array.of(0, 0, 1), 2);
 * // [[1, 1], [0, 1]]
 * ```
 */
export function confusionMatrix(
  predictions: Int32Array,
  labels: Int32Array,
  numClasses: number,
): number[][] {
  if (predictions.length !== labels.length) {
    throw new TypeError(
      `Expected as many predictions as labels: ${predictions.length} vs ${labels.length}`,
    );
  }
  checkLabels(labels, numClasses, "labels");
  checkLabels(predictions, numClasses, "predictions");
  const m = Array.from(
    { length: numClasses },
    () => new Array<number>(numClasses).fill(0),
  );
  for (let i = 0; i < labels.length; i++) m[labels[i]][predictions[i]]++;
  return m;
}

/**
 * Per-class top-1 accuracies from a confusion matrix and their mean over the
 * classes that occur (the "mean per-class accuracy" of fine-grained benchmarks).
 *
 * @param confusion `[C, C]` counts, rows = true class.
 * @returns Each class's accuracy (`null` where the class has no rows) and the mean.
 *
 * @example
 * ```ts
 * import { perClassAccuracy } from "@scaling-vicreg/probe/metrics";
 * perClassAccuracy([[1, 1], [0, 1]]).mean; // (0.5 + 1) / 2 = 0.75
 * ```
 */
export function perClassAccuracy(
  confusion: number[][],
): { perClass: (number | null)[]; mean: number } {
  const perClass = confusion.map((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? null : row[t] / total;
  });
  const present = perClass.filter((v): v is number => v !== null);
  const mean = present.length === 0
    ? 0
    : present.reduce((a, b) => a + b, 0) / present.length;
  return { perClass, mean };
}

/**
 * Top-1, top-5, mean per-class accuracy and the confusion matrix of logits.
 *
 * @param logits Scores `[N, C]` (not disposed).
 * @param labels Class indices, length N.
 * @param options See {@linkcode MetricsOptions}.
 * @returns The metrics.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { classificationMetrics } from "@scaling-vicreg/probe/metrics";
 * await useBackend("cpu");
 * const logits = tf.tensor2d([[2, 1, 0], [0, 1, 2]]);
 * const m = classificationMetrics(logits, Int32Array.of(0, 1));
 * // m.top1 = 0.5, m.confusion = [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
 * logits.dispose();
 * ```
 */
export function classificationMetrics(
  logits: tf.Tensor2D,
  labels: Int32Array,
  options: MetricsOptions = {},
): ClassificationMetrics {
  checkLogits(logits, labels);
  const o = { ...DEFAULT_METRICS_OPTIONS, ...options };
  const c = logits.shape[1];
  const numClasses = o.numClasses || c;
  if (numClasses !== c) {
    throw new TypeError(
      `Expected logits of shape [N, ${numClasses}] (numClasses): received [${logits.shape}]`,
    );
  }
  const n = labels.length;
  if (n === 0) {
    return {
      top1: 0,
      top5: 0,
      perClassAccuracy: 0,
      perClass: new Array(c).fill(null),
      confusion: confusionMatrix(new Int32Array(), labels, c),
      count: 0,
    };
  }
  const k = Math.min(5, c);
  const top = topIndices(logits, k);
  const predictions = new Int32Array(n);
  let hits1 = 0, hits5 = 0;
  for (let i = 0; i < n; i++) {
    predictions[i] = top[i * k];
    if (predictions[i] === labels[i]) hits1++;
    for (let j = 0; j < k; j++) {
      if (top[i * k + j] === labels[i]) {
        hits5++;
        break;
      }
    }
  }
  const confusion = confusionMatrix(predictions, labels, c);
  const { perClass, mean } = perClassAccuracy(confusion);
  return {
    top1: hits1 / n,
    top5: hits5 / n,
    perClassAccuracy: mean,
    perClass,
    confusion,
    count: n,
  };
}

/**
 * Evaluates a trained classifier on labelled features, in batches of rows.
 *
 * @param classifier The trained probe.
 * @param data Features `[N, D]` and labels.
 * @param batchSize Rows per logits batch. @default {4096}
 * @returns The metrics.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { trainLinearClassifier } from "@scaling-vicreg/probe/linear";
 * import { evaluateClassifier } from "@scaling-vicreg/probe/metrics";
 * await useBackend("cpu");
 * const features = tf.tensor2d([[1, 0], [0, 1]]);
 * const labels = Int32Array.of(0, 1);
 * const clf = trainLinearClassifier(features, labels, { lr: 0.5, epochs: 10 });
 * evaluateClassifier(clf, { features, labels }).top1; // 1
 * clf.dispose();
 * features.dispose();
 * ```
 */
export function evaluateClassifier(
  classifier: LinearClassifier,
  data: LabelledFeatures,
  batchSize = 4096,
): ClassificationMetrics {
  checkFeatures(data.features, data.labels, "features");
  const logits = tf.tidy(() => {
    const n = data.features.shape[0];
    if (n <= batchSize) return classifier.predictLogits(data.features);
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < n; s += batchSize) {
      const rows = tf.slice(data.features, [s, 0], [
        Math.min(batchSize, n - s),
        -1,
      ]);
      parts.push(classifier.predictLogits(rows));
    }
    return tf.concat(parts, 0);
  });
  try {
    return classificationMetrics(logits, data.labels, {
      numClasses: classifier.numClasses,
    });
  } finally {
    logits.dispose();
  }
}
