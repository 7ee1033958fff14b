/**
 * The machinery behind the memory-saving steps of `step.ts` and
 * `distributed_step.ts`: slices of a batch embedded without a tape, the
 * loss of the whole batch on one tape, each slice re-run and
 * back-propagated with its rows of the loss's gradient, and one slice's
 * gradients in `mixed` or `view-by-view` mode (residual blocks recomputed).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { leanTape } from "@scaling-vicreg/backend";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import type { CheckpointedForward } from "@scaling-vicreg/models";
import type { StepMode } from "./step_options.ts";
import type { Projections, VicregLoss, VicregModel } from "./vicreg_model.ts";

/** A function of both views' projections whose gradient is wanted. */
export type Head = (views: Projections[]) => tf.Scalar;

/** The views' crop boxes and flips, for `location` matching. */
export type Geometry = readonly (readonly ViewGeometry[])[];

/** The model's criterion as a tape's head; see {@linkcode criterionHead}. */
export interface CriterionHead {
  /** The total loss of both views' projections; keeps its terms. */
  head: Head;
  /** The step's record of the loss once the tape has run and given `total`. */
  loss: (total: tf.Scalar) => VicregLoss;
}

/**
 * The model's criterion as a tape's head: `head` returns the total loss and
 * keeps its terms (outside the tape's tidy), `loss(total)` is the step's
 * record of them once the tape has run.
 */
export function criterionHead(
  model: VicregModel,
  geometry: Geometry | undefined,
): CriterionHead {
  let terms: VicregLoss["terms"] | undefined;
  return {
    head: (views) => {
      const loss = model.criterion(views, geometry);
      for (const t of Object.values(loss.terms)) tf.keep(t);
      terms = loss.terms;
      return loss.total;
    },
    loss: (total) => ({ total, terms: terms! }),
  };
}

/**
 * Both views' projections of the slices, concatenated: `[b, D]` (+
 * `[b, h·w, d]`), or `undefined` for no slices.
 */
export function embedSlices(
  model: VicregModel,
  views: readonly tf.Tensor4D[],
  slices: [number, number][],
  tick: () => void,
): Projections[] | undefined {
  if (slices.length === 0) return undefined;
  const parts = embedEach(model, views, slices, tick);
  const whole = views.map((_, v) => concatProjections(parts.map((p) => p[v])));
  tf.dispose(parts as unknown as tf.TensorContainer);
  return whole;
}

/**
 * Both views of each slice embedded: `[slice][view]`. Per slice, view 1
 * then view 2: the running statistics move in that order.
 */
export function embedEach(
  model: VicregModel,
  views: readonly tf.Tensor4D[],
  slices: [number, number][],
  tick: () => void,
): Projections[][] {
  return slices.map((range) => {
    const part = views.map((view) =>
      tf.tidy(() =>
        model.embed(cut(view, range)) as unknown as tf.TensorContainer
      ) as unknown as Projections
    );
    tick();
    return part;
  });
}

/** d(loss)/d(projections) of every view: `[[dz1, dl1], [dz2, dl2], …]`. */
export type Upstream = [tf.Tensor, tf.Tensor | undefined][];

/** What {@linkcode lossOnTape} returns. */
export interface TapeResult {
  /** The loss of the whole batch. */
  loss: VicregLoss;
  /** d(loss)/d(early projections), when there were early ones. */
  upstream: Upstream | undefined;
  /** d(loss)/d(parameter) through the kept slices (none without them). */
  grads: Map<string, tf.Tensor>;
}

/**
 * One tape: the `kept` slices of `views` embedded (running statistics
 * moving, per slice view 1 then view 2), after the `early` projections
 * (rows before them, already embedded), the loss of the whole batch, and
 * its gradient w.r.t. the parameters and the early projections, which it
 * disposes.
 */
