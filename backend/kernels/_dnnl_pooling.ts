/**
 * oneDNN's max-pooling primitives on channels-last float32 arrays, forward
 * and backward, built once per geometry: vectorised and on every core where
 * the JavaScript loops run on one.
 *
 * @module
 */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_SRC,
  ARG_WORKSPACE,
  FORWARD_INFERENCE,
  FORWARD_TRAINING,
  OP_DESC_BYTES,
  POOLING_MAX,
  QUERY_WORKSPACE_MD,
  TAG_NHWC,
} from "./_dnnl_abi.ts";
import { PrimitiveCache } from "./_dnnl_cache.ts";
import type { DnnlContext } from "./_dnnl_context.ts";
import type { Geometry } from "./_geometry.ts";

/** A pool's inference primitive and its memories. */
interface ForwardPool {
  primitive: Deno.PointerValue;
  src: Deno.PointerValue;
  dst: Deno.PointerValue;
}

/** A pool's training and backward primitives and their memories. */
interface BackwardPool {
  training: Deno.PointerValue;
  backward: Deno.PointerValue;
  src: Deno.PointerValue;
  dst: Deno.PointerValue;
  workspace: Deno.PointerValue;
  diffDst: Deno.PointerValue;
  diffSrc: Deno.PointerValue;
  /** The training pass's output and workspace, kept for the next call. */
  scratch: { dst: Float32Array; workspace: Float32Array };
}

/** A pool's memory descriptors and the geometry arrays oneDNN takes. */
interface PoolDescs {
  src: Uint8Array;
  dst: Uint8Array;
  /** Strides, kernel, dilation, padding before and after. */
  geometry: readonly [
    BigInt64Array,
    BigInt64Array,
    BigInt64Array,
    BigInt64Array,
    BigInt64Array,
  ];
}

/**
 * The padding below and right of the input that gives exactly `g`'s output
 * size (oneDNN checks `(in − k + before + after) / stride + 1 = out`): the
 * windows depend only on the padding before, and max pooling skips padding.
 */
function after(
  input: number,
  out: number,
  k: number,
  s: number,
  before: number,
): number {
  return Math.max(0, (out - 1) * s + k - input - before);
}

/**
 * oneDNN's max pooling, cached by geometry (`ci` channels in and out); the
 * backward primitives (and their scratch buffers) are built only for a
 * geometry that is back-propagated.
 */
export class DnnlPooling {
  #ctx: DnnlContext;
  #forwards = new PrimitiveCache<ForwardPool>();
  #backwards = new PrimitiveCache<BackwardPool>();

  /**
   * Binds the primitives to a context.
   *
   * @param ctx The engine, stream and symbols.
   */
  constructor(ctx: DnnlContext) {
    this.#ctx = ctx;
  }

  /**
   * `y` = each window's maximum (NHWC).
   *
   * @param g The geometry.
   * @param x The input, `[n, h, w, ci]`.
   * @param y The output, `[n, oh, ow, ci]`.
   * @returns Whether oneDNN ran it.
   */
  maxPool(g: Geometry, x: Float32Array, y: Float32Array): boolean {
    const p = this.#forwards.get(keyOf(g), () => this.#buildForward(g));
    if (p === null) return false;
    const ctx = this.#ctx;
    ctx.setData(p.src, x);
    ctx.setData(p.dst, y);
    ctx.execute(p.primitive, [[ARG_SRC, p.src], [ARG_DST, p.dst]]);
    return true;
  }

