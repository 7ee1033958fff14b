/**
 * The paper's linear-probe protocol: a seeded random search over the probe's
 * hyper-parameters, scored on a stratified validation split carved from the
 * training set; the best trial is retrained on the whole training set and
 * evaluated once on the test set. Also a fixed-hyper-parameter baseline.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "@scaling-vicreg/backend";
import {
  checkFeatures,
  type LabelledFeatures,
  type LinearClassifier,
  MAX_PROBE_EPOCHS,
  PROBE_OPTIMIZERS,
  PROBE_SCHEDULERS,
  type ProbeOptimizer,
  type ProbeScheduler,
  trainLinearClassifier,
} from "./linear.ts";
import { type ClassificationMetrics, evaluateClassifier } from "./metrics.ts";
import { selectRows, stratifiedSplit } from "./split.ts";

/** One point of the search space. */
export interface ProbeHyperparams {
  /** `sgd` (momentum 0.9) or `adamw`. */
  optimizer: ProbeOptimizer;
  /** Per-epoch schedule: `cosine` or `step` (StepLR, ⌈epochs/3⌉, γ = 0.1). */
  scheduler: ProbeScheduler;
  /** Peak learning rate. */
  lr: number;
  /** Weight decay. */
  weightDecay: number;
  /** Training epochs, ≤ 100. */
  epochs: number;
}

/** A scored trial of a {@linkcode sweep}. */
export interface SweepTrial {
  /** 0-based trial number, in sampling order. */
  index: number;
  /** Its hyper-parameters. */
  params: ProbeHyperparams;
  /** Top-1 accuracy on the validation split, in [0, 1]. */
  validationTop1: number;
  /** Top-5 accuracy on the validation split. */
  validationTop5: number;
  /** Wall-clock seconds to train and score it. */
  seconds: number;
}

/** Options of {@linkcode sweep}. */
export interface SweepOptions {
  /** Number of random trials. @default {20} */
  trials?: number;
  /** Seed of the split, the sampled trials and the mini-batch orders (when `rng` is absent). @default {0} */
  seed?: number;
  /** Generator for everything random; overrides `seed`. */
  rng?: Rng;
  /** Fraction of each class held out for validation. @default {0.2} */
  validationFraction?: number;
  /** lr is log-uniform in this range. @default {[1e-4, 1e-1]} */
  lrRange?: [number, number];
  /** Weight decay is log-uniform in this range. @default {[1e-6, 1e-3]} */
  weightDecayRange?: [number, number];
  /** Optimizers, drawn uniformly. @default {["sgd", "adamw"]} */
  optimizers?: readonly ProbeOptimizer[];
  /** Schedules, drawn uniformly. @default {["cosine", "step"]} */
  schedulers?: readonly ProbeScheduler[];
  /** Epoch counts, drawn uniformly (then capped at `maxEpochs`). @default {[10, 25, 50, 100]} */
  epochChoices?: readonly number[];
  /** Cap on every trial's epochs (for quick runs), ≤ 100. @default {100} */
  maxEpochs?: number;
  /** Mini-batch size. @default {256} */
  batchSize?: number;
  /** Standardise features with training statistics. @default {true} */
  standardize?: boolean;
  /** Number of classes; 0 means max label + 1 over every set given. @default {0} */
  numClasses?: number;
  /**
   * More test sets (e.g. `{ tta: tenCropFeatures }`) on which the final
   * classifier is evaluated once, like `test`.
   * @default {{}}
   */
  extraTestSets?: Record<string, LabelledFeatures>;
  /** Return the final classifier in the result (the caller disposes it). @default {false} */
  keepClassifier?: boolean;
  /** Called after each trial is scored. */
  onTrial?: (trial: SweepTrial) => void;
  /** Clock in milliseconds, for the trial timings. @default {performance.now} */
  now?: () => number;
}

/** The defaults of {@linkcode SweepOptions} (the paper's search space). */
export const DEFAULT_SWEEP_OPTIONS: Readonly<
  Required<Omit<SweepOptions, "rng" | "onTrial">>
> = Object.freeze({
  trials: 20,
  seed: 0,
  validationFraction: 0.2,
  lrRange: [1e-4, 1e-1] as [number, number],
  weightDecayRange: [1e-6, 1e-3] as [number, number],
  optimizers: ["sgd", "adamw"] as const,
  schedulers: ["cosine", "step"] as const,
  epochChoices: [10, 25, 50, 100],
  maxEpochs: MAX_PROBE_EPOCHS,
  batchSize: 256,
  standardize: true,
  numClasses: 0,
  extraTestSets: {},
  keepClassifier: false,
  now: () => performance.now(),
});

