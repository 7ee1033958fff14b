/**
 * A linear classifier (softmax regression) trained on frozen features: the
 * linear-probe evaluation of self-supervised representations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "@scaling-vicreg/backend";
import { createOptimizer } from "@scaling-vicreg/optim/optimizer";

/** The optimizers a probe can be trained with (PyTorch semantics). */
export type ProbeOptimizer = "sgd" | "adamw";

/**
 * Learning-rate schedules, stepped once per epoch (PyTorch's
 * `CosineAnnealingLR(T_max = epochs, eta_min = 0)`, `StepLR`, or none).
 */
export type ProbeScheduler = "cosine" | "step" | "constant";

/** Every {@linkcode ProbeOptimizer}. */
export const PROBE_OPTIMIZERS: readonly ProbeOptimizer[] = ["sgd", "adamw"];

/** Every {@linkcode ProbeScheduler}. */
export const PROBE_SCHEDULERS: readonly ProbeScheduler[] = [
  "cosine",
  "step",
  "constant",
];

/** The most epochs a probe may train for (the paper's protocol). */
export const MAX_PROBE_EPOCHS = 100;

/** Options of {@linkcode trainLinearClassifier}. */
export interface LinearProbeOptions {
  /**
   * `sgd`: v ← μ·v + g + wd·w, w ← w − lr·v (PyTorch `SGD`, no dampening or
   * Nesterov). `adamw`: w ← w − lr·wd·w, then the Adam step with bias
   * correction (PyTorch `AdamW`).
   * @default {"sgd"}
   */
  optimizer?: ProbeOptimizer;
  /** Peak learning rate. @default {0.01} */
  lr?: number;
  /** Weight decay, applied to the weights and the bias. @default {0} */
  weightDecay?: number;
  /** SGD momentum μ. @default {0.9} */
  momentum?: number;
  /** AdamW β₁. @default {0.9} */
  beta1?: number;
  /** AdamW β₂. @default {0.999} */
  beta2?: number;
  /** AdamW ε. @default {1e-8} */
  epsilon?: number;
  /**
   * Learning-rate schedule, stepped per epoch: epoch e (0-based) of E uses
   * `cosine`: lr·(1 + cos(π·e/E))/2; `step`: lr·gamma^⌊e/stepSize⌋;
   * `constant`: lr.
   * @default {"cosine"}
   */
  scheduler?: ProbeScheduler;
  /** StepLR step size in epochs; 0 means ⌈epochs/3⌉. @default {0} */
  stepSize?: number;
  /** StepLR decay factor. @default {0.1} */
  gamma?: number;
  /** Passes over the training set, an integer in [1, 100]. @default {100} */
  epochs?: number;
  /** Mini-batch size (the last batch of an epoch may be smaller). @default {256} */
  batchSize?: number;
  /**
   * Standardise every feature with the training set's mean and (population)
   * standard deviation, also at predict time.
   * @default {true}
   */
  standardize?: boolean;
  /** Number of classes; 0 means max(label) + 1. @default {0} */
  numClasses?: number;
  /** Seed of the mini-batch order, used when `rng` is absent. @default {0} */
  seed?: number;
  /** Generator of the mini-batch order; overrides `seed`. */
  rng?: Rng;
  /**
   * Called after each epoch with its 0-based index and mean training loss
   * (the loss is only computed when this is given).
   */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

/** The defaults of {@linkcode LinearProbeOptions}. */
export const DEFAULT_LINEAR_PROBE_OPTIONS: Readonly<
  Required<Omit<LinearProbeOptions, "rng" | "onEpoch">>
> = Object.freeze({
  optimizer: "sgd",
  lr: 0.01,
  weightDecay: 0,
  momentum: 0.9,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  scheduler: "cosine",
  stepSize: 0,
  gamma: 0.1,
  epochs: 100,
  batchSize: 256,
  standardize: true,
  numClasses: 0,
  seed: 0,
});

/**
 * Features with their labels: the input of every probe routine. The caller
 * owns (and disposes) the tensor.
 */
export interface LabelledFeatures {
  /** Features `[N, D]`, float32. */
  features: tf.Tensor2D;
  /** Class indices, length N. */
  labels: Int32Array;
}

/** A trained linear classifier: logits = standardise(x)·W + b. */
export interface LinearClassifier {
  /** Feature dimension D. */
  readonly dim: number;
  /** Number of classes C. */
  readonly numClasses: number;
  /** Weights W, `[D, C]` (acting on standardised features when enabled). */
  readonly weights: tf.Tensor2D;
  /** Bias b, `[C]`. */
  readonly bias: tf.Tensor1D;
  /** Training-set feature mean `[D]`, or `null` without standardisation. */
  readonly mean: tf.Tensor1D | null;
  /** Training-set feature standard deviation `[D]`, or `null`. */
  readonly std: tf.Tensor1D | null;
  /**
   * The logits of features `[N, D]`: `[N, C]` (the caller disposes them).
   *
   * @param features Features `[N, D]`.
   */
  predictLogits(features: tf.Tensor2D): tf.Tensor2D;
  /** Frees the classifier's tensors. */
  dispose(): void;
}

/** The resolved, validated options. */
type ResolvedLinearOptions =
  & Required<Omit<LinearProbeOptions, "rng" | "onEpoch">>
  & Pick<LinearProbeOptions, "rng" | "onEpoch">;

function resolveOptions(
  options: LinearProbeOptions,
  labels: Int32Array,
): ResolvedLinearOptions {
  const o = { ...DEFAULT_LINEAR_PROBE_OPTIONS, ...options };
  if (!PROBE_OPTIMIZERS.includes(o.optimizer)) {
    throw new RangeError(
      `Expected optimizer to be one of ${
        PROBE_OPTIMIZERS.join(", ")
      }: received ${String(o.optimizer)}`,
    );
  }
  if (!PROBE_SCHEDULERS.includes(o.scheduler)) {
    throw new RangeError(
      `Expected scheduler to be one of ${
        PROBE_SCHEDULERS.join(", ")
      }: received ${String(o.scheduler)}`,
    );
  }
  if (
    !Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > MAX_PROBE_EPOCHS
  ) {
    throw new RangeError(
      `Expected epochs to be an integer in [1, ${MAX_PROBE_EPOCHS}]: received ${o.epochs}`,
    );
  }
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
    throw new RangeError(
      `Expected batchSize to be a positive integer: received ${o.batchSize}`,
    );
  }
  if (!Number.isInteger(o.stepSize) || o.stepSize < 0) {
    throw new RangeError(
      `Expected stepSize to be a non-negative integer: received ${o.stepSize}`,
    );
  }
  for (const key of ["lr", "weightDecay", "epsilon", "gamma"] as const) {
    if (!(Number.isFinite(o[key]) && o[key] >= 0)) {
      throw new RangeError(
        `Expected ${key} to be a finite number ≥ 0: received ${o[key]}`,
      );
    }
  }
  for (const key of ["momentum", "beta1", "beta2"] as const) {
    if (!(o[key] >= 0 && o[key] < 1)) {
      throw new RangeError(`Expected ${key} in [0, 1): received ${o[key]}`);
    }
  }
  const maxLabel = labels.reduce((m, v) => Math.max(m, v), -1);
  if (!Number.isInteger(o.numClasses) || o.numClasses < 0) {
    throw new RangeError(
      `Expected numClasses to be a non-negative integer: received ${o.numClasses}`,
    );
  }
  if (o.numClasses === 0) o.numClasses = maxLabel + 1;
  checkLabels(labels, o.numClasses, "labels");
  return o;
}

