/**
 * The MPI communicator: collectives through Deno's FFI on the system's MPI
 * library (MPICH, or one with MPICH's ABI: Intel MPI, MVAPICH, Cray MPICH),
 * as `blas` reaches OpenBLAS. Open MPI has another ABI (its handles are
 * pointers) and is refused with a message naming the library.
 *
 * @module
 */
import {
  type BroadcastArray,
  type CollectiveArray,
  type Communicator,
  CommunicatorError,
} from "./communicator.ts";
import { checkCollectiveArgs, checkCollectiveArray } from "./_collective.ts";
import {
  bytes,
  errorString,
  ffiGranted,
  grantedEnv,
  libraryVersion,
  MPI_BYTE,
  MPI_COMM_WORLD,
  MPI_DOUBLE,
  MPI_ERRORS_RETURN,
  MPI_FLOAT,
  MPI_INT,
  MPI_SUCCESS,
  MPI_SUM,
  MPI_SYMBOLS,
  MPI_THREAD_SERIALIZED,
  mpiInPlace,
  mpiRefusal,
  type MpiSymbols,
} from "./_mpi_ffi.ts";

/** Options of {@linkcode mpiCommunicator}. */
export interface MpiOptions {
  /**
   * The MPI library, a path or a name for `Deno.dlopen`.
   * @default {undefined} `VICREG_MPI`, else the first of {@linkcode mpiCandidates} that opens
   */
  library?: string;
  /**
   * How long one collective may wait for the other ranks, in milliseconds,
   * before it rejects and breaks the group (a backstop for a rank that hangs
   * or dies where the launcher does not stop the job); 0 waits forever. It
   * bounds the skew between ranks too (rank 0 writing a checkpoint while the
   * others wait), so it is generous.
   * @default {600_000} or `VICREG_MPI_TIMEOUT` seconds
   */
  timeoutMs?: number;
}

/** The defaults of {@linkcode MpiOptions}. */
export const DEFAULT_MPI_OPTIONS: {
  library: string | undefined;
  timeoutMs: number;
} = { library: undefined, timeoutMs: 600_000 };

/** An MPI communicator over `MPI_COMM_WORLD`. */
export interface MpiCommunicator extends Communicator {
  /** Always `"mpi"`. */
  readonly kind: "mpi";
  /** The library file that was opened. */
  readonly library: string;
  /** Its `MPI_Get_library_version`, first line (`MPICH Version: 4.0.2`). */
  readonly version: string;
  /** The watchdog's limit per collective, ms (0: none). */
  readonly timeoutMs: number;
}

/**
 * Library files tried, in order, when no library is given and `VICREG_MPI`
 * is unset. Open MPI's `libmpi.so.40` is last so that a machine with only
 * Open MPI gets a message naming it.
 *
 * @returns The candidates for this operating system.
 */
export function mpiCandidates(): string[] {
  switch (Deno.build.os) {
    case "darwin":
      return [
        "libmpi.12.dylib",
        "/opt/homebrew/lib/libmpi.12.dylib",
        "/usr/local/lib/libmpi.12.dylib",
        "libmpich.12.dylib",
        "libmpi.40.dylib",
      ];
    case "windows":
      return [];
    default:
      return [
        "libmpich.so.12",
        "libmpi.so.12",
        "libmpich.so",
        "libmpi.so",
        "libmpi.so.40",
      ];
  }
}

/** How to get an MPI, for error messages. */
export const MPI_INSTALL_HINT =
  "install MPICH (Debian/Ubuntu: apt-get install mpich libmpich-dev; macOS: brew install mpich) or set VICREG_MPI to an MPICH-ABI libmpi";

type Library = Deno.DynamicLibrary<typeof MPI_SYMBOLS>;

interface Opened {
  path: string;
  version: string;
  symbols: MpiSymbols;
}

const opened = new Map<string, Opened>();

