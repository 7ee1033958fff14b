/**
 * Batch normalisation over the last (channel) axis with PyTorch's training
 * and evaluation semantics, for `[N, C]` (BatchNorm1d) and `[N, H, W, C]`
 * (BatchNorm2d, NHWC) inputs.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  activeBackendHas,
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
} from "@scaling-vicreg/backend";
import type { Module } from "./module.ts";
import { makeVariable } from "./_util.ts";

/** Options of {@linkcode BatchNorm}. */
export interface BatchNormOptions {
  /** Added to the variance before the square root. @default {1e-5} */
  eps?: number;
  /**
   * Weight of the batch statistic in the running-average update
   * `running = (1 − momentum)·running + momentum·batch`. @default {0.1}
   */
  momentum?: number;
}

/** The defaults of {@linkcode BatchNormOptions} (PyTorch's). */
export const DEFAULT_BATCH_NORM_OPTIONS: Readonly<Required<BatchNormOptions>> =
  Object.freeze({ eps: 1e-5, momentum: 0.1 });

/** Options of a module's forward pass. */
export interface ForwardOptions {
  /**
   * Training mode: BatchNorm normalises with the batch statistics and updates
   * its running statistics; otherwise it uses the running statistics.
   * @default {false}
   */
  training?: boolean;
  /**
   * In training mode, whether BatchNorm updates its running statistics. Off
   * for a second forward pass over the same batch (view-by-view
   * back-propagation recomputes each view), so the statistics move once per
   * view as in one joint pass.
   * @default {true}
   */
  updateRunningStats?: boolean;
  /**
   * In evaluation mode, fold each BatchNorm into the convolution before it
   * (filter × scale, bias = shift) and run conv → BN → ReLU as one fused op.
   * The same function up to float rounding; off, each op runs on its own.
   * @default {true}
   */
  foldBatchNorm?: boolean;
  /**
   * In training mode, makes BatchNorm's statistics those of the whole batch
   * of a data-parallel run (SyncBatchNorm): called with this process's
   * per-channel sums, it returns the sums over every process (an
   * all-reduce; every process calls it in the same order). The sums are read
   * back synchronously, so the backend must allow synchronous reads. Without
   * it each process normalises with its own statistics.
   * @default {undefined}
   */
  syncStatistics?: (sums: Float64Array) => Float64Array;
}

/** Options of {@linkcode BatchNorm.forward}. */
export interface BatchNormForwardOptions extends ForwardOptions {
  /**
   * Apply a ReLU after the affine transform, fused into the same
   * custom-gradient op in training mode (ResNet's BN → ReLU).
   * @default {false}
   */
  relu?: boolean;
}

/**
 * Batch normalisation over every axis but the last, as PyTorch's
 * `BatchNorm1d`/`BatchNorm2d` (Ioffe & Szegedy 2015).
 *
 * Training: `y = (x − μ_B) / √(σ²_B + eps) · weight + bias` with the biased
 * batch variance σ²_B, and the running statistics are updated in place with
 * `momentum` and the *unbiased* variance `σ²_B · n/(n−1)` (n = elements per
 * channel). This works inside `tf.tidy` and `tf.variableGrads`: the running
 * statistics are non-trainable variables, so `variableGrads` without an
 * explicit list skips them. Evaluation: the running statistics replace the
 * batch statistics.
 *
 * In training mode the normalisation (and an optional ReLU) is one
 * `tf.customGrad` op whose backward pass is the closed form
 * `dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂))`, `dγ = Σ g·x̂`, `dβ = Σ g`: it keeps
 * only `x` (and the output, with ReLU) plus per-channel statistics for the
 * backward pass, where autodiff through the plain ops keeps ~5 full-size
 * tensors; a ResNet-18 step at batch 64 then fits the 4 GiB wasm heap.
 *
 * Parameters `weight` (γ, init 1) and `bias` (β, init 0); buffers
 * `running_mean` (init 0) and `running_var` (init 1), all `[C]`.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { BatchNorm } from "@scaling-vicreg/models";
 * import * as tf from "@tensorflow/tfjs-core";
 * await useBackend("cpu");
 * const bn = new BatchNorm(1);
 * const y = bn.forward(tf.tensor2d([[1], [3]]), { training: true });
 * console.log(y.dataSync()); // ≈ [-1, 1]
 * console.log(bn.runningMean.dataSync()); // [0.2]  (0.9·0 + 0.1·2)
 * tf.dispose(y);
 * bn.dispose();
 * ```
 */