/**
 * Checks that labels are integers in [0, numClasses).
 *
 * @param labels Class indices.
 * @param numClasses C.
 * @param name Named in the error message.
 */
export function checkLabels(
  labels: Int32Array,
  numClasses: number,
  name: string,
): void {
  if (!(labels instanceof Int32Array)) {
    throw new TypeError(`Expected ${name} to be an Int32Array`);
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= numClasses) {
      throw new RangeError(
        `Expected ${name}[${i}] in [0, ${numClasses}): received ${labels[i]}`,
      );
    }
  }
}

/**
 * Checks that `features` is a rank-2 float tensor with one row per label.
 *
 * @param features Features `[N, D]`.
 * @param labels Their labels, length N (skipped when `null`).
 * @param name Named in the error message.
 */
export function checkFeatures(
  features: tf.Tensor,
  labels: Int32Array | null,
  name: string,
): void {
  if (!(features instanceof tf.Tensor) || features.rank !== 2) {
    throw new TypeError(
      `Expected ${name} of rank 2 [N, D]: received ${
        features instanceof tf.Tensor
          ? `rank ${features.rank}`
          : typeof features
      }`,
    );
  }
  if (features.dtype !== "float32") {
    throw new TypeError(
      `Expected ${name} of dtype float32: received ${features.dtype}`,
    );
  }
  if (labels !== null && labels.length !== features.shape[0]) {
    throw new TypeError(
      `Expected one label per row of ${name}: ${
        features.shape[0]
      } rows, ${labels.length} labels`,
    );
  }
}

