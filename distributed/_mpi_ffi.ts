/**
 * The MPICH ABI as Deno's FFI sees it: the symbols the communicator binds and
 * the handle values of MPICH's `mpi.h` (MPICH 3.x/4.x, and the libraries that
 * keep its ABI: Intel MPI, MVAPICH, Cray MPICH). In this ABI every handle
 * (`MPI_Comm`, `MPI_Datatype`, `MPI_Op`, `MPI_Errhandler`) is a plain `int`;
 * Open MPI's are pointers to library globals, a different ABI.
 *
 * @module
 */

/** `MPI_COMM_WORLD`. */
export const MPI_COMM_WORLD = 0x44000000;
/** `MPI_FLOAT` (4-byte IEEE float). */
export const MPI_FLOAT = 0x4c00040a;
/** `MPI_DOUBLE`. */
export const MPI_DOUBLE = 0x4c00080b;
/** `MPI_INT` (4-byte int). */
export const MPI_INT = 0x4c000405;
/** `MPI_BYTE`. */
export const MPI_BYTE = 0x4c00010d;
/** `MPI_SUM`. */
export const MPI_SUM = 0x58000003;
/** `MPI_ERRORS_RETURN`: a failing call returns its code instead of aborting. */
export const MPI_ERRORS_RETURN = 0x54000001;
/** `MPI_THREAD_SERIALIZED`: any thread may call MPI, one call at a time. */
export const MPI_THREAD_SERIALIZED = 2;
/** `MPI_SUCCESS`. */
export const MPI_SUCCESS = 0;
/** `MPI_MAX_ERROR_STRING`. */
export const MPI_MAX_ERROR_STRING = 512;
/** `MPI_MAX_LIBRARY_VERSION_STRING` (8192 in MPICH). */
export const MPI_MAX_LIBRARY_VERSION_STRING = 8192;

/**
 * `MPI_IN_PLACE`, `(void *) -1`: the send buffer of an in-place collective.
 *
 * @returns The pointer value.
 */
export function mpiInPlace(): Deno.PointerValue {
  return Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn);
}

/**
 * The bound symbols. The collectives are `nonblocking` (they run on a thread
 * of Deno's blocking pool and return a promise), so timers, and with them the
 * communicator's watchdog, keep running while a rank waits for its peers;
 * `MPI_Init_thread` asks for `MPI_THREAD_SERIALIZED` to make that legal.
 */
export const MPI_SYMBOLS = {
  MPI_Get_library_version: {
    parameters: ["buffer", "buffer"],
    result: "i32",
  },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Init_thread: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  MPI_Finalize: { parameters: [], result: "i32" },
  MPI_Abort: { parameters: ["i32", "i32"], result: "i32" },
  MPI_Comm_rank: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Comm_set_errhandler: { parameters: ["i32", "i32"], result: "i32" },
  MPI_Error_string: {
    parameters: ["i32", "buffer", "buffer"],
    result: "i32",
  },
  // sendbuf (MPI_IN_PLACE), recvbuf, count, datatype, op, comm
  MPI_Allreduce: {
    parameters: ["pointer", "buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // The same, on this thread (SyncBatchNorm's moments inside a pass).
  MPI_Allreduce_blocking: {
    name: "MPI_Allreduce",
    parameters: ["pointer", "buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  // The same, on this thread (a gather inside a training step's tape).
  MPI_Allgather_blocking: {
    name: "MPI_Allgather",
    parameters: ["buffer", "i32", "i32", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  // sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm
  MPI_Allgather: {
    parameters: ["buffer", "i32", "i32", "buffer", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm
  MPI_Allgatherv: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "i32",
    ],
    result: "i32",
    nonblocking: true,
  },
  // buffer, count, datatype, root, comm
  MPI_Bcast: {
    parameters: ["buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Barrier: { parameters: ["i32"], result: "i32", nonblocking: true },
} as const;

/** The opened library's symbols. */
export type MpiSymbols = Deno.DynamicLibrary<typeof MPI_SYMBOLS>["symbols"];

/**
 * The bytes of a typed array, for an FFI `buffer` parameter.
 *
 * @param a Any typed array.
 * @returns A byte view of the same memory.
 */
export function bytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * The library's `MPI_Get_library_version` string (callable before
 * `MPI_Init`).
 *
 * @param s The symbols.
 * @returns Its first line, e.g. `MPICH Version: 4.0.2`.
 */
export function libraryVersion(s: MpiSymbols): string {
  const text = new Uint8Array(MPI_MAX_LIBRARY_VERSION_STRING);
  const length = new Int32Array(1);
  s.MPI_Get_library_version(text, bytes(length));
  const n = Math.max(0, Math.min(length[0], text.length));
  return new TextDecoder().decode(text.subarray(0, n)).trim().split("\n")[0]
    .replace(/\s+/g, " ");
}

/**
 * MPI's text for an error code.
 *
 * @param s The symbols.
 * @param code A code an MPI call returned.
 * @returns The message, or the bare code when MPI has none.
 */
export function errorString(s: MpiSymbols, code: number): string {
  const text = new Uint8Array(MPI_MAX_ERROR_STRING);
  const length = new Int32Array(1);
  if (s.MPI_Error_string(code, text, bytes(length)) !== MPI_SUCCESS) {
    return `MPI error ${code}`;
  }
  const n = Math.max(0, Math.min(length[0], text.length));
  return new TextDecoder().decode(text.subarray(0, n)).trim() ||
    `MPI error ${code}`;
}

/**
 * An environment variable, when env access to it is granted (never
 * prompts).
 *
 * @param variable Its name.
 * @returns Its value, or `undefined` when unset, empty or not granted.
 */
export function grantedEnv(variable: string): string | undefined {
  const query = { name: "env", variable } as const;
  if (Deno.permissions.querySync(query).state !== "granted") return undefined;
  return Deno.env.get(variable) || undefined;
}

/**
 * Whether FFI is granted (never prompts).
 *
 * @returns `true` when `Deno.dlopen` is allowed.
 */
export function ffiGranted(): boolean {
  return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

/**
 * Why a library with this `MPI_Get_library_version` cannot be used, or
 * `undefined` when it has MPICH's ABI (MPICH, Intel MPI, MVAPICH, Cray
 * MPICH).
 *
 * @param version The version line.
 * @param hint How to get a usable MPI.
 * @returns The reason, or `undefined`.
 */
export function mpiRefusal(version: string, hint: string): string | undefined {
  if (/open mpi/i.test(version)) {
    return `${version}: Open MPI's handles are pointers, not MPICH's integers (another ABI); ${hint}`;
  }
  if (!/mpich|intel\(r\) mpi|mvapich/i.test(version)) {
    return `"${version}" is not MPICH or an MPICH-ABI MPI; ${hint}`;
  }
  return undefined;
}
