/**
 * The online linear probe of pretraining, as VICRegL's `cls_l` and
 * solo-learn's online classifier: a linear classifier on the pooled backbone
 * features of the first view, detached, trained with its own optimizer on
 * every step on the batch's labels. Its top-1 on the training batches
 * (solo-learn's `train_acc1`) shows the features getting better while the run
 * goes on, at the cost of one `[N, E]·[E, C]` product per step: it reads the
 * features the step computed anyway ({@linkcode captureFirstView}) and never
 * touches the backbone.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  createOptimizer,
  type Optimizer,
  type OptimizerState,
} from "@scaling-vicreg/optim/optimizer";
import type { Communicator } from "@scaling-vicreg/distributed/communicator";
import type { VicregModel } from "./vicreg_model.ts";

/** Options of {@linkcode OnlineProbe}. */
export interface OnlineProbeOptions {
  /** SGD momentum μ (PyTorch `SGD`). @default {0.9} */
  momentum?: number;
  /** Weight decay, of the weights only (not the bias). @default {0} */
  weightDecay?: number;
}

/**
 * The defaults of {@linkcode OnlineProbeOptions}: solo-learn's online
 * classifier (SGD with momentum 0.9 and no weight decay; its learning rate,
 * `classifier_lr`, follows the run's schedule and is the caller's).
 */
export const DEFAULT_ONLINE_PROBE_OPTIONS: Readonly<
  Required<OnlineProbeOptions>
> = Object.freeze({ momentum: 0.9, weightDecay: 0 });

/**
 * One probe step's loss and hits (a type, so that `tf.tidy` can return it).
 */
export type OnlineProbeOutput = {
  /** Σ over the rows of the cross-entropy, divided by the `total` rows. */
  loss: tf.Scalar;
  /** Rows whose highest logit is their label (ties: the lower class). */
  correct: tf.Scalar;
};

/** What {@linkcode OnlineProbe.step} read back. */
export interface OnlineProbeStep {
  /** Mean cross-entropy over the batch (over every rank's rows). */
  loss: number;
  /** Rows classified right (over every rank's rows). */
  correct: number;
  /** Rows (over every rank's). */
  count: number;
}

/**
 * A linear classifier `logits = x·W + b` (`x` `[N, E]`, `W` `[E, C]`, `b`
 * `[C]`, both zero at the start: the loss is convex, so no seed is drawn and
 * the run's random streams stay as they are) with its own SGD optimizer
 * (`createOptimizer("sgd", …)`), trained one step per batch on the
 * cross-entropy of the batch's labels. The features are constants to it: its
 * gradient is taken on its own tape, with respect to `W` and `b` only.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { OnlineProbe } from "@scaling-vicreg/train/online-probe";
 * await useBackend("cpu");
 * const probe = new OnlineProbe(2, 2);
 * const x = tf.tensor2d([[1, 0], [0, 1]]);
 * for (let i = 0; i < 20; i++) await probe.step(x, Int32Array.of(0, 1), 0.5);
 * console.log((await probe.step(x, Int32Array.of(0, 1), 0.5)).correct); // 2
 * tf.dispose(x);
 * probe.dispose();
 * ```
 */
export class OnlineProbe {
  /** Feature width E. */
  readonly dim: number;
  /** Number of classes C. */
  readonly numClasses: number;
  /** The weights W `[E, C]`. */
  readonly weight: tf.Variable;
  /** The bias b `[C]`. */
  readonly bias: tf.Variable;
  #optimizer: Optimizer;
  #params: Map<string, tf.Variable>;

