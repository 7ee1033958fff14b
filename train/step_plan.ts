/**
 * Choosing how a step runs (its {@linkcode StepMode} and micro-batch) from
 * the memory it is estimated to take and the memory the backend has.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { leanTape, type MemoryBudget } from "@scaling-vicreg/backend";
import type { ResNet } from "@scaling-vicreg/models";
import type { OptimizerKind } from "@scaling-vicreg/optim";
import { sliceRanges, type StepMode } from "./step_options.ts";
import type { VicregModel } from "./vicreg_model.ts";

/** Bytes one image of one view takes in a step, measured on the backend. */
export interface StepMemoryProfile {
  /**
   * Bytes every kernel of a training-mode backbone forward pass outputs, per
   * image: what a tape over one view keeps alive.
   */
  tapeBytesPerImage: number;
  /**
   * Bytes a forward pass without a tape keeps per image for block-by-block
   * back-propagation (each residual block's input).
   */
  checkpointBytesPerImage: number;
  /** The largest single tensor of the forward pass, per image. */
  largestTensorBytesPerImage: number;
  /** Bytes of one input image `[1, size, size, 3]`. */
  inputBytesPerImage: number;
  /**
   * Bytes of the model's parameters (all networks); a step holds several
   * copies of them (see {@linkcode OPTIMIZER_MEMORY}).
   */
  parameterBytes: number;
  /**
   * Bytes of the largest parameter tensor: an optimizer update holds its
   * temporaries for one parameter at a time.
   */
  largestParameterBytes: number;
  /**
   * Bytes per image of one residual block re-run on a tape and
   * back-propagated (the largest block's activations and their gradients):
   * what block-by-block back-propagation adds to the kept block inputs.
   */
  blockBackwardBytesPerImage: number;
  /** The part of that peak that does not grow with the images. */
  blockBackwardFixedBytes: number;
  /**
   * Bytes per image at the peak of one view's forward and backward pass
   * through the whole model on a lean tape (backbone, projectors and their
   * gradients; {@linkcode measureViewBackward}): what a joint step holds per
   * image and view. When given, budgets whose freed bytes return to the
   * system ({@linkcode MemoryBudget.reuses}) plan the joint tape with it in
   * place of the kernels' outputs × 1.5 for the local loss; absent, or in
   * the wasm heap, the estimate keeps that margin.
   */
  viewBackwardBytesPerImage?: number;
}

/**
 * What a step's optimizer update holds beyond the weights, the gradient sums
 * and one slice's gradients being added in (three copies of the parameters):
 * its `slots` (copies of the parameters: SGD's and LARS's momentum, AdamW's
 * two moments) and, for the one parameter it is updating, `temporaries`
 * copies of that parameter (the update's intermediate tensors, alive until
 * its `tf.tidy` ends). Measured with `tf.profile` on the tiny ResNet, whose
 * largest parameter is 46 % of all: 16.7, 9.9 and 6.9 temporaries; rounded
 * up.
 */
export const OPTIMIZER_MEMORY: Readonly<
  Record<OptimizerKind, { slots: number; temporaries: number }>
> = Object.freeze({
  sgd: { slots: 1, temporaries: 8 },
  lars: { slots: 1, temporaries: 11 },
  adamw: { slots: 2, temporaries: 18 },
});

/**
 * Measures a backbone's {@linkcode StepMemoryProfile} at a crop size with
 * `tf.profile` on a batch of 2 (running statistics left alone). It follows
 * the backend: a fused BatchNorm kernel (blas with oneDNN) outputs about half
 * the bytes of BatchNorm as tensor ops.
 *
 * @param backbone The backbone.
 * @param size The crop side in pixels.
 * @param parameters Every trainable variable of the model (backbone and
 *   projectors); by default the backbone's.
 * @returns Bytes per image, and of the parameters.
 */
