/**
 * The one weighted k-nearest-neighbour vote that `probe` (kNN accuracy of
 * frozen features) and `train` (the online kNN during pretraining) share:
 * which classes a query's neighbours vote for.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** The labelled rows the queries are compared with. */
export interface KnnBank {
  /** Bank features `[Nbank, D]`, float32 (any scale: rows are L2-normalised). */
  features: tf.Tensor2D;
  /** Their classes, length Nbank, each in [0, numClasses) (not checked here). */
  labels: Int32Array;
  /** Number of classes C. */
  numClasses: number;
}

/** Options of {@linkcode knnVote}. */
export interface KnnVoteOptions {
  /** Neighbours per query (clipped to the bank's size). @default {20} */
  k?: number;
  /** Temperature T of the vote weights exp(s/T). @default {0.07} */
  temperature?: number;
  /** Classes returned per query, highest score first (≤ C). @default {1} */
  top?: number;
  /** Queries per similarity batch (bounds memory at batchSize × Nbank). @default {256} */
  batchSize?: number;
}

/** The defaults of {@linkcode KnnVoteOptions}: DINO's k = 20, T = 0.07. */
export const DEFAULT_KNN_VOTE_OPTIONS: Readonly<Required<KnnVoteOptions>> =
  Object.freeze({ k: 20, temperature: 0.07, top: 1, batchSize: 256 });

/**
 * The classes the k nearest bank rows vote for, as in InstDisc (Wu et al.
 * 2018) and DINO's `eval_knn.py`: each query's k most cosine-similar bank
 * rows vote for their class with weight exp(s/T); a class's score is the sum
 * of its weights, and the `top` highest-scoring classes are returned (ties:
 * the lower class first).
 *
 * Runs on the active backend, `batchSize` queries at a time (similarities
 * `[B, Nbank]`).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { knnVote } from "@scaling-vicreg/backend/knn-vote";
 * await useBackend("cpu");
 * const bank = { features: tf.tensor2d([[1, 0], [0, 1]]), labels: Int32Array.of(0, 1), numClasses: 2 };
 * const queries = tf.tensor2d([[2, 0.1], [0.1, 3]]);
 * const best = knnVote(bank, queries, { k: 2 });
 * console.log(best.shape, best.dataSync()); // [2, 1] Int32Array [0, 1]
 * tf.dispose([bank.features, queries, best]);
 * ```
 *
 * @param bank The labelled bank rows and the number of classes.
 * @param queries Query features `[Nq, D]`, float32.
 * @param options See {@linkcode KnnVoteOptions}.
 * @returns `[Nq, top]` int32 classes, highest score first (the caller disposes it).
 */
export function knnVote(
  bank: KnnBank,
  queries: tf.Tensor2D,
  options: KnnVoteOptions = {},
): tf.Tensor2D {
  const o = resolveKnnVoteOptions(options, bank.numClasses);
  for (const [x, name] of [[bank.features, "bank"], [queries, "queries"]]) {
    if (!(x instanceof tf.Tensor) || x.rank !== 2) {
      throw new TypeError(`Expected ${name} features of rank 2 [N, D]`);
    }
  }
  if (bank.features.shape[1] !== queries.shape[1]) {
    throw new TypeError(
      `Expected bank and query features of the same width: ${
        bank.features.shape[1]
      } vs ${queries.shape[1]}`,
    );
  }
  const nBank = bank.features.shape[0];
  if (nBank === 0) throw new RangeError("Expected a non-empty kNN bank");
  if (bank.labels.length !== nBank) {
    throw new TypeError(
      `Expected one bank label per row: ${nBank} rows, ${bank.labels.length} labels`,
    );
  }
  const k = Math.min(o.k, nBank);
  const nQ = queries.shape[0];
  if (nQ === 0) return tf.zeros([0, o.top], "int32");
  return tf.tidy(() => {
    const normed = tf.transpose(l2Normalize(bank.features)); // [D, Nbank]
    const labels = tf.tensor1d(bank.labels, "int32");
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < nQ; s += o.batchSize) {
      const rows = Math.min(o.batchSize, nQ - s);
      parts.push(tf.tidy(() => {
        const q = l2Normalize(tf.slice(queries, [s, 0], [rows, -1])); // [B, D]
        const sim = tf.matMul(q, normed); // [B, D]·[D, Nbank] -> [B, Nbank]
        const { values, indices } = tf.topk(sim, k); // [B, k]
        const weights = tf.exp(tf.div(values, o.temperature)); // [B, k]
        const votes = tf.oneHot(tf.gather(labels, indices), bank.numClasses); // [B, k, C]
        // Σ_k weight · onehot: [B, k, C] -> [B, C]
        const scores = tf.sum(tf.mul(votes, tf.expandDims(weights, 2)), 1);
        return tf.topk(scores, o.top).indices as tf.Tensor2D; // [B, top]
      }));
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts) as tf.Tensor2D;
  });
}

/**
 * Fills in and checks {@linkcode KnnVoteOptions} for `numClasses` classes.
 *
 * @param options The options.
 * @param numClasses C (≥ 1).
 * @returns Every option, defaults filled in.
 */
function resolveKnnVoteOptions(
  options: KnnVoteOptions,
  numClasses: number,
): Required<KnnVoteOptions> {
  const o = { ...DEFAULT_KNN_VOTE_OPTIONS, ...options };
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(
      `Expected numClasses to be a positive integer: received ${numClasses}`,
    );
  }
  if (!Number.isInteger(o.k) || o.k < 1) {
    throw new RangeError(
      `Expected k to be a positive integer: received ${o.k}`,
    );
  }
  if (!(o.temperature > 0)) {
    throw new RangeError(
      `Expected temperature > 0: received ${o.temperature}`,
    );
  }
  if (!Number.isInteger(o.top) || o.top < 1 || o.top > numClasses) {
    throw new RangeError(
      `Expected top to be an integer in [1, ${numClasses}]: received ${o.top}`,
    );
  }
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
    throw new RangeError(
      `Expected batchSize to be a positive integer: received ${o.batchSize}`,
    );
  }
  return o;
}

/** Rows scaled to unit L2 norm (zero rows stay zero): `[N, D]`. */
function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), 1, true)); // [N, 1]
    return tf.div(x, tf.maximum(norm, 1e-12));
  });
}
