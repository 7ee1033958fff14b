/**
 * The whole probe protocol in one call: baseline probe, sweep, the sweep on
 * 10-crop TTA features, and kNN, assembled into a report.
 *
 * The TTA row follows the paper's code (`create_submission_linear_tta.py` of
 * VICReg / VICRegL): the 10-crop mean features of train, validation and test
 * alike, with the sweep fitted, scored and selected on them and the test split
 * used once (`ttaOn: "all"`). The variant that fits and selects on plain
 * features and applies the classifier to 10-crop test features only
 * (`ttaOn: "test"`) is a train/test distribution shift, kept only as an
 * explicit option and labelled as such in the report.
 *
 * @module
 */
import { knnAccuracy, type KnnOptions } from "./knn.ts";
import type { LabelledFeatures } from "./linear.ts";
import {
  DEFAULT_REPORT_TRANSFORMS,
  makeProbeReport,
  type ProbeReport,
  type TtaSplits,
} from "./report.ts";
import {
  type BaselineOptions,
  baselineProbe,
  sweep,
  type SweepOptions,
} from "./sweep.ts";

/** The feature sets of {@linkcode runProbeProtocol} (the caller disposes them). */
export interface ProbeProtocolInput {
  /** Training features `[N, D]` of one view per image (the eval transform) and labels. */
  train: LabelledFeatures;
  /** Test features `[M, D]` of one view per image and labels. */
  test: LabelledFeatures;
  /**
   * Training features `[N, D]` with 10-crop TTA (the mean over the ten
   * crops), rows and labels as `train`; needed for the TTA row when `ttaOn`
   * is `"all"`.
   */
  trainTta?: LabelledFeatures;
  /** Test features `[M, D]` with 10-crop TTA, or absent for no TTA row. */
  testTta?: LabelledFeatures;
}

/** Options of {@linkcode runProbeProtocol}. */
export interface ProbeProtocolOptions {
  /** Options of the sweep (the TTA sweep uses the same ones, so the same split and trials). @default {{}} */
  sweep?: SweepOptions;
  /** Options of the baseline. @default {{}} */
  baseline?: BaselineOptions;
  /** Options of kNN, or `false` to skip it. @default {{}} */
  knn?: KnnOptions | false;
  /**
   * Which splits the TTA row uses 10-crop features for: `"all"` (train,
   * validation and test, as the paper's code) or `"test"` (fit and select
   * on single-view features, test on 10-crop ones: a distribution shift,
   * for comparison only).
   * @default {"all"}
   */
  ttaOn?: TtaSplits;
  /** Report heading. @default {"Linear probe"} */
  title?: string;
  /** Setup facts for the report. @default {{}} */
  meta?: Record<string, string | number | boolean>;
  /**
   * What produced the single-view features, for the report's table of
   * transforms.
   * @default {DEFAULT_REPORT_TRANSFORMS.plain}
   */
  plainTransform?: string;
  /**
   * What produced the 10-crop features, for the report.
   * @default {DEFAULT_REPORT_TRANSFORMS.tta}
   */
  ttaTransform?: string;
}

/** The defaults of {@linkcode ProbeProtocolOptions}. */
export const DEFAULT_PROBE_PROTOCOL_OPTIONS: Readonly<
  Required<ProbeProtocolOptions>
> = Object.freeze({
  sweep: {},
  baseline: {},
  knn: {},
  ttaOn: "all",
  title: "Linear probe",
  meta: {},
  plainTransform: DEFAULT_REPORT_TRANSFORMS.plain,
  ttaTransform: DEFAULT_REPORT_TRANSFORMS.tta,
});

/**
 * Runs the baseline probe, the sweep (scored on a validation split of
 * `train`, evaluated once on `test`), the TTA sweep (see
 * {@linkcode ProbeProtocolOptions.ttaOn}) and kNN, and returns the report for
 * {@linkcode writeReport} / {@linkcode formatHeadline}.
 *
 * With `ttaOn: "all"` the TTA row is a second sweep with the same options
 * (hence the same validation rows and trials) on `trainTta`, scored on its
 * validation rows, and evaluated once on `testTta`.
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
  if (o.ttaOn !== "all" && o.ttaOn !== "test") {
    throw new RangeError(
      `Expected ttaOn "all" or "test": received ${JSON.stringify(o.ttaOn)}`,
    );
  }
  const tta = input.testTta !== undefined;
  if (tta && o.ttaOn === "all") {
    if (input.trainTta === undefined) {
      throw new TypeError(
        'Expected input.trainTta (10-crop mean train features) with ttaOn "all": received none (pass them, or ttaOn "test" for the test-only variant)',
      );
    }
    if (
      input.trainTta.labels.length !== input.train.labels.length ||
      input.trainTta.labels.some((v, i) => v !== input.train.labels[i])
    ) {
      throw new TypeError(
        "Expected input.trainTta to hold the rows of input.train (same labels in the same order)",
      );
    }
  }
  const testOnly = tta && o.ttaOn === "test";
  const baseline = baselineProbe(input.train, input.test, o.baseline);
  const swept = sweep(input.train, input.test, {
    ...o.sweep,
    extraTestSets: {
      ...o.sweep.extraTestSets,
      ...(testOnly ? { tta: input.testTta! } : {}),
    },
  });
  const ttaSweep = tta && !testOnly
    ? sweep(input.trainTta!, input.testTta!, o.sweep)
    : undefined;
  const knn = o.knn === false
    ? undefined
    : knnAccuracy(input.train, input.test, o.knn);
  return makeProbeReport({
    baseline,
    sweep: swept,
    ...(ttaSweep ? { ttaSweep } : {}),
    ...(testOnly ? { ttaSet: "tta" } : {}),
    knn,
    title: o.title,
    meta: o.meta,
    transforms: { plain: o.plainTransform, tta: o.ttaTransform },
  });
}
