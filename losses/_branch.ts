/**
 * The per-branch terms of VICReg (one view's variance hinge and off-diagonal
 * covariance on its batch) and the checks of an embedding batch: shared by
 * the two-view loss (`vicreg.ts`) and the multi-view loss (`multi_view.ts`),
 * so that the formula exists once.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { centre, columnSumSq, gramFrobeniusSq } from "./_ops.ts";

/** One branch's unweighted variance and covariance terms (scalars). */
export interface BranchTerms {
  /** `mean_j relu(γ − std_j)`. */
  hinge: tf.Scalar;
  /** `Σ_{i≠j} C_ij² / covDivisor`. */
  offDiagonal: tf.Scalar;
}

/** What {@linkcode branchTerms} needs besides the batch. */
export interface BranchSettings {
  /** The divisor of the variance inside the std: N − 1 (unbiased) or N. */
  varDivisor: number;
  /** The divisor of the off-diagonal sum of squares. */
  covDivisor: number;
  /** Added to the variance inside the square root. */
  eps: number;
  /** Target std γ of the hinge. */
  gamma: number;
}

/**
 * The variance hinge and the off-diagonal covariance of one branch
 * `z: [N, D]` (N >= 2, checked by the caller). Call inside `tf.tidy`.
 */
export function branchTerms(
  z: tf.Tensor2D,
  s: BranchSettings,
): BranchTerms {
  const n = z.shape[0];
  // z: [N, D] -> centred: [N, D]
  const centred = centre(z);
  // sumSq: [D], Σ_i centred_ij²; the variance and diag(C) both come from it
  const sumSq = columnSumSq(centred);
  const std = tf.sqrt(tf.add(tf.div(sumSq, s.varDivisor), s.eps));
  const hinge = tf.mean(tf.relu(tf.sub(s.gamma, std))) as tf.Scalar;
  const sumSqCov = tf.div(gramFrobeniusSq(centred), (n - 1) * (n - 1));
  const diag = tf.div(sumSq, n - 1); // diag(C): [D]
  const offDiagonal = tf.div(
    tf.sub(sumSqCov, tf.sum(tf.square(diag))),
    s.covDivisor,
  ) as tf.Scalar;
  return { hinge, offDiagonal };
}

/**
 * The per-branch settings of (resolved) VICReg options for a batch
 * `[N, D]`: the variance divisor of the variant (N − 1, or N for
 * `paper-code`) and the covariance divisor (D unless given).
 */
export function branchSettings(
  o: {
    variant: string;
    covDivisor: number | undefined;
    eps: number;
    gamma: number;
  },
  n: number,
  d: number,
): BranchSettings {
  return {
    varDivisor: o.variant === "paper-code" ? n : n - 1,
    covDivisor: o.covDivisor ?? d,
    eps: o.eps,
    gamma: o.gamma,
  };
}

/**
 * Checks that `t` is a float32 `[N, D]` tensor.
 *
 * @throws {TypeError} Naming `name` and what it received.
 */
export function checkEmbeddings(t: tf.Tensor, name: string): void {
  if (!(t instanceof tf.Tensor)) {
    throw new TypeError(`Expected "${name}" to be a tensor: received ${t}`);
  }
  if (t.rank !== 2) {
    throw new TypeError(
      `Expected "${name}" of rank 2 ([N, D]): received rank ${t.rank} (shape [${t.shape}])`,
    );
  }
  if (t.dtype !== "float32") {
    throw new TypeError(
      `Expected "${name}" of dtype float32: received ${t.dtype}`,
    );
  }
}

/**
 * Checks the batch size and width of embeddings `[N, D]` shared by every
 * branch of a loss.
 *
 * @throws {RangeError} When N < 2 or D < 1; `names` says which arguments.
 */
export function checkBatch(n: number, d: number, names: string): void {
  if (n < 2) {
    throw new RangeError(
      `Expected a batch of at least 2 embeddings in ${names} (the variance and covariance need N − 1 > 0): received N = ${n}`,
    );
  }
  if (d < 1) {
    throw new RangeError(`Expected embedding size D >= 1: received D = ${d}`);
  }
}

/**
 * The VICReg loss from its three terms: `λ · invariance + μ · variance +
 * ν · covariance`, each a scalar.
 */
export function weightedLoss(
  invariance: tf.Scalar,
  variance: tf.Scalar,
  covariance: tf.Scalar,
  coeffs: { simCoeff: number; stdCoeff: number; covCoeff: number },
): tf.Scalar {
  return tf.addN([
    tf.mul(invariance, coeffs.simCoeff),
    tf.mul(variance, coeffs.stdCoeff),
    tf.mul(covariance, coeffs.covCoeff),
  ]) as tf.Scalar;
}
