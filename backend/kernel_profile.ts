/**
 * A profiler of the kernels a TF.js backend really runs: it wraps every
 * kernel registered for the backend in the TF.js kernel registry (the
 * functions the engine calls, not copies of them) and every function of the
 * native libraries the backend opened through Deno's FFI (OpenBLAS, oneDNN,
 * the OpenMP runtime) with timers, until it is disposed.
 *
 * Each kernel gets its calls, its total time and its self time (total less
 * the kernels it ran inside itself); each native function its calls and
 * time, and oneDNN's `dnnl_primitive_execute` is split by the kind of
 * primitive executed (`convolution`, `batch_normalization`, `reorder`, …).
 * Native time is also charged to the innermost kernel running, so a
 * kernel's self time splits into native work and its own JavaScript. What a
 * step spends outside every kernel is the TF.js engine, the gradient tape
 * and the model's own JavaScript.
 *
 * The timers cost a little per call (two `performance.now()` and a closure),
 * so a profiled step is somewhat slower than an unprofiled one: time the
 * step without the profiler too.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { openedLibraries } from "./kernels/_ffi.ts";
import { QUERY_PRIMITIVE_KIND } from "./kernels/_dnnl_abi.ts";

/** One kernel's figures in a {@linkcode KernelProfile}. */
export interface KernelStat {
  /** Times the engine (or another kernel) ran it. */
  calls: number;
  /** Milliseconds from entry to return, summed. */
  totalMs: number;
  /** `totalMs` less the time of kernels it ran inside itself. */
  selfMs: number;
  /** Milliseconds of native calls made while it was the innermost kernel. */
  nativeMs: number;
  /** Native calls made while it was the innermost kernel. */
  nativeCalls: number;
}

/** One native function's figures in a {@linkcode KernelProfile}. */
export interface NativeStat {
  /** Calls through the FFI. */
  calls: number;
  /** Milliseconds inside them, summed. */
  ms: number;
}

/** What a {@linkcode KernelProfiler} has seen since it started or was reset. */
export interface KernelProfile {
  /** The backend profiled. */
  backend: string;
  /** Milliseconds since the start or the last reset. */
  wallMs: number;
  /** By kernel name (`Conv2D`, `Add`, …). */
  kernels: Record<string, KernelStat>;
  /**
   * By native function (`cblas_sgemm`, `dnnl_memory_set_data_handle`, …);
   * oneDNN's executions as `dnnl_primitive_execute:<kind>`.
   */
  native: Record<string, NativeStat>;
}

/** Options of {@linkcode profileKernels}. */
export interface KernelProfileOptions {
  /**
   * The TF.js backend whose kernels to wrap.
   * @default {tf.getBackend()}
   */
  backend?: string;
  /**
   * Whether to wrap the native libraries' functions too.
   * @default {true}
   */
  native?: boolean;
}

/** Defaults of {@linkcode KernelProfileOptions} (`backend`: the active one). */
export const DEFAULT_KERNEL_PROFILE_OPTIONS: Readonly<
  Required<Omit<KernelProfileOptions, "backend">>
> = { native: true };

// oneDNN 2.x's `dnnl_primitive_kind_t`, by value.
const PRIMITIVE_KINDS = [
  "undefined",
  "reorder",
  "shuffle",
  "concat",
  "sum",
  "convolution",
  "deconvolution",
  "eltwise",
  "softmax",
  "pooling",
  "lrn",
  "batch_normalization",
  "layer_normalization",
  "inner_product",
  "rnn",
  "gemm",
  "binary",
  "logsoftmax",
  "matmul",
  "resampling",
  "pooling_v2",
  "reduction",
  "prelu",
  "softmax_v2",
];

interface Frame {
  stat: KernelStat;
  children: number;
}

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * A running profile: kernels and native functions are wrapped until
 * {@linkcode KernelProfiler.dispose}.
 */
export class KernelProfiler {
  #backend: string;
  #kernels: Record<string, KernelStat> = {};
  #native: Record<string, NativeStat> = {};
  #stack: Frame[] = [];
  #start = performance.now();
  #restore: (() => void)[] = [];

  /**
   * Wraps the kernels and native functions; prefer {@linkcode profileKernels}.
   *
   * @param options See {@linkcode KernelProfileOptions}.
   */
  constructor(options: KernelProfileOptions = {}) {
    const { native } = { ...DEFAULT_KERNEL_PROFILE_OPTIONS, ...options };
    this.#backend = options.backend ?? tf.getBackend();
    this.#wrapKernels();
    if (native) this.#wrapNative();
  }

  /** Clears the figures (the wrappers stay). */
  reset(): void {
    this.#kernels = {};
    this.#native = {};
    this.#start = performance.now();
  }