  /**
   * Makes a zero-initialised probe.
   *
   * @param dim Feature width E (the backbone's embedding).
   * @param numClasses Classes C (≥ 2).
   * @param options Momentum and weight decay; see {@linkcode OnlineProbeOptions}.
   */
  constructor(
    dim: number,
    numClasses: number,
    options: OnlineProbeOptions = {},
  ) {
    if (!Number.isInteger(dim) || dim < 1) {
      throw new RangeError(
        `Expected the online probe's feature width to be a positive integer: received ${dim}`,
      );
    }
    if (!Number.isInteger(numClasses) || numClasses < 2) {
      throw new RangeError(
        `Expected the online probe's number of classes to be an integer ≥ 2: received ${numClasses}`,
      );
    }
    const o = { ...DEFAULT_ONLINE_PROBE_OPTIONS, ...options };
    this.dim = dim;
    this.numClasses = numClasses;
    this.weight = tf.variable(tf.zeros([dim, numClasses]), true);
    this.bias = tf.variable(tf.zeros([numClasses]), true);
    this.#params = new Map([["weight", this.weight], ["bias", this.bias]]);
    // The bias (rank 1) is excluded from weight decay, as the optimizer's
    // default rule says.
    this.#optimizer = createOptimizer("sgd", this.#params, {
      momentum: o.momentum,
      weightDecay: o.weightDecay,
    });
  }

  /** `weight` and `bias` by name, as the checkpoint stores them. */
  parameters(): Map<string, tf.Variable> {
    return new Map(this.#params);
  }

  /**
   * The loss and hits of a batch and their gradient with respect to `W` and
   * `b` (nothing else: the features are constants).
   *
   * @param features Features `[N, E]` (the caller's; not disposed).
   * @param labels Their classes, length N, each in [0, C).
   * @param total The rows the loss is averaged over (the whole batch, when
   *   `features` is one rank's shard of it). @default {N}
   * @returns The loss, the hits and the gradients (the caller disposes them).
   */
  gradients(
    features: tf.Tensor2D,
    labels: Int32Array,
    total: number = labels.length,
  ): OnlineProbeOutput & { grads: Map<string, tf.Tensor> } {
    this.#check(features, labels);
    const classes = tf.tensor1d(labels, "int32");
    const y = tf.oneHot(classes, this.numClasses); // [N, C]
    let correct: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = tf.add(tf.matMul(features, this.weight), this.bias); // [N, E]·[E, C] -> [N, C]
      correct = tf.keep(tf.sum(tf.cast(
        tf.equal(tf.argMax(logits, 1), classes),
        "float32",
      )));
      // Σ_rows −log softmax(logits)[label] / total
      const ce = tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits))));
      return tf.div(ce, total) as tf.Scalar;
    }, [this.weight, this.bias]);
    tf.dispose([classes, y]);
    return {
      loss: value,
      correct: correct!,
      grads: new Map([
        ["weight", grads[this.weight.name]],
        ["bias", grads[this.bias.name]],
      ]),
    };
  }

  /**
   * One training step on a batch: the gradient of the cross-entropy, summed
   * over the ranks of `comm` when there are several (each rank holds its
   * shard of the batch; the loss is averaged over the whole batch, so every
   * rank applies the same update and the probes stay equal), then one SGD
   * update at `lr`. The loss and hits are those before the update.
   *
   * @param features This process's features `[N, E]` (not disposed).
   * @param labels Their classes, length N.
   * @param lr The learning rate of this step.
   * @param options `comm` (the run's ranks) and `total` (rows of the whole
   *   batch; by default N × the number of ranks).
   * @returns The batch's loss and hits, read back.
   */
  async step(
    features: tf.Tensor2D,
    labels: Int32Array,
    lr: number,
    options: { comm?: Communicator; total?: number } = {},
  ): Promise<OnlineProbeStep> {
    const size = options.comm?.size ?? 1;
    const total = options.total ?? labels.length * size;
    const { loss, correct, grads } = this.gradients(features, labels, total);
    let reduced = grads;
    // [loss, correct, rows, ∂W…, ∂b…] summed over the ranks in one call.
    let sums = [
      (await loss.data())[0],
      (await correct.data())[0],
      labels.length,
    ];
    tf.dispose([loss, correct]);
    if (size > 1) {
      const w = await grads.get("weight")!.data() as Float32Array;
      const b = await grads.get("bias")!.data() as Float32Array;
      const buf = new Float32Array(3 + w.length + b.length);
      buf.set(sums);
      buf.set(w, 3);
      buf.set(b, 3 + w.length);
      await options.comm!.allReduce(buf);
      sums = [buf[0], buf[1], buf[2]];
      tf.dispose([...grads.values()]);
      reduced = new Map([
        ["weight", tf.tensor(buf.slice(3, 3 + w.length), this.weight.shape)],
        ["bias", tf.tensor(buf.slice(3 + w.length), this.bias.shape)],
      ]);
    }
    this.#optimizer.step(Object.fromEntries(reduced), lr);
    tf.dispose([...reduced.values()]);
    return { loss: sums[0], correct: sums[1], count: sums[2] };
  }

  /** The optimizer's step count and momentum buffers, for checkpoints (owned by the probe). */
  optimizerState(): OptimizerState {
    return this.#optimizer.state();
  }

  /**
   * Restores weights and optimizer state saved from a probe of the same
   * shape (tensors are copied).
   *
   * @param params `weight` and `bias`.
   * @param optimizer What {@linkcode OnlineProbe.optimizerState} returned.
   */
  load(params: Map<string, tf.Tensor>, optimizer: OptimizerState): void {
    for (const [name, v] of this.#params) {
      const t = params.get(name);
      if (t === undefined || t.shape.join(",") !== v.shape.join(",")) {
        throw new TypeError(
          `Expected the online probe's "${name}" of shape [${v.shape}]: received ${
            t === undefined ? "none" : `[${t.shape}]`
          }`,
        );
      }
      v.assign(t);
    }
    this.#optimizer.loadState(optimizer);
  }

  /** Frees the weights and the optimizer's state. */
  dispose(): void {
    this.#optimizer.dispose();
    tf.dispose([this.weight, this.bias]);
  }

  #check(features: tf.Tensor2D, labels: Int32Array): void {
    if (features.rank !== 2 || features.shape[1] !== this.dim) {
      throw new TypeError(
        `Expected online-probe features [N, ${this.dim}]: received [${features.shape}]`,
      );
    }
    if (labels.length !== features.shape[0]) {
      throw new TypeError(
        `Expected one label per feature row: ${
          features.shape[0]
        } rows, ${labels.length} labels`,
      );
    }
    for (const label of labels) {
      if (!(label >= 0 && label < this.numClasses)) {
        throw new RangeError(
          `Expected labels in [0, ${this.numClasses}) for the online probe: received ${label}`,
        );
      }
    }
  }
}

