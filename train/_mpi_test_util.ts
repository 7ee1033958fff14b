/**
 * Whether the MPI tests can run here, for `ignoreUnless(…, "mpi", why)` from
 * `@scaling-vicreg/backend/testing` (which fails them instead where
 * `VICREG_REQUIRE` lists `mpi`).
 *
 * @module
 */
import { findMpiexec } from "./distributed.ts";
import { findMpiLibrary } from "./mpi.ts";

/**
 * Why the MPI tests cannot run here (no MPICH library or no `mpiexec`), or
 * `undefined` when they can.
 *
 * @returns The reason, or `undefined`.
 */
export function mpiMissing(): string | undefined {
  try {
    findMpiLibrary();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return findMpiexec() === undefined ? "no mpiexec on PATH" : undefined;
}