export async function measureStepMemory(
  backbone: ResNet,
  size: number,
  parameters: Iterable<tf.Variable> = backbone.parameters().values(),
): Promise<StepMemoryProfile> {
  let parameterBytes = 0;
  let largestParameterBytes = 0;
  for (const v of parameters) {
    parameterBytes += 4 * v.size;
    largestParameterBytes = Math.max(largestParameterBytes, 4 * v.size);
  }
  const n = 2;
  const x = tf.zeros([n, size, size, 3]) as tf.Tensor4D;
  try {
    const options = { training: true, updateRunningStats: false };
    const info = await tf.profile(() => backbone.forward(x, options).embedding);
    tf.dispose(info.result as tf.Tensor);
    let tape = 0;
    let largest = 0;
    for (const k of info.kernels) {
      tape += Math.max(0, k.bytesAdded);
      largest = Math.max(largest, k.bytesAdded);
    }
    const before = tf.memory().numBytes;
    const run = backbone.forwardCheckpointed(x, options);
    const kept = tf.memory().numBytes - before;
    run.dispose();
    // A block re-run on a tape and back-propagated: its bytes grow with the
    // images (activations) and not (its parameters' gradients), so measure
    // at two batch sizes and split.
    const [small, large] = [
      await blockBackwardPeak(backbone, x, options),
      await blockBackwardPeak(backbone, tf.concat([x, x]), options, true),
    ];
    const perImage = Math.max(0, (large - small) / n);
    return {
      tapeBytesPerImage: tape / n,
      checkpointBytesPerImage: kept / n,
      largestTensorBytesPerImage: largest / n,
      inputBytesPerImage: size * size * 3 * 4,
      parameterBytes,
      largestParameterBytes,
      blockBackwardBytesPerImage: perImage,
      blockBackwardFixedBytes: Math.max(0, small - perImage * n),
    };
  } finally {
    x.dispose();
  }
}

/**
 * The peak bytes of a checkpointed backward pass above its kept block inputs
 * and its result (the parameter gradients, counted with the parameters).
 */
async function blockBackwardPeak(
  backbone: ResNet,
  x: tf.Tensor4D,
  options: { training: boolean; updateRunningStats: boolean },
  disposeInput = false,
): Promise<number> {
  const run = backbone.forwardCheckpointed(x, options);
  const dy = tf.onesLike(run.embedding);
  const before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    const grads = run.backward({ embedding: dy });
    tf.dispose([...grads.values()]);
  });
  tf.dispose([dy]);
  run.dispose();
  if (disposeInput) x.dispose();
  let gradBytes = 0;
  for (const v of backbone.parameters().values()) gradBytes += 4 * v.size;
  return Math.max(0, info.peakBytes - before - gradBytes);
}

/**
 * Measures {@linkcode StepMemoryProfile.viewBackwardBytesPerImage}: the
 * peak of one view's embedding through the whole model (backbone,
 * projector and, with the local loss, its local projections; running
 * statistics frozen) and its backward pass on a lean tape (`tf.profile`),
 * at 2 and 4 images, per image (the part that grows with the images; the
 * gradients of the parameters do not, and the estimate counts them apart).
 * The sum of the projections is back-propagated.
 *
 * @param model The model.
 * @param size The crop side in pixels.
 * @returns Bytes per image.
 */
export async function measureViewBackward(
  model: VicregModel,
  size: number,
): Promise<number> {
  const variables = [...model.parameters().values()];
  const embedded = (x: tf.Tensor4D): tf.Scalar => {
    const { z, local } = model.embed(x, { updateRunningStats: false });
    return local === undefined ? tf.sum(z) : tf.add(tf.sum(z), tf.sum(local));
  };
  const peakAt = async (n: number) => {
    const x = tf.zeros([n, size, size, 3]) as tf.Tensor4D;
    const before = tf.memory().numBytes;
    try {
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(
          () => leanTape(() => embedded(x)),
          variables,
        );
        tf.dispose([value, ...Object.values(grads)]);
      });
      return info.peakBytes - before;
    } finally {
      x.dispose();
    }
  };
  const [two, four] = [await peakAt(2), await peakAt(4)];
  return Math.max(0, (four - two) / 2);
}

