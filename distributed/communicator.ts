/**
 * The collective operations a data-parallel run needs (`allReduce`,
 * `allGather`, `broadcast`, `barrier`) behind one interface, and its
 * single-process implementation. The MPI implementation is in `mpi.ts`;
 * `createCommunicator` (`launch.ts`) picks one.
 *
 * @module
 */
import { checkCollectiveArgs, checkCollectiveArray } from "./_collective.ts";

/** The arrays the reductions and gathers take. */
export type CollectiveArray = Float32Array | Float64Array;

/** The arrays `broadcast` takes (bytes for text such as a config). */
export type BroadcastArray = Float32Array | Float64Array | Uint8Array;

/**
 * A group of `size` processes ("ranks") that run the same program and meet
 * in collective calls. Every rank must make the same collective calls in the
 * same order with matching arguments (the same `op`, `root` and, for
 * `allReduce` and `broadcast`, the same length).
 *
 * The calls are asynchronous: an MPI rank waits for its peers on a native
 * thread while the JavaScript event loop (timers, signals, the watchdog) keeps
 * running. A buffer passed in must not be read or written until its promise
 * settles, and must not be a view of memory that can move meanwhile (a
 * WebAssembly heap that may grow, such as TF.js wasm's: copy out first).
 * The communicator queues its calls itself, so a caller may start a second
 * one before the first settles; they run one at a time in call order.
 *
 * After a call rejects with a {@linkcode CommunicatorError} (an MPI error, a
 * peer that never arrived within the timeout) the group is broken: later
 * calls reject at once and the process should stop (exit non-zero, or
 * `abort()`); the launcher (`mpiexec`) then stops the other ranks.
 *
 * @example
 * ```ts
 * import { SingleCommunicator } from "@scaling-vicreg/distributed/communicator";
 * const comm = new SingleCommunicator();
 * const grads = new Float32Array([1, 2, 3]);
 * await comm.allReduce(grads); // summed over ranks, in place
 * const all = await comm.allGather(new Float32Array([4, 5]));
 * console.log(comm.rank, comm.size, grads, all); // 0 1 [1, 2, 3] [4, 5]
 * await comm.close();
 * ```
 */
export interface Communicator {
  /** `"single"` or `"mpi"`. */
  readonly kind: "single" | "mpi";
  /** This process's index, `0 ≤ rank < size`. */
  readonly rank: number;
  /** The number of ranks. */
  readonly size: number;
  /**
   * Sums `buf` element-wise over all ranks, in place: on every rank `buf`
   * ends up holding the same sum. (In place so that a 100 MB gradient
   * bucket is not copied; argument errors throw at the call, before any
   * rank waits.)
   *
   * @param buf This rank's values; overwritten with the sum.
   * @param op The reduction; only `"sum"`.
   * @returns `buf` itself, once reduced.
   */
  allReduce<T extends CollectiveArray>(buf: T, op?: "sum"): Promise<T>;
  /**
   * {@linkcode Communicator.allReduce}, blocking this thread until every rank
   * has arrived: for a reduction inside a synchronous computation (the
   * moments of SyncBatchNorm in a forward or backward pass). No other call
   * may be pending; the watchdog does not cover it (a rank that dies ends
   * the job through the launcher).
   *
   * @param buf This rank's values; overwritten with the sum.
   * @returns `buf` itself.
   */
  allReduceBlocking<T extends CollectiveArray>(buf: T): T;
  /**
   * {@linkcode Communicator.allGather} of arrays of one length on every rank,
   * blocking this thread: for a gather inside a synchronous computation (a
   * training step's tape). No other call may be pending.
   *
   * @param buf This rank's values (left unchanged), as long as every other rank's.
   * @returns A new array: rank 0's values, then rank 1's, ….
   */
  allGatherBlocking<T extends CollectiveArray>(buf: T): T;
  /**
   * Concatenates every rank's `buf` in rank order into a new array, on every
   * rank. The lengths may differ between ranks (and may be 0).
   *
   * @param buf This rank's values (left unchanged).
   * @returns A new array of the same type: rank 0's values, then rank 1's, ….
   */
  allGather<T extends CollectiveArray>(buf: T): Promise<T>;
  /**
   * Copies `root`'s `buf` into every other rank's `buf`, in place.
   *
   * @param buf The values on `root`; overwritten elsewhere.
   * @param root The rank that sends.
   * @returns `buf` itself.
   */
  broadcast<T extends BroadcastArray>(buf: T, root?: number): Promise<T>;
  /** Resolves once every rank has called `barrier`. */
  barrier(): Promise<void>;
  /**
   * Waits for the queued calls and ends the group (`MPI_Finalize`); every
   * rank must call it. Later calls reject. A broken group is not finalised
   * (a native call may still be waiting for a dead peer).
   */
  close(): Promise<void>;
  /**
   * Stops this process and asks the launcher to stop every rank
   * (`MPI_Abort`), for a failure the others cannot recover from.
   *
   * @param code The exit code.
   */
  abort(code?: number): never;
}

