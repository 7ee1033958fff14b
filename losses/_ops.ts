/**
 * Private differentiable building blocks of the VICReg loss, each with a
 * hand-written gradient. They exist for speed, not for new maths: TF.js's
 * autodiff of `mean`/`sum` over an axis, of a full `mean`, and of `matMul`
 * emits broadcasts like `[1, D] × [N, D]` and transposed matmuls, which the
 * cpu backend runs per element through a generic index path, and the wasm
 * backend runs far slower than plain matmuls (measured figures in
 * `bench/README.md`). The
 * gradients below use only same-shape or suffix broadcasts (`[D]` against
 * `[N, D]`, rank-0 scalars), reductions and untransposed matmuls.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

type Grad = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/** Wraps tf.customGrad with the loose typing its variadic signature needs. */
function custom<A extends tf.Tensor[], R extends tf.Tensor>(
  f: (
    ...args: [...A, tf.GradSaveFunc]
  ) => { value: R; gradFunc: Grad },
): (...args: A) => R {
  // deno-lint-ignore no-explicit-any
  return tf.customGrad(f as any) as unknown as (...args: A) => R;
}

/** `x − mean(x, 0)`: `[N, D] -> [N, D]`; gradient `dy − mean(dy, 0)`. */
export const centre: (x: tf.Tensor2D) => tf.Tensor2D = custom(
  (x: tf.Tensor2D, _save: tf.GradSaveFunc) => ({
    // mean: [D], a suffix of [N, D]: the backend's direct broadcast path
    value: tf.sub(x, tf.mean(x, 0)) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor) => tf.sub(dy, tf.mean(dy, 0)),
  }),
);

/** `Σ_i x_ij²`: `[N, D] -> [D]`; gradient `2·x·dy`. */
export const columnSumSq: (x: tf.Tensor2D) => tf.Tensor1D = custom(
  (x: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([x]);
    return {
      value: tf.sum(tf.square(x), 0) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => tf.mul(xs, tf.mul(dy, 2)),
    };
  },
);

/** `mean((x − y)²)` over all N·D entries; gradients `±2(x − y)·dy/(N·D)`. */
export const meanSquaredError: (
  x: tf.Tensor2D,
  y: tf.Tensor2D,
) => tf.Scalar = custom(
  (x: tf.Tensor2D, y: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const diff = tf.sub(x, y);
    save([diff]);
    return {
      // mean of row means (equal row sizes): float32-accurate two-level sum
      value: tf.mean(tf.mean(tf.square(diff), 1)) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [d]: tf.Tensor[]) => {
        // dy is rank 0: the direct scalar path
        const gx = tf.mul(d, tf.mul(tf.reshape(dy, []), 2 / d.size));
        return [gx, tf.neg(gx)];
      },
    };
  },
);

/**
 * ‖XᵀX‖²_F for X: `[N, D]`, with gradient `4·X·(XᵀX)·dy`. ‖XᵀX‖²_F =
 * ‖XXᵀ‖²_F (both are tr(XᵀXXᵀX)), so the smaller of the `[D, D]` and
 * `[N, N]` products is formed (D²N or N²D multiply-adds; the gradient is
 * then `4·(XXᵀ)·X`).
 */
export const gramFrobeniusSq: (x: tf.Tensor2D) => tf.Scalar = custom(
  (x: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const [n, d] = x.shape;
    // x: [N, D] -> gram: [N, N] when N < D, else [D, D]. An explicit
    // transpose and a plain matmul, which wasm runs far faster than a matmul
    // with transposeA/B (see the module doc); only the `cpu` reference
    // backend, which transposes element by element, would prefer the flags.
    const gram = n < d
      ? tf.matMul(x, tf.transpose(x))
      : tf.matMul(tf.transpose(x), x);
    save([x, gram]);
    return {
      // row sums first: a two-level sum keeps float32 accumulators (wasm)
      // accurate over the N² or D² entries
      value: tf.sum(tf.sum(tf.square(gram), 1)) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [xs, g]: tf.Tensor[]) => {
        // [N, N]·[N, D] or [N, D]·[D, D] -> [N, D]
        const prod = n < d ? tf.matMul(g, xs) : tf.matMul(xs, g);
        return tf.mul(prod, tf.mul(tf.reshape(dy, []), 4));
      },
    };
  },
);

/**
 * `x[rows]`: `[R, D] -> [M, D]`, with the gradient scattered back by
 * `scatterND` (duplicates summed). TF.js's own gather gradient
 * (`unsortedSegmentSum`) loops over all R segments on the cpu backend, which
 * takes minutes at R = 9216.
 *
 * `rows` may be an int32 tensor computed from `x` itself (matches found on
 * the device): it is not an input of the op, so no gradient is asked of the
 * ops that chose it.
 */
export function gatherRows(
  x: tf.Tensor2D,
  rows: Int32Array | tf.Tensor1D,
): tf.Tensor2D {
  const shape = x.shape;
  const op = custom((x: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const index = rows instanceof Int32Array
      ? tf.tensor1d(rows, "int32")
      : rows;
    save([index]);
    return {
      value: tf.gather(x, index) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) =>
        tf.scatterND(tf.reshape(saved, [-1, 1]), dy, shape),
    };
  });
  return op(x);
}
