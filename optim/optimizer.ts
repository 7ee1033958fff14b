/**
 * Optimizers with PyTorch semantics over named variables: LARS as VICReg uses
 * it, AdamW and SGD with momentum. Parameters of rank 1 (biases and BatchNorm
 * affine parameters) are excluded from weight decay and from the LARS
 * adaptation, as VICReg's `exclude_bias_and_norm` does. The update rules
 * themselves are in `sgd.ts`, `adamw.ts` and `lars.ts`; this file keeps the
 * per-parameter state (moment slots, step count) that they update.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { adamwUpdate } from "./adamw.ts";
import { larsUpdate } from "./lars.ts";
import { sgdUpdate } from "./sgd.ts";

/** The optimizers {@linkcode createOptimizer} builds. */
export type OptimizerKind = "lars" | "adamw" | "sgd";

/** Options of {@linkcode createOptimizer}. */
export interface OptimizerOptions {
  /** Weight decay (L2 for LARS/SGD, decoupled for AdamW). @default {1e-6} */
  weightDecay?: number;
  /** Momentum (LARS, SGD) or β1 (AdamW). @default {0.9} */
  momentum?: number;
  /** LARS trust coefficient η. @default {0.001} */
  eta?: number;
  /** AdamW β2. @default {0.999} */
  beta2?: number;
  /** AdamW ε. @default {1e-8} */
  epsilon?: number;
  /**
   * Which parameters skip weight decay and the LARS adaptation.
   * @default {(name, v) => v.rank === 1}
   */
  exclude?: (name: string, variable: tf.Variable) => boolean;
}

/** Default optimizer options (VICReg's LARS: wd 1e-6, η 0.001, momentum 0.9). */
export const DEFAULT_OPTIMIZER_OPTIONS: Required<OptimizerOptions> = {
  weightDecay: 1e-6,
  momentum: 0.9,
  eta: 0.001,
  beta2: 0.999,
  epsilon: 1e-8,
  exclude: (_name, variable) => variable.rank === 1,
};

/** What an optimizer saves in a checkpoint. */
export interface OptimizerState {
  /** Updates applied so far (AdamW's bias correction needs it). */
  step: number;
  /** Slot tensors by `<param>.<slot>`. */
  tensors: Map<string, tf.Tensor>;
}

/** An optimizer over a fixed set of named variables. */
export interface Optimizer {
  /** Which optimizer. */
  readonly kind: OptimizerKind;
  /** Names of the parameters excluded from decay and adaptation. */
  readonly excluded: readonly string[];
  /**
   * Applies one update with the given gradients at learning rate `lr`.
   * Gradients are not disposed.
   */
  step(grads: Record<string, tf.Tensor>, lr: number): void;
  /**
   * The optimizer's state for checkpoints: its step count and its slot
   * tensors by name (`<param>.momentum_buffer`, `<param>.exp_avg`, …), owned
   * by the optimizer (do not dispose them).
   */
  state(): OptimizerState;
  /** Restores state saved by {@linkcode Optimizer.state} (tensors are copied). */
  loadState(state: OptimizerState): void;
  /** Frees the state tensors. */
  dispose(): void;
}

/**
 * Makes an optimizer over named variables.
 *
 * LARS (You et al. 2017, as in facebookresearch/vicreg): for each parameter p
 * with gradient g, d = g + wd·p; unless excluded, d ← d · η‖p‖/‖d‖ (1 when
 * either norm is 0); μ ← m·μ + d; p ← p − lr·μ. Excluded parameters get
 * d = g and no adaptation.
 *
 * SGD (PyTorch): d = g + wd·p; μ ← m·μ + d; p ← p − lr·μ.
 *
 * AdamW (PyTorch): p ← p(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
 * p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { createOptimizer } from "@scaling-vicreg/optim/optimizer";
 * await useBackend("cpu");
 * const w = tf.variable(tf.ones([2, 2]));
 * const opt = createOptimizer("sgd", new Map([["w", w]]), { weightDecay: 0 });
 * const g = tf.ones([2, 2]);
 * opt.step({ w: g }, 0.1); // w = 0.9
 * tf.dispose([w, g]);
 * opt.dispose();
 * ```
 *
 * @param kind `lars`, `adamw` or `sgd`.
 * @param params The trainable variables by name.
 * @param options See {@linkcode OptimizerOptions}.
 * @returns The optimizer.
 */
