/**
 * oneDNN's training-mode batch-normalisation primitives (+ a fused ReLU),
 * forward and backward, on channels-last float32 arrays, built once per
 * shape.
 *
 * @module
 */
import {
  ARG_DIFF_DST,
  ARG_DIFF_SCALE,
  ARG_DIFF_SHIFT,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_MEAN,
  ARG_SCALE,
  ARG_SHIFT,
  ARG_SRC,
  ARG_VARIANCE,
  ARG_WORKSPACE,
  BACKWARD,
  FORWARD_TRAINING,
  FUSE_NORM_RELU,
  OP_DESC_BYTES,
  QUERY_WORKSPACE_MD,
  TAG_A,
  TAG_NHWC,
  USE_SCALE,
  USE_SHIFT,
} from "./_dnnl_abi.ts";
import { PrimitiveCache } from "./_dnnl_cache.ts";
import type { DnnlArg, DnnlContext } from "./_dnnl_context.ts";
import type { OpenMp } from "./_openmp.ts";

/**
 * Elements of a batch normalisation's input per OpenMP thread (16 MiB of
 * float32): smaller inputs run on fewer threads, down to one.
 */
export const BN_ELEMENTS_PER_THREAD: number = 2 ** 22;

/**
 * What a batch normalisation's forward pass reads (`x`, `gamma`, `beta`,
 * `[channels]` each but `x`) and writes (`y`, `mean`, `variance`, and the
 * ReLU's `workspace`).
 */
export interface BatchNormForwardArrays {
  /** The input, `rows × channels`. */
  x: Float32Array;
  /** γ, `[channels]`. */
  gamma: Float32Array;
  /** β, `[channels]`. */
  beta: Float32Array;
  /** The output, `rows × channels`. */
  y: Float32Array;
  /** The batch mean written, `[channels]`. */
  mean: Float32Array;
  /** The biased batch variance written, `[channels]`. */
  variance: Float32Array;
  /** The fused ReLU's workspace written (needed with ReLU). */
  workspace?: Float32Array;
}

/**
 * What a batch normalisation's backward pass reads (`x`, `dy` and what the
 * forward pass saw and wrote) and writes (`dx`, `dGamma`, `dBeta`).
 */
export interface BatchNormBackwardArrays {
  /** The forward input, `rows × channels`. */
  x: Float32Array;
  /** The output gradient, `rows × channels`. */
  dy: Float32Array;
  /** The forward pass's batch mean, `[channels]`. */
  mean: Float32Array;
  /** The forward pass's batch variance, `[channels]`. */
  variance: Float32Array;
  /** γ, `[channels]`. */
  gamma: Float32Array;
  /** β, `[channels]`. */
  beta: Float32Array;
  /** The forward pass's ReLU workspace (needed with ReLU). */
  workspace?: Float32Array;
  /** The input gradient written, `rows × channels`. */
  dx: Float32Array;
  /** dγ written, `[channels]`. */
  dGamma: Float32Array;
  /** dβ written, `[channels]`. */
  dBeta: Float32Array;
}

/** A batch normalisation's two primitives and how to feed them. */
export interface BatchNormPrimitive {
  /** Floats of ReLU workspace the forward pass writes (0 without ReLU). */
  workspaceFloats: number;
  /**
   * Runs the forward pass.
   *
   * @param arrays Its inputs and outputs.
   */
  forward(arrays: BatchNormForwardArrays): void;
  /**
   * Runs the backward pass.
   *
   * @param arrays Its inputs and outputs.
   */
  backward(arrays: BatchNormBackwardArrays): void;
}

/**
 * The batch-normalisation primitives of one oneDNN engine, by shape.
 *
 * A batch normalisation is a few passes over memory with a barrier between
 * them: on many threads, small ones wait on the barriers (tens of times
 * slower than on one thread when the cores are shared). With the OpenMP
 * runtime at hand, each primitive is built and run on one thread per
 * {@linkcode BN_ELEMENTS_PER_THREAD} elements of its input (a primitive
 * takes its thread count when it is built).
 */
export class DnnlBatchNorms {
  #ctx: DnnlContext;
  #openMp: OpenMp | undefined;
  #cache = new PrimitiveCache<BatchNormPrimitive>();

  /**
   * Starts with an empty cache.
   *
   * @param ctx The engine to build on.
   * @param openMp The OpenMP runtime oneDNN runs on, to set thread counts.
   */
  constructor(ctx: DnnlContext, openMp?: OpenMp) {
    this.#ctx = ctx;
    this.#openMp = openMp;
  }