/** The outcome of a {@linkcode sweep}. */
export interface SweepResult {
  /** Every trial, in sampling order. */
  trials: SweepTrial[];
  /** Index of the selected trial (highest validation top-1; first on ties). */
  bestTrial: number;
  /** The selected hyper-parameters. */
  best: ProbeHyperparams;
  /** Metrics of the retrained classifier on the test set. */
  test: ClassificationMetrics;
  /** Metrics on each of `extraTestSets`, by name. */
  extra: Record<string, ClassificationMetrics>;
  /** Rows in the training split / validation split / whole training set. */
  sizes: { train: number; validation: number; full: number; test: number };
  /** The number of classes. */
  numClasses: number;
  /** The final classifier, when `keepClassifier` was set. */
  classifier?: LinearClassifier;
}

/** Options of {@linkcode baselineProbe}. */
export interface BaselineOptions {
  /** Optimizer. @default {"sgd"} */
  optimizer?: ProbeOptimizer;
  /** Schedule. @default {"cosine"} */
  scheduler?: ProbeScheduler;
  /** Learning rate: a common untuned choice. @default {0.01} */
  lr?: number;
  /** Weight decay. @default {1e-4} */
  weightDecay?: number;
  /** Epochs, ≤ 100. @default {100} */
  epochs?: number;
  /** Mini-batch size. @default {256} */
  batchSize?: number;
  /** Standardise features with training statistics. @default {true} */
  standardize?: boolean;
  /** Number of classes; 0 means max label + 1 over every set given. @default {0} */
  numClasses?: number;
  /** Seed of the mini-batch order (when `rng` is absent). @default {0} */
  seed?: number;
  /** Generator of the mini-batch order; overrides `seed`. */
  rng?: Rng;
  /** More test sets to evaluate the classifier on. @default {{}} */
  extraTestSets?: Record<string, LabelledFeatures>;
  /** Return the classifier in the result (the caller disposes it). @default {false} */
  keepClassifier?: boolean;
}

/** The defaults of {@linkcode BaselineOptions}. */
export const DEFAULT_BASELINE_OPTIONS: Readonly<
  Required<Omit<BaselineOptions, "rng">>
> = Object.freeze({
  optimizer: "sgd",
  scheduler: "cosine",
  lr: 0.01,
  weightDecay: 1e-4,
  epochs: 100,
  batchSize: 256,
  standardize: true,
  numClasses: 0,
  seed: 0,
  extraTestSets: {},
  keepClassifier: false,
});

/** The outcome of a {@linkcode baselineProbe}. */
export interface BaselineResult {
  /** The fixed hyper-parameters used. */
  params: ProbeHyperparams;
  /** Metrics on the test set. */
  test: ClassificationMetrics;
  /** Metrics on each of `extraTestSets`, by name. */
  extra: Record<string, ClassificationMetrics>;
  /** The classifier, when `keepClassifier` was set. */
  classifier?: LinearClassifier;
}

function countClasses(sets: LabelledFeatures[]): number {
  let max = -1;
  for (const s of sets) for (const v of s.labels) max = Math.max(max, v);
  return max + 1;
}

function checkSets(
  train: LabelledFeatures,
  test: LabelledFeatures,
  extra: Record<string, LabelledFeatures>,
): void {
  checkFeatures(train.features, train.labels, "train.features");
  const dim = train.features.shape[1];
  const named: [string, LabelledFeatures][] = [
    ["test", test],
    ...Object.entries(extra),
  ];
  for (const [name, set] of named) {
    checkFeatures(set.features, set.labels, `${name}.features`);
    if (set.features.shape[1] !== dim) {
      throw new TypeError(
        `Expected ${name}.features of width ${dim} (as train): received ${
          set.features.shape[1]
        }`,
      );
    }
  }
}

function checkRange(name: string, range: [number, number]): void {
  if (!(range[0] > 0 && range[1] >= range[0])) {
    throw new RangeError(
      `Expected ${name} to be [lo, hi] with 0 < lo ≤ hi: received [${range}]`,
    );
  }
}

function pick<T>(items: readonly T[], rng: Rng): T {
  return items[rng.int(items.length)];
}