/** A collective that failed, timed out, or was called after `close()`. */
export class CommunicatorError extends Error {
  /**
   * Makes a communicator error.
   *
   * @param message What failed, naming the call and the rank.
   * @param options The underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CommunicatorError";
  }
}

const FLOATS = [Float32Array, Float64Array] as const;
const BROADCASTABLE = [Float32Array, Float64Array, Uint8Array] as const;

/**
 * The communicator of a run in one process: `rank` 0, `size` 1; the sum and
 * the broadcast leave `buf` as it is and the gather copies it.
 *
 * @example
 * ```ts
 * import { SingleCommunicator } from "@scaling-vicreg/distributed/communicator";
 * const comm = new SingleCommunicator();
 * console.log(await comm.allGather(new Float64Array([0.5]))); // [0.5]
 * await comm.close();
 * ```
 */
export class SingleCommunicator implements Communicator {
  /** Always `"single"`. */
  readonly kind: "single" = "single";
  /** Always 0. */
  readonly rank: number = 0;
  /** Always 1. */
  readonly size: number = 1;
  #closed = false;

  #settle<R>(call: string, value: () => R): Promise<R> {
    return this.#closed
      ? Promise.reject(
        new CommunicatorError(`${call}: the communicator is closed`),
      )
      : Promise.resolve(value());
  }

  /**
   * The sum over one rank: `buf` unchanged.
   *
   * @param buf The values.
   * @param op Only `"sum"`.
   * @returns `buf`.
   */
  allReduce<T extends CollectiveArray>(buf: T, op: "sum" = "sum"): Promise<T> {
    checkCollectiveArray("allReduce", buf, FLOATS);
    checkCollectiveArgs("allReduce", 1, op);
    return this.#settle("allReduce", () => buf);
  }

  /**
   * The sum over one rank: `buf` as it is.
   *
   * @param buf The values.
   * @returns `buf`.
   */
  allReduceBlocking<T extends CollectiveArray>(buf: T): T {
    checkCollectiveArray("allReduceBlocking", buf, FLOATS);
    return buf;
  }

  /**
   * The concatenation over one rank: a copy of `buf`.
   *
   * @param buf The values.
   * @returns A new array equal to `buf`.
   */
  allGatherBlocking<T extends CollectiveArray>(buf: T): T {
    checkCollectiveArray("allGatherBlocking", buf, FLOATS);
    return buf.slice() as T;
  }

  /**
   * The concatenation over one rank: a copy of `buf`.
   *
   * @param buf The values.
   * @returns A new array equal to `buf`.
   */
  allGather<T extends CollectiveArray>(buf: T): Promise<T> {
    checkCollectiveArray("allGather", buf, FLOATS);
    return this.#settle("allGather", () => buf.slice() as T);
  }

  /**
   * The broadcast from rank 0 to itself: `buf` unchanged.
   *
   * @param buf The values.
   * @param root Must be 0.
   * @returns `buf`.
   */
  broadcast<T extends BroadcastArray>(buf: T, root = 0): Promise<T> {
    checkCollectiveArray("broadcast", buf, BROADCASTABLE);
    checkCollectiveArgs("broadcast", 1, undefined, root);
    return this.#settle("broadcast", () => buf);
  }

  /** Resolves at once. */
  barrier(): Promise<void> {
    return this.#settle("barrier", () => undefined);
  }

  /** Marks the communicator closed. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /**
   * Exits the process.
   *
   * @param code The exit code.
   */
  abort(code = 1): never {
    Deno.exit(code);
  }
}
