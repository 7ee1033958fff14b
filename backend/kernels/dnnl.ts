/**
 * oneDNN (the library PyTorch's CPU convolutions run on) reached through
 * Deno's FFI, for the `blas` backend, on NHWC float32 arrays: 2-D
 * convolutions and both their gradients, an inference convolution with bias
 * and ReLU fused (an eval-mode conv → BatchNorm → ReLU with the BatchNorm
 * folded in), and training-mode batch normalisation (+ ReLU) with its
 * gradient, one pass each.
 *
 * Activations stay NHWC, as TF.js stores them, so they are never copied; the
 * filter is given as TF.js's `[KH, KW, Ci, Co]` (oneDNN's `hwio`) and
 * reordered to whatever blocked layout oneDNN's fastest kernel wants (a
 * filter is small next to the activations). On an AVX-512 machine that picks
 * oneDNN's JIT direct convolutions, about twice the speed of the BLAS GEMM
 * forms in `blas_conv.ts` for ResNet layers. The algorithm is always "direct"
 * (never Winograd), so results are float32 sums of the same products.
 *
 * The convolutions run in the precision `setPrecision` set (`../precision.ts`,
 * read on every call; a call may also name one): in `bf16` their inputs are
 * rounded to bfloat16 and their outputs stay float32 (see `_dnnl_conv.ts`);
 * a geometry oneDNN has no bf16 primitive for runs in float32.
 *
 * The v2 C API (oneDNN 2.x, Debian's `libdnnl2`) is used. Loading needs
 * `--allow-ffi` (or `-A`); `VICREG_DNNL` names another library file, or
 * `off` to leave oneDNN out.
 *
 * @module
 */
import type { Geometry } from "./_geometry.ts";
import { openOpenMp } from "./_openmp.ts";
import { grantedEnv, openFirst, requireFfi } from "./_ffi.ts";
import { DNNL_SYMBOLS, type DnnlSymbols } from "./_dnnl_abi.ts";
import { DnnlContext } from "./_dnnl_context.ts";
import { DnnlPooling } from "./_dnnl_pooling.ts";
import {
  type BinaryOp,
  DnnlElementwise,
  type EltwiseOp,
} from "./_dnnl_elementwise.ts";
import { type ConvDirection, DnnlConvolutions } from "./_dnnl_conv.ts";
import { activePrecision, type Precision } from "../precision.ts";
import {
  type BatchNormBackwardArrays,
  type BatchNormForwardArrays,
  DnnlBatchNorms,
} from "./_dnnl_batch_norm.ts";

export type {
  BatchNormBackwardArrays,
  BatchNormForwardArrays,
} from "./_dnnl_batch_norm.ts";
export { BN_ELEMENTS_PER_THREAD } from "./_dnnl_batch_norm.ts";
export type { BinaryOp, EltwiseOp } from "./_dnnl_elementwise.ts";

