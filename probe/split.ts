/**
 * A seeded, stratified train/validation split, so hyper-parameters are chosen
 * without ever looking at the test set.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";
import { stratifiedHoldout } from "@scaling-vicreg/backend/stratified-split";
import { checkFeatures, type LabelledFeatures } from "./linear.ts";

/** Row indices of the two parts of a {@linkcode stratifiedSplit}, ascending. */
export interface SplitIndices {
  /** Rows kept for training. */
  train: Int32Array;
  /** Rows held out for validation. */
  validation: Int32Array;
}

/**
 * Splits rows into train and validation so that every class keeps its
 * proportion: each class's rows are shuffled with `rng` and
 * round(fraction · n_c) of them go to validation, clamped so that a class with
 * at least two rows gives at least one to each side (fraction > 0) and a
 * class with one row stays in train (`stratifiedHoldout` of
 * `@scaling-vicreg/backend/stratified-split`, classes shuffled one after
 * another from `rng` in ascending label order).
 *
 * @param labels Class index of each row.
 * @param fraction Validation fraction, in [0, 1).
 * @param rng The seeded generator (advanced).
 * @returns Ascending row indices of both parts.
 *
 * @example
 * ```ts
 * import { Rng } from "@scaling-vicreg/backend";
 * import { stratifiedSplit } from "@scaling-vicreg/probe/split";
 * const { train, validation } = stratifiedSplit(
 *   Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1),
 *   0.25,
 *   new Rng(0),
 * );
 * // one row of each class in validation, six in train
 * ```
 */
export function stratifiedSplit(
  labels: Int32Array,
  fraction: number,
  rng: Rng,
): SplitIndices {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new RangeError(
      `Expected the validation fraction in [0, 1): received ${fraction}`,
    );
  }
  labels.forEach((label, i) => {
    if (!Number.isInteger(label) || label < 0) {
      throw new RangeError(
        `Expected labels[${i}] to be a non-negative integer: received ${label}`,
      );
    }
  });
  const heldOut = stratifiedHoldout(labels, rng, { fraction });
  const train: number[] = [];
  const validation: number[] = [];
  heldOut.forEach((h, i) => (h ? validation : train).push(i));
  return {
    train: Int32Array.from(train),
    validation: Int32Array.from(validation),
  };
}

/**
 * The rows `indices` of labelled features, as new tensors (dispose them).
 *
 * @param data Features `[N, D]` and labels.
 * @param indices Row indices.
 * @returns Features `[indices.length, D]` and their labels.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { selectRows } from "@scaling-vicreg/probe/split";
 * await useBackend("cpu");
 * const features = tf.tensor2d([[1], [2], [3]]);
 * const part = selectRows({ features, labels: Int32Array.of(0, 1, 0) }, Int32Array.of(2, 0));
 * // part.features = [[3], [1]], part.labels = [0, 0]
 * tf.dispose([features, part.features]);
 * ```
 */
export function selectRows(
  data: LabelledFeatures,
  indices: Int32Array,
): LabelledFeatures {
  checkFeatures(data.features, data.labels, "features");
  const n = data.labels.length;
  const labels = new Int32Array(indices.length);
  indices.forEach((row, i) => {
    if (!(row >= 0 && row < n)) {
      throw new RangeError(
        `Expected row indices in [0, ${n}): received ${row}`,
      );
    }
    labels[i] = data.labels[row];
  });
  const features = tf.tidy(() =>
    tf.gather(data.features, tf.tensor1d(indices, "int32"))
  ) as tf.Tensor2D;
  return { features, labels };
}