/** What {@linkcode planStep} chose. */
export interface StepPlan {
  /** How each slice back-propagates. */
  mode: StepMode;
  /** Images per slice; the batch size when the step is one slice. */
  microBatch: number;
  /**
   * Slices whose activations stay on the loss's tape (`stepGradients`'
   * `keptSlices`): 1 for one slice, 0 in `mixed` and `view-by-view` with
   * micro-batches.
   */
  keptSlices: number;
  /** One line: why. */
  reason: string;
}

/** What a step is asked to do, for {@linkcode planStep}. */
export interface StepRequest {
  /** The `step` key: `auto` or a {@linkcode StepMode}. */
  step: "auto" | StepMode;
  /** The `micro-batch` key: `auto` or images per slice. */
  microBatch: "auto" | number;
  /** The `kept-slices` key: `auto` or a count. @default {"auto"} */
  keptSlices?: "auto" | number;
  /**
   * Whether the batch is a rank's shard of a distributed step, which re-runs
   * every slice of a micro-batched shard (see `distributedStepGradients`).
   * @default {false}
   */
  distributed?: boolean;
  /** The batch size B. */
  batch: number;
  /** Whether the local loss is on. */
  local: boolean;
  /**
   * The step's views in units of one global view's memory: 2 for two
   * views; with multi-crop G + M × (a local view's bytes over a global
   * one's; see {@linkcode viewsOf}).
   * @default {2}
   */
  views?: number;
  /**
   * The optimizer, whose update's memory the estimate counts
   * ({@linkcode OPTIMIZER_MEMORY}).
   * @default {"adamw"} (the one that holds the most)
   */
  optimizer?: OptimizerKind;
}

/**
 * The views of a step in units of one global view's memory: G + M × the
 * ratio of a local view's measured tape bytes to a global view's (the
 * activations of a 41 px crop are about (41/96)² of a 96 px one's, plus what
 * does not shrink with the image).
 *
 * @example
 * ```ts
 * import { viewsOf } from "@scaling-vicreg/train/step-plan";
 * const global = { tapeBytesPerImage: 100 };
 * console.log(viewsOf(2, 6, global, { tapeBytesPerImage: 20 })); // 3.2
 * ```
 *
 * @param globalViews G.
 * @param localViews M.
 * @param global The profile at the global views' size.
 * @param local The profile at the local views' size (unused when M = 0).
 * @returns G + M × local tape bytes / global tape bytes.
 */
export function viewsOf(
  globalViews: number,
  localViews: number,
  global: Pick<StepMemoryProfile, "tapeBytesPerImage">,
  local?: Pick<StepMemoryProfile, "tapeBytesPerImage">,
): number {
  if (localViews === 0) return globalViews;
  return globalViews +
    localViews * local!.tapeBytesPerImage / global.tapeBytesPerImage;
}

/**
 * The estimated peak bytes of a step with slices of `m` images of a batch of
 * `b`: the parameters with their gradients and the optimizer's update
 * ({@linkcode OPTIMIZER_MEMORY}) and the views of the whole batch, plus,
 * per slice, the joint tape
 * (1.2 × V views × m × the measured peak of a view's forward and backward
 * pass per image when the profile has it, else × the tape bytes, ×1.5 with
 * the local loss, for its feature maps and projector), `mixed` the tape of
 * every view but the first plus view 1's kept block inputs, `view-by-view` every view's kept block
 * inputs plus 1.2 × one block's measured backward peak (×1.5 with the local
 * loss); `step_plan_test.ts` checks the estimate against measured peaks.
 * V = 2 for two views; with multi-crop, local views count at their size
 * ({@linkcode viewsOf}).
 *
 * @param profile The backbone's bytes per image.
 * @param mode The step mode.
 * @param m Images per slice.
 * @param b The batch size.
 * @param local Whether the local loss is on.
 * @param keptSlices In `joint` mode, the slices on the loss's tape at once.
 * @param optimizer The optimizer of the update.
 * @param views The views in units of a global one ({@linkcode viewsOf}).
 * @returns Bytes.
 */