/** A loaded oneDNN with its CPU engine and stream. */
export interface Dnnl {
  /** The library file that was opened. */
  readonly library: string;
  /** Its version, e.g. `2.6.3`. */
  readonly version: string;
  /**
   * `y [n, oh, ow, co] = conv(x [n, h, w, ci], w [kh, kw, ci, co])`, its
   * inputs in `precision` (default: the active one, `activePrecision()`).
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2d(
    g: Geometry,
    x: Float32Array,
    w: Float32Array,
    y: Float32Array,
    precision?: Precision,
  ): boolean;
  /**
   * The input gradient `dx [n, h, w, ci]` from `dy [n, oh, ow, co]`, its
   * inputs in `precision` (default: the active one).
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2dBackpropInput(
    g: Geometry,
    dy: Float32Array,
    w: Float32Array,
    dx: Float32Array,
    precision?: Precision,
  ): boolean;
  /**
   * The filter gradient `dw [kh, kw, ci, co]` from `x` and `dy`, its inputs
   * in `precision` (default: the active one).
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2dBackpropFilter(
    g: Geometry,
    x: Float32Array,
    dy: Float32Array,
    dw: Float32Array,
    precision?: Precision,
  ): boolean;
  /**
   * `y = act(conv(x, w) + bias)` as one inference primitive (the conv of a
   * conv → BatchNorm → ReLU whose BatchNorm is folded into `w` and `bias`):
   * `bias` `[co]` or `undefined` for none, `act` ReLU or the identity; `x`
   * and `w` in `precision` (default: the active one), the bias float32.
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2dFused(
    g: Geometry,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | undefined,
    relu: boolean,
    y: Float32Array,
    precision?: Precision,
  ): boolean;
  /**
   * Training-mode batch normalisation of `x`, `rows × channels` floats
   * (channels last: `[N, C]` or NHWC), with an optional fused ReLU:
   * `y = act((x − μ)/√(σ² + eps)·γ + β)` with the batch mean μ and biased
   * variance σ², which it also writes (`[channels]` each). With `relu`,
   * `workspace` (of {@linkcode Dnnl.batchNormWorkspaceFloats} floats) gets
   * what the backward pass needs to apply the ReLU's mask.
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive.
   */
  batchNormForward(
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
    arrays: BatchNormForwardArrays,
  ): boolean;
  /**
   * Floats of workspace a fused-ReLU batch normalisation keeps for its
   * backward pass (0 without ReLU), or `undefined` when oneDNN has no
   * primitive for the shape.
   */
  batchNormWorkspaceFloats(
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
  ): number | undefined;
  /**
   * The backward pass of {@linkcode Dnnl.batchNormForward}: `dx`, `dγ` and
   * `dβ` from `dy` and what the forward pass saw and wrote.
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive.
   */
  batchNormBackward(
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
    arrays: BatchNormBackwardArrays,
  ): boolean;
  /**
   * `out = a ∘ b` on row-major arrays of shape `dims`, `b` of shape `bDims`
   * (ones where it is broadcast; see `DnnlElementwise.binary`).
   *
   * @param op The operation.
   * @param dims The shape of `a` and `out` (rank 1 to 4).
   * @param bDims The shape of `b`, of the same rank.
   * @param a The first input.
   * @param b The second input.
   * @param out The output.
   * @returns Whether oneDNN ran it.
   */
  binary(
    op: BinaryOp,
    dims: number[],
    bDims: number[],
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
  ): boolean;
  /**
   * `out = f(x)` element by element (see `DnnlElementwise.eltwise`).
   *
   * @param op The operation.
   * @param alpha Its α.
   * @param beta Its β.
   * @param x The input.
   * @param out The output.
   * @returns Whether oneDNN ran it.
   */
  eltwise(
    op: EltwiseOp,
    alpha: number,
    beta: number,
    x: Float32Array,
    out: Float32Array,
  ): boolean;
  /**
   * ReLU's gradient, `dx = x > 0 ? dy : 0 · dy` (see
   * `DnnlElementwise.reluBackward`).
   *
   * @param x ReLU's input.
   * @param dy The gradient of its output.
   * @param dx The gradient of its input.
   * @returns Whether oneDNN ran it.
   */
  reluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array): boolean;
  /**
   * A max pool, NHWC (see `DnnlPooling.maxPool`; `g.ci` channels).
   *
   * @param g The geometry.
   * @param x The input.
   * @param y The output.
   * @returns Whether oneDNN ran it.
   */
  maxPool(g: Geometry, x: Float32Array, y: Float32Array): boolean;
  /**
   * A max pool's input gradient (see `DnnlPooling.maxPoolBackward`).
   *
   * @param g The geometry.
   * @param x The forward input.
   * @param dy The output gradient.
   * @param dx The input gradient written.
   * @returns Whether oneDNN ran it.
   */
  maxPoolBackward(
    g: Geometry,
    x: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
  ): boolean;
  /**
   * The name of the implementation oneDNN chose for a direction of `g` in
   * `precision` (default `fp32`; e.g. `brgconv:avx512_core`, or
   * `brgconv:avx512_core_amx` in `bf16`), or `undefined` when it has none.
   */
  implementation(
    g: Geometry,
    direction: "forward" | "input" | "filter",
    precision?: Precision,
  ): string | undefined;
}

/**
 * Library files tried, in order, when no path is given (and `VICREG_DNNL`
 * is unset).
 *
 * @returns The candidates for this operating system.
 */
export function dnnlCandidates(): string[] {
  switch (Deno.build.os) {
    case "darwin":
      return [
        "/opt/homebrew/opt/onednn/lib/libdnnl.2.dylib",
        "/usr/local/opt/onednn/lib/libdnnl.2.dylib",
        "libdnnl.2.dylib",
      ];
    case "windows":
      return ["dnnl.dll"];
    default:
      return ["libdnnl.so.2", "libdnnl.so"];
  }
}

/** Where to get oneDNN, for messages. */
export const DNNL_INSTALL_HINT =
  "install oneDNN 2.x (Debian/Ubuntu: apt-get install libdnnl2) or set VICREG_DNNL to its library";

let cached: Dnnl | undefined;

/**
 * Opens oneDNN once per process: `library` when given, else `VICREG_DNNL`,
 * else the first of {@linkcode dnnlCandidates} that opens and has the v2 C
 * API.
 *
 * @example
 * ```ts ignore
 * import { loadDnnl } from "./dnnl.ts";
 * console.log(loadDnnl().version); // e.g. 2.6.3
 * ```
 *
 * @param library A library path or name for `Deno.dlopen`.
 * @returns The library.
 * @throws {Error} One line saying why no oneDNN can be used (none found,
 * `VICREG_DNNL=off`, FFI not allowed, or not the 2.x API).
 */
