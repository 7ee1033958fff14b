/**
 * ViewMix, as the paper's code: with probability p per batch, mix the two
 * views of each sample with its own λ ~ Beta(α, α):
 * `x' = λ·x + (1 − λ)·y`, `y' = λ·y + (1 − λ)·x`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";

/** Options of {@linkcode viewMix}. */
export interface ViewMixOptions {
  /**
   * Probability of mixing a batch.
   * @default {0.5}
   */
  p?: number;
  /**
   * Beta(α, α) parameter of λ.
   * @default {1.0}
   */
  alpha?: number;
  /**
   * The views are rows `start … start + N − 1` of a batch of `total` (a shard
   * of a batch spread over processes): the draws are the whole batch's (the
   * coin, then `total` λ), of which these rows take theirs, so every shard
   * mixes as the whole batch would.
   * @default {undefined} (the views are the whole batch)
   */
  rows?: { start: number; total: number };
}

/** Defaults of {@linkcode ViewMixOptions}' `p` and `alpha`. */
export const DEFAULT_VIEW_MIX_OPTIONS: Readonly<
  Required<Omit<ViewMixOptions, "rows">>
> = {
  p: 0.5,
  alpha: 1.0,
};

/**
 * Mixes two batches of views. Draw order: the batch coin, then (when mixing)
 * one λ per sample. Always returns new tensors (the inputs stay owned by the
 * caller).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { viewMix } from "@scaling-vicreg/augment/view-mix";
 * await useBackend("cpu");
 * const a = tf.zeros([2, 4, 4, 3]) as tf.Tensor4D, b = tf.ones([2, 4, 4, 3]) as tf.Tensor4D;
 * const { x, lambdas } = viewMix(a, b, new Rng(0), { p: 1 });
 * console.log(lambdas?.length, x.shape); // 2 [2, 4, 4, 3]
 * ```
 *
 * @param x Views `[N, H, W, C]`.
 * @param y The other views, same shape.
 * @param rng The generator.
 * @param options `p`, `alpha` and `rows`.
 * @returns The mixed views and the λ per sample (`null` when not mixed).
 */
export function viewMix(
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  rng: Rng,
  options: ViewMixOptions = {},
): { x: tf.Tensor4D; y: tf.Tensor4D; lambdas: Float32Array | null } {
  const { p, alpha } = { ...DEFAULT_VIEW_MIX_OPTIONS, ...options };
  if (!(p >= 0 && p <= 1)) {
    throw new RangeError(`Expected viewMix p in [0, 1]: received ${p}`);
  }
  if (!(alpha > 0)) {
    throw new RangeError(`Expected viewMix alpha > 0: received ${alpha}`);
  }
  if (x.rank !== 4 || x.shape.join() !== y.shape.join()) {
    throw new TypeError(
      `Expected two view batches of the same [N, H, W, C] shape: received [${x.shape}] and [${y.shape}]`,
    );
  }
  if (!(rng.uniform() < p)) {
    return { x: tf.clone(x), y: tf.clone(y), lambdas: null };
  }
  const n = x.shape[0];
  const per = x.size / n;
  const { start, total } = options.rows ?? { start: 0, total: n };
  if (
    !Number.isInteger(start) || !Number.isInteger(total) || start < 0 ||
    start + n > total
  ) {
    throw new RangeError(
      `Expected viewMix rows within the batch: received start ${start} and total ${total} for ${n} views`,
    );
  }
  const all = new Float32Array(total);
  for (let i = 0; i < total; i++) all[i] = rng.beta(alpha, alpha);
  const lambdas = all.slice(start, start + n);
  // Per-sample λ filled to the full shape: a same-shape multiply is much
  // faster than a broadcast one on the CPU backend.
  const lam = new Float32Array(x.size), rest = new Float32Array(x.size);
  for (let i = 0; i < n; i++) {
    lam.fill(lambdas[i], i * per, (i + 1) * per);
    rest.fill(1 - lambdas[i], i * per, (i + 1) * per);
  }
  return tf.tidy(() => {
    const l = tf.tensor(lam, x.shape), r = tf.tensor(rest, x.shape);
    return {
      x: tf.add(tf.mul(l, x), tf.mul(r, y)) as tf.Tensor4D,
      y: tf.add(tf.mul(l, y), tf.mul(r, x)) as tf.Tensor4D,
      lambdas,
    };
  });
}