/**
 * {@linkcode captureFirstView} of a step that returns a promise (a
 * distributed step).
 *
 * @param model The model whose step runs.
 * @param step Runs the step.
 * @param views The views of each image the step embeds (2; G + M with
 * multi-crop: the first is global view 1).
 * @returns The step's result and view 1's embeddings.
 */
export function captureFirstView<T>(
  model: VicregModel,
  step: () => Promise<T>,
  views?: number,
): Promise<{ result: T; features: tf.Tensor2D }>;
/**
 * Collects the first view's backbone embeddings of one step as the step
 * computes them: every first pass of a slice (the one that moves BatchNorm's
 * running statistics, per slice view 1 then view 2; the re-running passes of
 * micro-batches are not first passes) hands its embedding to
 * `VicregModel.onEmbedding`, of which this keeps view 1's, copied.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { createVicregModel, resolveConfig, stepGradients } from "@scaling-vicreg/train";
 * import { captureFirstView } from "@scaling-vicreg/train/online-probe";
 * await useBackend("cpu");
 * const model = createVicregModel(resolveConfig({ flags: { preset: "tiny", mlp: "32-32", "use-local-loss": false } }));
 * const views: [tf.Tensor4D, tf.Tensor4D] = [tf.randomNormal([4, 8, 8, 3]), tf.randomNormal([4, 8, 8, 3])];
 * const { result, features } = captureFirstView(model, () => stepGradients(model, views, { microBatch: 2 }));
 * console.log(features.shape); // [4, 128]
 * tf.dispose([views, result.loss, [...result.grads.values()], features]);
 * model.dispose();
 * ```
 *
 * @param model The model whose step runs.
 * @param step Runs the step (its result is returned as is).
 * @param views The views of each image the step embeds, in order (2; G + M
 * with multi-crop: the first is global view 1).
 * @returns The step's result and view 1's embeddings `[B, E]` in batch order
 *   (detached copies; the caller disposes them).
 */
export function captureFirstView<T>(
  model: VicregModel,
  step: () => T,
  views?: number,
): { result: T; features: tf.Tensor2D };
export function captureFirstView<T>(
  model: VicregModel,
  step: () => T | Promise<T>,
  views = 2,
):
  | { result: T; features: tf.Tensor2D }
  | Promise<{ result: T; features: tf.Tensor2D }> {
  if (model.onEmbedding !== undefined) {
    throw new TypeError("Expected no other capture of the model's embeddings");
  }
  const passes: tf.Tensor2D[] = [];
  model.onEmbedding = (embedding) => passes.push(tf.keep(tf.clone(embedding)));
  const finish = (result: T) => {
    model.onEmbedding = undefined;
    if (passes.length === 0 || passes.length % views !== 0) {
      tf.dispose(passes);
      throw new Error(
        `Expected the step to embed each of the ${views} views of each slice once: received ${passes.length} first passes`,
      );
    }
    // [view 1 of slice 0, view 2 of slice 0, …, view 1 of slice 1, …]
    const firstView = passes.filter((_, i) => i % views === 0);
    const features = firstView.length === 1
      ? firstView[0]
      : tf.concat(firstView) as tf.Tensor2D;
    tf.dispose(passes.filter((p) => p !== features));
    return { result, features };
  };
  const fail = (error: unknown): never => {
    model.onEmbedding = undefined;
    tf.dispose(passes);
    throw error;
  };
  let out: T | Promise<T>;
  try {
    out = step();
  } catch (error) {
    return fail(error);
  }
  if (out instanceof Promise) return out.then(finish, fail);
  return finish(out);
}
