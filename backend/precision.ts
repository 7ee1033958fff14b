/**
 * The process-global training precision, chosen once like the backend:
 * `fp32` (the default) or `bf16`, mixed precision as `torch.autocast("cpu",
 * dtype=torch.bfloat16)` trains. In `bf16` the convolutions of the `blas`
 * and `native` backends (forward, both gradients and the fused inference
 * convolution) take bf16 inputs on oneDNN and write float32 outputs; they
 * read {@linkcode activePrecision} on every call. Everything else —
 * BatchNorm, element-wise ops, matrix products, the loss, the optimizer and
 * the float32 master weights — stays float32. Choose it with
 * `setPrecision` (`set_precision.ts`), which checks the CPU and backend.
 *
 * @module
 */

/** A training precision: `fp32`, or `bf16` (bf16 convolution inputs). */
export type Precision = "fp32" | "bf16";

/** Every precision, in `--precision`'s order. */
export const PRECISIONS: readonly Precision[] = ["fp32", "bf16"];

let current: Precision = "fp32";

/**
 * Whether a string names a precision.
 *
 * @param value The string.
 * @returns Whether it is one of {@linkcode PRECISIONS}.
 */
export function isPrecision(value: string): value is Precision {
  return (PRECISIONS as readonly string[]).includes(value);
}

/**
 * The precision in use (`fp32` until `setPrecision` says otherwise).
 *
 * @returns It.
 */
export function activePrecision(): Precision {
  return current;
}

/**
 * Sets the precision unchecked (the kernels' tests; everything else calls
 * `setPrecision`, which checks the CPU and the backend first). Not exported
 * from the member.
 *
 * @param precision The precision.
 */
export function setActivePrecision(precision: Precision): void {
  current = precision;
}
