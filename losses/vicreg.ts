/**
 * The VICReg objective (Bardes, Ponce & LeCun 2022): invariance, variance and
 * covariance terms between two batches of embeddings, with the reference
 * formula of facebookresearch/vicreg `main_vicreg.py` and a `paper-code`
 * preset that reproduces the scaling paper's training script.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { meanSquaredError } from "./_ops.ts";
import {
  branchSettings,
  branchTerms,
  checkBatch,
  checkEmbeddings,
  weightedLoss,
} from "./_branch.ts";

/**
 * The unweighted VICReg terms and their weighted total (all scalars). A type
 * alias rather than an interface so that it is a `tf.TensorContainer`
 * (`tf.dispose(terms)`, returned from `tf.tidy`).
 */
export type VicregTerms = {
  /** `simCoeff·invariance + stdCoeff·variance + covCoeff·covariance`. */
  loss: tf.Scalar;
  /** Mean squared error between the two branches (mean over N·D). */
  invariance: tf.Scalar;
  /** `mean_j relu(γ − std_j)`, averaged over the two branches (½ each). */
  variance: tf.Scalar;
  /** `Σ_{i≠j} C_ij² / covDivisor`, summed over the two branches. */
  covariance: tf.Scalar;
};

/** Which formula details to follow. */
export type VicregVariant = "vicreg" | "paper-code";

/** Options of {@linkcode vicregLoss}. */
export interface VicregOptions {
  /** Weight λ of the invariance term. @default {25} */
  simCoeff?: number;
  /** Weight μ of the variance term. @default {25} */
  stdCoeff?: number;
  /** Weight ν of the covariance term. @default {1} */
  covCoeff?: number;
  /** Added to the variance inside the square root. @default {1e-4} */
  eps?: number;
  /** Target std γ of the variance hinge. @default {1} */
  gamma?: number;
  /**
   * `"vicreg"`: the reference formula (unbiased variance, N − 1, inside the
   * std). `"paper-code"`: the scaling paper's script, which uses the biased
   * variance (N) inside the std; see the README for everything else it does.
   * @default {"vicreg"}
   */
  variant?: VicregVariant;
  /**
   * Divisor of the off-diagonal sum of squares. `undefined` means D, the
   * embedding size of `x`. The paper's code divides its *local* loss by the
   * *global* projector's size (1024) instead of the local one (512).
   * @default {undefined}
   */
  covDivisor?: number;
}

/** The defaults of {@linkcode VicregOptions} (VICReg's own values). */
export const DEFAULT_VICREG_OPTIONS: Readonly<{
  simCoeff: number;
  stdCoeff: number;
  covCoeff: number;
  eps: number;
  gamma: number;
  variant: VicregVariant;
  covDivisor: number | undefined;
}> = Object.freeze({
  simCoeff: 25,
  stdCoeff: 25,
  covCoeff: 1,
  eps: 1e-4,
  gamma: 1,
  variant: "vicreg",
  covDivisor: undefined,
});

/** {@linkcode VicregOptions} with every default filled in and validated. */
export type ResolvedVicregOptions = typeof DEFAULT_VICREG_OPTIONS;

/**
 * Fills in the defaults of {@linkcode VicregOptions} and validates them.
 *
 * @param options Partial options.
 * @returns The complete options.
 * @throws {RangeError} When a coefficient is negative or not finite, `eps` is
 * not positive, `variant` is unknown or `covDivisor` is not positive.
 *
 * @example
 * ```ts
 * import { resolveVicregOptions } from "@scaling-vicreg/losses";
 * const o = resolveVicregOptions({ variant: "paper-code" });
 * if (o.simCoeff !== 25) throw new Error();
 * ```
 */