/**
 * Draws `trials` hyper-parameter settings from the search space of
 * {@linkcode SweepOptions} (lr and weight decay log-uniform, the rest uniform
 * over their choices, epochs capped at `maxEpochs`).
 *
 * @param rng The generator (advanced).
 * @param options The search space and `trials`.
 * @returns The settings, in order.
 *
 * @example
 * ```ts
 * import { Rng } from "@scaling-vicreg/backend";
 * import { sampleHyperparams } from "@scaling-vicreg/probe/sweep";
 * const trials = sampleHyperparams(new Rng(0), { trials: 3 });
 * // e.g. [{ optimizer: "adamw", scheduler: "cosine", lr: 0.0031, ... }, ...]
 * ```
 */
export function sampleHyperparams(
  rng: Rng,
  options: SweepOptions = {},
): ProbeHyperparams[] {
  const o = resolveSweepOptions(options);
  return Array.from({ length: o.trials }, () => ({
    optimizer: pick(o.optimizers, rng),
    scheduler: pick(o.schedulers, rng),
    lr: rng.logUniform(o.lrRange[0], o.lrRange[1]),
    weightDecay: rng.logUniform(o.weightDecayRange[0], o.weightDecayRange[1]),
    epochs: Math.min(pick(o.epochChoices, rng), o.maxEpochs),
  }));
}

function resolveSweepOptions(
  options: SweepOptions,
): Required<Omit<SweepOptions, "rng" | "onTrial">> & SweepOptions {
  const o = { ...DEFAULT_SWEEP_OPTIONS, ...options };
  if (!Number.isInteger(o.trials) || o.trials < 1) {
    throw new RangeError(
      `Expected trials to be a positive integer: received ${o.trials}`,
    );
  }
  if (!(o.validationFraction > 0 && o.validationFraction < 1)) {
    throw new RangeError(
      `Expected validationFraction in (0, 1): received ${o.validationFraction}`,
    );
  }
  checkRange("lrRange", o.lrRange);
  checkRange("weightDecayRange", o.weightDecayRange);
  if (
    o.optimizers.length === 0 ||
    o.optimizers.some((v) => !PROBE_OPTIMIZERS.includes(v))
  ) {
    throw new RangeError(
      `Expected optimizers from ${
        PROBE_OPTIMIZERS.join(", ")
      }: received [${o.optimizers}]`,
    );
  }
  if (
    o.schedulers.length === 0 ||
    o.schedulers.some((v) => !PROBE_SCHEDULERS.includes(v))
  ) {
    throw new RangeError(
      `Expected schedulers from ${
        PROBE_SCHEDULERS.join(", ")
      }: received [${o.schedulers}]`,
    );
  }
  const epochOk = (e: number) =>
    Number.isInteger(e) && e >= 1 && e <= MAX_PROBE_EPOCHS;
  if (o.epochChoices.length === 0 || !o.epochChoices.every(epochOk)) {
    throw new RangeError(
      `Expected epochChoices to be integers in [1, ${MAX_PROBE_EPOCHS}]: received [${o.epochChoices}]`,
    );
  }
  if (!epochOk(o.maxEpochs)) {
    throw new RangeError(
      `Expected maxEpochs to be an integer in [1, ${MAX_PROBE_EPOCHS}]: received ${o.maxEpochs}`,
    );
  }
  return o;
}

/**
 * Runs the paper's probe protocol: `trials` random hyper-parameter settings
 * (see {@linkcode SweepOptions}) are each trained on a seeded, stratified
 * training split and scored (top-1) on the held-out validation split; the
 * best is retrained on the whole training set and evaluated once on `test`
 * (and on each of `extraTestSets`). The test sets are never used for
 * selection.
 *
 * @param train Training features `[N, D]` and labels (not disposed).
 * @param test Test features `[M, D]` and labels (not disposed).
 * @param options See {@linkcode SweepOptions}.
 * @returns Every trial, the selection and the test metrics.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { sweep } from "@scaling-vicreg/probe/sweep";
 * await useBackend("cpu");
 * const features = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2], [3, 0], [0, 3]]);
 * const data = { features, labels: Int32Array.of(0, 1, 0, 1, 0, 1) };
 * const result = sweep(data, data, { trials: 2, maxEpochs: 2, validationFraction: 0.34 });
 * // result.trials.length = 2; result.test.top1 in [0, 1]
 * features.dispose();
 * ```
 */
