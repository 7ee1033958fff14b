/**
 * Linear-probe evaluation of frozen features (the protocol of VICReg-style
 * papers): a softmax classifier trained with SGD or AdamW, a seeded random
 * hyper-parameter sweep scored on a stratified validation split (the test set
 * is used once), kNN accuracy, metrics, 10-crop TTA feature extraction with an
 * on-disk `.npy` cache, and a readable report. Works on features from any
 * source.
 *
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { baselineProbe, knnAccuracy, sweep } from "@scaling-vicreg/probe";
 * await useBackend("cpu");
 * const features = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2], [3, 0], [0, 3]]);
 * const data = { features, labels: Int32Array.of(0, 1, 0, 1, 0, 1) };
 * const swept = sweep(data, data, { trials: 2, maxEpochs: 2, validationFraction: 0.34 });
 * const base = baselineProbe(data, data, { epochs: 2 });
 * const knn = knnAccuracy(data, data, { k: 2 });
 * features.dispose();
 * ```
 *
 * @module
 */
export * from "./linear.ts";
export * from "./metrics.ts";
export * from "./knn.ts";
export * from "./split.ts";
export * from "./sweep.ts";
export * from "./features.ts";
export * from "./figure_text.ts";
export * from "./report.ts";
export * from "./svg.ts";
export * from "./protocol.ts";
// Sibling-member types this package's API names (documentation links).
export type { Rng, RngState } from "@scaling-vicreg/backend";
export type { NpyData, NpyDtype } from "@scaling-vicreg/backend/npy";
