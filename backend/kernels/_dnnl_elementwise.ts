/**
 * oneDNN's binary and element-wise primitives on float32 arrays, for the
 * `native` backend's element-wise kernels on large tensors: multithreaded
 * and vectorised where the JavaScript loops run on one core. Built once per
 * shape and operation.
 *
 * @module
 */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_SRC,
  ARG_SRC_1,
  BINARY_ALGS,
  ELTWISE_ALGS,
  FORWARD_INFERENCE,
  FORWARD_TRAINING,
  OP_DESC_BYTES,
  TAG_A,
} from "./_dnnl_abi.ts";
import { PrimitiveCache } from "./_dnnl_cache.ts";
import type { DnnlArg, DnnlContext } from "./_dnnl_context.ts";

/** A binary operation oneDNN runs: `out = a ∘ b`. */
export type BinaryOp = keyof typeof BINARY_ALGS;

/** An element-wise operation oneDNN runs (`linear`: `alpha · x + beta`). */
export type EltwiseOp = keyof typeof ELTWISE_ALGS;

/** A primitive and its arguments, in the order `#run` takes the arrays. */
interface Built {
  primitive: Deno.PointerValue;
  args: DnnlArg[];
}

/** oneDNN's binary and element-wise primitives, cached by shape. */
export class DnnlElementwise {
  #ctx: DnnlContext;
  #binaries = new PrimitiveCache<Built>();
  #eltwises = new PrimitiveCache<Built>();
  #reluBackwards = new PrimitiveCache<Built>();

  /**
   * Binds the primitives to a context.
   *
   * @param ctx The engine, stream and symbols.
   */
  constructor(ctx: DnnlContext) {
    this.#ctx = ctx;
  }

  /**
   * `out = a ∘ b` on row-major arrays of shape `dims`, with `b` of shape
   * `bDims`: `dims` again, or with ones where it is broadcast (`[1]` for a
   * scalar, `[1, C]` for a row tiled over `[R, C]`, `[O, 1, C]` for a map
   * tiled over the middle axis of `[O, M, C]`).
   *
   * @param op The operation.
   * @param dims The shape of `a` and `out` (rank 1 to 4).
   * @param bDims The shape of `b`, of `dims`' rank.
   * @param a The first input.
   * @param b The second input.
   * @param out The output (may not alias the inputs).
   * @returns Whether oneDNN ran it (`false`: no primitive for it here).
   */
  binary(
    op: BinaryOp,
    dims: number[],
    bDims: number[],
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
  ): boolean {
    const built = this.#binaries.get(
      `${op}:${dims.join("x")}:${bDims.join("x")}`,
      () => this.#buildBinary(op, dims, bDims),
    );
    if (built === null) return false;
    this.#run(built, [a, b, out]);
    return true;
  }

  /**
   * `out = f(x)` element by element.
   *
   * @param op The operation.
   * @param alpha Its α (`linear`'s scale; `relu`'s negative slope).
   * @param beta Its β (`linear`'s shift).
   * @param x The input.
   * @param out The output, of `x`'s length.
   * @returns Whether oneDNN ran it.
   */
  eltwise(
    op: EltwiseOp,
    alpha: number,
    beta: number,
    x: Float32Array,
    out: Float32Array,
  ): boolean {
    const built = this.#eltwises.get(
      `${op}:${x.length}:${alpha}:${beta}`,
      () => this.#buildEltwise(op, alpha, beta, x.length),
    );
    if (built === null) return false;
    this.#run(built, [x, out]);
    return true;
  }

  /**
   * ReLU's gradient: `dx = x > 0 ? dy : 0 · dy`.
   *
   * @param x ReLU's input.
   * @param dy The gradient of its output.
   * @param dx The gradient of its input, of `x`'s length.
   * @returns Whether oneDNN ran it.
   */
  reluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array): boolean {
    const built = this.#reluBackwards.get(
      `${x.length}`,
      () => this.#buildReluBackward(x.length),
    );
    if (built === null) return false;
    this.#run(built, [x, dy, dx]);
    return true;
  }

  /** Points the primitive's arguments at `arrays` (in `built.args`' order) and runs it. */
  #run(built: Built, arrays: Float32Array[]): void {
    const ctx = this.#ctx;
    arrays.forEach((array, i) => ctx.setData(built.args[i][1], array));
    ctx.execute(built.primitive, built.args);
  }

  /** A primitive descriptor of an element-wise forward operation on `md`. */
  #eltwiseForward(
    prop: number,
    alg: number,
    md: Uint8Array,
    alpha: number,
    beta: number,
  ): Deno.PointerValue {
    const ctx = this.#ctx;
    const desc = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
      ctx.symbols.dnnl_eltwise_forward_desc_init!(
        desc,
        prop,
        alg,
        md,
        alpha,
        beta,
      ),
      "eltwise descriptor",
    );
    return ctx.primitiveDesc(desc, null);
  }

  #buildBinary(op: BinaryOp, dims: number[], bDims: number[]): Built {
    const ctx = this.#ctx;
    // dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd: plain row-major of each rank.
    const tag = TAG_A + dims.length - 1;
    const src = ctx.memoryDesc(dims, tag);
    const src1 = ctx.memoryDesc(bDims, tag);
    const desc = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
      ctx.symbols.dnnl_binary_desc_init!(
        desc,
        BINARY_ALGS[op],
        src,
        src1,
        src,
      ),
      "binary descriptor",
    );
    const pd = ctx.primitiveDesc(desc, null);
    return {
      primitive: ctx.primitive(pd),
      args: [
        [ARG_SRC, ctx.memory(src)],
        [ARG_SRC_1, ctx.memory(src1)],
        [ARG_DST, ctx.memory(src)],
      ],
    };
  }

  #buildReluBackward(length: number): Built {
    const ctx = this.#ctx;
    const md = ctx.memoryDesc([length], TAG_A);
    const hint = this.#eltwiseForward(
      FORWARD_TRAINING,
      ELTWISE_ALGS.relu,
      md,
      0,
      0,
    );
    const desc = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
      ctx.symbols.dnnl_eltwise_backward_desc_init!(
        desc,
        ELTWISE_ALGS.relu,
        md,
        md,
        0,
        0,
      ),
      "eltwise backward descriptor",
    );
    const pd = ctx.primitiveDesc(desc, hint);
    return {
      primitive: ctx.primitive(pd),
      args: [
        [ARG_SRC, ctx.memory(md)],
        [ARG_DIFF_DST, ctx.memory(md)],
        [ARG_DIFF_SRC, ctx.memory(md)],
      ],
    };
  }

  #buildEltwise(
    op: EltwiseOp,
    alpha: number,
    beta: number,
    length: number,
  ): Built {
    const ctx = this.#ctx;
    const md = ctx.memoryDesc([length], TAG_A);
    const pd = this.#eltwiseForward(
      FORWARD_INFERENCE,
      ELTWISE_ALGS[op],
      md,
      alpha,
      beta,
    );
    return {
      primitive: ctx.primitive(pd),
      args: [[ARG_SRC, ctx.memory(md)], [ARG_DST, ctx.memory(md)]],
    };
  }
}
