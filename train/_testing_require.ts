/**
 * Tests that need a native library (`mpi`, `blas`, `dnnl`) are ignored where
 * it is missing, unless `VICREG_REQUIRE` (comma-separated names) lists it:
 * then they run and fail with the reason, so a CI that installed the
 * library cannot pass while skipping them.
 *
 * @module
 */
import { grantedEnv } from "./_mpi_ffi.ts";

/**
 * The names in `VICREG_REQUIRE`.
 *
 * @returns The required libraries (lower case).
 */
export function requiredLibraries(): string[] {
  return (grantedEnv("VICREG_REQUIRE") ?? "").split(",")
    .map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
}

/**
 * Whether a test of `library` is ignored.
 *
 * @param library Its name in `VICREG_REQUIRE`.
 * @param missing Why it is missing, or `undefined` when present.
 * @returns `true` when missing and not required.
 */
export function ignoreUnlessRequired(
  library: string,
  missing: string | undefined,
): boolean {
  return missing !== undefined &&
    !requiredLibraries().includes(library.toLowerCase());
}

/**
 * Throws, at the start of a test that runs although its library is missing
 * (because `VICREG_REQUIRE` lists it).
 *
 * @param library Its name.
 * @param missing Why it is missing, or `undefined` when present.
 */
export function assertPresent(
  library: string,
  missing: string | undefined,
): void {
  if (missing !== undefined) {
    throw new Error(
      `VICREG_REQUIRE lists ${library}, which is missing: ${missing}`,
    );
  }
}