  /** Runs `f` on the threads an input of `elements` gets. */
  #threads<T>(elements: number, f: () => T): T {
    const threads = Math.floor(elements / BN_ELEMENTS_PER_THREAD);
    return this.#openMp?.withThreads(Math.max(1, threads), f) ?? f();
  }

  /**
   * The primitives for a shape, built on first use.
   *
   * @param rows Rows of `x` (`N·H·W`).
   * @param channels Channels of `x`.
   * @param eps The variance epsilon.
   * @param relu Whether ReLU is fused.
   * @returns Them, or `null` when oneDNN has no primitive for the shape.
   */
  get(
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
  ): BatchNormPrimitive | null {
    return this.#cache.get(
      `${rows},${channels},${eps},${relu}`,
      () =>
        this.#threads(
          rows * channels,
          () => this.#build(rows, channels, eps, relu),
        ),
    );
  }

  #build(
    rows: number,
    channels: number,
    eps: number,
    relu: boolean,
  ): BatchNormPrimitive {
    const ctx = this.#ctx;
    const s = ctx.symbols;
    // Rows as a batch of 1×1 NHWC images: oneDNN's JIT kernels take this
    // ("nspc") layout; a plain 2-D `[rows, C]` gets its reference kernel,
    // ~40× slower.
    const data = ctx.memoryDesc([rows, channels, 1, 1], TAG_NHWC);
    const vector = ctx.memoryDesc([channels], TAG_A);
    const flags = USE_SCALE | USE_SHIFT | (relu ? FUSE_NORM_RELU : 0);
    const fop = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
      s.dnnl_batch_normalization_forward_desc_init!(
        fop,
        FORWARD_TRAINING,
        data,
        eps,
        flags,
      ),
      "batch-norm descriptor",
    );
    const fpd = ctx.primitiveDesc(fop, null);
    const forward = ctx.primitive(fpd);
    const bop = new Uint8Array(OP_DESC_BYTES);
    ctx.check(
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
    const backward = ctx.primitive(ctx.primitiveDesc(bop, fpd));
    const [src, dst, diffSrc, diffDst] = [0, 1, 2, 3].map(() =>
      ctx.memory(data)
    );
    const [mean, variance, scale, shift, diffScale, diffShift] = [
      0,
      1,
      2,
      3,
      4,
      5,
    ].map(() => ctx.memory(vector));
    let workspace: Deno.PointerValue = null;
    let workspaceFloats = 0;
    if (relu) {
      const md = ctx.queryMd(fpd, QUERY_WORKSPACE_MD);
      if (md === null) throw new Error("oneDNN: no ReLU workspace");
      workspaceFloats = Math.ceil(ctx.sizeOf(md) / 4);
      workspace = ctx.memory(md);
    }
    const common = (
      a: { x: Float32Array; mean: Float32Array; variance: Float32Array },
      ws: Float32Array | undefined,
    ): DnnlArg[] => {
      ctx.setData(src, a.x);
      ctx.setData(mean, a.mean);
      ctx.setData(variance, a.variance);
      const args: DnnlArg[] = [
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
        ctx.setData(workspace, ws);
        args.push([ARG_WORKSPACE, workspace]);
      }
      return args;
    };
    return {
      workspaceFloats,
      forward: (a) => {
        const args = common(a, a.workspace);
        ctx.setData(dst, a.y);
        ctx.setData(scale, a.gamma);
        ctx.setData(shift, a.beta);
        this.#threads(rows * channels, () =>
          ctx.execute(forward, [
            ...args,
            [ARG_DST, dst],
            [ARG_SCALE, scale],
            [ARG_SHIFT, shift],
          ]));
      },
      backward: (a) => {
        const args = common(a, a.workspace);
        ctx.setData(diffDst, a.dy);
        ctx.setData(scale, a.gamma);
        // oneDNN 2.x's backward primitive takes the shift as an input too.
        ctx.setData(shift, a.beta);
        ctx.setData(diffSrc, a.dx);
        ctx.setData(diffScale, a.dGamma);
        ctx.setData(diffShift, a.dBeta);
        this.#threads(rows * channels, () =>
          ctx.execute(backward, [
            ...args,
            [ARG_DIFF_DST, diffDst],
            [ARG_SCALE, scale],
            [ARG_SHIFT, shift],
            [ARG_DIFF_SRC, diffSrc],
            [ARG_DIFF_SCALE, diffScale],
            [ARG_DIFF_SHIFT, diffShift],
          ]));
      },
    };
  }
}
