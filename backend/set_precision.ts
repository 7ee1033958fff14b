/**
 * `setPrecision`: makes a precision the process's (see `precision.ts`),
 * after checking that this CPU and the active backend can run it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "./backend.ts";
import { BF16_CPU_FLAGS, cpuHasBf16 } from "./cpu_features.ts";
import {
  isPrecision,
  type Precision,
  PRECISIONS,
  setActivePrecision,
} from "./precision.ts";

/** The backends that run bf16 convolutions. */
export const BF16_BACKENDS: readonly string[] = ["blas", "native"];

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
  setActivePrecision(precision);
}

async function requireBf16(): Promise<void> {
  const backend = tf.getBackend();
  const refuse = (why: string) =>
    new BackendError(backend || "none", `--precision bf16: ${why}`);
  if (!cpuHasBf16()) {
    throw refuse(
      `this CPU has no native bf16 (no ${
        BF16_CPU_FLAGS.join(" or ")
      } CPU flag); use --precision fp32`,
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
