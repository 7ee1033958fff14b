/**
 * Noticing a training run that blows up before its loss reaches NaN: a loss
 * or gradient norm that jumps by a large factor over the median of the recent
 * steps, or one that is not finite.
 *
 * The loss of step k is computed with the weights left by step k − 1, so a
 * blow-up seen at step k is already in those weights: the checkpoints from
 * step k − 1 on are not to be trusted ({@linkcode firstSuspectStep}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Options of {@linkcode DivergenceGuard}. */
export interface DivergenceGuardOptions {
  /** Steps whose values make the median compared against. @default {20} */
  window?: number;
  /** A value above `factor` × the recent median is a blow-up. @default {100} */
  factor?: number;
  /** Steps seen before jumps are judged (non-finite values always are). @default {1} */
  minHistory?: number;
}

/** Default values of {@linkcode DivergenceGuardOptions}. */
export const DEFAULT_DIVERGENCE_GUARD_OPTIONS: Required<
  DivergenceGuardOptions
> = { window: 20, factor: 100, minHistory: 1 };

/** What one step measured, as the guard reads it. */
export interface StepHealth {
  /** The step's loss. */
  loss: number;
  /** The global L2 norm of its gradients, when measured. */
  gradNorm?: number;
}

/** A blow-up found by {@linkcode DivergenceGuard.observe}. */
export interface Divergence {
  /** The step whose values blew up (1-based, as in the metrics). */
  step: number;
  /** Which value. */
  quantity: "loss" | "gradient norm";
  /** Its value. */
  value: number;
  /** The median of the recent steps (`NaN` when there were none). */
  median: number;
  /** One phrase: `loss 3.2e+12 is 1.6e+11× its recent median 20.1`. */
  reason: string;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3)
    ? x.toExponential(2)
    : String(Number(x.toPrecision(4)));
}

/**
 * Watches the loss (and, where measured, the gradient norm) of each step and
 * says when it blows up: a non-finite value, or a value above `factor` times
 * the median of the last `window` steps' values (once `minHistory` steps are
 * in). A step that blows up is not added to the history.
 *
 * @example
 * ```ts
 * import { DivergenceGuard } from "@scaling-vicreg/train/divergence";
 * const guard = new DivergenceGuard({ factor: 100 });
 * guard.observe(1, { loss: 20 });
 * guard.observe(2, { loss: 19 });
 * console.log(guard.observe(3, { loss: 3.2e12 })?.reason);
 * // "loss 3.20e+12 is 1.64e+11× the median 19.5 of the last 2 steps"
 * ```
 */
export class DivergenceGuard {
  #options: Required<DivergenceGuardOptions>;
  #history: { loss: number[]; gradNorm: number[] } = {
    loss: [],
    gradNorm: [],
  };

  /**
   * Makes a guard.
   *
   * @param options See {@linkcode DivergenceGuardOptions}.
   */
  constructor(options: DivergenceGuardOptions = {}) {
    const o = { ...DEFAULT_DIVERGENCE_GUARD_OPTIONS, ...options };
    if (!Number.isInteger(o.window) || o.window < 1) {
      throw new RangeError(
        `Expected window to be an integer >= 1: received ${o.window}`,
      );
    }
    if (!(o.factor > 1)) {
      throw new RangeError(`Expected factor > 1: received ${o.factor}`);
    }
    if (!Number.isInteger(o.minHistory) || o.minHistory < 1) {
      throw new RangeError(
        `Expected minHistory to be an integer >= 1: received ${o.minHistory}`,
      );
    }
    this.#options = o;
  }

  /**
   * Reads one step's values.
   *
   * @param step The step (1-based).
   * @param health Its loss and, optionally, its gradient norm.
   * @returns The blow-up, or `undefined` when the step looks sane.
   */
  observe(step: number, health: StepHealth): Divergence | undefined {
    const checks: [Divergence["quantity"], "loss" | "gradNorm"][] = [
      ["loss", "loss"],
      ["gradient norm", "gradNorm"],
    ];
    for (const [quantity, key] of checks) {
      const value = health[key];
      if (value === undefined) continue;
      const history = this.#history[key];
      const m = median(history);
      if (!Number.isFinite(value)) {
        return {
          step,
          quantity,
          value,
          median: m,
          reason: `${quantity} ${value}`,
        };
      }
      if (
        history.length >= this.#options.minHistory && m > 0 &&
        Math.abs(value) > this.#options.factor * m
      ) {
        return {
          step,
          quantity,
          value,
          median: m,
          reason: `${quantity} ${fmt(value)} is ${fmt(value / m)}× the median ${
            fmt(m)
          } of the last ${history.length} steps`,
        };
      }
    }
    for (const key of ["loss", "gradNorm"] as const) {
      const value = health[key];
      if (value === undefined) continue;
      const history = this.#history[key];
      history.push(Math.abs(value));
      if (history.length > this.#options.window) history.shift();
    }
    return undefined;
  }
}

/**
 * The first step whose checkpoint may hold diverged weights: the step before
 * the one that blew up, since that step's loss was computed with them.
 *
 * @param divergence The blow-up.
 * @returns `divergence.step − 1`.
 */
export function firstSuspectStep(divergence: Divergence): number {
  return divergence.step - 1;
}

/** Training diverged; the checkpoints written before the blow-up are kept. */
export class DivergenceError extends Error {
  /** The step that blew up. */
  readonly step: number;
  /** What blew up. */
  readonly divergence: Divergence;
  /**
   * Makes the error.
   *
   * @param divergence The blow-up.
   * @param message One line.
   */
  constructor(divergence: Divergence, message: string) {
    super(message);
    this.name = "DivergenceError";
    this.step = divergence.step;
    this.divergence = divergence;
  }
}

/** The loss was NaN or infinite; the checkpoints from before it are kept. */
export class NonFiniteLossError extends DivergenceError {
  /**
   * Makes the error.
   *
   * @param divergence The blow-up (a non-finite loss).
   * @param message One line.
   */
  constructor(divergence: Divergence, message: string) {
    super(divergence, message);
    this.name = "NonFiniteLossError";
  }
}

/**
 * The global L2 norm of a set of gradients, `sqrt(Σ_i Σ g_i²)` over every
 * element of every tensor (as `torch.nn.utils.clip_grad_norm_` measures it).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { gradientNorm } from "@scaling-vicreg/train/divergence";
 * await useBackend("cpu");
 * const g = [tf.tensor1d([3]), tf.tensor2d([[4]])];
 * const norm = gradientNorm(g);
 * console.log(norm.dataSync()[0]); // 5
 * tf.dispose([...g, norm]);
 * ```
 *
 * @param grads The gradients (not disposed).
 * @returns A scalar tensor (dispose it).
 */
export function gradientNorm(grads: Iterable<tf.Tensor>): tf.Scalar {
  return tf.tidy(() => {
    const sums = [...grads].map((g) => tf.sum(tf.square(g)));
    // Not tf.addN: on WebGPU an AddN of more inputs than a shader may bind
    // (8 storage buffers on some adapters) fails its command buffer, and
    // with it the other work queued there; concat splits its inputs.
    return tf.sqrt(sums.length > 0 ? tf.sum(tf.stack(sums)) : tf.scalar(0));
  }) as tf.Scalar;
}
