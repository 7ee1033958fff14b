/**
 * The gradients of one VICReg step: the loss of the whole batch
 * ({@linkcode VicregModel.criterion} of both views' projections) and
 * d(loss)/d(parameter). The default is one tape over both views, at the top
 * of {@linkcode stepGradients}; below it, the same update with less memory —
 * residual blocks recomputed, or micro-batches whose loss still sees the whole
 * batch (the "gradient cache"; its machinery is in `_step_slices.ts`). The
 * data-parallel step is `distributed_step.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { leanTape } from "@scaling-vicreg/backend";
import {
  resolveStepOptions,
  sliceRanges,
  type StepGradients,
  type StepOptions,
} from "./step_options.ts";
import {
  backpropagateSlices,
  criterionHead,
  embedSlices,
  lossOnTape,
  sliceGradients,
  ticker,
} from "./_step_slices.ts";
import type { VicregModel } from "./vicreg_model.ts";

/**
 * The loss of a step on two views `[B, H, W, 3]` and its gradient with
 * respect to every parameter of the model.
 *
 * The default (one slice, `joint`): both views embedded on one tape, the
 * model's criterion on their projections, and its gradient. The running
 * statistics move once per view, view 1 first. One slice in `mixed` or
 * `view-by-view` mode gives the same gradients with residual blocks
 * recomputed instead of kept.
 *
 * Micro-batches (`microBatch` = M < B, the "gradient cache"): (1) embed the
 * slices of both views without a tape, which updates the running statistics
 * once per slice and view; (2) on one tape, embed the last `keptSlices`
 * slices (in `joint` mode; none in the others), concatenate all projections
 * to `[B, D]` (and `[B, h·w, d]`), compute the loss of the whole batch
 * exactly as one slice would, and back-propagate it to the parameters
 * (through the kept slices) and to the projections of step (1); (3) re-run
 * each slice of step (1) with a tape (running statistics frozen) and
 * back-propagate its rows of that gradient, summing the parameter gradients
 * over slices. The loss, and so its variance and covariance terms, sees all
 * B rows; BatchNorm normalises each slice with its own statistics, as each
 * GPU does in data-parallel training without SyncBatchNorm. One more
 * forward pass of both views of every slice but the kept ones.
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
 * @param views The views `[B, H_v, W_v, 3]`: two, or G global and M local
 * ones (global first; see `VicregModel.criterion`).
 * @param options The views' geometry (for `location` matching), `mode` and `microBatch`; see {@linkcode StepOptions}.
 * @returns The loss and the gradients (the caller disposes both).
 */
export function stepGradients(
  model: VicregModel,
  views: readonly tf.Tensor4D[],
  options: StepOptions = {},
): StepGradients {
  const { mode, microBatch, keptSlices } = resolveStepOptions(options);
  const criterion = criterionHead(model, options.geometry);
  const [b] = views[0].shape;
  if (microBatch >= b && mode === "joint") {
    // The default step: z1 = f(x1), z2 = f(x2) and the criterion on one tape,
    // then d(loss)/d(parameter) by name.
    const params = model.parameters();
    const { value, grads: byId } = tf.variableGrads(
      () => leanTape(() => criterion.head(views.map((x) => model.embed(x)))),
      [...params.values()],
    );
    const grads = new Map<string, tf.Tensor>();
    for (const [name, v] of params) grads.set(name, byId[v.name]);
    return { loss: criterion.loss(value), grads };
  }
  if (microBatch >= b) {
    // One slice, residual blocks recomputed (`mixed`, `view-by-view`).
    const { value, grads } = sliceGradients(
      model,
      views,
      mode,
      true,
      criterion.head,
    );
    return { loss: criterion.loss(value), grads };
  }
  // Micro-batches: the gradient cache.
  const slices = sliceRanges(b, microBatch);
  const kept = mode === "joint" ? Math.min(keptSlices, slices.length) : 0;
  const rerun = slices.slice(0, slices.length - kept);
  const tick = ticker(2 * slices.length, options.onSlice);
  // (1) The slices to re-run, embedded without a tape.
  const early = embedSlices(model, views, rerun, tick);
  // (2) The kept slices embedded on a tape, the loss of the whole batch,
  // and d(loss)/d(parameters) through the kept slices, d(loss)/d(early
  // projections) for the others.
  const { loss, upstream, grads } = lossOnTape(
    model,
    views,
    slices.slice(rerun.length),
    early,
    criterion,
    tick,
  );
  // (3) Each re-run slice back-propagates its rows of that gradient.
  backpropagateSlices(model, views, rerun, mode, upstream, 0, tick, grads);
  tf.dispose(upstream as unknown as tf.TensorContainer);
  return { loss, grads };
}
