/**
 * The gradients of one VICReg step: the loss of the whole batch
 * ({@linkcode VicregModel.loss}) and d(loss)/d(parameter), computed jointly
 * or with less memory — view by view, and in micro-batches whose loss still
 * sees the whole batch. Every strategy gives the same update up to float
 * rounding (with micro-batches, BatchNorm sees one slice at a time).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { leanTape } from "@scaling-vicreg/backend";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import type { CheckpointedForward } from "@scaling-vicreg/models";
import type { Projections, VicregLoss, VicregModel } from "./vicreg_model.ts";

/**
 * How a slice of the batch back-propagates, from fastest and largest to
 * slowest and smallest: `joint` (one tape over both views), `mixed` (view 1
 * recomputed block by block, view 2 on one tape: one more forward pass of
 * one view, about half the memory), `view-by-view` (both views recomputed
 * block by block: one more forward pass of each view, one residual block's
 * activations at a time).
 */
export type StepMode = "joint" | "mixed" | "view-by-view";

/** Options of {@linkcode stepGradients}. */
export interface StepOptions {
  /** How each slice back-propagates; see {@linkcode StepMode}. @default {"joint"} */
  mode?: StepMode;
  /**
   * Images per slice, M. The batch B is processed in ⌈B/M⌉ slices (the last
   * one smaller when M does not divide B); `B` or more is one slice.
   * @default {Infinity}
   */
  microBatch?: number;
  /**
   * Each view's crop boxes and flips (length B each), for the local loss's
   * `location` matching.
   */
  geometry?: [readonly ViewGeometry[], readonly ViewGeometry[]];
}

/** The defaults of {@linkcode StepOptions}' `mode` and `microBatch`. */
export const DEFAULT_STEP_OPTIONS: Readonly<
  Required<Omit<StepOptions, "geometry">>
> = Object.freeze({ mode: "joint", microBatch: Infinity });

/** What {@linkcode stepGradients} returns; the caller disposes every tensor. */
export interface StepGradients {
  /** The loss of the whole batch and its terms. */
  loss: VicregLoss;
  /** d(total)/d(parameter) by {@linkcode VicregModel.parameters} name. */
  grads: Map<string, tf.Tensor>;
}

/** A function of both views' projections whose gradient is wanted. */
type Head = (p1: Projections, p2: Projections) => tf.Scalar;

/**
 * The loss of a step on two views `[B, H, W, 3]` and its gradient with
 * respect to every parameter of the model.
 *
 * One slice (`microBatch ≥ B`): the model's loss on a tape, run as `mode`
 * says. The running statistics move once per view, view 1 first.
 *
 * Micro-batches (`microBatch` = M < B, the "gradient cache"): (1) embed every
 * slice of both views without a tape, which updates the running statistics
 * once per slice and view; (2) concatenate the projections to `[B, D]` (and
 * `[B, h·w, d]`), compute the loss of the whole batch exactly as one slice
 * would, and its gradient with respect to those projections; (3) re-run each
 * slice with a tape (running statistics frozen) and back-propagate its rows
 * of that gradient, summing the parameter gradients over slices. The loss,
 * and so its variance and covariance terms, sees all B rows; BatchNorm
 * normalises each slice with its own statistics, as each GPU does in
 * data-parallel training without SyncBatchNorm. One more forward pass of
 * both views than a single slice.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { createVicregModel, resolveConfig, stepGradients } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const config = resolveConfig({ flags: { preset: "tiny", mlp: "32-32", "use-local-loss": false } });
 * const model = createVicregModel(config);
 * const views: [tf.Tensor4D, tf.Tensor4D] = [
 *   tf.randomNormal([8, 16, 16, 3]),
 *   tf.randomNormal([8, 16, 16, 3]),
 * ];
 * const { loss, grads } = stepGradients(model, views, { microBatch: 4 });
 * console.log((await loss.total.data())[0], grads.size);
 * tf.dispose([views, loss, [...grads.values()]]);
 * model.dispose();
 * ```
 *
 * @param model The model.
 * @param views The two views `[B, H, W, 3]`.
 * @param options The views' geometry (for `location` matching), `mode` and `microBatch`; see {@linkcode StepOptions}.
 * @returns The loss and the gradients (the caller disposes both).
 */
