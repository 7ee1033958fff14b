/**
 * Weight I/O: a module's state as named tensors, loading with shape checks,
 * safetensors files, and conversion to and from torchvision/PyTorch layouts.
 *
 * @module
 */
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import * as tf from "@tensorflow/tfjs-core";
import type { Module } from "./module.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "@scaling-vicreg/backend/safetensors";

/** A state dict entry from a file or another module. */
export type StateTensors = Map<string, tf.Tensor> | Record<string, SafeTensor>;

/**
 * A module's state: its parameters then its buffers by name. The values are
 * the module's own variables, not copies: do not dispose them.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { createProjector, stateDict } from "@scaling-vicreg/models";
 * await useBackend("cpu");
 * const projector = createProjector(4, "8-2", new Rng(0));
 * console.log([...stateDict(projector).keys()]);
 * // ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "1.running_mean", "1.running_var"]
 * projector.dispose();
 * ```
 *
 * @param module The module.
 * @returns Variables by name.
 */
export function stateDict(module: Module): Map<string, tf.Variable> {
  return new Map([...module.parameters(), ...module.buffers()]);
}

/** Options of {@linkcode loadStateDict}. */
export interface LoadStateDictOptions {
  /**
   * Throw when the source lacks one of the module's tensors or has a tensor
   * the module lacks; otherwise load the tensors both have. @default {true}
   */
  strict?: boolean;
}

/** The defaults of {@linkcode LoadStateDictOptions}. */
export const DEFAULT_LOAD_STATE_DICT_OPTIONS: Readonly<
  Required<LoadStateDictOptions>
> = Object.freeze({ strict: true });

/** What {@linkcode loadStateDict} did. */
export interface LoadStateDictResult {
  /** The module's tensors that the source lacked (left unchanged). */
  missing: string[];
  /** The source's tensors that the module lacks (ignored). */
  unexpected: string[];
}

/**
 * Copies tensors into a module's variables by name, after checking every
 * shape (layouts are this project's: HWIO convs, `[in, out]` linears; use
 * {@linkcode fromTorchvision} for PyTorch files). Nothing is assigned unless
 * every check passes.
 *
 * Throws a `TypeError` naming the tensor and both shapes on a shape mismatch,
 * and (when `strict`) naming the missing and unexpected tensors.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { createProjector, loadStateDict, stateDict } from "@scaling-vicreg/models";
 * await useBackend("cpu");
 * const a = createProjector(4, "8-2", new Rng(1));
 * const b = createProjector(4, "8-2", new Rng(2));
 * loadStateDict(b, stateDict(a)); // b now equals a
 * a.dispose();
 * b.dispose();
 * ```
 *
 * @param module The module to fill.
 * @param tensors Tensors by name: TF.js tensors or decoded safetensors.
 * @param options `strict`; see {@linkcode LoadStateDictOptions}.
 * @returns The missing and unexpected names.
 */
