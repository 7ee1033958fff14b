/**
 * A native BLAS (OpenBLAS, MKL or Apple Accelerate) reached through Deno's
 * FFI: finding and opening the library and binding its `cblas_sgemm`. The
 * convolutions written on it are in `blas_conv.ts`.
 *
 * The BLAS is multithreaded and uses the CPU's widest vector units, which
 * WebAssembly cannot (single-threaded under Deno, 128-bit SIMD).
 *
 * Loading needs `--allow-ffi` (or `-A`).
 *
 * @module
 */
import { grantedEnv, openFirst, requireFfi } from "./_ffi.ts";

/** A loaded BLAS library. */
export interface Blas {
  /** The library file that was opened. */
  readonly library: string;
  /** Threads the library uses, when it says (OpenBLAS does). */
  readonly threads: number | undefined;
  /** Its CPU kernel set, when it says (e.g. OpenBLAS's `Haswell`). */
  readonly core: string | undefined;
  /**
   * Row-major `C = alpha·op(A)·op(B) + beta·C` (`cblas_sgemm`), with
   * `op(A)` of shape `[m, k]` and `op(B)` of shape `[k, n]`. The arrays start
   * at the matrices' first elements (pass `subarray`s for offsets).
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
}

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_get_num_threads: {
    parameters: [],
    result: "i32",
    optional: true,
  },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
} as const;

/**
 * Library files tried, in order, when no path is given (and
 * `VICREG_BLAS` is unset). The generic `libblas.so.3` is left out on
 * purpose: it is often the slow reference BLAS.
 *
 * @returns The candidates for this operating system.
 */
export function blasCandidates(): string[] {
  switch (Deno.build.os) {
    case "darwin":
      return [
        "/System/Library/Frameworks/Accelerate.framework/Accelerate",
        "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
        "/usr/local/opt/openblas/lib/libopenblas.dylib",
      ];
    case "windows":
      return ["libopenblas.dll", "mkl_rt.2.dll", "mkl_rt.dll"];
    default:
      return [
        "libopenblas.so.0",
        "libopenblas.so",
        "libmkl_rt.so.2",
        "libmkl_rt.so",
      ];
  }
}

/** Where to install a BLAS, for error messages. */
export const BLAS_INSTALL_HINT =
  "install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0-pthread; macOS has Accelerate) or set VICREG_BLAS to a library with cblas_sgemm";

const NO_FFI =
  "Cannot open a BLAS: FFI is not allowed (run deno with --allow-ffi or -A)";

let cached: Blas | undefined;

/**
 * Opens a BLAS once per process: `library` when given, else `VICREG_BLAS`,
 * else the first of {@linkcode blasCandidates} that opens.
 *
 * @example
 * ```ts ignore
 * import { loadBlas } from "./blas.ts";
 * const blas = loadBlas();
 * const c = new Float32Array(1);
 * blas.sgemm(false, false, 1, 1, 2, 1, new Float32Array([1, 2]), 2,
 *   new Float32Array([3, 4]), 1, 0, c, 1);
 * console.log(c[0]); // 11
 * ```
 *
 * @param library A library path or name for `Deno.dlopen`.
 * @returns The library.
 * @throws {Error} One line naming the files tried and how to get one.
 */
export function loadBlas(library?: string): Blas {
  if (cached !== undefined && library === undefined) return cached;
  requireFfi(NO_FFI);
  const fromEnv = library === undefined ? grantedEnv("VICREG_BLAS") : undefined;
  const tried = library !== undefined
    ? [library]
    : fromEnv !== undefined
    ? [fromEnv]
    : blasCandidates();
  const opened = openFirst(tried, SYMBOLS);
  if (opened.path === undefined) {
    throw new Error(
      `No BLAS library found: ${BLAS_INSTALL_HINT} (tried ${tried.join(", ")})`,
      { cause: opened.failures.join("; ") },
    );
  }
  const blas = wrap(opened.path, opened.lib);
  if (library === undefined) cached = blas;
  return blas;
}

function wrap(path: string, lib: Deno.DynamicLibrary<typeof SYMBOLS>): Blas {
  const s = lib.symbols;
  let core: string | undefined;
  const corePointer = s.openblas_get_corename?.();
  if (corePointer) {
    core = new Deno.UnsafePointerView(corePointer).getCString();
  }
  const threads = s.openblas_get_num_threads?.() ??
    s.MKL_Get_Max_Threads?.();
  return {
    library: path,
    threads,
    core,
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      if (m === 0 || n === 0) return;
      if (k === 0) {
        // BLASes differ on whether beta = 0 clears NaNs; do it here.
        for (let i = 0; i < m; i++) {
          const row = c.subarray(i * ldc, i * ldc + n);
          if (beta === 0) row.fill(0);
          else for (let j = 0; j < n; j++) row[j] *= beta;
        }
        return;
      }
      // Called through the symbol table each time, so a profiler's wrapper
      // (`kernel_profile.ts`) sees it.
      s.cblas_sgemm(
        CBLAS_ROW_MAJOR,
        transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
        transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    },
  };
}