export function estimateStepBytes(
  profile: StepMemoryProfile,
  mode: StepMode,
  m: number,
  b: number,
  local: boolean,
  keptSlices: number = 1,
  optimizer: OptimizerKind = "adamw",
  views: number = 2,
): number {
  const perView = 1.2 * m * (profile.viewBackwardBytesPerImage ??
    profile.tapeBytesPerImage * (local ? 1.5 : 1));
  const joint = perView * views;
  const kept = profile.checkpointBytesPerImage * m;
  const update = OPTIMIZER_MEMORY[optimizer];
  const fixed = views * b * profile.inputBytesPerImage +
    (3 + update.slots) * profile.parameterBytes +
    update.temporaries * profile.largestParameterBytes;
  if (mode === "joint") return fixed + Math.max(1, keptSlices) * joint;
  if (mode === "mixed") return fixed + joint - perView + kept;
  const block = 1.2 * (local ? 1.5 : 1) *
    (profile.blockBackwardFixedBytes + profile.blockBackwardBytesPerImage * m);
  return fixed + views * kept + block;
}

const MODES: readonly StepMode[] = ["joint", "mixed", "view-by-view"];
// Extra forward passes (in views) over a joint step of one slice.
const EXTRA_FORWARDS: Record<StepMode, number> = {
  "joint": 0,
  "mixed": 0.5,
  "view-by-view": 1,
};

/**
 * Chooses the step mode and micro-batch: what the keys set, and for `auto`
 * the plan with slices of at least {@linkcode BATCH_NORM_FLOOR} images (or
 * the whole batch), then the fewest extra forward passes (a micro-batched
 * step adds one; see {@linkcode StepMode}), whose estimated peak
 * ({@linkcode estimateStepBytes}) fits the budget, the largest slices first
 * among equals. Slices are the batch halved until they fit (the last one
 * smaller when a half is not whole), down to two images.
 *
 * @param request The keys, the batch size and whether the local loss is on.
 * @param measured The backbone's bytes per image ({@linkcode measureStepMemory}, with {@linkcode measureViewBackward}); unused when nothing is `auto` (`kept-slices` only matters to micro-batched `joint` steps). The measured view peak counts only where the budget {@linkcode MemoryBudget.reuses} freed bytes.
 * @param budget The backend's memory ({@linkcode memoryBudgetOf}).
 * @returns The plan and why.
 * @throws {RangeError} When even one image per slice does not fit.
 */