export class BatchNorm implements Module {
  /** Number of channels C. */
  readonly numFeatures: number;
  /** See {@linkcode BatchNormOptions.eps}. */
  readonly eps: number;
  /** See {@linkcode BatchNormOptions.momentum}. */
  readonly momentum: number;
  /** γ, `[C]`, trainable. */
  readonly weight: tf.Variable;
  /** β, `[C]`, trainable. */
  readonly bias: tf.Variable;
  /** Running mean, `[C]`, not trainable. */
  readonly runningMean: tf.Variable;
  /** Running (unbiased) variance, `[C]`, not trainable. */
  readonly runningVar: tf.Variable;

  /**
   * Makes a BatchNorm layer with γ = 1, β = 0, running mean 0 and variance 1.
   *
   * @param numFeatures Channels C (the last axis of the input).
   * @param options eps and momentum; see {@linkcode BatchNormOptions}.
   */
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw new RangeError(
        `Expected BatchNorm numFeatures to be a positive integer: received ${numFeatures}`,
      );
    }
    const { eps, momentum } = { ...DEFAULT_BATCH_NORM_OPTIONS, ...options };
    if (!(eps > 0)) {
      throw new RangeError(`Expected BatchNorm eps > 0: received ${eps}`);
    }
    if (!(momentum >= 0 && momentum <= 1)) {
      throw new RangeError(
        `Expected BatchNorm momentum in [0, 1]: received ${momentum}`,
      );
    }
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = momentum;
    const ones = new Float32Array(numFeatures).fill(1);
    const zeros = new Float32Array(numFeatures);
    this.weight = makeVariable(ones, [numFeatures], true);
    this.bias = makeVariable(zeros, [numFeatures], true);
    this.runningMean = makeVariable(zeros, [numFeatures], false);
    this.runningVar = makeVariable(ones, [numFeatures], false);
  }

  /**
   * Normalises `x` (`[N, C]` or `[N, H, W, C]`) per channel.
   *
   * @param x Input whose last axis has C channels.
   * @param options `training`, `updateRunningStats`, `relu`; see {@linkcode BatchNormForwardOptions}.
   * @returns The normalised tensor, same shape as `x`.
   */
  forward<T extends tf.Tensor>(
    x: T,
    options: BatchNormForwardOptions = {},
  ): T {
    if (x.rank < 2 || x.shape[x.rank - 1] !== this.numFeatures) {
      throw new TypeError(
        `Expected BatchNorm input of rank >= 2 with ${this.numFeatures} channels last: received shape [${x.shape}]`,
      );
    }
    const relu = options.relu ?? false;
    if (!options.training) {
      return tf.tidy(() => {
        // y = x·scale + shift broadcasts over [N, ..., C].
        const { scale, shift } = this.evalAffine();
        const y = tf.add(tf.mul(x, scale), shift);
        return relu ? tf.relu(y) : y;
      }) as T;
    }
    const n = x.size / this.numFeatures;
    if (n < 2) {
      throw new RangeError(
        `Expected more than 1 value per channel in BatchNorm training mode: received shape [${x.shape}]`,
      );
    }
    const update = options.updateRunningStats ?? true;
    const updateRunning = (mean: tf.Tensor, variance: tf.Tensor): void => {
      const m = this.momentum;
      this.runningMean.assign(
        tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)),
      );
      this.runningVar.assign(
        tf.add(
          tf.mul(this.runningVar, 1 - m),
          tf.mul(variance, (m * n) / (n - 1)),
        ),
      );
    };
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    if (options.syncStatistics !== undefined) {
      return this.#syncedTraining(
        x,
        axes,
        relu,
        options.syncStatistics,
        update,
      );
    }
    if (
      activeBackendHas(BATCH_NORM_TRAIN_KERNEL) &&
      activeBackendHas(BATCH_NORM_TRAIN_GRAD_KERNEL)
    ) {
      return this.#fusedTraining(x, relu, update ? updateRunning : undefined);
    }
    return this.#customOp(x, (x, gamma, beta, save) => {
      // x: [N, ..., C] -> mean, variance (biased), invStd: [C]. Not
      // tf.moments, which also makes a float32 -> float32 copy of x.
      const mean = tf.mean(x, axes);
      const centred = tf.sub(x, mean);
      const variance = tf.mean(tf.square(centred), axes);
      if (update) updateRunning(mean, variance);
      const invStd = tf.rsqrt(tf.add(variance, this.eps));
      const scale = tf.mul(gamma, invStd);
      // (x − μ)·scale + β, not x·scale + (β − μ·scale): the latter cancels
      // badly when |μ| ≫ σ. (wasm's one-pass FusedBatchNorm is slower than
      // these two broadcast ops.)
      const affine = tf.add(tf.mul(centred, scale), beta);
      const value = relu ? tf.relu(affine) : affine;
      save(relu ? [x, mean, invStd, gamma, value] : [x, mean, invStd, gamma]);
      return { value, gradFunc: batchNormGrad(axes, n, relu) };
    });
  }

  /**
   * Training mode with the statistics of every process (SyncBatchNorm): the
   * mean from the summed Σx and count, the biased variance from the summed
   * Σ(x − μ)² (two reductions, as stable as one process's two passes), and
   * in the backward pass `dx` from the summed Σg and Σg·x̂; `dγ`, `dβ` stay
   * this process's sums (the parameter gradients are summed over processes
   * with the rest).
   */
  #syncedTraining<T extends tf.Tensor>(
    x: T,
    axes: number[],
    relu: boolean,
    sync: (sums: Float64Array) => Float64Array,
    update: boolean,
  ): T {
    const c = this.numFeatures;
    const local = x.size / c;
    // [count, Σ_1 … Σ_C] summed over processes.
    const reduce = (count: number, t: tf.Tensor): [number, tf.Tensor1D] => {
      const sums = new Float64Array(c + 1);
      sums[0] = count;
      sums.set(t.dataSync(), 1);
      const all = sync(sums);
      return [all[0], tf.tensor1d(Float32Array.from(all.subarray(1)))];
    };
    return this.#customOp(x, (x, gamma, beta, save) => {
      // x: [N, ..., C] -> Σx: [C] -> μ over every process's N·…
      const [n, sum] = reduce(local, tf.sum(x, axes));
      const mean = tf.div(sum, n);
      const centred = tf.sub(x, mean);
      const [, squares] = reduce(0, tf.sum(tf.square(centred), axes));
      const variance = tf.div(squares, n);
      if (update) {
        const m = this.momentum;
        this.runningMean.assign(
          tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)),
        );
        this.runningVar.assign(
          tf.add(
            tf.mul(this.runningVar, 1 - m),
            tf.mul(variance, (m * n) / (n - 1)),
          ),
        );
      }
      const invStd = tf.rsqrt(tf.add(variance, this.eps));
      const affine = tf.add(tf.mul(centred, tf.mul(gamma, invStd)), beta);
      const value = relu ? tf.relu(affine) : affine;
      save(relu ? [x, mean, invStd, gamma, value] : [x, mean, invStd, gamma]);
      return {
        value,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [x, mean, invStd, gamma, out] = saved;
          const g = relu
            ? tf.mul(dy as tf.Tensor, tf.step(out))
            : dy as tf.Tensor;
          const xHat = tf.mul(tf.sub(x, mean), invStd);
          // g, xHat: [N, ..., C] -> this process's dβ, dγ: [C]
          const dBeta = tf.sum(g, axes);
          const dGamma = tf.sum(tf.mul(g, xHat), axes);
          const [, allBeta] = reduce(0, dBeta);
          const [, allGamma] = reduce(0, dGamma);
          const dx = tf.mul(
            tf.mul(gamma, invStd),
            tf.sub(
              tf.sub(g, tf.div(allBeta, n)),
              tf.mul(xHat, tf.div(allGamma, n)),
            ),
          );
          return [dx, dGamma, dBeta];
        },
      };
    });
  }

  /** `f` over `(x, γ, β)` as one custom-gradient op, applied in a tidy. */
  #customOp<T extends tf.Tensor>(
    x: T,
    f: (
      x: tf.Tensor,
      gamma: tf.Tensor,
      beta: tf.Tensor,
      save: tf.GradSaveFunc,
    ) => {
      value: tf.Tensor;
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
    },
  ): T {
    const op = tf.customGrad(
      f as unknown as Parameters<typeof tf.customGrad>[0],
    ) as unknown as (...t: tf.Tensor[]) => tf.Tensor;
    return tf.tidy(() => op(x, this.weight, this.bias)) as T;
  }

  /**
   * Training mode on a backend's fused kernel (`BATCH_NORM_TRAIN_KERNEL`:
   * one pass forward, one backward, ReLU included), as one custom-gradient
   * op like the tensor-op path.
   */
  #fusedTraining<T extends tf.Tensor>(
    x: T,
    relu: boolean,
    updateRunning: ((mean: tf.Tensor, variance: tf.Tensor) => void) | undefined,
  ): T {
    const attrs = { eps: this.eps, relu };
    return this.#customOp(x, (x, gamma, beta, save) => {
      const [value, mean, variance, workspace] = tf.engine().runKernel(
        BATCH_NORM_TRAIN_KERNEL,
        { x, gamma, beta },
        attrs,
      ) as tf.Tensor[];
      updateRunning?.(mean, variance);
      save([x, mean, variance, gamma, beta, workspace]);
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [x, mean, variance, gamma, beta, workspace] = saved;
          return tf.engine().runKernel(
            BATCH_NORM_TRAIN_GRAD_KERNEL,
            { dy, x, mean, variance, gamma, beta, workspace },
            attrs,
          ) as tf.Tensor[];
        },
      };
    });
  }

  /**
   * The evaluation-mode transform as one per-channel affine map,
   * `y = x·scale + shift`: `scale = γ/√(running_var + eps)` and
   * `shift = β − running_mean·scale`. A preceding convolution can absorb it
   * (its filter times `scale`, plus a bias `shift`).
   *
   * @example
   * ```ts
   * import { useBackend } from "@scaling-vicreg/backend";
   * import { BatchNorm } from "@scaling-vicreg/models";
   * await useBackend("cpu");
   * const bn = new BatchNorm(1, { eps: 0.25 }); // running var 1 → scale 1/√1.25
   * const { scale, shift } = bn.evalAffine();
   * console.log(scale.dataSync()[0].toFixed(4), shift.dataSync()[0]); // 0.8944 0
   * bn.dispose();
   * ```
   *
   * @returns `scale` and `shift`, `[C]` each (new tensors).
   */
  evalAffine(): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
    return tf.tidy(() => {
      const scale = tf.mul(
        this.weight,
        tf.rsqrt(tf.add(this.runningVar, this.eps)),
      ) as tf.Tensor1D;
      const shift = tf.sub(
        this.bias,
        tf.mul(this.runningMean, scale),
      ) as tf.Tensor1D;
      return { scale, shift };
    });
  }

  /** `weight` and `bias`. */
  parameters(): Map<string, tf.Variable> {
    return new Map([["weight", this.weight], ["bias", this.bias]]);
  }

  /** `running_mean` and `running_var`. */
  buffers(): Map<string, tf.Variable> {
    return new Map([
      ["running_mean", this.runningMean],
      ["running_var", this.runningVar],
    ]);
  }

  /** Disposes the four variables. */
  dispose(): void {
    tf.dispose([this.weight, this.bias, this.runningMean, this.runningVar]);
  }
}

/**
 * The backward pass of training-mode BatchNorm (+ ReLU) over `axes`, `n`
 * elements per channel, from the saved `[x, mean, invStd, γ(, output)]`.
 */
function batchNormGrad(
  axes: number[],
  n: number,
  relu: boolean,
): (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => tf.Tensor[] {
  return (dy, saved) => {
    const [x, mean, invStd, gamma, out] = saved;
    // The ReLU passes the gradient where its output is positive.
    const g = relu ? tf.mul(dy as tf.Tensor, tf.step(out)) : dy as tf.Tensor;
    const xHat = tf.mul(tf.sub(x, mean), invStd);
    // g, xHat: [N, ..., C] -> dBeta, dGamma: [C]
    const dBeta = tf.sum(g, axes);
    const dGamma = tf.sum(tf.mul(g, xHat), axes);
    const dx = tf.mul(
      tf.mul(gamma, invStd),
      tf.sub(tf.sub(g, tf.div(dBeta, n)), tf.mul(xHat, tf.div(dGamma, n))),
    );
    return [dx, dGamma, dBeta];
  };
}