export function loadStateDict(
  module: Module,
  tensors: StateTensors,
  options: LoadStateDictOptions = {},
): LoadStateDictResult {
  const { strict } = { ...DEFAULT_LOAD_STATE_DICT_OPTIONS, ...options };
  const source = tensors instanceof Map
    ? tensors
    : new Map(Object.entries(tensors));
  const target = stateDict(module);
  const missing = [...target.keys()].filter((k) => !source.has(k));
  const unexpected = [...source.keys()].filter((k) => !target.has(k));
  if (strict && (missing.length > 0 || unexpected.length > 0)) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing ${listNames(missing)}`);
    if (unexpected.length > 0) {
      parts.push(`unexpected ${listNames(unexpected)}`);
    }
    throw new TypeError(
      `Expected the state dict to match the module's tensors: ${
        parts.join("; ")
      }`,
    );
  }
  const pairs: [tf.Variable, tf.Tensor | SafeTensor][] = [];
  for (const [name, variable] of target) {
    const value = source.get(name);
    if (value === undefined) continue;
    if (!arraysEqual(value.shape, variable.shape)) {
      throw new TypeError(
        `Expected tensor "${name}" of shape [${variable.shape}]: received [${value.shape}]`,
      );
    }
    if (
      !(value instanceof tf.Tensor) && !(value.data instanceof Float32Array)
    ) {
      throw new TypeError(
        `Expected tensor "${name}" to be float32: received ${value.dtype}`,
      );
    }
    pairs.push([variable, value]);
  }
  tf.tidy(() => {
    for (const [variable, value] of pairs) {
      variable.assign(
        value instanceof tf.Tensor
          ? tf.cast(value, "float32")
          : tf.tensor(value.data as Float32Array, value.shape, "float32"),
      );
    }
  });
  return { missing, unexpected };
}

/**
 * Reads a module's state into typed arrays (parameters then buffers), in
 * this project's layouts, ready for {@linkcode encodeSafetensors}. It reads
 * synchronously, which WebGPU cannot: use {@linkcode readStateDictData}
 * there.
 *
 * @param module The module.
 * @returns F32 tensors by name.
 */
export function stateDictData(module: Module): Record<string, SafeTensor> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, v] of stateDict(module)) {
    out[name] = f32(v, v.dataSync());
  }
  return out;
}

/**
 * {@linkcode stateDictData} read with `await data()`: works on every
 * backend, WebGPU included.
 *
 * @param module The module.
 * @returns F32 tensors by name.
 */
export async function readStateDictData(
  module: Module,
): Promise<Record<string, SafeTensor>> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, v] of stateDict(module)) {
    out[name] = f32(v, await v.data());
  }
  return out;
}

/** A float32 safetensors entry of `v`'s values (copied). */
function f32(v: tf.Tensor, values: ArrayLike<number>): SafeTensor {
  return { dtype: "F32", shape: [...v.shape], data: Float32Array.from(values) };
}

/**
 * Converts tensors from this project's layouts to PyTorch's: rank-4 conv
 * weights HWIO `[kh, kw, in, out]` → OIHW `[out, in, kh, kw]`, rank-2 linear
 * weights `[in, out]` → `[out, in]`; other tensors are copied unchanged. The
 * names are already torchvision's/`nn.Sequential`'s.
 *
 * @example
 * ```ts
 * import { toTorchvision } from "@scaling-vicreg/models";
 * const out = toTorchvision({
 *   "0.weight": { dtype: "F32", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
 * });
 * console.log(out["0.weight"].shape, out["0.weight"].data); // [3, 2] [1, 4, 2, 5, 3, 6]
 * ```
 *
 * @param tensors F32 tensors in this project's layouts.
 * @returns The same tensors in PyTorch layouts.
 */
export function toTorchvision(
  tensors: Record<string, SafeTensor>,
): Record<string, SafeTensor> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (t.shape.length === 4) out[name] = permute(t, [3, 2, 0, 1]);
    else if (t.shape.length === 2) out[name] = permute(t, [1, 0]);
    else out[name] = t;
  }
  return out;
}

/**
 * Converts a PyTorch/torchvision state dict (e.g. decoded from a safetensors
 * file saved from `model.state_dict()`) to this project's layouts: drops the
 * classifier (`fc.*`) and `*.num_batches_tracked`, transposes rank-4 conv
 * weights OIHW → HWIO and rank-2 linear weights `[out, in]` → `[in, out]`.
 *
 * Throws a `TypeError` naming the tensor when a kept tensor is not a float
 * tensor.
 *
 * @example
 * ```ts
 * import { fromTorchvision } from "@scaling-vicreg/models";
 * const out = fromTorchvision({
 *   "conv1.weight": { dtype: "F32", shape: [2, 1, 1, 1], data: Float32Array.of(7, 8) },
 *   "fc.weight": { dtype: "F32", shape: [1, 2], data: Float32Array.of(0, 0) },
 *   "bn1.num_batches_tracked": { dtype: "I64", shape: [], data: BigInt64Array.of(1n) },
 * });
 * console.log(Object.keys(out), out["conv1.weight"].shape); // ["conv1.weight"] [1, 1, 1, 2]
 * ```
 *
 * @param tensors Tensors in PyTorch layouts, by torchvision name.
 * @returns F32 tensors in this project's layouts.
 */
export function fromTorchvision(
  tensors: Record<string, SafeTensor>,
): Record<string, SafeTensor> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith("fc.") || name.endsWith("num_batches_tracked")) {
      continue;
    }
    if (!(t.data instanceof Float32Array)) {
      throw new TypeError(
        `Expected tensor "${name}" to be a float tensor: received ${t.dtype}`,
      );
    }
    if (t.shape.length === 4) out[name] = permute(t, [2, 3, 1, 0]);
    else if (t.shape.length === 2) out[name] = permute(t, [1, 0]);
    else out[name] = t;
  }
  return out;
}

/** Options of {@linkcode saveWeights} and {@linkcode loadWeights}. */
export interface WeightsFileOptions {
  /**
   * The file holds PyTorch layouts (OIHW convs, `[out, in]` linears) as a
   * torchvision `state_dict` does; see {@linkcode toTorchvision}. @default {false}
   */
  torchvision?: boolean;
  /** Loading only: see {@linkcode LoadStateDictOptions.strict}. @default {true} */
  strict?: boolean;
  /** Saving only: extra `__metadata__` strings. @default {{}} */
  metadata?: Record<string, string>;
}

/** The defaults of {@linkcode WeightsFileOptions}. */
export const DEFAULT_WEIGHTS_FILE_OPTIONS: Readonly<
  Required<WeightsFileOptions>
> = Object.freeze({ torchvision: false, strict: true, metadata: {} });

/**
 * Saves every parameter and buffer of a module to a safetensors file,
 * atomically (a temporary file in the same folder, then a rename). The
 * metadata records `layout`: `tfjs` or `torchvision`.
 *
 * @example
 * ```ts ignore
 * await saveWeights("backbone.safetensors", backbone, { torchvision: true });
 * ```
 *
 * @param path The file to write.
 * @param module The module.
 * @param options `torchvision` layout and `metadata`; see {@linkcode WeightsFileOptions}.
 * @returns Resolves when the file is in place.
 */
export async function saveWeights(
  path: string,
  module: Module,
  options: WeightsFileOptions = {},
): Promise<void> {
  const { torchvision, metadata } = {
    ...DEFAULT_WEIGHTS_FILE_OPTIONS,
    ...options,
  };
  const data = await readStateDictData(module);
  const bytes = encodeSafetensors(torchvision ? toTorchvision(data) : data, {
    ...metadata,
    format: "pt",
    layout: torchvision ? "torchvision" : "tfjs",
  });
  await writeFileAtomic(path, bytes);
}

/**
 * Loads a safetensors file into a module (see {@linkcode loadStateDict}),
 * converting from PyTorch layouts with `torchvision: true` (see
 * {@linkcode fromTorchvision}). Errors name the file and the tensor.
 *
 * @example
 * ```ts ignore
 * await loadWeights("resnet50.safetensors", backbone, { torchvision: true });
 * ```
 *
 * @param path The file to read.
 * @param module The module to fill.
 * @param options `torchvision` and `strict`; see {@linkcode WeightsFileOptions}.
 * @returns The missing and unexpected names.
 */
export async function loadWeights(
  path: string,
  module: Module,
  options: WeightsFileOptions = {},
): Promise<LoadStateDictResult> {
  const { torchvision, strict } = {
    ...DEFAULT_WEIGHTS_FILE_OPTIONS,
    ...options,
  };
  const bytes = await Deno.readFile(path);
  try {
    const { tensors } = decodeSafetensors(bytes);
    return loadStateDict(
      module,
      torchvision ? fromTorchvision(tensors) : tensors,
      { strict },
    );
  } catch (error) {
    if (error instanceof TypeError) {
      throw new TypeError(`${path}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function permute(t: SafeTensor, perm: number[]): SafeTensor {
  const src = t.data as Float32Array;
  const shape = perm.map((p) => t.shape[p]);
  const rank = shape.length;
  const srcStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    srcStrides[i] = s;
    s *= t.shape[i];
  }
  // Stride in the source of each output axis.
  const strides = perm.map((p) => srcStrides[p]);
  const out = new Float32Array(src.length);
  const index = new Array<number>(rank).fill(0);
  let from = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[from];
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]++;
      from += strides[axis];
      if (index[axis] < shape[axis]) break;
      from -= strides[axis] * shape[axis];
      index[axis] = 0;
    }
  }
  return { dtype: "F32", shape, data: out };
}

function listNames(names: string[], shown = 8): string {
  return names.length <= shown
    ? names.join(", ")
    : `${names.slice(0, shown).join(", ")} and ${names.length - shown} more`;
}

function arraysEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