/**
 * The learning rate of epoch `epoch` (0-based) under a per-epoch schedule.
 *
 * @param epoch The epoch, 0 … epochs − 1.
 * @param options `lr`, `scheduler`, `epochs`, `stepSize`, `gamma`.
 * @returns The learning rate.
 *
 * @example
 * ```ts
 * import { scheduledLr } from "@scaling-vicreg/probe/linear";
 * scheduledLr(5, { lr: 0.1, scheduler: "cosine", epochs: 10 }); // 0.05
 * ```
 */
export function scheduledLr(
  epoch: number,
  options: Pick<
    LinearProbeOptions,
    "lr" | "scheduler" | "epochs" | "stepSize" | "gamma"
  >,
): number {
  const d = DEFAULT_LINEAR_PROBE_OPTIONS;
  const lr = options.lr ?? d.lr;
  const epochs = options.epochs ?? d.epochs;
  switch (options.scheduler ?? d.scheduler) {
    case "cosine":
      return lr * (1 + Math.cos(Math.PI * epoch / epochs)) / 2;
    case "step": {
      const stepSize = options.stepSize || Math.ceil(epochs / 3);
      return lr * (options.gamma ?? d.gamma) ** Math.floor(epoch / stepSize);
    }
    default:
      return lr;
  }
}

class TrainedLinearClassifier implements LinearClassifier {
  #weights: tf.Tensor2D;
  #bias: tf.Tensor1D;
  #mean: tf.Tensor1D | null;
  #std: tf.Tensor1D | null;

  constructor(
    weights: tf.Tensor2D,
    bias: tf.Tensor1D,
    mean: tf.Tensor1D | null,
    std: tf.Tensor1D | null,
  ) {
    this.#weights = weights;
    this.#bias = bias;
    this.#mean = mean;
    this.#std = std;
  }

  get dim(): number {
    return this.#weights.shape[0];
  }
  get numClasses(): number {
    return this.#weights.shape[1];
  }
  get weights(): tf.Tensor2D {
    return this.#weights;
  }
  get bias(): tf.Tensor1D {
    return this.#bias;
  }
  get mean(): tf.Tensor1D | null {
    return this.#mean;
  }
  get std(): tf.Tensor1D | null {
    return this.#std;
  }

