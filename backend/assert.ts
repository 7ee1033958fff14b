/**
 * The tensor-free half of the test helpers: the one seam over
 * `node:assert/strict` (swap it for `@std/assert` when JSR is reachable) and
 * `ignoreUnless`, for members whose tests must not load TF.js (the
 * communicator's). `@scaling-vicreg/backend/assert` re-exports all of it.
 *
 * @module
 */
import assert from "node:assert/strict";

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
 * import { ignoreUnless } from "@scaling-vicreg/backend/assert";
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

/**
 * Whether `python3` runs here and imports `module`,
 * for the `ignoreUnless` of a test that checks against a Python reference
 * (`ignoreUnless(await pythonImports("tensorboard"), "tensorboard")`).
 * False without `--allow-run` or Python.
 *
 * @example
 * ```ts
 * import { pythonImports } from "@scaling-vicreg/backend/assert";
 * console.log(await pythonImports("no_such_module_here")); // false
 * ```
 *
 * @param module A module name, as written after `import`.
 * @returns Whether the import succeeds.
 */
export async function pythonImports(module: string): Promise<boolean> {
  if (!/^[A-Za-z_][\w.]*$/.test(module)) {
    throw new RangeError(
      `Expected a Python module name: received ${JSON.stringify(module)}`,
    );
  }
  try {
    const out = await new Deno.Command("python3", {
      args: ["-c", `import ${module}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false; // no --allow-run, or no python3
  }
}