function open(library: string | undefined): Opened {
  if (!ffiGranted()) {
    throw new CommunicatorError(
      "Cannot open MPI: FFI is not allowed (run deno with --allow-ffi or -A)",
    );
  }
  const fromEnv = library === undefined ? grantedEnv("VICREG_MPI") : undefined;
  const tried = library !== undefined
    ? [library]
    : fromEnv !== undefined
    ? [fromEnv]
    : mpiCandidates();
  const failures: string[] = [];
  for (const path of tried) {
    const known = opened.get(path);
    if (known !== undefined) return known;
    let lib: Library;
    try {
      lib = Deno.dlopen(path, MPI_SYMBOLS);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      failures.push(`${path}: ${text.split("\n")[0]}`);
      continue;
    }
    const version = libraryVersion(lib.symbols);
    const why = mpiRefusal(version, MPI_INSTALL_HINT);
    if (why !== undefined) {
      lib.close();
      failures.push(`${path}: ${why}`);
      continue;
    }
    const found = { path, version, symbols: lib.symbols };
    opened.set(path, found);
    return found;
  }
  const source = fromEnv !== undefined ? " (from VICREG_MPI)" : "";
  throw new CommunicatorError(
    `No usable MPI library${source}: ${MPI_INSTALL_HINT} (tried ${
      failures.join("; ")
    })`,
  );
}

/**
 * Finds the MPI library without initialising it.
 *
 * @example
 * ```ts
 * import { CommunicatorError } from "@scaling-vicreg/distributed";
 * import { findMpiLibrary } from "@scaling-vicreg/distributed/mpi";
 * try {
 *   console.log(findMpiLibrary()); // { path: "libmpich.so.12", version: "MPICH Version: 4.0.2" }
 * } catch (error) {
 *   if (!(error instanceof CommunicatorError)) throw error;
 *   console.log(error.message); // no MPI library here: which files were tried
 * }
 * ```
 *
 * @param library A path or name; by default `VICREG_MPI`, else
 * {@linkcode mpiCandidates}.
 * @returns Its path and version line.
 * @throws {CommunicatorError} One line naming the files tried and why each
 * was not taken (absent, Open MPI, no FFI permission).
 */
export function findMpiLibrary(
  library?: string,
): { path: string; version: string } {
  const { path, version } = open(library);
  return { path, version };
}

/** Elements per native call: MPI counts are C `int`s. */
const CHUNK = 1 << 30;

let initialised = false;

/**
 * Initialises MPI (`MPI_Init_thread`, `MPI_THREAD_SERIALIZED`) and returns
 * the communicator of `MPI_COMM_WORLD`. The process must have been started
 * by an MPI launcher (`mpiexec -n R deno run -A …`, `srun --mpi=pmi2 …`); MPI
 * can be initialised once per process. Errors are returned, not fatal
 * (`MPI_ERRORS_RETURN`): a failed collective rejects with a
 * {@linkcode CommunicatorError} carrying MPI's message.
 *
 * @example
 * ```ts ignore
 * // Not run by `deno test --doc`: MPI must be started by a launcher,
 * // e.g. `mpiexec -n 2 deno run -A this.ts`.
 * import { mpiCommunicator } from "@scaling-vicreg/distributed/mpi";
 * const comm = mpiCommunicator();
 * const x = await comm.allReduce(new Float32Array([comm.rank + 1]));
 * console.log(x[0]); // 3 on both ranks
 * await comm.close();
 * ```
 *
 * @param options The library and the watchdog's limit.
 * @returns The communicator.
 * @throws {CommunicatorError} No usable library, MPI already initialised, or
 * `MPI_Init_thread` failed.
 * @throws {RangeError} A negative or non-finite `timeoutMs`.
 */
