/**
 * How much memory a training step may use on a backend: the one place that
 * knows the wasm heap's ceiling and WebGPU's storage-buffer limit.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { usesWasmHeap } from "./backend.ts";

/** The memory a step may use on a backend. */
export interface MemoryBudget {
  /** Bytes all the step's tensors may take together. */
  totalBytes: number;
  /** Bytes one tensor may take (WebGPU's storage-buffer binding limit). */
  tensorBytes: number;
  /** Where the numbers come from, for messages. */
  source: string;
  /**
   * Whether the bytes a step frees serve any later tensor (native memory),
   * so that a plan may go by a measured peak; false in the wasm heap, which
   * fragments and never shrinks, where plans keep a margin.
   */
  reuses: boolean;
}

/**
 * The memory budget of a backend: 3 GiB of the 4 GiB wasm heap (`wasm`,
 * `blas`); on `webgpu`, the device's largest storage-buffer binding per
 * tensor and half the machine's memory in all (WebGPU reports no device
 * memory size; its freed buffers are pooled by size); elsewhere half the
 * machine's memory, where freed bytes serve any later tensor.
 *
 * @example
 * ```ts
 * import { memoryBudgetOf, useBackend } from "@scaling-vicreg/backend";
 * await useBackend("cpu");
 * console.log(memoryBudgetOf().source); // "half the machine's memory"
 * console.log(memoryBudgetOf("blas").totalBytes / 2 ** 30); // 3
 * ```
 *
 * @param backend The backend's name; the active backend by default.
 * @returns The budget.
 */
export function memoryBudgetOf(
  backend: string = tf.getBackend(),
): MemoryBudget {
  if (usesWasmHeap(backend)) {
    return {
      totalBytes: STEP_BUDGET_BYTES,
      tensorBytes: STEP_BUDGET_BYTES,
      source: "the 4 GiB wasm heap",
      reuses: false,
    };
  }
  const machine = Deno.systemMemoryInfo().total / 2;
  if (backend === "webgpu") {
    const limits = (tf.backend() as unknown as {
      device?: { limits?: { maxStorageBufferBindingSize?: number } };
    }).device?.limits;
    const binding = limits?.maxStorageBufferBindingSize ?? 2 ** 27;
    return {
      totalBytes: machine,
      tensorBytes: binding,
      source: `half the machine's memory, with no tensor over WebGPU's ${
        (binding / 2 ** 20).toFixed(0)
      } MiB storage-buffer limit`,
      reuses: false,
    };
  }
  return {
    totalBytes: machine,
    tensorBytes: Infinity,
    source: "half the machine's memory",
    reuses: true,
  };
}

/** Tensor bytes a step may take in the 4 GiB wasm heap. */
export const STEP_BUDGET_BYTES: number = 3 * 2 ** 30;
