/**
 * The whole probe protocol in one call: baseline probe, sweep (with optional
 * 10-crop TTA test features) and kNN, assembled into a report.
 *
 * @module
 */
import { knnAccuracy, type KnnOptions } from "./knn.ts";
import type { LabelledFeatures } from "./linear.ts";
import { makeProbeReport, type ProbeReport } from "./report.ts";
import {
  type BaselineOptions,
  baselineProbe,
  sweep,
  type SweepOptions,
} from "./sweep.ts";

/** The feature sets of {@linkcode runProbeProtocol} (the caller disposes them). */
export interface ProbeProtocolInput {
  /** Training features `[N, D]` (centre crop / eval transform) and labels. */
  train: LabelledFeatures;
  /** Test features `[M, D]` (centre crop) and labels. */
  test: LabelledFeatures;
  /** Test features with 10-crop TTA `[M, D]`, or absent for no TTA row. */
  testTta?: LabelledFeatures;
}

/** Options of {@linkcode runProbeProtocol}. */
export interface ProbeProtocolOptions {
  /** Options of the sweep. @default {{}} */
  sweep?: SweepOptions;
  /** Options of the baseline. @default {{}} */
  baseline?: BaselineOptions;
  /** Options of kNN, or `false` to skip it. @default {{}} */
  knn?: KnnOptions | false;
  /** Report heading. @default {"Linear probe"} */
  title?: string;
  /** Setup facts for the report. @default {{}} */
  meta?: Record<string, string | number | boolean>;
}

/** The defaults of {@linkcode ProbeProtocolOptions}. */
export const DEFAULT_PROBE_PROTOCOL_OPTIONS: Readonly<
  Required<ProbeProtocolOptions>
> = Object.freeze({
  sweep: {},
  baseline: {},
  knn: {},
  title: "Linear probe",
  meta: {},
});

/**
 * Runs the baseline probe, the sweep (scored on a validation split of
 * `train`, evaluated once on `test` and `testTta`) and kNN, and returns the
 * report for {@linkcode writeReport} / {@linkcode formatHeadline}.
 *
 * @param input The feature sets.
 * @param options See {@linkcode ProbeProtocolOptions}.
 * @returns The report.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { formatHeadline, runProbeProtocol } from "@scaling-vicreg/probe";
 * await useBackend("cpu");
 * const features = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2], [3, 0], [0, 3]]);
 * const data = { features, labels: Int32Array.of(0, 1, 0, 1, 0, 1) };
 * const report = runProbeProtocol({ train: data, test: data }, {
 *   sweep: { trials: 2, maxEpochs: 2, validationFraction: 0.34 },
 *   baseline: { epochs: 2 },
 * });
 * formatHeadline(report); // the terminal table
 * features.dispose();
 * ```
 */
export function runProbeProtocol(
  input: ProbeProtocolInput,
  options: ProbeProtocolOptions = {},
): ProbeReport {
  const o = { ...DEFAULT_PROBE_PROTOCOL_OPTIONS, ...options };
  const extra: Record<string, LabelledFeatures> = input.testTta
    ? { tta: input.testTta }
    : {};
  const baseline = baselineProbe(input.train, input.test, o.baseline);
  const swept = sweep(input.train, input.test, {
    ...o.sweep,
    extraTestSets: { ...o.sweep.extraTestSets, ...extra },
  });
  const knn = o.knn === false
    ? undefined
    : knnAccuracy(input.train, input.test, o.knn);
  return makeProbeReport({
    baseline,
    sweep: swept,
    ttaSet: input.testTta ? "tta" : undefined,
    knn,
    title: o.title,
    meta: o.meta,
  });
}
