/**
 * The options of a VICReg training step ({@linkcode StepOptions}: how it
 * back-propagates, in how many slices, with which views' geometry) and what
 * a step returns.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import type { VicregLoss } from "./vicreg_model.ts";

/**
 * How a slice of the batch back-propagates, from fastest and largest to
 * slowest and smallest: `joint` (one tape over every view), `mixed` (view 1
 * recomputed block by block, the other views on one tape: one more forward
 * pass of one view, about half the memory with two views), `view-by-view`
 * (every view recomputed block by block: one more forward pass of each view,
 * one residual block's activations at a time).
 */
export type StepMode = "joint" | "mixed" | "view-by-view";

/** Options of {@linkcode stepGradients}. */
export interface StepOptions {
  /** How each slice back-propagates; see {@linkcode StepMode}. @default {"joint"} */
  mode?: StepMode;
  /**
   * Images per slice, M ≥ 2. The batch B is processed in ⌈B/M⌉ slices (the
   * last one smaller when M does not divide B; one of a single image joins
   * the slice before); `B` or more is one slice.
   * @default {Infinity}
   */
  microBatch?: number;
  /**
   * With micro-batches in `joint` mode, how many of the last slices keep
   * their activations on the loss's tape instead of being embedded without
   * one and re-run: each kept slice saves a forward pass of its images and
   * holds its activations until the loss is back-propagated. One slice (the
   * default) costs no memory beyond what re-running a slice takes; all of
   * them is one tape over the batch, BatchNorm still per slice. Other modes
   * re-run every slice.
   * @default {1}
   */
  keptSlices?: number;
  /**
   * Each view's crop boxes and flips (length B each), for the local loss's
   * `location` matching.
   */
  geometry?: readonly (readonly ViewGeometry[])[];
  /**
   * With micro-batches, called after each slice of each pass (the embedding
   * pass, then the back-propagating one): `done` of `total` slice passes,
   * twice the slices (kept slices count as back-propagated when the loss's
   * tape is).
   */
  onSlice?: (done: number, total: number) => void;
}

/** The defaults of {@linkcode StepOptions}' `mode` and `microBatch`. */
export const DEFAULT_STEP_OPTIONS: Readonly<
  Required<Omit<StepOptions, "geometry" | "onSlice">>
> = Object.freeze({ mode: "joint", microBatch: Infinity, keptSlices: 1 });

/** What {@linkcode stepGradients} returns; the caller disposes every tensor. */
export interface StepGradients {
  /** The loss of the whole batch and its terms. */
  loss: VicregLoss;
  /** d(total)/d(parameter) by {@linkcode VicregModel.parameters} name. */
  grads: Map<string, tf.Tensor>;
}

/**
 * Resolves and checks {@linkcode StepOptions}.
 *
 * @param options The options.
 * @returns Every option, defaults filled in.
 */
export function resolveStepOptions(
  options: StepOptions = {},
): Required<Omit<StepOptions, "geometry" | "onSlice">> {
  const out = { ...DEFAULT_STEP_OPTIONS, ...withoutUndefined(options) };
  if (!["joint", "mixed", "view-by-view"].includes(out.mode)) {
    throw new RangeError(
      `Expected step option "mode" to be joint, mixed or view-by-view: received ${
        JSON.stringify(out.mode)
      }`,
    );
  }
  if (
    !(out.microBatch >= 2) ||
    (Number.isFinite(out.microBatch) && !Number.isInteger(out.microBatch))
  ) {
    throw new RangeError(
      `Expected step option "microBatch" to be an integer ≥ 2 (training-mode BatchNorm needs two images per slice): received ${out.microBatch}`,
    );
  }
  if (!(Number.isInteger(out.keptSlices) && out.keptSlices >= 0)) {
    throw new RangeError(
      `Expected step option "keptSlices" to be an integer ≥ 0: received ${out.keptSlices}`,
    );
  }
  return {
    mode: out.mode,
    microBatch: out.microBatch,
    keptSlices: out.keptSlices,
  };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

/**
 * The slices `[start, size]` of a batch of `b` in slices of `m`, the last
 * one smaller when `m` does not divide `b`; a last slice of one image joins
 * the one before (training-mode BatchNorm needs two).
 *
 * @param b The batch size.
 * @param m Images per slice.
 * @returns The slices in order.
 */
export function sliceRanges(b: number, m: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < b; start += m) {
    out.push([start, Math.min(m, b - start)]);
  }
  if (out.length > 1 && out.at(-1)![1] === 1) {
    out.pop();
    out.at(-1)![1] += 1;
  }
  return out;
}