export function planStep(
  request: StepRequest,
  measured: StepMemoryProfile,
  budget: MemoryBudget,
): StepPlan {
  const { batch, local, optimizer = "adamw", views = 2 } = request;
  // The wasm heap fragments: its plans keep the margin of the kernels'
  // outputs rather than a measured peak.
  const { viewBackwardBytesPerImage: _measured, ...conservative } = measured;
  const profile = budget.reuses ? measured : conservative;
  const sizes = request.microBatch === "auto"
    ? halvings(batch)
    : [Math.min(request.microBatch, batch)];
  const modes = request.step === "auto" ? MODES : [request.step];
  // Slices kept on the loss's tape by a plan of mode and m, and the words
  // of the reason that say so (none but for a micro-batched joint step).
  const keptOf = (
    mode: StepMode,
    m: number,
  ): { kept: number; note: string } => {
    const slices = sliceRanges(batch, m).length;
    if (slices === 1) return { kept: 1, note: "" };
    if (mode !== "joint") return { kept: 0, note: "" };
    if (request.distributed) {
      return { kept: 0, note: ", every slice re-run (distributed)" };
    }
    const requested = request.keptSlices ?? "auto";
    let k = requested === "auto" ? 1 : Math.min(requested, slices);
    while (
      requested === "auto" && k < slices &&
      estimateStepBytes(
          profile,
          mode,
          m,
          batch,
          local,
          k + 1,
          optimizer,
          views,
        ) <=
        budget.totalBytes
    ) k++;
    const note = `, ${k} of ${slices} slices kept on the loss's tape${
      requested === "auto" ? "" : " (as set)"
    }`;
    return { kept: k, note };
  };
  if (request.step !== "auto" && request.microBatch !== "auto") {
    const [mode, m] = [request.step, sizes[0]];
    const { kept, note } = keptOf(mode, m);
    return { mode, microBatch: m, keptSlices: kept, reason: `as set${note}` };
  }
  const fits = (mode: StepMode, m: number) =>
    estimateStepBytes(profile, mode, m, batch, local, 1, optimizer, views) <=
      budget.totalBytes &&
    profile.largestTensorBytesPerImage * m * (mode === "joint" ? 2 : 1) <=
      budget.tensorBytes;
  const candidates = sizes.flatMap((m) =>
    modes.map((mode) => ({
      mode,
      m,
      cost: EXTRA_FORWARDS[mode] + (m < batch ? 1 : 0),
    }))
  ).sort((a, b) =>
    belowFloor(a.m, batch) - belowFloor(b.m, batch) || a.cost - b.cost ||
    b.m - a.m
  );
  const chosen = candidates.find((c) => fits(c.mode, c.m));
  if (chosen === undefined) {
    const smallest = candidates.at(-1)!;
    throw new RangeError(
      `A step of batch ${batch} needs an estimated ${
        gib(
          estimateStepBytes(
            profile,
            smallest.mode,
            smallest.m,
            batch,
            local,
            1,
            optimizer,
            views,
          ),
        )
      } GiB even with --micro-batch ${smallest.m} and --step ${smallest.mode}, more than ${
        gib(budget.totalBytes)
      } GiB (${budget.source}): lower --batch-size or --size${
        views > 2 ? ", --local-crops or --local-crop-size" : ""
      }, or choose a smaller --arch`,
    );
  }
  const { kept, note } = keptOf(chosen.mode, chosen.m);
  const estimate = gib(
    estimateStepBytes(
      profile,
      chosen.mode,
      chosen.m,
      batch,
      local,
      kept,
      optimizer,
      views,
    ),
  );
  const set = (auto: boolean) => auto ? "" : " (as set)";
  const slices = chosen.m < batch
    ? `micro-batches of ${chosen.m}`
    : "one slice of the whole batch";
  return {
    mode: chosen.mode,
    microBatch: chosen.m,
    keptSlices: kept,
    reason: `${chosen.mode}${set(request.step === "auto")}, ${slices}${
      set(request.microBatch === "auto")
    }${note}: an estimated ${estimate} GiB fits ${
      gib(budget.totalBytes)
    } GiB of ${budget.source}${
      chosen === candidates[0] ? "" : "; nothing faster fits"
    }`,
  };
}

/**
 * Images per slice below which BatchNorm's batch statistics are noisier than
 * those of one GPU of a data-parallel run (64–256 images each in the paper's
 * setting): `auto` takes any plan with slices of at least this many (or of
 * the whole batch, when smaller) before any plan with smaller slices, even
 * one with fewer extra forward passes.
 */
export const BATCH_NORM_FLOOR = 64;

/** 1 when slices of `m` images fall below {@linkcode BATCH_NORM_FLOOR}, else 0. */
function belowFloor(m: number, batch: number): number {
  return m < Math.min(BATCH_NORM_FLOOR, batch) ? 1 : 0;
}

/** b, ⌈b/2⌉, ⌈b/4⌉, … 2 (training-mode BatchNorm needs two images). */
function halvings(b: number): number[] {
  const out = [b];
  while (out.at(-1)! > 2) out.push(Math.ceil(out.at(-1)! / 2));
  return out;
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1);
}
