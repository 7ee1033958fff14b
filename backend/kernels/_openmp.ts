/**
 * The OpenMP runtime's thread count, for the oneDNN calls that run better on
 * fewer threads than the machine has.
 *
 * @module
 */

import { openFirst } from "./_ffi.ts";

const SYMBOLS = {
  omp_get_max_threads: { parameters: [], result: "i32" },
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The OpenMP runtime a oneDNN build links, or none. */
export interface OpenMp {
  /** Threads an OpenMP parallel region of this thread would use now. */
  maxThreads(): number;
  /**
   * Runs `f` with parallel regions of at most `threads` threads, then puts
   * the previous count back.
   *
   * @param threads The threads, ≥ 1.
   * @param f What to run.
   * @returns What `f` returns.
   */
  withThreads<T>(threads: number, f: () => T): T;
}

/**
 * Opens the first OpenMP runtime of `libraries` (by default GNU's, which
 * Debian's oneDNN links and which is then already loaded).
 *
 * @param libraries Library names or paths to try.
 * @returns The runtime, or `undefined` when none opens.
 */
export function openOpenMp(
  libraries: readonly string[] = ["libgomp.so.1"],
): OpenMp | undefined {
  const found = openFirst([...libraries], SYMBOLS);
  if (found.path === undefined) return undefined;
  const s = found.lib.symbols;
  return {
    maxThreads: () => s.omp_get_max_threads(),
    withThreads<T>(threads: number, f: () => T): T {
      const previous = s.omp_get_max_threads();
      if (threads >= previous) return f();
      s.omp_set_num_threads(Math.max(1, threads));
      try {
        return f();
      } finally {
        s.omp_set_num_threads(previous);
      }
    },
  };
}