export function sweep(
  train: LabelledFeatures,
  test: LabelledFeatures,
  options: SweepOptions = {},
): SweepResult {
  const o = resolveSweepOptions(options);
  checkSets(train, test, o.extraTestSets);
  const numClasses = o.numClasses ||
    countClasses([train, test, ...Object.values(o.extraTestSets)]);
  const rng = o.rng ?? new Rng(o.seed);
  const split = stratifiedSplit(
    train.labels,
    o.validationFraction,
    rng.fork("split"),
  );
  if (split.validation.length === 0) {
    throw new RangeError(
      "Expected a validation split with at least one row: every class has a single row",
    );
  }
  const settings = sampleHyperparams(rng.fork("trials"), o);
  const trials: SweepTrial[] = [];
  const fit = selectRows(train, split.train);
  const val = selectRows(train, split.validation);
  try {
    settings.forEach((params, index) => {
      const start = o.now();
      const clf = trainLinearClassifier(fit.features, fit.labels, {
        ...params,
        batchSize: o.batchSize,
        standardize: o.standardize,
        numClasses,
        rng: rng.fork(`trial-${index}`),
      });
      let metrics: ClassificationMetrics;
      try {
        metrics = evaluateClassifier(clf, val);
      } finally {
        clf.dispose();
      }
      const trial: SweepTrial = {
        index,
        params,
        validationTop1: metrics.top1,
        validationTop5: metrics.top5,
        seconds: (o.now() - start) / 1000,
      };
      trials.push(trial);
      o.onTrial?.(trial);
    });
  } finally {
    tf.dispose([fit.features, val.features]);
  }
  let bestTrial = 0;
  for (const t of trials) {
    if (t.validationTop1 > trials[bestTrial].validationTop1) {
      bestTrial = t.index;
    }
  }
  const best = trials[bestTrial].params;
  const final = fitAndEvaluate(train, test, o.extraTestSets, {
    ...best,
    batchSize: o.batchSize,
    standardize: o.standardize,
    numClasses,
    rng: rng.fork("final"),
  }, o.keepClassifier);
  return {
    trials,
    bestTrial,
    best,
    test: final.test,
    extra: final.extra,
    sizes: {
      train: split.train.length,
      validation: split.validation.length,
      full: train.labels.length,
      test: test.labels.length,
    },
    numClasses,
    ...(final.classifier ? { classifier: final.classifier } : {}),
  };
}

/**
 * A baseline probe with fixed hyper-parameters (no sweep): trained on the
 * whole training set and evaluated on `test` (and on `extraTestSets`).
 *
 * @param train Training features `[N, D]` and labels (not disposed).
 * @param test Test features `[M, D]` and labels (not disposed).
 * @param options See {@linkcode BaselineOptions}.
 * @returns The parameters used and the test metrics.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { baselineProbe } from "@scaling-vicreg/probe/sweep";
 * await useBackend("cpu");
 * const features = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2]]);
 * const data = { features, labels: Int32Array.of(0, 1, 0, 1) };
 * baselineProbe(data, data, { epochs: 5, lr: 0.5 }).test.top1; // 1
 * features.dispose();
 * ```
 */
export function baselineProbe(
  train: LabelledFeatures,
  test: LabelledFeatures,
  options: BaselineOptions = {},
): BaselineResult {
  const o = { ...DEFAULT_BASELINE_OPTIONS, ...options };
  checkSets(train, test, o.extraTestSets);
  const numClasses = o.numClasses ||
    countClasses([train, test, ...Object.values(o.extraTestSets)]);
  const params: ProbeHyperparams = {
    optimizer: o.optimizer,
    scheduler: o.scheduler,
    lr: o.lr,
    weightDecay: o.weightDecay,
    epochs: o.epochs,
  };
  const final = fitAndEvaluate(train, test, o.extraTestSets, {
    ...params,
    batchSize: o.batchSize,
    standardize: o.standardize,
    numClasses,
    rng: o.rng ?? new Rng(o.seed),
  }, o.keepClassifier);
  return { params, ...final };
}

function fitAndEvaluate(
  train: LabelledFeatures,
  test: LabelledFeatures,
  extraSets: Record<string, LabelledFeatures>,
  options: Parameters<typeof trainLinearClassifier>[2],
  keep: boolean,
): {
  test: ClassificationMetrics;
  extra: Record<string, ClassificationMetrics>;
  classifier?: LinearClassifier;
} {
  const clf = trainLinearClassifier(train.features, train.labels, options);
  try {
    const extra: Record<string, ClassificationMetrics> = {};
    for (const [name, set] of Object.entries(extraSets)) {
      extra[name] = evaluateClassifier(clf, set);
    }
    const metrics = evaluateClassifier(clf, test);
    if (keep) return { test: metrics, extra, classifier: clf };
    clf.dispose();
    return { test: metrics, extra };
  } catch (error) {
    clf.dispose();
    throw error;
  }
}