  predictLogits(features: tf.Tensor2D): tf.Tensor2D {
    checkFeatures(features, null, "features");
    if (features.shape[1] !== this.dim) {
      throw new TypeError(
        `Expected features of shape [N, ${this.dim}]: received [${features.shape}]`,
      );
    }
    return tf.tidy(() => {
      const x = this.#mean && this.#std
        ? tf.div(tf.sub(features, this.#mean), this.#std)
        : features;
      // x: [N, D] · W: [D, C] -> [N, C]
      return tf.add(tf.matMul(x, this.#weights), this.#bias);
    });
  }

  dispose(): void {
    tf.dispose([this.#weights, this.#bias]);
    if (this.#mean) tf.dispose([this.#mean]);
    if (this.#std) tf.dispose([this.#std]);
  }
}

/** Standard deviations below this are treated as this (constant features). */
const MIN_STD = 1e-6;

/**
 * Trains a softmax-regression classifier on frozen features with mini-batch
 * SGD (momentum) or AdamW, a per-epoch cosine or step schedule and weight
 * decay, all with tfjs-core ops on the active backend.
 *
 * The loss is the mean cross-entropy of softmax(x·W + b) over a mini-batch;
 * its gradient is computed in closed form (∂L/∂logits = (softmax − onehot)/B).
 * W and b start at zero (the problem is convex, so the start only changes the
 * path). Every epoch visits the rows in a fresh seeded order.
 *
 * @param features Training features `[N, D]`, float32 (not disposed).
 * @param labels Class indices, length N, in [0, C).
 * @param options See {@linkcode LinearProbeOptions}.
 * @returns The trained classifier (dispose it when done).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { trainLinearClassifier } from "@scaling-vicreg/probe/linear";
 * await useBackend("cpu");
 * const x = tf.tensor2d([[1, 0], [0, 1], [2, 0], [0, 2]]);
 * const clf = trainLinearClassifier(x, Int32Array.of(0, 1, 0, 1), {
 *   lr: 0.5,
 *   epochs: 20,
 * });
 * const logits = clf.predictLogits(x); // [4, 2]
 * tf.dispose([x, logits]);
 * clf.dispose();
 * ```
 */
export function trainLinearClassifier(
  features: tf.Tensor2D,
  labels: Int32Array,
  options: LinearProbeOptions = {},
): LinearClassifier {
  checkFeatures(features, labels, "features");
  const o = resolveOptions(options, labels);
  const [n, dim] = features.shape;
  if (n === 0) throw new RangeError("Expected at least one training row");
  const classes = o.numClasses;
  const rng = o.rng ?? new Rng(o.seed);

  let mean: tf.Tensor1D | null = null;
  let std: tf.Tensor1D | null = null;
  let x: tf.Tensor2D = features;
  if (o.standardize) {
    [mean, std] = tf.tidy(() => {
      // features: [N, D] -> mean, variance: [D]
      const m = tf.moments(features, 0);
      return [
        m.mean as tf.Tensor1D,
        tf.maximum(tf.sqrt(m.variance), MIN_STD) as tf.Tensor1D,
      ];
    });
    x = tf.tidy(() => tf.div(tf.sub(features, mean!), std!));
  }
  // Mini-batches are assembled from a host copy of the (standardised)
  // features: on the CPU and WASM backends a row copy is far cheaper than
  // tf.gather. The maths stays on the backend.
  const rowsHost = x.dataSync() as Float32Array;
  if (x !== features) x.dispose();

  // (tidy frees the zeros the variables are made from; it keeps variables.)
  const w: tf.Variable<tf.Rank.R2> = tf.tidy(() =>
    tf.variable(tf.zeros([dim, classes]))
  );
  const b: tf.Variable<tf.Rank.R1> = tf.tidy(() =>
    tf.variable(tf.zeros([classes]))
  );
  // The probe decays the bias too (no rank-1 exclusion, unlike pretraining).
  const optimizer = createOptimizer(
    o.optimizer,
    new Map<string, tf.Variable>([["w", w], ["b", b]]),
    {
      momentum: o.optimizer === "adamw" ? o.beta1 : o.momentum,
      beta2: o.beta2,
      epsilon: o.epsilon,
      weightDecay: o.weightDecay,
      exclude: () => false,
    },
  );

  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const lr = scheduledLr(epoch, o);
      const order = rng.permutation(n);
      let lossSum = 0;
      for (let start = 0; start < n; start += o.batchSize) {
        const idx = Int32Array.from(
          order.slice(start, Math.min(n, start + o.batchSize)),
        );
        const batchSize = idx.length;
        const batchRows = new Float32Array(batchSize * dim);
        const batchOnehot = new Float32Array(batchSize * classes);
        idx.forEach((row, i) => {
          batchRows.set(rowsHost.subarray(row * dim, (row + 1) * dim), i * dim);
          batchOnehot[i * classes + labels[row]] = 1;
        });
        const [gw, gb, loss] = tf.tidy((): tf.Tensor[] => {
          const xb = tf.tensor2d(batchRows, [batchSize, dim]); // [B, D]
          const onehot = tf.tensor2d(batchOnehot, [batchSize, classes]); // [B, C]
          const logits = tf.add(tf.matMul(xb, w), b); // [B, C]
          // ∂(mean cross-entropy)/∂logits: [B, C]
          const dLogits = tf.div(tf.sub(tf.softmax(logits), onehot), batchSize);
          // [D, B]·[B, C] -> [D, C]; an explicit transpose is much faster
          // than matMul(transposeA) on WASM.
          const gw = tf.matMul(tf.transpose(xb), dLogits);
          const gb = tf.sum(dLogits, 0); // [C]
          // Summed (not mean) cross-entropy, for the epoch's mean loss.
          return o.onEpoch
            ? [gw, gb, tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits))))]
            : [gw, gb];
        });
        optimizer.step({ w: gw, b: gb }, lr);
        tf.dispose([gw, gb]);
        if (loss) {
          lossSum += loss.dataSync()[0];
          loss.dispose();
        }
      }
      o.onEpoch?.(epoch, lossSum / n);
    }
  } catch (error) {
    tf.dispose([w, b]);
    if (mean) tf.dispose([mean, std!]);
    throw error;
  } finally {
    optimizer.dispose();
  }
  return new TrainedLinearClassifier(w, b, mean, std);
}
