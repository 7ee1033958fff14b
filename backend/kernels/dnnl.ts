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
 * forms in `blas.ts` for ResNet layers. The algorithm is always "direct"
 * (never Winograd), so results are float32 sums of the same products.
 *
 * The v2 C API (oneDNN 2.x, Debian's `libdnnl2`) is used. Loading needs
 * `--allow-ffi` (or `-A`); `VICREG_DNNL` names another library file, or
 * `off` to leave oneDNN out.
 *
 * @module
 */
import type { Geometry } from "./_geometry.ts";
import { grantedEnv, openFirst, requireFfi } from "./_ffi.ts";

/** A loaded oneDNN with its CPU engine and stream. */
export interface Dnnl {
  /** The library file that was opened. */
  readonly library: string;
  /** Its version, e.g. `2.6.3`. */
  readonly version: string;
  /**
   * `y [n, oh, ow, co] = conv(x [n, h, w, ci], w [kh, kw, ci, co])`.
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2d(
    g: Geometry,
    x: Float32Array,
    w: Float32Array,
    y: Float32Array,
  ): boolean;
  /**
   * The input gradient `dx [n, h, w, ci]` from `dy [n, oh, ow, co]`.
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2dBackpropInput(
    g: Geometry,
    dy: Float32Array,
    w: Float32Array,
    dx: Float32Array,
  ): boolean;
  /**
   * The filter gradient `dw [kh, kw, ci, co]` from `x` and `dy`.
   *
   * @returns `false` (writing nothing) when oneDNN has no primitive for `g`.
   */
  conv2dBackpropFilter(
    g: Geometry,
    x: Float32Array,
    dy: Float32Array,
    dw: Float32Array,
  ): boolean;
  /**
   * `y = act(conv(x, w) + bias)` as one inference primitive (the conv of a
   * conv → BatchNorm → ReLU whose BatchNorm is folded into `w` and `bias`):
   * `bias` `[co]` or `undefined` for none, `act` ReLU or the identity.
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
    arrays: {
      x: Float32Array;
      gamma: Float32Array;
      beta: Float32Array;
      y: Float32Array;
      mean: Float32Array;
      variance: Float32Array;
      workspace?: Float32Array;
    },
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
    arrays: {
      x: Float32Array;
      dy: Float32Array;
      mean: Float32Array;
      variance: Float32Array;
      gamma: Float32Array;
      beta: Float32Array;
      workspace?: Float32Array;
      dx: Float32Array;
      dGamma: Float32Array;
      dBeta: Float32Array;
    },
  ): boolean;
  /**
   * The name of the implementation oneDNN chose for a direction of `g`
   * (e.g. `brgconv:avx512_core`), or `undefined` when it has none.
   */
  implementation(
    g: Geometry,
    direction: "forward" | "input" | "filter",
  ): string | undefined;
}

// Constants of the v2 C API (dnnl_types.h).
const F32 = 3;
const TAG_NHWC = 20;
const TAG_HWIO = 30;
const TAG_ANY = 1;
const CPU = 1;
const STREAM_IN_ORDER = 1;
const FORWARD_TRAINING = 64;
const FORWARD_INFERENCE = 96;
const TAG_A = 2;
const ELTWISE_RELU = 31;
const ARG_BIAS = 41;
const CONVOLUTION_DIRECT = 1;
const ARG_SRC = 1;
const ARG_DST = 17;
const ARG_WEIGHTS = 33;
const ARG_DIFF_SRC = 129;
const ARG_DIFF_DST = 145;
const ARG_DIFF_WEIGHTS = 161;
const QUERY_IMPL_INFO = 8;
const QUERY_WEIGHTS_MD = 131;
const QUERY_DIFF_WEIGHTS_MD = 132;
const QUERY_WORKSPACE_MD = 135;
const BACKWARD = 128;
const USE_SCALE = 0x8;
const USE_SHIFT = 0x10;
const FUSE_NORM_RELU = 0x4;
const ARG_MEAN = 49;
const ARG_VARIANCE = 50;
const ARG_SCALE = 51;
const ARG_SHIFT = 52;
const ARG_WORKSPACE = 64;
const ARG_DIFF_SCALE = 255;
const ARG_DIFF_SHIFT = 256;
/** `sizeof(dnnl_memory_desc_t)` is 696 in 2.x; room to spare. */
const MD_BYTES = 2048;
/** `sizeof(dnnl_convolution_desc_t)` is 5976 in 2.x; room to spare. */
const OP_DESC_BYTES = 16384;
const MAX_DIMS = 12;

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: {
    parameters: ["buffer", "i32", "usize"],
    result: "i32",
  },
  dnnl_stream_create: {
    parameters: ["buffer", "pointer", "u32"],
    result: "i32",
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
    optional: true,
  },
  dnnl_memory_desc_equal: {
    parameters: ["buffer", "pointer"],
    result: "i32",
  },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
    optional: true,
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
    optional: true,
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_set_post_ops: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: [
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: {
    parameters: ["pointer", "i32", "i32"],
    result: "pointer",
  },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_memory_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_memory_set_data_handle: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

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
  const opened = openFirst(tried, SYMBOLS, (lib) => {
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

function versionOf(s: Symbols): string {
  const pointer = s.dnnl_version();
  if (pointer === null) return "unknown";
  const view = new Deno.UnsafePointerView(pointer);
  return `${view.getInt32(0)}.${view.getInt32(4)}.${view.getInt32(8)}`;
}

/** One direction of one convolution: a primitive and how to feed it. */
interface Prepared {
  impl: string;
  run(a: Float32Array, b: Float32Array, out: Float32Array): void;
}

/** A fused inference convolution (bias, ReLU) and how to feed it. */
/** A batch normalisation's two primitives and how to feed them. */
interface BatchNormPrepared {
  workspaceFloats: number;
  forward(arrays: Parameters<Dnnl["batchNormForward"]>[4]): void;
  backward(arrays: Parameters<Dnnl["batchNormBackward"]>[4]): void;
}

interface FusedPrepared {
  impl: string;
  run(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | undefined,
    y: Float32Array,
  ): void;
}

/** A convolution's memory descriptors (oneDNN's, as bytes), strides, padding. */
interface ConvDescs {
  src: Uint8Array;
  dst: Uint8Array;
  user: Uint8Array;
  any: Uint8Array;
  strides: BigInt64Array;
  padL: BigInt64Array;
  padR: BigInt64Array;
}

/** One geometry: its forward descriptor and each direction once built. */
interface Entry {
  /** The geometry's memory descriptors, strides and padding. */
  descs: ConvDescs;
  forwardPd: Deno.PointerValue;
  /** `null` once oneDNN refused the direction (not asked again). */
  forward?: Prepared | null;
  input?: Prepared | null;
  filter?: Prepared | null;
}

function open(path: string, version: string, s: Symbols): Dnnl {
  const out = new BigUint64Array(1);
  const handle = (): Deno.PointerValue =>
    Deno.UnsafePointer.create(out[0]) as Deno.PointerValue;
  const check = (status: number, what: string): void => {
    if (status !== 0) throw new Error(`oneDNN ${what}: status ${status}`);
  };
  check(s.dnnl_engine_create(out, CPU, 0n), "engine");
  const engine = handle();
  check(s.dnnl_stream_create(out, engine, STREAM_IN_ORDER), "stream");
  const stream = handle();

  const dims = (...values: number[]): BigInt64Array => {
    const d = new BigInt64Array(MAX_DIMS);
    values.forEach((v, i) => d[i] = BigInt(v));
    return d;
  };
  const memoryDesc = (shape: number[], tag: number): Uint8Array => {
    const md = new Uint8Array(MD_BYTES);
    check(
      s.dnnl_memory_desc_init_by_tag!(
        md,
        shape.length,
        dims(...shape),
        F32,
        tag,
      ),
      "memory descriptor",
    );
    return md;
  };
  const memory = (md: Uint8Array | Deno.PointerValue): Deno.PointerValue => {
    const pointer = md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
    check(s.dnnl_memory_create(out, pointer, engine, null), "memory");
    return handle();
  };
  const primitiveDesc = (
    opDesc: Uint8Array,
    hint: Deno.PointerValue,
    attr: Deno.PointerValue = null,
  ): Deno.PointerValue => {
    check(
      s.dnnl_primitive_desc_create!(out, opDesc, attr, engine, hint),
      "primitive descriptor",
    );
    return handle();
  };
  const implOf = (pd: Deno.PointerValue): string => {
    const info = new BigUint64Array(1);
    check(s.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO, 0, info), "query");
    const text = Deno.UnsafePointer.create(info[0]);
    return text === null ? "?" : new Deno.UnsafePointerView(text).getCString();
  };
  const primitive = (pd: Deno.PointerValue): Deno.PointerValue => {
    check(s.dnnl_primitive_create(out, pd), "primitive");
    return handle();
  };
  const execute = (
    prim: Deno.PointerValue,
    args: [number, Deno.PointerValue][],
  ): void => {
    const bytes = new Uint8Array(16 * args.length);
    const view = new DataView(bytes.buffer);
    args.forEach(([arg, mem], i) => {
      view.setInt32(16 * i, arg, true);
      view.setBigUint64(
        16 * i + 8,
        BigInt(Deno.UnsafePointer.value(mem)),
        true,
      );
    });
    check(
      s.dnnl_primitive_execute(prim, stream, args.length, bytes),
      "execute",
    );
    check(s.dnnl_stream_wait(stream), "stream wait");
  };
  const setData = (mem: Deno.PointerValue, data: Float32Array): void =>
    check(s.dnnl_memory_set_data_handle(mem, data), "data handle");

  // The filter in oneDNN's chosen layout, shared by every convolution (calls
  // are synchronous and one at a time).
  let blocked = new Float32Array(0);
  const blockedOf = (bytes: number): Float32Array => {
    if (blocked.length * 4 < bytes) blocked = new Float32Array(bytes / 4);
    return blocked;
  };

  /**
   * The filter's two memories: the user's `hwio` one and, when the
   * primitive wants another layout, that one plus a reorder between them
   * (`toBlocked`: user → primitive; else primitive → user).
   */
  const filterMemories = (
    userMd: Uint8Array,
    pd: Deno.PointerValue,
    query: number,
    toBlocked: boolean,
  ) => {
    const user = memory(userMd);
    const wanted = s.dnnl_primitive_desc_query_md(pd, query, 0);
    if (wanted === null || s.dnnl_memory_desc_equal(userMd, wanted) === 1) {
      return { user, inner: user, bytes: 0, reorder: undefined };
    }
    const inner = memory(wanted);
    const userPointer = Deno.UnsafePointer.of(userMd);
    check(
      s.dnnl_reorder_primitive_desc_create(
        out,
        toBlocked ? userPointer : wanted,
        engine,
        toBlocked ? wanted : userPointer,
        engine,
        null,
      ),
      "reorder descriptor",
    );
    const reorder = primitive(handle());
    const bytes = Number(s.dnnl_memory_desc_get_size(wanted));
    return { user, inner, bytes, reorder };
  };

  const entries = new Map<string, Entry | null>();
  const descs = (g: Geometry): ConvDescs => ({
    src: memoryDesc([g.n, g.ci, g.h, g.w], TAG_NHWC),
    dst: memoryDesc([g.n, g.co, g.oh, g.ow], TAG_NHWC),
    user: memoryDesc([g.co, g.ci, g.kh, g.kw], TAG_HWIO),
    any: memoryDesc([g.co, g.ci, g.kh, g.kw], TAG_ANY),
    strides: dims(g.sh, g.sw),
    padL: dims(g.top, g.left),
    padR: dims(g.bottom, g.right),
  });

  /** A forward convolution's operation descriptor (filter layout `any`). */
  const forwardOp = (
    d: ConvDescs,
    prop: number,
    biasMd?: Uint8Array,
  ): Uint8Array => {
    const op = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_convolution_forward_desc_init!(
        op,
        prop,
        CONVOLUTION_DIRECT,
        d.src,
        d.any,
        biasMd === undefined ? null : Deno.UnsafePointer.of(biasMd),
        d.dst,
        d.strides,
        d.padL,
        d.padR,
      ),
      "convolution descriptor",
    );
    return op;
  };

  const keyOf = (g: Geometry): string =>
    [
      g.n,
      g.h,
      g.w,
      g.ci,
      g.co,
      g.kh,
      g.kw,
      g.sh,
      g.sw,
      g.top,
      g.left,
      g.bottom,
      g.right,
    ].join(",");

  const entry = (g: Geometry): Entry | null => {
    const key = keyOf(g);
    let e = entries.get(key);
    if (e === undefined) {
      try {
        const d = descs(g);
        e = {
          descs: d,
          forwardPd: primitiveDesc(forwardOp(d, FORWARD_TRAINING), null),
        };
      } catch {
        e = null;
      }
      entries.set(key, e);
    }
    return e;
  };

  /** Builds one direction; `null` when oneDNN has no primitive for it. */
  const prepare = (
    g: Geometry,
    direction: "forward" | "input" | "filter",
  ): Prepared | null => {
    const e = entry(g);
    if (e === null) return null;
    let prepared = e[direction];
    if (prepared === undefined) {
      try {
        prepared = build(e, direction);
      } catch {
        prepared = null;
      }
      e[direction] = prepared;
    }
    return prepared;
  };

  const build = (
    e: Entry,
    direction: "forward" | "input" | "filter",
  ): Prepared => {
    const d = e.descs;
    let pd = e.forwardPd;
    if (direction !== "forward") {
      const op = new Uint8Array(OP_DESC_BYTES);
      if (direction === "input") {
        check(
          s.dnnl_convolution_backward_data_desc_init!(
            op,
            CONVOLUTION_DIRECT,
            d.src,
            d.any,
            d.dst,
            d.strides,
            d.padL,
            d.padR,
          ),
          "backward-data descriptor",
        );
      } else {
        check(
          s.dnnl_convolution_backward_weights_desc_init!(
            op,
            CONVOLUTION_DIRECT,
            d.src,
            d.any,
            null,
            d.dst,
            d.strides,
            d.padL,
            d.padR,
          ),
          "backward-weights descriptor",
        );
      }
      pd = primitiveDesc(op, e.forwardPd);
    }
    const prim = primitive(pd);
    const impl = implOf(pd);
    const src = memory(d.src);
    const dst = memory(d.dst);
    if (direction === "filter") {
      const f = filterMemories(d.user, pd, QUERY_DIFF_WEIGHTS_MD, false);
      return {
        impl,
        run(x, dy, dw) {
          setData(src, x);
          setData(dst, dy);
          setData(f.user, dw);
          if (f.reorder !== undefined) setData(f.inner, blockedOf(f.bytes));
          execute(prim, [
            [ARG_SRC, src],
            [ARG_DIFF_DST, dst],
            [ARG_DIFF_WEIGHTS, f.inner],
          ]);
          if (f.reorder !== undefined) {
            execute(f.reorder, [[ARG_SRC, f.inner], [ARG_DST, f.user]]);
          }
        },
      };
    }
    const f = filterMemories(d.user, pd, QUERY_WEIGHTS_MD, true);
    const [inArg, outArg, inMem, outMem] = direction === "forward"
      ? [ARG_SRC, ARG_DST, src, dst]
      : [ARG_DIFF_DST, ARG_DIFF_SRC, dst, src];
    return {
      impl,
      run(input, w, output) {
        setData(inMem, input);
        setData(outMem, output);
        setData(f.user, w);
        if (f.reorder !== undefined) {
          setData(f.inner, blockedOf(f.bytes));
          execute(f.reorder, [[ARG_SRC, f.user], [ARG_DST, f.inner]]);
        }
        execute(prim, [[inArg, inMem], [ARG_WEIGHTS, f.inner], [
          outArg,
          outMem,
        ]]);
      },
    };
  };

  const batchNorms = new Map<string, BatchNormPrepared | null>();
  const buildBatchNorm = (
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
  ): BatchNormPrepared => {
    // Rows as a batch of 1×1 NHWC images: oneDNN's JIT kernels take this
    // ("nspc") layout; a plain 2-D `[rows, C]` gets its reference kernel,
    // ~40× slower.
    const data = memoryDesc([rows, channels, 1, 1], TAG_NHWC);
    const vector = memoryDesc([channels], TAG_A);
    const flags = USE_SCALE | USE_SHIFT | (relu ? FUSE_NORM_RELU : 0);
    const fop = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_batch_normalization_forward_desc_init!(
        fop,
        FORWARD_TRAINING,
        data,
        eps,
        flags,
      ),
      "batch-norm descriptor",
    );
    const fpd = primitiveDesc(fop, null);
    const forward = primitive(fpd);
    const bop = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_batch_normalization_backward_desc_init!(
        bop,
        BACKWARD,
        data,
        data,
        eps,
        flags,
      ),
      "batch-norm backward descriptor",
    );
    const backward = primitive(primitiveDesc(bop, fpd));
    const [src, dst, diffSrc, diffDst] = [0, 1, 2, 3].map(() => memory(data));
    const [mean, variance, scale, shift, diffScale, diffShift] = [
      0,
      1,
      2,
      3,
      4,
      5,
    ].map(() => memory(vector));
    let workspace: Deno.PointerValue = null;
    let workspaceFloats = 0;
    if (relu) {
      const md = s.dnnl_primitive_desc_query_md(fpd, QUERY_WORKSPACE_MD, 0);
      if (md === null) throw new Error("oneDNN: no ReLU workspace");
      workspaceFloats = Math.ceil(Number(s.dnnl_memory_desc_get_size(md)) / 4);
      workspace = memory(md);
    }
    const common = (
      a: { x: Float32Array; mean: Float32Array; variance: Float32Array },
      ws: Float32Array | undefined,
    ): [number, Deno.PointerValue][] => {
      setData(src, a.x);
      setData(mean, a.mean);
      setData(variance, a.variance);
      const args: [number, Deno.PointerValue][] = [
        [ARG_SRC, src],
        [ARG_MEAN, mean],
        [ARG_VARIANCE, variance],
      ];
      if (relu) {
        if (ws === undefined || ws.length < workspaceFloats) {
          throw new RangeError(
            `oneDNN batch norm: expected a workspace of ${workspaceFloats} floats`,
          );
        }
        setData(workspace, ws);
        args.push([ARG_WORKSPACE, workspace]);
      }
      return args;
    };
    return {
      workspaceFloats,
      forward(a) {
        const args = common(a, a.workspace);
        setData(dst, a.y);
        setData(scale, a.gamma);
        setData(shift, a.beta);
        execute(forward, [
          ...args,
          [ARG_DST, dst],
          [ARG_SCALE, scale],
          [ARG_SHIFT, shift],
        ]);
      },
      backward(a) {
        const args = common(a, a.workspace);
        setData(diffDst, a.dy);
        setData(scale, a.gamma);
        // oneDNN 2.x's backward primitive takes the shift as an input too.
        setData(shift, a.beta);
        setData(diffSrc, a.dx);
        setData(diffScale, a.dGamma);
        setData(diffShift, a.dBeta);
        execute(backward, [
          ...args,
          [ARG_DIFF_DST, diffDst],
          [ARG_SCALE, scale],
          [ARG_SHIFT, shift],
          [ARG_DIFF_SRC, diffSrc],
          [ARG_DIFF_SCALE, diffScale],
          [ARG_DIFF_SHIFT, diffShift],
        ]);
      },
    };
  };
  const batchNorm = (
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
  ): BatchNormPrepared | null => {
    const key = `${rows},${channels},${eps},${relu}`;
    let prepared = batchNorms.get(key);
    if (prepared === undefined) {
      try {
        prepared = buildBatchNorm(rows, channels, eps, relu);
      } catch {
        prepared = null;
      }
      batchNorms.set(key, prepared);
    }
    return prepared;
  };

  const fusedEntries = new Map<string, FusedPrepared | null>();
  const buildFused = (
    g: Geometry,
    hasBias: boolean,
    relu: boolean,
  ): FusedPrepared => {
    const d = descs(g);
    const biasMd = hasBias ? memoryDesc([g.co], TAG_A) : undefined;
    const op = forwardOp(d, FORWARD_INFERENCE, biasMd);
    let pd: Deno.PointerValue;
    if (relu) {
      check(s.dnnl_primitive_attr_create(out), "attributes");
      const attr = handle();
      check(s.dnnl_post_ops_create(out), "post-ops");
      const postOps = handle();
      try {
        check(
          s.dnnl_post_ops_append_eltwise(postOps, 1, ELTWISE_RELU, 0, 0),
          "ReLU post-op",
        );
        check(s.dnnl_primitive_attr_set_post_ops(attr, postOps), "post-ops");
        pd = primitiveDesc(op, null, attr);
      } finally {
        s.dnnl_post_ops_destroy(postOps);
        s.dnnl_primitive_attr_destroy(attr);
      }
    } else {
      pd = primitiveDesc(op, null);
    }
    const prim = primitive(pd);
    const src = memory(d.src);
    const dst = memory(d.dst);
    const biasMem = biasMd === undefined ? undefined : memory(biasMd);
    const f = filterMemories(d.user, pd, QUERY_WEIGHTS_MD, true);
    return {
      impl: implOf(pd),
      run(x, w, bias, y) {
        setData(src, x);
        setData(dst, y);
        setData(f.user, w);
        if (f.reorder !== undefined) {
          setData(f.inner, blockedOf(f.bytes));
          execute(f.reorder, [[ARG_SRC, f.user], [ARG_DST, f.inner]]);
        }
        const args: [number, Deno.PointerValue][] = [
          [ARG_SRC, src],
          [ARG_WEIGHTS, f.inner],
          [ARG_DST, dst],
        ];
        if (biasMem !== undefined && bias !== undefined) {
          setData(biasMem, bias);
          args.push([ARG_BIAS, biasMem]);
        }
        execute(prim, args);
      },
    };
  };

  const runner = (direction: "forward" | "input" | "filter") =>
  (
    g: Geometry,
    a: Float32Array,
    b: Float32Array,
    output: Float32Array,
  ): boolean => {
    const prepared = prepare(g, direction);
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
      const prepared = batchNorm(rows, channels, eps, relu);
      if (prepared === null) return false;
      prepared.forward(arrays);
      return true;
    },
    batchNormWorkspaceFloats: (rows, channels, eps, relu) =>
      batchNorm(rows, channels, eps, relu)?.workspaceFloats,
    batchNormBackward(rows, channels, eps, relu, arrays) {
      const prepared = batchNorm(rows, channels, eps, relu);
      if (prepared === null) return false;
      prepared.backward(arrays);
      return true;
    },
    conv2dFused(g, x, w, bias, relu, y) {
      if (bias !== undefined && bias.length !== g.co) return false;
      const key = `${keyOf(g)}|${bias !== undefined}|${relu}`;
      let prepared = fusedEntries.get(key);
      if (prepared === undefined) {
        try {
          prepared = buildFused(g, bias !== undefined, relu);
        } catch {
          prepared = null;
        }
        fusedEntries.set(key, prepared);
      }
      if (prepared === null) return false;
      prepared.run(x, w, bias, y);
      return true;
    },
    implementation: (g, direction) => prepare(g, direction)?.impl,
  };
}