export function mpiCommunicator(options: MpiOptions = {}): MpiCommunicator {
  const timeoutMs = options.timeoutMs ?? envTimeoutMs() ??
    DEFAULT_MPI_OPTIONS.timeoutMs;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(
      `MPI timeoutMs (or VICREG_MPI_TIMEOUT seconds) must be ≥ 0: received ${timeoutMs}`,
    );
  }
  const lib = open(options.library ?? DEFAULT_MPI_OPTIONS.library);
  const wrapper = wrapperAboveThisProcess();
  if (wrapper !== undefined) {
    throw new CommunicatorError(
      `MPI cannot start: "${wrapper}" runs between the MPI launcher and this deno and breaks the launcher's PMI connection (MPI_Init would fail with "PMI_Get_appnum returned -1"): launch the deno binary itself (mpiexec -n R ${Deno.execPath()} run -A …) or use --ranks R`,
    );
  }
  const s = lib.symbols;
  const flag = new Int32Array(1);
  s.MPI_Finalized(bytes(flag));
  if (flag[0] !== 0) {
    throw new CommunicatorError(
      "MPI was finalised in this process; it cannot be initialised again",
    );
  }
  s.MPI_Initialized(bytes(flag));
  if (initialised || flag[0] !== 0) {
    throw new CommunicatorError(
      "MPI is already initialised in this process: reuse its communicator",
    );
  }
  const provided = new Int32Array(1);
  const rc = s.MPI_Init_thread(
    null,
    null,
    MPI_THREAD_SERIALIZED,
    bytes(provided),
  );
  if (rc !== MPI_SUCCESS) {
    throw new CommunicatorError(
      `MPI_Init_thread failed (${lib.path}): ${errorString(s, rc)}`,
    );
  }
  initialised = true;
  if (provided[0] < MPI_THREAD_SERIALIZED) {
    s.MPI_Finalize();
    throw new CommunicatorError(
      `${lib.path} provides MPI thread level ${
        provided[0]
      }; the communicator needs MPI_THREAD_SERIALIZED (2)`,
    );
  }
  s.MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  const rank = new Int32Array(1);
  const size = new Int32Array(1);
  s.MPI_Comm_rank(MPI_COMM_WORLD, bytes(rank));
  s.MPI_Comm_size(MPI_COMM_WORLD, bytes(size));
  return new World(lib, rank[0], size[0], timeoutMs);
}

/**
 * The command line of a Node.js wrapper (`npx deno`, `npm exec`) between
 * MPICH's hydra proxy and this process, on Linux when hydra started it; such
 * a wrapper keeps the launcher's PMI socket from working in the deno below
 * it.
 */