export function loadDnnl(library?: string): Dnnl {
  if (cached !== undefined && library === undefined) return cached;
  requireFfi(
    "Cannot open oneDNN: FFI is not allowed (run deno with --allow-ffi or -A)",
  );
  const fromEnv = library === undefined ? grantedEnv("VICREG_DNNL") : undefined;
  if (fromEnv !== undefined && /^(off|0|none|false)$/i.test(fromEnv)) {
    throw new Error("oneDNN is turned off (VICREG_DNNL=off)");
  }
  const tried = library !== undefined
    ? [library]
    : fromEnv !== undefined
    ? [fromEnv]
    : dnnlCandidates();
  const opened = openFirst(tried, DNNL_SYMBOLS, (lib) => {
    const version = versionOf(lib.symbols);
    return version.startsWith("2.") &&
        lib.symbols.dnnl_convolution_forward_desc_init !== undefined
      ? undefined
      : `version ${version}, not the 2.x C API`;
  });
  if (opened.path === undefined) {
    throw new Error(
      `No usable oneDNN found: ${DNNL_INSTALL_HINT} (tried ${
        opened.failures.join("; ")
      })`,
    );
  }
  const dnnl = open(
    opened.path,
    versionOf(opened.lib.symbols),
    opened.lib.symbols,
  );
  if (library === undefined) cached = dnnl;
  return dnnl;
}

function versionOf(s: DnnlSymbols): string {
  const pointer = s.dnnl_version();
  if (pointer === null) return "unknown";
  const view = new Deno.UnsafePointerView(pointer);
  return `${view.getInt32(0)}.${view.getInt32(4)}.${view.getInt32(8)}`;
}

function open(path: string, version: string, s: DnnlSymbols): Dnnl {
  const ctx = new DnnlContext(s);
  const openMp = openOpenMp();
  const convolutions = new DnnlConvolutions(ctx, openMp);
  const batchNorms = new DnnlBatchNorms(ctx, openMp);
  const elementwise = new DnnlElementwise(ctx);
  const pooling = new DnnlPooling(ctx);
  // A bf16 geometry oneDNN has no primitive for runs in float32.
  const prepare = (g: Geometry, direction: ConvDirection, p: Precision) =>
    (p === "bf16" ? convolutions.prepare(g, direction, p) : null) ??
      convolutions.prepare(g, direction);
  const runner = (direction: ConvDirection) =>
  (
    g: Geometry,
    a: Float32Array,
    b: Float32Array,
    output: Float32Array,
    precision: Precision = activePrecision(),
  ): boolean => {
    const prepared = prepare(g, direction, precision);
    if (prepared === null) return false;
    prepared.run(a, b, output);
    return true;
  };

  return {
    library: path,
    version,
    conv2d: runner("forward"),
    conv2dBackpropInput: runner("input"),
    conv2dBackpropFilter: runner("filter"),
    batchNormForward(rows, channels, eps, relu, arrays) {
      const prepared = batchNorms.get(rows, channels, eps, relu);
      if (prepared === null) return false;
      prepared.forward(arrays);
      return true;
    },
    batchNormWorkspaceFloats: (rows, channels, eps, relu) =>
      batchNorms.get(rows, channels, eps, relu)?.workspaceFloats,
    batchNormBackward(rows, channels, eps, relu, arrays) {
      const prepared = batchNorms.get(rows, channels, eps, relu);
      if (prepared === null) return false;
      prepared.backward(arrays);
      return true;
    },
    conv2dFused(g, x, w, bias, relu, y, precision = activePrecision()) {
      if (bias !== undefined && bias.length !== g.co) return false;
      const hasBias = bias !== undefined;
      const prepared =
        (precision === "bf16"
          ? convolutions.fused(g, hasBias, relu, precision)
          : null) ?? convolutions.fused(g, hasBias, relu);
      if (prepared === null) return false;
      prepared.run(x, w, bias, y);
      return true;
    },
    binary: (op, dims, bDims, a, b, out) =>
      elementwise.binary(op, dims, bDims, a, b, out),
    reluBackward: (x, dy, dx) => elementwise.reluBackward(x, dy, dx),
    eltwise: (op, alpha, beta, x, out) =>
      elementwise.eltwise(op, alpha, beta, x, out),
    maxPool: (g, x, y) => pooling.maxPool(g, x, y),
    maxPoolBackward: (g, x, dy, dx) => pooling.maxPoolBackward(g, x, dy, dx),
    implementation: (g, direction, precision = "fp32") =>
      convolutions.prepare(g, direction, precision)?.impl,
  };
}
