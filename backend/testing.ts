/**
 * Test helpers shared by every member: the assertions and `ignoreUnless` of
 * `@scaling-vicreg/backend/assert` (re-exported), tolerance checks for
 * tensors and arrays, and a tensor-leak check.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, useBackend } from "./backend.ts";

export * from "./assert.ts";

/** Tolerances of {@linkcode assertClose}. */
export interface CloseOptions {
  /** Relative tolerance. @default {1e-5} */
  rtol?: number;
  /** Absolute tolerance. @default {1e-6} */
  atol?: number;
  /** Shown on failure. */
  message?: string;
}

/**
 * Asserts |actual − expected| ≤ atol + rtol·|expected| element-wise (numpy's
 * `allclose`). Accepts tensors, typed arrays, nested arrays or numbers.
 *
 * @param actual The values under test.
 * @param expected The reference values.
 * @param options Tolerances; see {@linkcode CloseOptions}.
 */
export function assertClose(
  actual: tf.Tensor | ArrayLike<number> | number | number[][],
  expected: tf.Tensor | ArrayLike<number> | number | number[][],
  options: CloseOptions = {},
): void {
  const { rtol = 1e-5, atol = 1e-6, message } = options;
  const a = flatten(actual);
  const e = flatten(expected);
  assert.equal(
    a.length,
    e.length,
    `${message ?? "assertClose"}: lengths differ (${a.length} vs ${e.length})`,
  );
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - e[i]) - (atol + rtol * Math.abs(e[i]));
    if (excess > worstExcess || Number.isNaN(a[i]) !== Number.isNaN(e[i])) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${message ?? "assertClose"}: element ${worst} is ${a[worst]}, expected ${
        e[worst]
      } (rtol ${rtol}, atol ${atol})`,
    );
  }
}

function flatten(
  value: tf.Tensor | ArrayLike<number> | number | number[][],
): Float64Array {
  if (value instanceof tf.Tensor) return Float64Array.from(value.dataSync());
  if (typeof value === "number") return Float64Array.of(value);
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === "number") out.push(v);
    else for (const x of Array.from(v as ArrayLike<unknown>)) walk(x);
  };
  walk(Array.from(value as ArrayLike<unknown>));
  return Float64Array.from(out);
}

/**
 * Runs `fn` and asserts that the number of live tensors is the same before and
 * after (the values `fn` returns are disposed first).
 *
 * @param fn The code under test; tensors it returns are disposed.
 * @returns Resolves when the check passed.
 */
export async function assertNoLeak(
  fn: () => unknown | Promise<unknown>,
): Promise<void> {
  const before = tf.memory().numTensors;
  const result = await fn();
  tf.dispose(collectTensors(result));
  const after = tf.memory().numTensors;
  assert.equal(
    after,
    before,
    `Expected no tensor leak: ${after - before} tensors left behind`,
  );
}

function collectTensors(value: unknown, out: tf.Tensor[] = []): tf.Tensor[] {
  if (value instanceof tf.Tensor) out.push(value);
  else if (Array.isArray(value)) {
    for (const v of value) {
      collectTensors(v, out);
    }
  } else if (value !== null && typeof value === "object") {
    for (const v of Object.values(value)) collectTensors(v, out);
  }
  return out;
}

/**
 * Tries each backend once and says which load here, for
 * `Deno.test({ ignore })`; makes `restore` the active backend afterwards.
 *
 * @example
 * ```ts
 * import { loadableBackends } from "@scaling-vicreg/backend/testing";
 * for (const [name, loads] of await loadableBackends(["cpu-fast"])) {
 *   console.log(name, loads); // "cpu-fast" true
 * }
 * ```
 *
 * @typeParam N The backend names.
 * @param names Backends to try.
 * @param restore The backend to leave active.
 * @returns Each name with whether it loaded.
 */
export async function loadableBackends<N extends BackendName>(
  names: readonly N[],
  restore: BackendName = "cpu",
): Promise<[N, boolean][]> {
  const out: [N, boolean][] = [];
  for (const name of names) {
    try {
      await useBackend(name);
      out.push([name, true]);
    } catch {
      out.push([name, false]);
    }
  }
  await useBackend(restore);
  return out;
}

/**
 * Runs `fn` with `name` as the active backend, then makes `restore` active
 * again (also when `fn` throws).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { withBackend } from "@scaling-vicreg/backend/testing";
 * console.log(await withBackend("cpu-fast", () => tf.getBackend())); // "cpu-fast"
 * ```
 *
 * @typeParam T What `fn` returns.
 * @param name The backend to run on.
 * @param fn The work.
 * @param restore The backend to leave active.
 * @returns What `fn` returns.
 */
export async function withBackend<T>(
  name: BackendName,
  fn: () => T | Promise<T>,
  restore: BackendName = "cpu",
): Promise<T> {
  await useBackend(name);
  try {
    return await fn();
  } finally {
    await useBackend(restore);
  }
}
