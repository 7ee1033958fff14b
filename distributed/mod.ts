/**
 * Data-parallel collectives for a job of several processes ("ranks"): the
 * {@linkcode Communicator} interface that a training run is handed, its
 * single-process and MPI (MPICH through Deno's FFI) implementations,
 * gradients all-reduced in buckets, and the launcher (`mpiexec`, SLURM)
 * detection. It imports no tensor code: it moves `Float32Array`s.
 *
 * ```ts
 * import { createCommunicator } from "@scaling-vicreg/distributed";
 * const comm = createCommunicator(); // MPI under mpiexec, single otherwise
 * const grads = new Float32Array(4).fill(comm.rank + 1);
 * await comm.allReduce(grads); // summed over the ranks, in place
 * console.log(comm.size, grads); // 1 Float32Array(4) [1, 1, 1, 1]
 * await comm.close();
 * ```
 *
 * @module
 */
export * from "./communicator.ts";
export * from "./mpi.ts";
export * from "./launch.ts";
export * from "./rank_failure.ts";
export * from "./bucket_all_reduce.ts";