export function lossOnTape(
  model: VicregModel,
  views: readonly tf.Tensor4D[] | undefined,
  kept: [number, number][],
  early: Projections[] | undefined,
  criterion: CriterionHead,
  tick: () => void,
): TapeResult {
  const params = kept.length > 0 ? [...model.parameters()] : [];
  const inputs = early?.flatMap((p) => p.local ? [p.z, p.local] : [p.z]) ??
    [];
  const { value, grads: all } = tf.engine().gradients(
    () =>
      leanTape(() => {
        const parts = embedEach(model, views!, kept, tick);
        // per view: [b, D] of early rows, then each kept slice's rows ->
        // [B, D]
        const count = early?.length ?? views!.length;
        const whole = Array.from({ length: count }, (_, v) =>
          concatProjections([
            ...(early === undefined ? [] : [early[v]]),
            ...parts.map((p) => p[v]),
          ]));
        return criterion.head(whole);
      }),
    [...params.map(([, v]) => v), ...inputs],
    undefined,
    true,
  );
  // The kept slices are back-propagated.
  kept.forEach(() => tick());
  tf.dispose(inputs);
  const grads = new Map(params.map(([name], i) => [name, all[i]]));
  const d = all.slice(params.length);
  const per = model.usesLocalLoss ? 2 : 1;
  const upstream: Upstream | undefined = early?.map((_, v) => [
    d[v * per],
    model.usesLocalLoss ? d[v * per + 1] : undefined,
  ]);
  return { loss: criterion.loss(value as tf.Scalar), upstream, grads };
}

/**
 * Re-runs each slice on a tape (running statistics frozen) and
 * back-propagates its rows of the upstream gradient; the parameter
 * gradients summed over slices. `offset`: the batch row of `views`' first
 * image in `upstream`.
 */
export function backpropagateSlices(
  model: VicregModel,
  views: readonly tf.Tensor4D[],
  slices: [number, number][],
  mode: StepMode,
  upstream: Upstream | undefined,
  offset: number,
  tick: () => void,
  grads: Map<string, tf.Tensor> = new Map(),
): Map<string, tf.Tensor> {
  for (const [start, size] of slices) {
    // [B, …] -> [M, …]: the slice's rows.
    const d = upstream!.map((pair) =>
      pair.map((g) => g && tf.slice(g, offset + start, size))
    );
    const sliceViews = views.map((x) => cut(x, [start, size]));
    // Σ z·dz (+ Σ local·dl) has gradient dz (and dl) w.r.t. the projections.
    // Added one by one: WebGPU's AddN with 8 or more inputs writes nothing.
    const part = sliceGradients(
      model,
      sliceViews,
      mode,
      false,
      (p) =>
        p.flatMap((pv, v) => {
          const [dz, dl] = d[v];
          const terms = [tf.sum(tf.mul(pv.z, dz!))];
          if (dl !== undefined) terms.push(tf.sum(tf.mul(pv.local!, dl)));
          return terms;
        }).reduce((a, t) => tf.add(a, t)) as tf.Scalar,
    );
    tf.dispose([
      part.value,
      ...sliceViews,
      ...d.flat().filter((t) => t !== undefined),
    ]);
    accumulate(grads, part.grads);
    tick();
  }
  return grads;
}

/** Counts slice passes for `onSlice`, of `total`. */
export function ticker(
  total: number,
  onSlice: ((done: number, total: number) => void) | undefined,
): () => void {
  let done = 0;
  return () => onSlice?.(++done, total);
}

/** Rows `[start, start + size)` of a batch of images. */
export function cut(
  x: tf.Tensor4D,
  [start, size]: [number, number],
): tf.Tensor4D {
  return tf.slice(x, [start, 0, 0, 0], [size, -1, -1, -1]) as tf.Tensor4D;
}

export function concatProjections(parts: Projections[]): Projections {
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
export function accumulate(
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
export function sliceGradients(
  model: VicregModel,
  views: readonly tf.Tensor4D[],
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
      () => leanTape(() => head(views.map((x) => model.embed(x, bn)))),
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
        leanTape(() =>
          head([
            model.project(run, bn),
            ...views.slice(1).map((x) => model.embed(x, bn)),
          ])
        ),
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
    () => head(runs.map((run) => model.project(run, bn))),
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