export function createOptimizer(
  kind: OptimizerKind,
  params: Map<string, tf.Variable>,
  options: OptimizerOptions = {},
): Optimizer {
  const o = { ...DEFAULT_OPTIMIZER_OPTIONS, ...options };
  if (!(o.weightDecay >= 0)) {
    throw new RangeError(`Expected weightDecay ≥ 0: received ${o.weightDecay}`);
  }
  if (!(o.momentum >= 0 && o.momentum < 1)) {
    throw new RangeError(`Expected momentum in [0, 1): received ${o.momentum}`);
  }
  const excluded = [...params].filter(([n, v]) => o.exclude(n, v)).map(([n]) =>
    n
  );
  const isExcluded = new Set(excluded);
  const slots = new Map<string, tf.Variable>();
  let t = 0;
  const slot = (key: string, like: tf.Variable): tf.Variable => {
    let v = slots.get(key);
    if (v === undefined) {
      // Outside a tidy (loadState) the zeros would outlive the slot.
      const zeros = tf.zerosLike(like);
      v = tf.variable(zeros, false, undefined, "float32");
      zeros.dispose();
      slots.set(key, v);
    }
    return v;
  };

  const stepOne = (name: string, p: tf.Variable, g: tf.Tensor, lr: number) => {
    const ex = isExcluded.has(name);
    const weightDecay = ex ? 0 : o.weightDecay;
    if (kind === "adamw") {
      const m = slot(`${name}.exp_avg`, p);
      const v = slot(`${name}.exp_avg_sq`, p);
      const next = adamwUpdate(
        { param: p, grad: g, expAvg: m, expAvgSq: v, step: t },
        lr,
        { beta1: o.momentum, beta2: o.beta2, epsilon: o.epsilon, weightDecay },
      );
      m.assign(next.expAvg);
      v.assign(next.expAvgSq);
      p.assign(next.param);
      return;
    }
    const mu = slot(`${name}.momentum_buffer`, p);
    const inputs = { param: p, grad: g, momentumBuffer: mu };
    const next = kind === "lars" && !ex
      ? larsUpdate(inputs, lr, {
        momentum: o.momentum,
        weightDecay,
        eta: o.eta,
      })
      : sgdUpdate(inputs, lr, { momentum: o.momentum, weightDecay });
    mu.assign(next.momentumBuffer);
    p.assign(next.param);
  };

  return {
    kind,
    excluded,
    step(grads, lr) {
      t += 1;
      for (const [name, p] of params) {
        const g = grads[name];
        if (g === undefined) {
          throw new TypeError(`Expected a gradient for parameter "${name}"`);
        }
        // One parameter's temporaries at a time: a paper-sized model's
        // would otherwise all be alive at once (several copies of 0.4 GB).
        tf.tidy(() => stepOne(name, p, g, lr));
      }
    },
    state() {
      return { step: t, tensors: new Map<string, tf.Tensor>(slots) };
    },
    loadState(state) {
      t = state.step;
      for (const [key, value] of state.tensors) {
        const name = key.slice(0, key.lastIndexOf("."));
        const p = params.get(name);
        if (p === undefined) {
          throw new TypeError(`Optimizer state "${key}" names no parameter`);
        }
        if (value.shape.join(",") !== p.shape.join(",")) {
          throw new TypeError(
            `Optimizer state "${key}" has shape [${value.shape}]: expected [${p.shape}]`,
          );
        }
        slot(key, p).assign(value);
      }
    },
    dispose() {
      for (const v of slots.values()) v.dispose();
      slots.clear();
    },
  };
}
