/**
 * oneDNN's 2-D convolution primitives on NHWC float32 arrays: forward, input
 * gradient and filter gradient (built once per geometry, precision and
 * direction), and the inference convolution with bias and ReLU fused.
 *
 * Activations are used in place; the filter, TF.js's `[KH, KW, Ci, Co]`
 * (oneDNN's `hwio`), is reordered to the layout the primitive wants.
 *
 * In `bf16` precision the primitive's inputs are bf16 (`x` and `w` forward,
 * `dy` and `w` for the input gradient, `x` and `dy` for the filter
 * gradient): each float32 input is converted by a oneDNN reorder (round to
 * nearest even) into a shared staging buffer (activations, NHWC) or into the
 * blocked filter buffer; the outputs (`y`, `dx`, `dw`) stay float32, and
 * the products, exact in float32, are summed in float32 — what
 * `torch.autocast("cpu", dtype=torch.bfloat16)` does to a convolution.
 *
 * @module
 */
import type { Geometry } from "./_geometry.ts";
import {
  ARG_BIAS,
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DIFF_WEIGHTS,
  ARG_DST,
  ARG_SRC,
  ARG_WEIGHTS,
  BF16,
  CONVOLUTION_DIRECT,
  ELTWISE_RELU,
  F32,
  FORWARD_INFERENCE,
  FORWARD_TRAINING,
  OP_DESC_BYTES,
  QUERY_DIFF_WEIGHTS_MD,
  QUERY_WEIGHTS_MD,
  TAG_A,
  TAG_ANY,
  TAG_HWIO,
  TAG_NHWC,
} from "./_dnnl_abi.ts";
import { PrimitiveCache } from "./_dnnl_cache.ts";
import type { DnnlArg, DnnlContext } from "./_dnnl_context.ts";
import type { OpenMp } from "./_openmp.ts";
import { grantedEnv } from "./_ffi.ts";
import type { Precision } from "../precision.ts";

/** A direction of a convolution: `y` from `x`, `dx` from `dy`, `dw`. */
export type ConvDirection = "forward" | "input" | "filter";

/** One direction of one convolution: a primitive and how to feed it. */
export interface ConvPrimitive {
  /** The implementation oneDNN chose. */
  impl: string;
  /**
   * Runs it: `(x, w) → y`, `(dy, w) → dx` or `(x, dy) → dw`.
   *
   * @param a The first input.
   * @param b The second input.
   * @param out The output.
   */
  run(a: Float32Array, b: Float32Array, out: Float32Array): void;
}

/** A fused inference convolution (bias, ReLU) and how to feed it. */
export interface FusedConvPrimitive {
  /** The implementation oneDNN chose. */
  impl: string;
  /**
   * Runs it: `y = act(conv(x, w) + bias)`.
   *
   * @param x The input `[n, h, w, ci]`.
   * @param w The filter `[kh, kw, ci, co]`.
   * @param bias `[co]`, or `undefined` (built without bias).
   * @param y The output `[n, oh, ow, co]`.
   */
  run(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | undefined,
    y: Float32Array,
  ): void;
}

/**
 * A convolution's memory descriptors (oneDNN's, as bytes), strides and
 * padding: the user's float32 ones and those the primitive reads its inputs
 * in (the same objects in `fp32`, bf16 NHWC ones in `bf16`).
 */
interface ConvDescs {
  /** The user's float32 NHWC input `[n, h, w, ci]` (also `dx`). */
  src: Uint8Array;
  /** The user's float32 NHWC output `[n, oh, ow, co]` (also `dy`). */
  dst: Uint8Array;
  /** The user's float32 `hwio` filter (also `dw`). */
  user: Uint8Array;
  /** `x` as the primitive reads it. */
  srcIn: Uint8Array;
  /** `dy` as the primitive reads it. */
  dstIn: Uint8Array;
  /** The filter the primitive reads, layout `any`. */
  weightsIn: Uint8Array;
  /** The filter gradient the primitive writes (float32), layout `any`. */
  weightsOut: Uint8Array;
  strides: BigInt64Array;
  padL: BigInt64Array;
  padR: BigInt64Array;
}

