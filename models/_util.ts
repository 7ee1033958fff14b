import * as tf from "@tensorflow/tfjs-core";
import type { Module } from "./module.ts";

/** Merges children's named variables under `prefix.` (private helper). */
export function collect(
  children: [string, Module][],
  pick: (m: Module) => Map<string, tf.Variable>,
): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [prefix, child] of children) {
    for (const [name, v] of pick(child)) out.set(`${prefix}.${name}`, v);
  }
  return out;
}

/** Makes a variable from values without leaking the initial tensor. */
export function makeVariable(
  values: Float32Array,
  shape: number[],
  trainable: boolean,
): tf.Variable {
  return tf.tidy(() =>
    tf.variable(tf.tensor(values, shape, "float32"), trainable)
  );
}
