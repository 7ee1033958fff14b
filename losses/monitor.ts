/**
 * Collapse monitoring for embedding batches: the mean per-dimension standard
 * deviation and the fraction of dimensions that have (nearly) stopped varying.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Options of {@linkcode embeddingStd}. */
export interface EmbeddingStdOptions {
  /**
   * A dimension whose std is below this counts as collapsed. 0.01 is 1 % of
   * the std that VICReg's variance term asks of projector outputs (γ = 1):
   * such a dimension carries essentially nothing. Scale it for embeddings
   * that are not VICReg projector outputs.
   * @default {0.01}
   */
  threshold?: number;
}

/** The defaults of {@linkcode EmbeddingStdOptions}. */
export const DEFAULT_EMBEDDING_STD_OPTIONS: Readonly<{ threshold: number }> =
  Object.freeze({ threshold: 0.01 });

/** What {@linkcode embeddingStd} reports (scalars; a `tf.TensorContainer`). */
export type EmbeddingStd = {
  /** Mean over the D dimensions of the per-dimension std. */
  meanStd: tf.Scalar;
  /** Fraction of the D dimensions whose std is below the threshold, in [0, 1]. */
  fractionBelow: tf.Scalar;
};

/**
 * The mean per-dimension standard deviation of an embedding batch
 * `z: [N, D]` and the fraction of dimensions whose std is below a threshold
 * (a collapse indicator). The std is the unbiased one (N − 1), as
 * `torch.std(dim=0)` and VICReg's variance term compute it, without `eps`.
 *
 * @param z Embeddings `[N, D]`, float32, N >= 2.
 * @param options The threshold; see {@linkcode EmbeddingStdOptions}.
 * @returns Two scalars the caller disposes.
 * @throws {TypeError} When `z` is not a float32 rank-2 tensor.
 * @throws {RangeError} When N < 2, D < 1 or the threshold is negative.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { embeddingStd } from "@scaling-vicreg/losses";
 * await useBackend("cpu");
 * const z = tf.tensor2d([[0, 5], [2, 5]]);
 * const { meanStd, fractionBelow } = embeddingStd(z);
 * // std = [√2, 0]: half the dimensions have collapsed
 * if (fractionBelow.dataSync()[0] !== 0.5) throw new Error();
 * tf.dispose([z, meanStd, fractionBelow]);
 * ```
 */
export function embeddingStd(
  z: tf.Tensor2D,
  options: EmbeddingStdOptions = {},
): EmbeddingStd {
  const threshold = options.threshold ??
    DEFAULT_EMBEDDING_STD_OPTIONS.threshold;
  if (!(z instanceof tf.Tensor) || z.rank !== 2 || z.dtype !== "float32") {
    throw new TypeError(
      `Expected "z" to be a float32 tensor of rank 2 ([N, D]): received ${
        z instanceof tf.Tensor ? `${z.dtype} [${z.shape}]` : String(z)
      }`,
    );
  }
  const [n, d] = z.shape;
  if (n < 2 || d < 1) {
    throw new RangeError(
      `Expected "z" with N >= 2 samples and D >= 1 dimensions: received [${z.shape}]`,
    );
  }
  if (!(threshold >= 0) || !Number.isFinite(threshold)) {
    throw new RangeError(
      `Expected option "threshold" to be a finite number >= 0: received ${threshold}`,
    );
  }
  return tf.tidy(() => {
    // z: [N, D] -> std: [D]
    const centred = tf.sub(z, tf.mean(z, 0, true));
    const std = tf.sqrt(tf.div(tf.sum(tf.square(centred), 0), n - 1));
    return {
      meanStd: tf.mean(std) as tf.Scalar,
      fractionBelow: tf.mean(
        tf.cast(tf.less(std, threshold), "float32"),
      ) as tf.Scalar,
    };
  });
}