export function resolveVicregOptions(
  options: VicregOptions = {},
): ResolvedVicregOptions {
  const o = { ...DEFAULT_VICREG_OPTIONS };
  // only VICReg's own keys: callers may pass a wider object (LocalLossOptions)
  for (const key of Object.keys(o) as (keyof VicregOptions)[]) {
    const value = options[key];
    if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  }
  for (const key of ["simCoeff", "stdCoeff", "covCoeff", "gamma"] as const) {
    if (!Number.isFinite(o[key]) || o[key] < 0) {
      throw new RangeError(
        `Expected vicreg option "${key}" to be a finite number >= 0: received ${
          o[key]
        }`,
      );
    }
  }
  if (!Number.isFinite(o.eps) || o.eps <= 0) {
    throw new RangeError(
      `Expected vicreg option "eps" to be a finite number > 0: received ${o.eps}`,
    );
  }
  if (o.variant !== "vicreg" && o.variant !== "paper-code") {
    throw new RangeError(
      `Expected vicreg option "variant" to be "vicreg" or "paper-code": received ${
        JSON.stringify(o.variant)
      }`,
    );
  }
  if (
    o.covDivisor !== undefined &&
    (!Number.isFinite(o.covDivisor) || o.covDivisor <= 0)
  ) {
    throw new RangeError(
      `Expected vicreg option "covDivisor" to be a finite number > 0: received ${o.covDivisor}`,
    );
  }
  return Object.freeze(o);
}

/**
 * The VICReg loss between two batches of embeddings `x, y: [N, D]`
 * (Bardes et al. 2022, eq. 6; facebookresearch/vicreg `main_vicreg.py`):
 *
 * - invariance = mean over N·D of (x − y)²;
 * - each branch is centred over the batch, std_j = sqrt(Var_j + eps) with the
 *   unbiased variance (N − 1; biased, N, for `variant: "paper-code"`),
 *   variance = mean_j relu(γ − std_x,j)/2 + mean_j relu(γ − std_y,j)/2;
 * - C = xᵀx / (N − 1) on the centred batch, covariance = Σ_{i≠j} C_ij² /
 *   covDivisor summed over the two branches, computed as Σ C² − Σ diag(C)²
 *   (no D×D mask), with Σ C² from one matmul per branch (and one for its
 *   gradient): the `[D, D]` covariance, or the `[N, N]` Gram matrix xxᵀ when
 *   N < D (same Frobenius norm, N²D instead of D²N work: 8× less at
 *   N = 1024, D = 8192);
 * - loss = simCoeff·invariance + stdCoeff·variance + covCoeff·covariance.
 *
 * All four results are differentiable scalars; the caller disposes them (or
 * runs the call inside `tf.tidy`). N = 2 is valid (each std comes from two
 * samples; C has rank 1); N = 1 has no batch statistics and throws.
 *
 * @param x Embeddings of the first view, `[N, D]`, float32.
 * @param y Embeddings of the second view, `[N, D]`, float32.
 * @param options Coefficients and variant; see {@linkcode VicregOptions}.
 * @returns The weighted total and the three unweighted terms.
 * @throws {TypeError} When `x` or `y` is not a float32 rank-2 tensor or their
 * shapes differ.
 * @throws {RangeError} When N < 2, D < 1 or an option is out of range.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { vicregLoss } from "@scaling-vicreg/losses";
 * await useBackend("cpu");
 * const x = tf.randomNormal([8, 4], 0, 1, "float32", 1) as tf.Tensor2D;
 * const terms = vicregLoss(x, x);
 * if (terms.invariance.dataSync()[0] !== 0) throw new Error();
 * tf.dispose([x, terms]);
 * ```
 */
export function vicregLoss(
  x: tf.Tensor2D,
  y: tf.Tensor2D,
  options: VicregOptions = {},
): VicregTerms {
  checkEmbeddings(x, "x");
  checkEmbeddings(y, "y");
  if (x.shape[0] !== y.shape[0] || x.shape[1] !== y.shape[1]) {
    throw new TypeError(
      `Expected "x" and "y" of the same shape: received [${x.shape}] and [${y.shape}]`,
    );
  }
  const [n, d] = x.shape;
  checkBatch(n, d, '"x" and "y"');
  const o = resolveVicregOptions(options);
  const settings = branchSettings(o, n, d);
  return tf.tidy(() => {
    // x, y: [N, D] -> scalar
    const invariance = meanSquaredError(x, y);
    const bx = branchTerms(x, settings);
    const by = branchTerms(y, settings);
    const variance = tf.mul(tf.add(bx.hinge, by.hinge), 0.5) as tf.Scalar;
    const covariance = tf.add(bx.offDiagonal, by.offDiagonal) as tf.Scalar;
    const loss = weightedLoss(invariance, variance, covariance, o);
    return { loss, invariance, variance, covariance };
  });
}