export function stepGradients(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  options: StepOptions = {},
): StepGradients {
  const { mode, microBatch } = resolveStepOptions(options);
  const geometry = options.geometry;
  const [b] = views[0].shape;
  if (microBatch >= b) {
    let terms: VicregLoss["terms"] | undefined;
    const { value, grads } = sliceGradients(
      model,
      views,
      mode,
      true,
      (p1, p2) => {
        const loss = model.criterion(p1, p2, geometry);
        for (const t of Object.values(loss.terms)) tf.keep(t);
        terms = loss.terms;
        return loss.total;
      },
    );
    return { loss: { total: value, terms: terms! }, grads };
  }
  const slices = sliceRanges(b, microBatch);
  const cut = (x: tf.Tensor4D, [start, size]: [number, number]) =>
    tf.slice(x, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D;
  // (1) Every slice embedded without a tape: projections [M, D] (+ [M, h·w, d]).
  const parts = slices.map((range) =>
    views.map((view) =>
      tf.tidy(() =>
        model.embed(cut(view, range)) as unknown as tf.TensorContainer
      ) as unknown as Projections
    )
  );
  const whole = [0, 1].map((v) => concatProjections(parts.map((p) => p[v])));
  tf.dispose(parts as unknown as tf.TensorContainer);
  // (2) The loss of the whole batch, and d(loss)/d(projections).
  const inputs = whole.flatMap((p) => p.local ? [p.z, p.local] : [p.z]);
  let loss: VicregLoss | undefined;
  const { value, grads: upstream } = tf.engine().gradients(
    () => {
      loss = model.criterion(whole[0], whole[1], geometry);
      for (const t of Object.values(loss.terms)) tf.keep(t);
      return loss.total;
    },
    inputs,
    undefined,
    true,
  );
  tf.dispose(inputs);
  const perView = model.usesLocalLoss ? 2 : 1;
  const [dz1, dl1, dz2, dl2] = perView === 2
    ? upstream
    : [upstream[0], undefined, upstream[1], undefined];
  // (3) Each slice back-propagates its rows of that gradient.
  const grads = new Map<string, tf.Tensor>();
  for (const [start, size] of slices) {
    const rows = (g: tf.Tensor | undefined) => g && tf.slice(g, start, size); // [B, …] -> [M, …]
    const d = [[rows(dz1), rows(dl1)], [rows(dz2), rows(dl2)]];
    const sliceViews = views.map((x) => cut(x, [start, size])) as [
      tf.Tensor4D,
      tf.Tensor4D,
    ];
    // Σ z·dz (+ Σ local·dl) has gradient dz (and dl) w.r.t. the projections.
    const part = sliceGradients(
      model,
      sliceViews,
      mode,
      false,
      (p1, p2) =>
        tf.addN([p1, p2].flatMap((p, v) => {
          const [dz, dl] = d[v];
          const terms = [tf.sum(tf.mul(p.z, dz!))];
          if (dl !== undefined) terms.push(tf.sum(tf.mul(p.local!, dl)));
          return terms;
        })) as tf.Scalar,
    );
    tf.dispose([
      part.value,
      ...sliceViews,
      ...d.flat().filter((t) => t !== undefined),
    ]);
    accumulate(grads, part.grads);
  }
  tf.dispose(upstream);
  return { loss: { total: value as tf.Scalar, terms: loss!.terms }, grads };
}

/**
 * Resolves and checks {@linkcode StepOptions}.
 *
 * @param options The options.
 * @returns Every option, defaults filled in.
 */
export function resolveStepOptions(
  options: StepOptions = {},
): Required<Omit<StepOptions, "geometry">> {
  const out = { ...DEFAULT_STEP_OPTIONS, ...withoutUndefined(options) };
  if (!["joint", "mixed", "view-by-view"].includes(out.mode)) {
    throw new RangeError(
      `Expected step option "mode" to be joint, mixed or view-by-view: received ${
        JSON.stringify(out.mode)
      }`,
    );
  }
  if (
    !(out.microBatch >= 1) ||
    (Number.isFinite(out.microBatch) && !Number.isInteger(out.microBatch))
  ) {
    throw new RangeError(
      `Expected step option "microBatch" to be a positive integer: received ${out.microBatch}`,
    );
  }
  return { mode: out.mode, microBatch: out.microBatch };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}

/**
 * The slices `[start, size]` of a batch of `b` in slices of `m`, the last
 * one smaller when `m` does not divide `b`.
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
  return out;
}

function concatProjections(parts: Projections[]): Projections {
  return {
    z: tf.concat(parts.map((p) => p.z)) as tf.Tensor2D,
    ...(parts[0].local
      ? {
        local: tf.concat(parts.map((p) => p.local!)) as tf.Tensor3D,
        grid: parts[0].grid,
      }
      : {}),
  };
}

/** Adds each gradient of `part` into `sums`, disposing what it replaces. */
function accumulate(
  sums: Map<string, tf.Tensor>,
  part: Map<string, tf.Tensor>,
): void {
  for (const [name, g] of part) {
    const sum = sums.get(name);
    if (sum === undefined) {
      sums.set(name, g);
    } else {
      sums.set(name, tf.add(sum, g));
      tf.dispose([sum, g]);
    }
  }
}

/**
 * The head's value and d(head)/d(parameter) for one slice of both views,
 * back-propagated as `mode` says.
 */
function sliceGradients(
  model: VicregModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  mode: StepMode,
  updateRunningStats: boolean,
  head: Head,
): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const params = model.parameters();
  const local = model.usesLocalLoss;
  const bn = { updateRunningStats };
  // A view without a tape: it keeps its residual blocks' inputs and its
  // outputs, which the heads then read.
  const checkpointed = (x: tf.Tensor4D) =>
    model.backbone.forwardCheckpointed(x, {
      ...model.batchNormOptions(bn),
      returnFeatureMap: local,
    });
  const outputsOf = (run: CheckpointedForward): tf.Tensor[] =>
    local ? [run.embedding, run.featureMap!] : [run.embedding];
  const grads = new Map<string, tf.Tensor>();
  // Back-propagates a checkpointed view with its upstream gradients (the
  // embedding's, then the feature map's) into the backbone's sums.
  const backpropagate = (run: CheckpointedForward, dy: tf.Tensor[]) => {
    const part = run.backward({
      embedding: dy[0] as tf.Tensor2D,
      featureMap: local ? dy[1] as tf.Tensor4D : undefined,
    });
    run.dispose();
    tf.dispose(dy);
    accumulate(
      grads,
      new Map([...part].map(([name, g]) => [`backbone.${name}`, g])),
    );
  };
  if (mode === "joint") {
    const names = [...params.keys()];
    const { value, grads: byId } = tf.variableGrads(
      () =>
        leanTape(() =>
          head(model.embed(views[0], bn), model.embed(views[1], bn))
        ),
      [...params.values()],
    );
    for (const name of names) grads.set(name, byId[params.get(name)!.name]);
    return { value, grads };
  }
  if (mode === "mixed") {
    const run = checkpointed(views[0]);
    const names = [...params.keys()];
    const { value, grads: all } = tf.engine().gradients(
      () =>
        leanTape(() => head(model.project(run, bn), model.embed(views[1], bn))),
      [...params.values(), ...outputsOf(run)],
      undefined,
      true,
    );
    names.forEach((name, i) => grads.set(name, all[i]));
    backpropagate(run, all.slice(names.length));
    return { value: value as tf.Scalar, grads };
  }
  const heads = [...params].filter(([name]) => !name.startsWith("backbone."));
  const runs = views.map(checkpointed);
  const { value, grads: headGrads } = tf.engine().gradients(
    () => head(model.project(runs[0], bn), model.project(runs[1], bn)),
    [...heads.map(([, v]) => v), ...runs.flatMap(outputsOf)],
    undefined,
    true,
  );
  heads.forEach(([name], i) => grads.set(name, headGrads[i]));
  const upstream = headGrads.slice(heads.length);
  const perView = local ? 2 : 1;
  runs.forEach((run, v) =>
    backpropagate(run, upstream.slice(v * perView, (v + 1) * perView))
  );
  return { value: value as tf.Scalar, grads };
}