  /**
   * `dx`: each `dy` added at its window's maximum, as oneDNN's training
   * pass records it (the first in row-major window order); the pass is run
   * again on `x` for its workspace.
   *
   * @param g The geometry.
   * @param x The forward input, `[n, h, w, ci]`.
   * @param dy The output gradient, `[n, oh, ow, ci]`.
   * @param dx The input gradient written, `[n, h, w, ci]`.
   * @returns Whether oneDNN ran it.
   */
  maxPoolBackward(
    g: Geometry,
    x: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
  ): boolean {
    const p = this.#backwards.get(keyOf(g), () => this.#buildBackward(g));
    if (p === null) return false;
    const ctx = this.#ctx;
    ctx.setData(p.src, x);
    ctx.setData(p.dst, p.scratch.dst);
    ctx.setData(p.workspace, p.scratch.workspace);
    ctx.execute(p.training, [
      [ARG_SRC, p.src],
      [ARG_DST, p.dst],
      [ARG_WORKSPACE, p.workspace],
    ]);
    ctx.setData(p.diffDst, dy);
    ctx.setData(p.diffSrc, dx);
    ctx.execute(p.backward, [
      [ARG_DIFF_DST, p.diffDst],
      [ARG_WORKSPACE, p.workspace],
      [ARG_DIFF_SRC, p.diffSrc],
    ]);
    return true;
  }

  #descs(g: Geometry): PoolDescs {
    const ctx = this.#ctx;
    return {
      src: ctx.memoryDesc([g.n, g.ci, g.h, g.w], TAG_NHWC),
      dst: ctx.memoryDesc([g.n, g.ci, g.oh, g.ow], TAG_NHWC),
      geometry: [
        ctx.dims(g.sh, g.sw),
        ctx.dims(g.kh, g.kw),
        ctx.dims(0, 0),
        ctx.dims(g.top, g.left),
        ctx.dims(
          after(g.h, g.oh, g.kh, g.sh, g.top),
          after(g.w, g.ow, g.kw, g.sw, g.left),
        ),
      ],
    };
  }

  /** A forward primitive descriptor of propagation kind `prop`. */
  #forwardPd(prop: number, d: PoolDescs): Deno.PointerValue {
    const ctx = this.#ctx;
    const desc = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
      ctx.symbols.dnnl_pooling_v2_forward_desc_init!(
        desc,
        prop,
        POOLING_MAX,
        d.src,
        d.dst,
        ...d.geometry,
      ),
      "pooling descriptor",
    );
    return ctx.primitiveDesc(desc, null);
  }

  #buildForward(g: Geometry): ForwardPool {
    const ctx = this.#ctx;
    const d = this.#descs(g);
    return {
      primitive: ctx.primitive(this.#forwardPd(FORWARD_INFERENCE, d)),
      src: ctx.memory(d.src),
      dst: ctx.memory(d.dst),
    };
  }

  #buildBackward(g: Geometry): BackwardPool {
    const ctx = this.#ctx;
    const d = this.#descs(g);
    const trainingPd = this.#forwardPd(FORWARD_TRAINING, d);
    const bop = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
      ctx.symbols.dnnl_pooling_v2_backward_desc_init!(
        bop,
        POOLING_MAX,
        d.src,
        d.dst,
        ...d.geometry,
      ),
      "pooling backward descriptor",
    );
    const backwardPd = ctx.primitiveDesc(bop, trainingPd);
    const workspaceMd = ctx.queryMd(trainingPd, QUERY_WORKSPACE_MD);
    if (workspaceMd === null) throw new Error("oneDNN: no pooling workspace");
    return {
      training: ctx.primitive(trainingPd),
      backward: ctx.primitive(backwardPd),
      src: ctx.memory(d.src),
      dst: ctx.memory(d.dst),
      workspace: ctx.memory(workspaceMd),
      diffDst: ctx.memory(d.dst),
      diffSrc: ctx.memory(d.src),
      scratch: {
        dst: new Float32Array(g.n * g.oh * g.ow * g.ci),
        workspace: new Float32Array(Math.ceil(ctx.sizeOf(workspaceMd) / 4)),
      },
    };
  }
}

/** The cache key of a pool's geometry. */
function keyOf(g: Geometry): string {
  return [
    g.n,
    g.h,
    g.w,
    g.ci,
    g.oh,
    g.ow,
    g.kh,
    g.kw,
    g.sh,
    g.sw,
    g.top,
    g.left,
  ]
    .join(",");
}
