/**
 * The precision the native convolutions take their inputs in, read by the
 * oneDNN convolutions on every call: `fp32`, or `bf16` (inputs rounded to
 * bfloat16, products accumulated and outputs written in float32, as
 * `torch.autocast` runs a convolution). Set only through `setPrecision`
 * (`precision.ts`), which checks that the CPU and the backend can.
 *
 * @module
 */

/** A convolution's input precision. */
export type Precision = "fp32" | "bf16";

let current: Precision = "fp32";

/**
 * The precision convolutions run in now.
 *
 * @returns `fp32` until {@linkcode setConvPrecision} says otherwise.
 */
export function convPrecision(): Precision {
  return current;
}

/**
 * Sets the precision every later convolution runs in (unchecked).
 *
 * @param precision The precision.
 */
export function setConvPrecision(precision: Precision): void {
  current = precision;
}