/**
 * An activation input of a primitive: its memory, and how to give it the
 * user's float32 array (in place, or converted to bf16 first).
 */
interface InputMemory {
  /** The memory the primitive reads. */
  mem: Deno.PointerValue;
  /**
   * Makes `mem` hold `data` for the next execution.
   *
   * @param data The user's float32 array.
   */
  load(data: Float32Array): void;
}

/** One geometry: its forward descriptor and each direction once built. */
interface Entry {
  /** The geometry's memory descriptors, strides and padding. */
  descs: ConvDescs;
  forwardPd: Deno.PointerValue;
  directions: PrimitiveCache<ConvPrimitive>;
}

/**
 * The key of a geometry and precision in the caches.
 *
 * @param g The geometry.
 * @param precision The precision.
 * @returns Its fields, comma-separated.
 */
function keyOf(g: Geometry, precision: Precision): string {
  return [
    precision,
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
}

/**
 * OpenMP threads the bf16 filter gradient is built and run on (oneDNN 2.6's
 * AMX kernel for it, `jit:avx512_core_amx_bf16`, synchronises its threads
 * with spinning barriers: where another process shares the cores, one
 * descheduled thread stalls it, up to 10× its one-thread time).
 */
export const BF16_FILTER_THREADS: number = filterThreads(
  grantedEnv("VICREG_BF16_FILTER_THREADS"),
);

/**
 * `VICREG_BF16_FILTER_THREADS` as a thread count.
 *
 * @param text The variable's value, if set.
 * @returns A positive integer: the value, or 1 when unset or not one.
 */
function filterThreads(text: string | undefined): number {
  return text !== undefined && /^[1-9]\d*$/.test(text) ? Number(text) : 1;
}

/** The convolution primitives of one oneDNN engine, cached by geometry. */
export class DnnlConvolutions {
  #ctx: DnnlContext;
  #openMp: OpenMp | undefined;
  #entries = new PrimitiveCache<Entry>();
  #fused = new PrimitiveCache<FusedConvPrimitive>();

  /**
   * Starts with empty caches.
   *
   * @param ctx The engine to build on.
   * @param openMp The OpenMP runtime, to run the bf16 filter gradient on
   * {@linkcode BF16_FILTER_THREADS} threads (all threads without it).
   */
  constructor(ctx: DnnlContext, openMp?: OpenMp) {
    this.#ctx = ctx;
    this.#openMp = openMp;
  }

  /**
   * One direction of a convolution, built on first use.
   *
   * @param g The geometry.
   * @param direction Which direction.
   * @param precision The precision of its inputs.
   * @returns It, or `null` when oneDNN has no primitive for it.
   */
  prepare(
    g: Geometry,
    direction: ConvDirection,
    precision: Precision = "fp32",
  ): ConvPrimitive | null {
    const e = this.#entries.get(keyOf(g, precision), () => {
      const d = this.#descs(g, precision);
      return {
        descs: d,
        forwardPd: this.#ctx.primitiveDesc(
          this.#forwardOp(d, FORWARD_TRAINING),
          null,
        ),
        directions: new PrimitiveCache<ConvPrimitive>(),
      };
    });
    if (e === null) return null;
    const openMp = this.#openMp;
    if (direction !== "filter" || precision !== "bf16" || !openMp) {
      return e.directions.get(direction, () => this.#build(e, direction));
    }
    // Built and run on the same (fewer) threads: oneDNN plans its threads
    // when it builds a primitive.
    const threads = BF16_FILTER_THREADS;
    return e.directions.get(direction, () => {
      const inner = openMp.withThreads(
        threads,
        () => this.#build(e, direction),
      );
      return {
        impl: inner.impl,
        run: (a, b, out) =>
          openMp.withThreads(threads, () => inner.run(a, b, out)),
      };
    });
  }

  /**
   * The fused inference convolution, built on first use.
   *
   * @param g The geometry.
   * @param hasBias Whether it adds a bias `[co]`.
   * @param relu Whether it applies ReLU.
   * @param precision The precision of its inputs (the bias stays float32).
   * @returns It, or `null` when oneDNN has no primitive for it.
   */
  fused(
    g: Geometry,
    hasBias: boolean,
    relu: boolean,
    precision: Precision = "fp32",
  ): FusedConvPrimitive | null {
    return this.#fused.get(
      `${keyOf(g, precision)}|${hasBias}|${relu}`,
      () => this.#buildFused(g, hasBias, relu, precision),
    );
  }

  #descs(g: Geometry, precision: Precision): ConvDescs {
    const ctx = this.#ctx;
    const src = ctx.memoryDesc([g.n, g.ci, g.h, g.w], TAG_NHWC);
    const dst = ctx.memoryDesc([g.n, g.co, g.oh, g.ow], TAG_NHWC);
    const weights = [g.co, g.ci, g.kh, g.kw];
    const any = ctx.memoryDesc(weights, TAG_ANY);
    const bf16 = precision === "bf16";
    return {
      src,
      dst,
      user: ctx.memoryDesc(weights, TAG_HWIO),
      srcIn: bf16 ? ctx.memoryDesc([g.n, g.ci, g.h, g.w], TAG_NHWC, BF16) : src,
      dstIn: bf16
        ? ctx.memoryDesc([g.n, g.co, g.oh, g.ow], TAG_NHWC, BF16)
        : dst,
      weightsIn: bf16 ? ctx.memoryDesc(weights, TAG_ANY, BF16) : any,
      weightsOut: any,
      strides: ctx.dims(g.sh, g.sw),
      padL: ctx.dims(g.top, g.left),
      padR: ctx.dims(g.bottom, g.right),
    };
  }

  /** A forward convolution's operation descriptor (filter layout `any`). */
  #forwardOp(d: ConvDescs, prop: number, biasMd?: Uint8Array): Uint8Array {
    const op = new Uint8Array(OP_DESC_BYTES);
    this.#ctx.check(
      this.#ctx.symbols.dnnl_convolution_forward_desc_init!(
        op,
        prop,
        CONVOLUTION_DIRECT,
        d.srcIn,
        d.weightsIn,
        biasMd === undefined ? null : Deno.UnsafePointer.of(biasMd),
        d.dst,
        d.strides,
        d.padL,
        d.padR,
      ),
      "convolution descriptor",
    );
    return op;
  }

  /** A backward convolution's primitive descriptor. */
  #backwardPd(e: Entry, direction: "input" | "filter"): Deno.PointerValue {
    const ctx = this.#ctx;
    const s = ctx.symbols;
    const d = e.descs;
    const op = new Uint8Array(OP_DESC_BYTES);
    if (direction === "input") {
      ctx.check(
        s.dnnl_convolution_backward_data_desc_init!(
          op,
          CONVOLUTION_DIRECT,
          d.src,
          d.weightsIn,
          d.dstIn,
          d.strides,
          d.padL,
          d.padR,
        ),
        "backward-data descriptor",
      );
    } else {
      ctx.check(
        s.dnnl_convolution_backward_weights_desc_init!(
          op,
          CONVOLUTION_DIRECT,
          d.srcIn,
          d.weightsOut,
          null,
          d.dstIn,
          d.strides,
          d.padL,
          d.padR,
        ),
        "backward-weights descriptor",
      );
    }
    return ctx.primitiveDesc(op, e.forwardPd);
  }

  #build(e: Entry, direction: ConvDirection): ConvPrimitive {
    const ctx = this.#ctx;
    const d = e.descs;
    const pd = direction === "forward"
      ? e.forwardPd
      : this.#backwardPd(e, direction);
    const prim = ctx.primitive(pd);
    const impl = ctx.implOf(pd);
    if (direction === "filter") {
      const src = this.#input(d.src, d.srcIn, 0);
      const dst = this.#input(d.dst, d.dstIn, 1);
      const f = ctx.filterMemories(d.user, pd, QUERY_DIFF_WEIGHTS_MD, false);
      return {
        impl,
        run(x, dy, dw) {
          src.load(x);
          dst.load(dy);
          ctx.setData(f.user, dw);
          ctx.prepareFilter(f, false);
          ctx.execute(prim, [
            [ARG_SRC, src.mem],
            [ARG_DIFF_DST, dst.mem],
            [ARG_DIFF_WEIGHTS, f.inner],
          ]);
          if (f.reorder !== undefined) {
            ctx.execute(f.reorder, [[ARG_SRC, f.inner], [ARG_DST, f.user]]);
          }
        },
      };
    }
    const f = ctx.filterMemories(d.user, pd, QUERY_WEIGHTS_MD, true);
    const forward = direction === "forward";
    const [inArg, outArg] = forward
      ? [ARG_SRC, ARG_DST]
      : [ARG_DIFF_DST, ARG_DIFF_SRC];
    const inMem = forward
      ? this.#input(d.src, d.srcIn, 0)
      : this.#input(d.dst, d.dstIn, 0);
    const outMem = ctx.memory(forward ? d.dst : d.src);
    return {
      impl,
      run(input, w, output) {
        inMem.load(input);
        ctx.setData(outMem, output);
        ctx.setData(f.user, w);
        ctx.prepareFilter(f, true);
        ctx.execute(prim, [
          [inArg, inMem.mem],
          [ARG_WEIGHTS, f.inner],
          [outArg, outMem],
        ]);
      },
    };
  }

  /**
   * An activation input: the user's float32 memory itself, or (when the
   * primitive reads another descriptor) a memory over staging buffer `slot`
   * that a reorder fills from the user's array.
   */
  #input(user: Uint8Array, inner: Uint8Array, slot: number): InputMemory {
    const ctx = this.#ctx;
    const userMem = ctx.memory(user);
    if (inner === user) {
      return { mem: userMem, load: (data) => ctx.setData(userMem, data) };
    }
    const mem = ctx.memory(inner);
    const reorder = ctx.reorder(user, inner);
    return {
      mem,
      load(data) {
        ctx.setData(userMem, data);
        ctx.setData(mem, ctx.staging(slot, data.length));
        ctx.execute(reorder, [[ARG_SRC, userMem], [ARG_DST, mem]]);
      },
    };
  }

  #buildFused(
    g: Geometry,
    hasBias: boolean,
    relu: boolean,
    precision: Precision,
  ): FusedConvPrimitive {
    const ctx = this.#ctx;
    const s = ctx.symbols;
    const d = this.#descs(g, precision);
    const biasMd = hasBias ? ctx.memoryDesc([g.co], TAG_A, F32) : undefined;
    const op = this.#forwardOp(d, FORWARD_INFERENCE, biasMd);
    let pd: Deno.PointerValue;
    if (relu) {
      const attr = ctx.create(
        (out) => s.dnnl_primitive_attr_create(out),
        "attributes",
      );
      const postOps = ctx.create(
        (out) => s.dnnl_post_ops_create(out),
        "post-ops",
      );
      try {
        ctx.check(
          s.dnnl_post_ops_append_eltwise(postOps, 1, ELTWISE_RELU, 0, 0),
          "ReLU post-op",
        );
        ctx.check(
          s.dnnl_primitive_attr_set_post_ops(attr, postOps),
          "post-ops",
        );
        pd = ctx.primitiveDesc(op, null, attr);
      } finally {
        s.dnnl_post_ops_destroy(postOps);
        s.dnnl_primitive_attr_destroy(attr);
      }
    } else {
      pd = ctx.primitiveDesc(op, null);
    }
    const prim = ctx.primitive(pd);
    const src = this.#input(d.src, d.srcIn, 0);
    const dst = ctx.memory(d.dst);
    const biasMem = biasMd === undefined ? undefined : ctx.memory(biasMd);
    const f = ctx.filterMemories(d.user, pd, QUERY_WEIGHTS_MD, true);
    return {
      impl: ctx.implOf(pd),
      run(x, w, bias, y) {
        src.load(x);
        ctx.setData(dst, y);
        ctx.setData(f.user, w);
        ctx.prepareFilter(f, true);
        const args: DnnlArg[] = [
          [ARG_SRC, src.mem],
          [ARG_WEIGHTS, f.inner],
          [ARG_DST, dst],
        ];
        if (biasMem !== undefined && bias !== undefined) {
          ctx.setData(biasMem, bias);
          args.push([ARG_BIAS, biasMem]);
        }
        ctx.execute(prim, args);
      },
    };
  }
}