  /**
   * The figures so far.
   *
   * @returns A copy of them.
   */
  snapshot(): KernelProfile {
    return structuredClone({
      backend: this.#backend,
      wallMs: performance.now() - this.#start,
      kernels: this.#kernels,
      native: this.#native,
    });
  }

  /** Puts back the original kernels and native functions. */
  dispose(): void {
    for (const restore of this.#restore.splice(0).reverse()) restore();
  }

  #kernelStat(name: string): KernelStat {
    return this.#kernels[name] ??= {
      calls: 0,
      totalMs: 0,
      selfMs: 0,
      nativeMs: 0,
      nativeCalls: 0,
    };
  }

  #wrapKernels(): void {
    for (const config of tf.getKernelsForBackend(this.#backend)) {
      const original = config.kernelFunc;
      const name = config.kernelName;
      const wrapped: tf.KernelFunc = (args) => {
        const stat = this.#kernelStat(name);
        const frame: Frame = { stat, children: 0 };
        this.#stack.push(frame);
        const t0 = performance.now();
        try {
          return original(args);
        } finally {
          const ms = performance.now() - t0;
          this.#stack.pop();
          stat.calls++;
          stat.totalMs += ms;
          stat.selfMs += ms - frame.children;
          const parent = this.#stack.at(-1);
          if (parent !== undefined) parent.children += ms;
        }
      };
      tf.unregisterKernel(name, this.#backend);
      tf.registerKernel({ ...config, kernelFunc: wrapped });
      this.#restore.push(() => {
        tf.unregisterKernel(name, this.#backend);
        tf.registerKernel(config);
      });
    }
  }

  #wrapNative(): void {
    const seen = new Set<Record<string, unknown>>();
    for (const { symbols } of openedLibraries()) {
      if (seen.has(symbols)) continue;
      seen.add(symbols);
      const kindOf = primitiveKinds(symbols);
      for (const [name, value] of Object.entries(symbols)) {
        if (typeof value !== "function") continue;
        const original = value as AnyFunction;
        const label = name === "dnnl_primitive_execute" && kindOf !== undefined
          ? (args: unknown[]) => `${name}:${kindOf(args[0])}`
          : () => name;
        symbols[name] = (...args: unknown[]) => {
          const t0 = performance.now();
          try {
            return original(...args);
          } finally {
            const ms = performance.now() - t0;
            const key = label(args);
            const stat = this.#native[key] ??= { calls: 0, ms: 0 };
            stat.calls++;
            stat.ms += ms;
            const frame = this.#stack.at(-1);
            if (frame !== undefined) {
              frame.stat.nativeMs += ms;
              frame.stat.nativeCalls++;
            }
          }
        };
        this.#restore.push(() => symbols[name] = original);
      }
    }
  }
}

/**
 * The kind of a oneDNN primitive, asked once per primitive, when `symbols`
 * are oneDNN's and can say.
 */
function primitiveKinds(
  symbols: Record<string, unknown>,
): ((primitive: unknown) => string) | undefined {
  const getPd = symbols.dnnl_primitive_get_primitive_desc as
    | ((p: unknown, out: BigUint64Array) => number)
    | undefined;
  const query = symbols.dnnl_primitive_desc_query as
    | ((pd: unknown, what: number, index: number, out: Int32Array) => number)
    | undefined;
  if (getPd === undefined || query === undefined) return undefined;
  const cache = new Map<bigint | number, string>();
  const pd = new BigUint64Array(1);
  const kind = new Int32Array(2);
  return (primitive) => {
    const key = Deno.UnsafePointer.value(primitive as Deno.PointerValue);
    let name = cache.get(key);
    if (name === undefined) {
      name = "unknown";
      if (getPd(primitive, pd) === 0) {
        const pointer = Deno.UnsafePointer.create(pd[0]);
        if (query(pointer, QUERY_PRIMITIVE_KIND, 0, kind) === 0) {
          name = PRIMITIVE_KINDS[kind[0]] ?? `kind ${kind[0]}`;
        }
      }
      cache.set(key, name);
    }
    return name;
  };
}

/**
 * Starts profiling the kernels of a TF.js backend (the active one by
 * default) and the native functions it calls; see {@linkcode KernelProfiler}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { profileKernels } from "@scaling-vicreg/backend/kernel-profile";
 * await useBackend("cpu");
 * const profiler = profileKernels();
 * tf.dispose(tf.add(tf.ones([2]), tf.ones([2])));
 * const profile = profiler.snapshot();
 * profiler.dispose();
 * console.log(profile.kernels["Add"].calls); // 1
 * ```
 *
 * @param options See {@linkcode KernelProfileOptions}.
 * @returns The running profiler; `dispose()` it to put the kernels back.
 */
export function profileKernels(
  options: KernelProfileOptions = {},
): KernelProfiler {
  return new KernelProfiler(options);
}
