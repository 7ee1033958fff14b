/**
 * The process-global training precision, chosen once like the backend:
 * `fp32` (the default) or `bf16`, mixed precision as `torch.autocast("cpu",
 * dtype=torch.bfloat16)` trains. In `bf16` the convolutions of the `blas`
 * and `native` backends (forward, both gradients and the fused inference
 * convolution) take bf16 inputs on oneDNN and write float32 outputs;
 * everything else — BatchNorm, element-wise ops, matrix products, the loss,
 * the optimizer and the float32 master weights — stays float32.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "./backend.ts";
import { BF16_CPU_FLAGS, cpuHasBf16 } from "./cpu_features.ts";
import {
  convPrecision,
  type Precision,
  setConvPrecision,
} from "./kernels/_precision.ts";

export type { Precision } from "./kernels/_precision.ts";

/** Every precision, in `--precision`'s order. */
export const PRECISIONS: readonly Precision[] = ["fp32", "bf16"];

/** The backends that run bf16 convolutions. */
export const BF16_BACKENDS: readonly string[] = ["blas", "native"];

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
 * The precision in use (`fp32` until {@linkcode setPrecision} says
 * otherwise).
 *
 * @returns It.
 */
export function activePrecision(): Precision {
  return convPrecision();
}

/**
 * Makes `precision` the process's precision, after the backend
 * (`useBackend`): every later convolution reads it. `fp32` is always
 * accepted; `bf16` needs a CPU with AVX512-BF16 or AMX-BF16, the active
 * backend `blas` or `native`, and oneDNN loaded.
 *
 * @example
 * ```ts ignore
 * import { setPrecision, useBackend } from "@scaling-vicreg/backend";
 * await useBackend("blas");
 * await setPrecision("bf16");
 * ```
 *
 * @param precision `fp32` or `bf16`.
 * @throws {BackendError} One line naming `--precision bf16` and why it
 * cannot run here; the precision is then left as it was.
 */
export async function setPrecision(precision: Precision): Promise<void> {
  if (!isPrecision(precision)) {
    throw new BackendError(
      tf.getBackend() || "none",
      `--precision ${precision}: not a precision (choose ${
        PRECISIONS.join(" or ")
      })`,
    );
  }
  if (precision === "bf16") await requireBf16();
  setConvPrecision(precision);
}

async function requireBf16(): Promise<void> {
  const backend = tf.getBackend();
  const refuse = (why: string) =>
    new BackendError(backend || "none", `--precision bf16: ${why}`);
  if (!cpuHasBf16()) {
    throw refuse(
      `this CPU has no native bf16 (none of ${
        BF16_CPU_FLAGS.join(", ")
      } in /proc/cpuinfo); use --precision fp32`,
    );
  }
  if (!backend || !BF16_BACKENDS.includes(backend)) {
    throw refuse(
      `needs the blas or native backend (the active one is ${
        backend || "none"
      })`,
    );
  }
  const { loadNativeLibraries } = await import("./kernels/blas_backend.ts");
  const { dnnl, dnnlUnavailable } = loadNativeLibraries();
  if (dnnl === undefined) {
    throw refuse(`needs oneDNN, which is not loaded (${dnnlUnavailable})`);
  }
}
