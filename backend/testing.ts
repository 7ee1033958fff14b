/**
 * Test helpers shared by every member: the one seam over `node:assert/strict`
 * (swap it for `@std/assert` when JSR is reachable), tolerance checks for
 * tensors and arrays, and a tensor-leak check.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, useBackend } from "./backend.ts";

/**
 * Asserts deep equality.
 *
 * @param actual The value under test.
 * @param expected The expected value.
 * @param message Shown on failure.
 */
export function assertEquals(
  actual: unknown,
  expected: unknown,
  message?: string,
): void {
  assert.deepStrictEqual(actual, expected, message);
}

/**
 * Asserts that a value is truthy.
 *
 * @param value The value under test.
 * @param message Shown on failure.
 */
export function assertTrue(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}

/**
 * Asserts that `fn` throws an error of class `errorClass` whose message
 * contains `includes`.
 *
 * @param fn The function that should throw.
 * @param errorClass The expected class.
 * @param includes A substring of the message.
 * @returns The error thrown.
 */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  errorClass: new (...args: never[]) => E,
  includes?: string,
): E {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  return checkError(caught, errorClass, includes);
}

/**
 * Asserts that `fn` rejects with an error of class `errorClass` whose message
 * contains `includes`.
 *
 * @param fn The async function that should reject.
 * @param errorClass The expected class.
 * @param includes A substring of the message.
 * @returns The error.
 */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  errorClass: new (...args: never[]) => E,
  includes?: string,
): Promise<E> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  return checkError(caught, errorClass, includes);
}

function checkError<E extends Error>(
  caught: unknown,
  errorClass: new (...args: never[]) => E,
  includes?: string,
): E {
  assert.ok(caught !== undefined, `Expected ${errorClass.name} to be thrown`);
  assert.ok(
    caught instanceof errorClass,
    `Expected ${errorClass.name}: received ${String(caught)}`,
  );
  if (includes !== undefined) {
    assert.ok(
      (caught as E).message.includes(includes),
      `Expected message to include ${JSON.stringify(includes)}: received ${
        JSON.stringify((caught as E).message)
      }`,
    );
  }
  return caught as E;
}

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

/**
 * The environment variable that lists, comma-separated, the libraries and
 * backends CI installed (`VICREG_REQUIRE=blas,dnnl`): a test that would be
 * ignored for one of them missing fails instead.
 */
export const REQUIRE_ENV = "VICREG_REQUIRE";

const failedRequirements = new Set<string>();

function required(): Set<string> {
  let text: string | undefined;
  try {
    text = Deno.env.get(REQUIRE_ENV);
  } catch {
    text = undefined; // no --allow-env: nothing is required
  }
  return new Set(
    (text ?? "").split(",").map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ""),
  );
}

/**
 * The `ignore:` value of a test that needs `lib` (a native library such as
 * `blas` or `dnnl`, or a backend name): `true` where it is missing, so the
 * test shows as ignored, never silently absent. Where `lib` is listed in
 * {@linkcode REQUIRE_ENV} but missing, it registers one failing test named
 * for it (once per test file and library), since CI installed it and a
 * missing library there is a fault, not a skip.
 *
 * @example
 * ```ts
 * import { ignoreUnless } from "@scaling-vicreg/backend/testing";
 * const ignore = ignoreUnless(false, "example-lib");
 * console.log(ignore); // true
 * ```
 *
 * @param available Whether `lib` loads here.
 * @param lib The library or backend's name, as written in `VICREG_REQUIRE`.
 * @param why Why it is missing, for the failure message.
 * @returns Whether to ignore the test.
 */
export function ignoreUnless(
  available: boolean,
  lib: string,
  why?: string,
): boolean {
  if (available) return false;
  if (required().has(lib.toLowerCase()) && !failedRequirements.has(lib)) {
    failedRequirements.add(lib);
    Deno.test(`${lib} is available (listed in ${REQUIRE_ENV})`, () => {
      assert.fail(
        `${REQUIRE_ENV} lists "${lib}" but it does not load here${
          why === undefined ? "" : ` (${why})`
        }: its tests would be ignored`,
      );
    });
  }
  return true;
}