function wrapperAboveThisProcess(): string | undefined {
  if (Deno.build.os !== "linux" || grantedEnv("PMI_FD") === undefined) {
    return undefined;
  }
  const proc = { name: "read", path: "/proc" } as const;
  if (Deno.permissions.querySync(proc).state !== "granted") return undefined;
  let pid = Deno.ppid;
  for (let depth = 0; depth < 8 && pid > 1; depth++) {
    let argv: string[];
    let stat: string;
    try {
      argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
      stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    } catch {
      return undefined;
    }
    const program = argv[0].split("/").at(-1) ?? "";
    if (/^(hydra_pmi_proxy|mpiexec|slurmstepd)/.test(program)) return undefined;
    const head = argv.slice(0, 3).join(" ").trim();
    if (/(^|[\s/])(npx|npm|node)(\s|$)/.test(head)) return head;
    // stat: "pid (comm) state ppid …"
    pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return undefined;
}

function envTimeoutMs(): number | undefined {
  const text = grantedEnv("VICREG_MPI_TIMEOUT");
  return text === undefined ? undefined : Number(text) * 1000;
}

class World implements MpiCommunicator {
  readonly kind: "mpi" = "mpi";
  readonly library: string;
  readonly version: string;
  readonly rank: number;
  readonly size: number;
  readonly timeoutMs: number;
  #s: MpiSymbols;
  #tail: Promise<void> = Promise.resolve();
  #broken: CommunicatorError | undefined;
  #closed = false;
  #pending = 0;

  constructor(lib: Opened, rank: number, size: number, timeoutMs: number) {
    this.library = lib.path;
    this.version = lib.version;
    this.#s = lib.symbols;
    this.rank = rank;
    this.size = size;
    this.timeoutMs = timeoutMs;
  }

  /** Runs `body` after every call queued before it. */
  #enqueue<R>(call: string, body: () => Promise<R>): Promise<R> {
    this.#pending++;
    const result = this.#tail.then(() => {
      if (this.#closed) {
        throw new CommunicatorError(
          `${call} on rank ${this.rank}: the communicator is closed`,
        );
      }
      if (this.#broken !== undefined) {
        throw new CommunicatorError(
          `${call} on rank ${this.rank}: the group is broken (${this.#broken.message})`,
          { cause: this.#broken },
        );
      }
      return body();
    });
    this.#tail = result.then(() => {}, () => {});
    result.then(() => this.#pending--, () => this.#pending--);
    return result;
  }

  /** Awaits one native collective under the watchdog. */
  async #native(call: string, pending: Promise<number>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = this.timeoutMs;
    const watchdog = new Promise<"timeout">((resolve) => {
      if (limit > 0) timer = setTimeout(() => resolve("timeout"), limit);
    });
    try {
      const rc = limit > 0
        ? await Promise.race([pending, watchdog])
        : await pending;
      if (rc === "timeout") {
        this.#broken = new CommunicatorError(
          `${call} on rank ${this.rank} of ${this.size}: the other ranks did not arrive within ${
            limit / 1000
          } s (a rank died or hangs; VICREG_MPI_TIMEOUT sets the limit in seconds)`,
        );
        throw this.#broken;
      }
      if (rc !== MPI_SUCCESS) {
        this.#broken = new CommunicatorError(
          `${call} failed on rank ${this.rank} of ${this.size}: ${
            errorString(this.#s, rc)
          }`,
        );
        throw this.#broken;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  allReduce<T extends CollectiveArray>(buf: T, op: "sum" = "sum"): Promise<T> {
    checkCollectiveArray("allReduce", buf, [Float32Array, Float64Array]);
    checkCollectiveArgs("allReduce", this.size, op);
    const type = buf instanceof Float64Array ? MPI_DOUBLE : MPI_FLOAT;
    return this.#enqueue("allReduce", async () => {
      const inPlace = mpiInPlace();
      for (let start = 0; start < buf.length; start += CHUNK) {
        const part = buf.subarray(start, Math.min(buf.length, start + CHUNK));
        await this.#native(
          "MPI_Allreduce",
          this.#s.MPI_Allreduce(
            inPlace,
            part,
            part.length,
            type,
            MPI_SUM,
            MPI_COMM_WORLD,
          ),
        );
      }
      return buf;
    });
  }

  allGatherBlocking<T extends CollectiveArray>(buf: T): T {
    checkCollectiveArray("allGatherBlocking", buf, [
      Float32Array,
      Float64Array,
    ]);
    this.#checkIdle("allGatherBlocking");
    const double = buf instanceof Float64Array;
    const type = double ? MPI_DOUBLE : MPI_FLOAT;
    const out = double
      ? new Float64Array(buf.length * this.size)
      : new Float32Array(buf.length * this.size);
    const rc = this.#s.MPI_Allgather_blocking(
      buf,
      buf.length,
      type,
      out,
      buf.length,
      type,
      MPI_COMM_WORLD,
    );
    if (rc !== MPI_SUCCESS) {
      this.#broken = new CommunicatorError(
        `MPI_Allgather failed on rank ${this.rank} of ${this.size}: ${
          errorString(this.#s, rc)
        }`,
      );
      throw this.#broken;
    }
    return out as T;
  }

  /** Throws unless the group is open and no asynchronous call is pending. */
  #checkIdle(call: string): void {
    const state = this.#closed
      ? "the communicator is closed"
      : this.#broken !== undefined
      ? `the group is broken (${this.#broken.message})`
      : this.#pending > 0
      ? `${this.#pending} asynchronous calls are still pending`
      : undefined;
    if (state !== undefined) {
      throw new CommunicatorError(`${call} on rank ${this.rank}: ${state}`);
    }
  }

  allReduceBlocking<T extends CollectiveArray>(buf: T): T {
    checkCollectiveArray("allReduceBlocking", buf, [
      Float32Array,
      Float64Array,
    ]);
    this.#checkIdle("allReduceBlocking");
    const type = buf instanceof Float64Array ? MPI_DOUBLE : MPI_FLOAT;
    for (let start = 0; start < buf.length; start += CHUNK) {
      const part = buf.subarray(start, Math.min(buf.length, start + CHUNK));
      const rc = this.#s.MPI_Allreduce_blocking(
        mpiInPlace(),
        part,
        part.length,
        type,
        MPI_SUM,
        MPI_COMM_WORLD,
      );
      if (rc !== MPI_SUCCESS) {
        this.#broken = new CommunicatorError(
          `MPI_Allreduce failed on rank ${this.rank} of ${this.size}: ${
            errorString(this.#s, rc)
          }`,
        );
        throw this.#broken;
      }
    }
    return buf;
  }

  allGather<T extends CollectiveArray>(buf: T): Promise<T> {
    checkCollectiveArray("allGather", buf, [Float32Array, Float64Array]);
    if (buf.length >= CHUNK * 2) {
      throw new RangeError(
        `allGather: at most 2^31 - 1 elements per rank: received ${buf.length}`,
      );
    }
    const double = buf instanceof Float64Array;
    const type = double ? MPI_DOUBLE : MPI_FLOAT;
    return this.#enqueue("allGather", async () => {
      // counts: [size] elements each rank sends; displs: [size] offsets.
      const counts = new Int32Array(this.size);
      await this.#native(
        "MPI_Allgather",
        this.#s.MPI_Allgather(
          bytes(Int32Array.of(buf.length)),
          1,
          MPI_INT,
          bytes(counts),
          1,
          MPI_INT,
          MPI_COMM_WORLD,
        ),
      );
      const displs = new Int32Array(this.size);
      let total = 0;
      for (let r = 0; r < this.size; r++) {
        if (total >= CHUNK * 2) break;
        displs[r] = total;
        total += counts[r];
      }
      if (total >= CHUNK * 2) {
        throw new RangeError(
          `allGather: the concatenation exceeds 2^31 - 1 elements`,
        );
      }
      const out = double ? new Float64Array(total) : new Float32Array(total);
      await this.#native(
        "MPI_Allgatherv",
        this.#s.MPI_Allgatherv(
          buf,
          buf.length,
          type,
          out,
          bytes(counts),
          bytes(displs),
          type,
          MPI_COMM_WORLD,
        ),
      );
      return out as T;
    });
  }

  broadcast<T extends BroadcastArray>(buf: T, root = 0): Promise<T> {
    checkCollectiveArray("broadcast", buf, [
      Float32Array,
      Float64Array,
      Uint8Array,
    ]);
    checkCollectiveArgs("broadcast", this.size, undefined, root);
    const type = buf instanceof Float64Array
      ? MPI_DOUBLE
      : buf instanceof Float32Array
      ? MPI_FLOAT
      : MPI_BYTE;
    return this.#enqueue("broadcast", async () => {
      for (let start = 0; start < buf.length; start += CHUNK) {
        const part = buf.subarray(start, Math.min(buf.length, start + CHUNK));
        await this.#native(
          "MPI_Bcast",
          this.#s.MPI_Bcast(part, part.length, type, root, MPI_COMM_WORLD),
        );
      }
      return buf;
    });
  }

  barrier(): Promise<void> {
    return this.#enqueue(
      "barrier",
      () => this.#native("MPI_Barrier", this.#s.MPI_Barrier(MPI_COMM_WORLD)),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#broken !== undefined) {
      this.#closed = true;
      return;
    }
    await this.#tail;
    if (this.#closed || this.#broken !== undefined) {
      this.#closed = true;
      return;
    }
    this.#closed = true;
    const rc = this.#s.MPI_Finalize();
    if (rc !== MPI_SUCCESS) {
      throw new CommunicatorError(
        `MPI_Finalize failed on rank ${this.rank}: ${errorString(this.#s, rc)}`,
      );
    }
  }

  abort(code = 1): never {
    this.#s.MPI_Abort(MPI_COMM_WORLD, code);
    Deno.exit(code);
  }
}
