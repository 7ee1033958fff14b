/**
 * The {@linkcode Module} interface every network here implements: named
 * trainable parameters and named non-trainable buffers (BatchNorm running
 * statistics), with PyTorch's dotted names.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";

/**
 * A network or layer that owns variables.
 *
 * Names follow PyTorch's `state_dict` (`conv1.weight`, `bn1.running_mean`,
 * `layer1.0.conv1.weight`, `0.weight`), but the layouts are TF.js's: conv
 * weights are HWIO `[kh, kw, in, out]` and linear weights `[in, out]`
 * (see `fromTorchvision` for the transposes).
 */
export interface Module {
  /**
   * The trainable variables by name, in registration order (the list to give
   * `tf.variableGrads` and the optimizer).
   */
  parameters(): Map<string, tf.Variable>;
  /** The non-trainable variables by name (BatchNorm `running_mean`/`running_var`). */
  buffers(): Map<string, tf.Variable>;
  /** Disposes every variable the module owns. */
  dispose(): void;
}

/**
 * The number of trainable scalars in a module (the sum of its parameter sizes).
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { Rng } from "@scaling-vicreg/backend";
 * import { countParameters, createProjector } from "@scaling-vicreg/models";
 * await useBackend("cpu");
 * const projector = createProjector(8, "4-2", new Rng(0));
 * console.log(countParameters(projector)); // 8*4+4 + 4+4 + 4*2 = 52
 * projector.dispose();
 * ```
 *
 * @param module The module.
 * @returns Σ size of `module.parameters()`.
 */
export function countParameters(module: Module): number {
  let total = 0;
  for (const v of module.parameters().values()) total += v.size;
  return total;
}

/**
 * Splits a module's parameters into those that should get weight decay (conv
 * and linear weights) and those that should not (biases and BatchNorm
 * parameters, i.e. every parameter of rank 1), as LARS-style optimizers in
 * VICReg exclude them.
 *
 * @param module The module.
 * @returns `decay` and `noDecay` variable lists by name.
 */
export function splitWeightDecay(
  module: Module,
): { decay: Map<string, tf.Variable>; noDecay: Map<string, tf.Variable> } {
  const decay = new Map<string, tf.Variable>();
  const noDecay = new Map<string, tf.Variable>();
  for (const [name, v] of module.parameters()) {
    (v.rank <= 1 ? noDecay : decay).set(name, v);
  }
  return { decay, noDecay };
}
