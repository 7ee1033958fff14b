/**
 * The VICReg pretraining loop (facebookresearch/vicreg `main_vicreg.py`, plus
 * the paper's local loss): two augmented views per image, backbone and
 * projector in training mode on both, VICReg on the projections (+ α × the
 * local loss on last-feature-map descriptors), LARS/AdamW/SGD with warm-up and
 * cosine decay; atomic checkpoints, exact resume, JSONL metrics and a
 * TensorBoard event file.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  type MemoryBudget,
  memoryBudgetOf,
  type RgbImage,
  Rng,
} from "@scaling-vicreg/backend";
import {
  MultiCropTransform,
  viewMix,
  type ViewParams,
} from "@scaling-vicreg/augment";
import {
  type Batch,
  type FileListFingerprint,
  type ImageSource,
  Loader,
} from "@scaling-vicreg/data";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import { loadStateDict } from "@scaling-vicreg/models";
import type { SafeTensor } from "@scaling-vicreg/backend/safetensors";
import {
  ConfigError,
  cropsOf,
  type PretrainConfig,
  rankBatchOf,
  warmupEpochsOf,
} from "./config.ts";
import { learningRate } from "./schedule.ts";
import {
  createOptimizer,
  type Optimizer,
} from "@scaling-vicreg/optim/optimizer";
import { stepGradients } from "./step.ts";
import { distributedStepGradients } from "./distributed_step.ts";
import {
  type Communicator,
  SingleCommunicator,
} from "@scaling-vicreg/distributed/communicator";
import {
  measureStepMemory,
  measureViewBackward,
  planStep,
  type StepPlan,
  viewsOf,
} from "./step_plan.ts";
import { createVicregModel, type VicregModel } from "./vicreg_model.ts";
import { agreeOnStop, type StopKind, stopKindOf } from "./stop_request.ts";
import {
  appendMetrics,
  METRICS_FILE,
  type StepMetrics,
} from "./run_metrics.ts";
import { guardWrite } from "./storage_error.ts";
import { type RecordedDataFiles, settleDataFiles } from "./data_change.ts";
import { BACKBONE_FILE, writeRunBackbone } from "./backbone_file.ts";
import {
  type Checkpoint,
  checkpointName,
  loadLatestCheckpoint,
  saveCheckpoint,
  snapshotTensors,
} from "./checkpoint.ts";
import {
  openRunDirectory,
  type RunDirectory,
  stopDiverged,
} from "./run_dir.ts";
import {
  type Divergence,
  DivergenceError,
  DivergenceGuard,
  gradientNorm,
} from "./divergence.ts";
import { RunEvents } from "./_run_events.ts";
import { OnlineMonitors } from "./_online_monitors.ts";

/** What the loop tells its caller besides metrics. */
export interface PretrainEvent {
  /** `info`, or `warning` for things a person should look at. */
  level: "info" | "warning";
  /** One line. */
  message: string;
}

/** Options of {@linkcode pretrain}. */
export interface PretrainOptions {
  /** Images to train on; by default the built-in procedural data set. */
  source?: ImageSource;
  /** Called after every logged step. */
  onStep?: (metrics: StepMetrics) => void;
  /**
   * Called during a step run in micro-batches, after each slice of each of
   * its two passes: the step (1-based) and `done` of `total` slice passes.
   */
  onSlice?: (step: number, done: number, total: number) => void;
  /** Called for notable events (resume, checkpoints, warnings). */
  onEvent?: (event: PretrainEvent) => void;
  /**
   * A PNG of the augmentation (the `vicreg preview` grid), logged to the
   * TensorBoard event file at step 0 of a fresh run (with `tensorboard` on).
   */
  preview?: () => Promise<Uint8Array>;
  /**
   * Stops after the current step, checkpointing first: every rank stops at
   * the same step when any rank's signal fires (`agreeOnStop`). Abort it
   * with a `StopRequest("preempt")` for a scheduler's warning (the result
   * is then `preempted`), else it is `interrupted`.
   */
  signal?: AbortSignal;
  /**
   * Spreads each batch over the communicator's ranks (data parallel): rank r
   * loads, augments and back-propagates its shard of every batch, the loss
   * sees the whole batch (see `distributedStepGradients`), and rank 0 alone
   * writes the run directory and calls `onStep`/`onEvent`. Every rank runs
   * `pretrain` with the same configuration. By default one process.
   */
  communicator?: Communicator;
  /**
   * The fingerprint of the data set's files (`fingerprintFiles` of
   * `@scaling-vicreg/data`), checked on `--resume` against the one the
   * checkpoint recorded (`settleDataFiles`): a changed data set is refused,
   * or with `allow-data-change` reported and continued on. Absent for the
   * procedural set, which has no files.
   */
  dataFiles?: FileListFingerprint;
}

/** What {@linkcode pretrain} returns. */
export interface PretrainResult {
  /**
   * `completed`; `interrupted` when the signal stopped it; `preempted` when
   * it stopped for a `StopRequest("preempt")` on any rank (checkpointed:
   * requeue and resume it).
   */
  status: "completed" | "interrupted" | "preempted";
  /** Steps completed in all. */
  steps: number;
  /** The last logged metrics. */
  last?: StepMetrics;
  /** Path of the final checkpoint's JSON. */
  checkpoint: string;
  /** Path of the exported backbone weights (safetensors). */
  backbone: string;
  /** Peak tensor memory in bytes and peak RSS. */
  peakMemory: { tensorBytes: number; rssBytes: number };
}

export { NonFiniteLossError } from "./divergence.ts";

/**
 * Runs (or resumes) a pretraining run as configured, writing `config.yaml`,
 * `metrics.jsonl`, checkpoints, `backbone.safetensors` and (with
 * `tensorboard`) an `events.out.tfevents.*` file to `config.expDir`.
 * The loop follows `main_vicreg.py`: for each batch, the learning rate of the
 * step, two augmented views, the loss and its gradients
 * ({@linkcode stepGradients}), one optimizer update; metrics logged and
 * checkpoints written as configured.
 *
 * The active TF.js backend is used as it is: pick it with `useBackend` first.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { pretrain, resolveConfig } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const expDir = await Deno.makeTempDir();
 * const config = resolveConfig({
 *   flags: { preset: "tiny", "exp-dir": expDir, "max-steps": 1, "batch-size": 8, "num-images": 16, size: 16 },
 * });
 * const result = await pretrain(config, { onStep: (m) => console.log(m.loss) });
 * console.log(result.status, result.steps); // completed 1
 * await Deno.remove(expDir, { recursive: true });
 * ```
 *
 * @param config The resolved configuration.
 * @param options Data source, callbacks and an abort signal.
 * @returns How it ended, and where the weights are.
 */
export async function pretrain(
  config: PretrainConfig,
  options: PretrainOptions = {},
): Promise<PretrainResult> {
  const { signal } = options;
  const run = await setUp(config, options);
  const { model, optimizer, loader, perEpoch, stopAt, comm, lead } = run;
  // Rank 0 alone reports and writes.
  const onEvent = lead ? options.onEvent ?? (() => {}) : () => {};
  const onStep = lead ? options.onStep : undefined;
  const onSlice = lead ? options.onSlice : undefined;
  try {
    const position = await resumeOrStart(run, onEvent);
    const peak = { tensorBytes: 0, rssBytes: 0 };
    const guard = new DivergenceGuard();
    let stopped: StopKind | undefined;
    for await (
      const { epoch, batch } of batchesFrom(loader, position, config, stopAt)
    ) {
      const started = performance.now();
      const lr = learningRateAt(run, position.step);
      const out = await trainStep(model, optimizer, {
        images: batch.images,
        labels: batch.labels,
        offset: batch.offset,
        rng: run.augmentRng.fork(`${epoch}/${batch.index}`),
        lr,
        onSlice: onSlice &&
          ((done, total) => onSlice(position.step + 1, done, total)),
      }, run.stepSettings);
      position.step += 1;
      const diverged = guard.observe(position.step, out);
      if (diverged) {
        throw await stopRun(run, diverged, { epoch, batch: batch.index });
      }
      const at = { step: position.step, epoch, batch: batch.index, lr };
      const endOfEpoch = batch.index === perEpoch - 1;
      const logged = logDue(run, position.step, endOfEpoch);
      position.last = {
        ...stepMetricsOf(run, at, out, started),
        ...await run.online.report(model, { epoch, endOfEpoch, logged, lead }),
      };
      trackPeak(peak);
      warnOnCollapse(position, onEvent);
      if (lead && logged) {
        await logStep(run, position.last);
        onStep?.(position.last);
      }
      advance(position, at, endOfEpoch);
      stopped = await agreeOnStop(comm, stopKindOf(signal));
      if (stopped !== undefined) {
        await saveRun(run, position);
        break;
      }
      if (checkpointDue(run, position.step, endOfEpoch)) {
        await saveRun(run, position);
        onEvent({
          level: "info",
          message: `Checkpoint ${position.checkpoint}`,
        });
      }
      if (position.step >= stopAt) break;
    }
    return await finish(
      run,
      position,
      stopped === "preempt"
        ? "preempted"
        : stopped === "interrupt"
        ? "interrupted"
        : "completed",
      peak,
    );
  } finally {
    run.online.dispose();
    optimizer.dispose();
    model.dispose();
    await run.events?.close();
    await run.directory?.close();
  }
}

/** The learning rate of the step after `step` steps (warm-up, then cosine). */
function learningRateAt(run: Run, step: number): number {
  return learningRate(step, run.totalSteps, {
    baseLr: run.config.baseLr,
    batchSize: run.config.batchSize,
    warmupSteps: run.warmupSteps,
  });
}

/** Where a step ran: steps done after it, its epoch, batch and rate. */
interface StepPlace {
  step: number;
  epoch: number;
  batch: number;
  lr: number;
}

/** The metrics of a step that started at `started` (`performance.now()`). */
function stepMetricsOf(
  run: Run,
  at: StepPlace,
  out: StepOutput,
  started: number,
): StepMetrics {
  return {
    ...at,
    ...out,
    imagesPerSecond: run.config.batchSize * 1000 /
      (performance.now() - started),
    totalSteps: run.stopAt,
    numTensors: tf.memory().numTensors,
  };
}

/** Raises `peak` to the tensor bytes and RSS in use now. */
function trackPeak(peak: PretrainResult["peakMemory"]): void {
  peak.tensorBytes = Math.max(peak.tensorBytes, tf.memory().numBytes);
  peak.rssBytes = Math.max(peak.rssBytes, Deno.memoryUsage().rss);
}

/** Whether step `step` is logged: every `log-every`, the last, an epoch's end. */
function logDue(run: Run, step: number, endOfEpoch: boolean): boolean {
  return step % run.config.logEvery === 0 || step === run.stopAt ||
    endOfEpoch;
}

/**
 * Whether the run checkpoints after step `step`: an epoch's end, every
 * `checkpoint-every` steps (when > 0), the last step.
 */
function checkpointDue(run: Run, step: number, endOfEpoch: boolean): boolean {
  const every = run.config.checkpointEvery;
  return endOfEpoch || (every > 0 && step % every === 0) ||
    step === run.stopAt;
}

/** Moves `position` to the batch after the one `at` names. */
function advance(position: Position, at: StepPlace, endOfEpoch: boolean): void {
  position.epoch = endOfEpoch ? at.epoch + 1 : at.epoch;
  position.batch = endOfEpoch ? 0 : at.batch + 1;
}

/**
 * Ends a run: checkpoints it if nothing has been saved yet (a resumed run
 * with nothing left to do), exports the backbone (rank 0) and says how it
 * ended.
 */
async function finish(
  run: Run,
  position: Position,
  status: PretrainResult["status"],
  peak: PretrainResult["peakMemory"],
): Promise<PretrainResult> {
  if (position.checkpoint === "") await saveRun(run, position);
  const backbone = `${run.dir}/${BACKBONE_FILE}`;
  if (run.lead) {
    await guardWrite(
      backbone,
      () => writeRunBackbone(run.dir, run.model.backbone),
    );
  }
  return {
    status,
    steps: position.step,
    last: position.last,
    checkpoint: position.checkpoint,
    backbone,
    peakMemory: peak,
  };
}

/** What a run is made of, set up once. */
interface Run {
  config: PretrainConfig;
  /** The ranks the batches are spread over. */
  comm: Communicator;
  /** Whether this is rank 0, which writes the run directory. */
  lead: boolean;
  /** Rank 0's lock on the run directory, released when the run ends. */
  directory?: RunDirectory;
  /** Rank 0's TensorBoard event file, with `tensorboard` on. */
  events?: RunEvents;
  /** The checkpoint a resumed run continues from. */
  checkpoint?: Checkpoint;
  /** What rank 0's checkpoints record of the data set's files. */
  dataFiles?: RecordedDataFiles;
  /** Rank 0's events. */
  onEvent: (event: PretrainEvent) => void;
  dir: string;
  loader: Loader;
  perEpoch: number;
  totalSteps: number;
  stopAt: number;
  warmupSteps: number;
  model: VicregModel;
  params: Map<string, tf.Variable>;
  buffers: Map<string, tf.Variable>;
  optimizer: Optimizer;
  augmentRng: Rng;
  stepSettings: StepSettings;
  /** The online probe and kNN (`online_probe.ts`, `online_knn.ts`). */
  online: OnlineMonitors;
}

/** Where the run stands: the next batch, steps done, the last metrics. */
interface Position {
  step: number;
  epoch: number;
  batch: number;
  last?: StepMetrics;
  /** Path of the last checkpoint's JSON ("" before the first). */
  checkpoint: string;
  collapseWarned: boolean;
}

/** How every step of a run augments and back-propagates. */
interface StepSettings {
  /** The views of each image: TrainTransform's two, or multi-crop. */
  transform: MultiCropTransform;
  viewMix: boolean;
  plan: StepPlan;
  comm: Communicator;
  /** The whole batch's size (this process holds a shard of it). */
  batchSize: number;
  online: OnlineMonitors;
}

/** One step's input. */
interface StepInput {
  /** This process's images of the batch. */
  images: RgbImage[];
  /** Their labels, for the online probe (`undefined`: unlabelled). */
  labels: Int32Array | undefined;
  /** Batch row of the first of them. */
  offset: number;
  rng: Rng;
  lr: number;
  onSlice?: (done: number, total: number) => void;
}

/** One step's loss and its terms, read back. */
type StepOutput = Omit<
  StepMetrics,
  | "step"
  | "epoch"
  | "batch"
  | "lr"
  | "imagesPerSecond"
  | "totalSteps"
  | "numTensors"
>;

async function setUp(
  config: PretrainConfig,
  options: PretrainOptions,
): Promise<Run> {
  const comm = options.communicator ?? new SingleCommunicator();
  const lead = comm.rank === 0;
  const onEvent = lead ? options.onEvent ?? (() => {}) : () => {};
  rankBatchOf(config, comm.size);
  const source = options.source ??
    (await import("@scaling-vicreg/data")).proceduralDataset({
      n: config.numImages,
      size: config.imageSize,
      seed: config.seed,
      split: "train",
    });
  // The online kNN's held-back images are left out of pretraining.
  const online = new OnlineMonitors(config, source, { comm, onEvent });
  const loader = new Loader(online.pretrainSource, {
    batchSize: config.batchSize,
    seed: config.seed,
    shuffle: true,
    dropLast: true,
    shard: { rank: comm.rank, size: comm.size },
  });
  // Checked, locked and cleaned (by rank 0) before anything is built; the
  // other ranks then read the checkpoint a resume continues from.
  const directory = lead
    ? await guardWrite(
      config.expDir,
      () => openRunDirectory(config, { onEvent }),
      { dir: config.expDir },
    )
    : undefined;
  let events: RunEvents | undefined;
  try {
    if (comm.size > 1) await comm.barrier();
    const checkpoint = lead
      ? directory!.checkpoint
      : config.resume
      ? await loadLatestCheckpoint(config.expDir)
      : undefined;
    const dataFiles = await settleDataFiles(comm, options.dataFiles, {
      dir: config.expDir,
      checkpoint,
      allow: config.allowDataChange,
      onWarning: (message) => onEvent({ level: "warning", message }),
    });
    const perEpoch = loader.batchesPerEpoch;
    const totalSteps = config.epochs * perEpoch;
    const model = createVicregModel(config);
    online.start(model.backbone.embeddingDim);
    if (config.syncBn && comm.size > 1) {
      model.syncBatchNorm = (sums) => comm.allReduceBlocking(sums);
    }
    const params = model.parameters();
    const plan = await stepPlanOf(config, model, comm.size);
    onEvent({ level: "info", message: stepPlanLine(plan, config, comm.size) });
    // Opened last, so a run that fails to set up leaves no event file.
    events = lead && config.tensorboard
      ? await RunEvents.open(config, {
        step: checkpoint === undefined ? 0 : checkpoint.meta.step + 1,
        preview: options.preview,
      })
      : undefined;
    return {
      config,
      comm,
      lead,
      directory,
      events,
      checkpoint,
      ...(dataFiles ? { dataFiles } : {}),
      onEvent,
      dir: config.expDir,
      loader,
      perEpoch,
      totalSteps,
      stopAt: config.maxSteps > 0
        ? Math.min(totalSteps, config.maxSteps)
        : totalSteps,
      warmupSteps: warmupEpochsOf(config) * perEpoch,
      model,
      params,
      buffers: model.buffers(),
      optimizer: createOptimizer(config.optimizer, params, {
        weightDecay: config.wd,
      }),
      augmentRng: new Rng(config.seed).fork("augment"),
      stepSettings: {
        transform: new MultiCropTransform({
          preset: config.augment,
          size: config.size,
          ...cropsOf(config),
        }),
        viewMix: config.useViewmix,
        plan,
        comm,
        batchSize: config.batchSize,
        online,
      },
      online,
    };
  } catch (error) {
    await events?.close();
    online.dispose();
    await directory?.close();
    throw error;
  }
}

/**
 * The step mode and micro-batch of a run: the `step` and `micro-batch` keys,
 * with `auto` resolved against the backend's memory.
 *
 * @param config The configuration.
 * @param model The run's model (profiled on the backend for `auto`).
 * @param ranks The processes of a data-parallel run: each plans its share of
 *   the batch (1: this process holds the whole batch).
 * @returns The plan and why.
 * @throws {ConfigError} As {@linkcode rankBatchOf}, or when no plan fits.
 */
export async function stepPlanOf(
  config: PretrainConfig,
  model: VicregModel,
  ranks: number = 1,
): Promise<StepPlan> {
  return (await stepPlannerOf(config, model, ranks))(memoryBudgetOf());
}

/**
 * {@linkcode stepPlanOf} for any memory: the model is profiled once, and
 * the function returned plans the step in the budget it is given.
 *
 * @param config The configuration.
 * @param model The run's model (profiled on the active backend for `auto`).
 * @param ranks The processes of a data-parallel run.
 * @returns The planner: a budget to the plan and why; it throws a
 *   {@linkcode ConfigError} when no plan fits the budget.
 * @throws {ConfigError} As {@linkcode rankBatchOf}.
 */
export async function stepPlannerOf(
  config: PretrainConfig,
  model: VicregModel,
  ranks: number = 1,
): Promise<(budget: MemoryBudget) => StepPlan> {
  const request = {
    step: config.step,
    microBatch: config.microBatch,
    keptSlices: config.keptSlices,
    distributed: ranks > 1,
    batch: rankBatchOf(config, ranks),
    local: config.useLocalLoss,
    optimizer: config.optimizer,
  };
  const measure = request.step === "auto" || request.microBatch === "auto" ||
    request.keptSlices === "auto";
  const profileAt = (size: number) =>
    measureStepMemory(model.backbone, size, model.parameters().values());
  const profile = measure ? await profileAt(config.size) : undefined;
  // The peak of one view through the whole model (projectors, local
  // loss's maps); not with ranks, whose synchronised BatchNorm would make
  // the measurement a collective.
  if (profile !== undefined && ranks === 1) {
    profile.viewBackwardBytesPerImage = await measureViewBackward(
      model,
      config.size,
    );
  }
  // Local views count at their own size: their tape measured there.
  const crops = cropsOf(config);
  const views = profile === undefined ? 2 : viewsOf(
    crops.numGlobal,
    crops.numLocal,
    profile,
    crops.numLocal > 0 ? await profileAt(crops.localSize) : undefined,
  );
  return (budget) => {
    try {
      return planStep({ ...request, views }, profile!, budget);
    } catch (cause) {
      throw new ConfigError("micro-batch", (cause as Error).message, {
        cause,
      });
    }
  };
}

/**
 * The line a run prints for its plan: `Step: <why>`, and with ranks what
 * each holds.
 *
 * @param plan The plan ({@linkcode stepPlanOf}).
 * @param config The configuration (its `batch-size`).
 * @param ranks The processes of the run.
 * @returns The line.
 */
export function stepPlanLine(
  plan: StepPlan,
  config: PretrainConfig,
  ranks: number = 1,
): string {
  return `Step: ${plan.reason}${
    ranks > 1
      ? ` (per rank, ${ranks} ranks of ${config.batchSize / ranks} images)`
      : ""
  }`;
}

async function resumeOrStart(
  run: Run,
  onEvent: (event: PretrainEvent) => void,
): Promise<Position> {
  const position: Position = {
    step: 0,
    epoch: 0,
    batch: 0,
    checkpoint: "",
    collapseWarned: false,
  };
  // openRunDirectory has written config.yaml and cut metrics.jsonl back to
  // the checkpoint (or emptied it for a fresh run).
  const ckpt = run.checkpoint;
  if (ckpt !== undefined) {
    restore(
      run.model,
      run.optimizer,
      ckpt.tensors,
      ckpt.meta.state.optimizerStep as number,
    );
    run.online.restore(ckpt.tensors, ckpt.meta.state.online, onEvent);
    position.step = ckpt.meta.step;
    position.epoch = ckpt.meta.epoch;
    position.batch = ckpt.meta.batch;
    // A resumed run that has nothing left to do keeps its checkpoint.
    position.checkpoint = `${run.dir}/${
      ckpt.meta.tensors.replace(/\.safetensors$/, ".json")
    }`;
    position.last = ckpt.meta.state.last as StepMetrics | undefined;
    onEvent({
      level: "info",
      message:
        `Resumed from ${ckpt.meta.tensors} at step ${position.step} (epoch ${position.epoch}, batch ${position.batch})`,
    });
  }
  if (run.comm.size > 1) await broadcastWeights(run);
  return position;
}

/**
 * Makes every rank start from rank 0's weights and optimizer state (equal
 * already when they come from the same seed or checkpoint; this makes it
 * certain).
 */
async function broadcastWeights(run: Run): Promise<void> {
  const state = run.optimizer.state();
  for (const v of [...run.params.values(), ...run.buffers.values()]) {
    const values = new Float32Array(await v.data());
    await run.comm.broadcast(values, 0);
    const t = tf.tensor(values, v.shape, "float32");
    v.assign(t);
    t.dispose();
  }
  const slots = new Map<string, tf.Tensor>();
  for (const [k, t] of state.tensors) {
    const values = new Float32Array(await t.data());
    await run.comm.broadcast(values, 0);
    slots.set(k, tf.tensor(values, t.shape, "float32"));
  }
  run.optimizer.loadState({ step: state.step, tensors: slots });
  tf.dispose([...slots.values()]);
}

/**
 * The batches from `position` on, epoch by epoch, until the last epoch or
 * step `stopAt`.
 */
async function* batchesFrom(
  loader: Loader,
  position: Position,
  config: PretrainConfig,
  stopAt: number,
): AsyncGenerator<{ epoch: number; batch: Batch }> {
  if (position.step >= stopAt) return;
  for (let epoch = position.epoch; epoch < config.epochs; epoch++) {
    const start = epoch === position.epoch ? position.batch : 0;
    for await (const batch of loader.batches(epoch, start)) {
      yield { epoch, batch };
    }
  }
}

/**
 * One training step: the augmented views of the batch (two, or G global and
 * M local ones; ViewMix when on), the loss and gradients as the plan says,
 * one optimizer update.
 */
async function trainStep(
  model: VicregModel,
  optimizer: Optimizer,
  input: StepInput,
  settings: StepSettings,
): Promise<StepOutput> {
  // Each image's views from its own generator (its row of the batch), so
  // the views do not depend on how the batch is spread over processes.
  // With two views these are TrainTransform's draws exactly.
  const params: ViewParams[][] = Array.from(
    { length: settings.transform.numViews },
    () => [],
  );
  input.images.forEach((image, i) => {
    const drawn = settings.transform.sample(
      [image],
      input.rng.fork(`image ${input.offset + i}`),
    );
    drawn.forEach((p, v) => params[v].push(p[0]));
  });
  let views = settings.transform.render(input.images, params);
  if (settings.viewMix) {
    // the configuration allows ViewMix with the two views only
    const mixed = viewMix(views[0], views[1], input.rng.fork("viewmix"), {
      rows: { start: input.offset, total: settings.batchSize },
    });
    tf.dispose(views);
    views = [mixed.x, mixed.y];
  }
  const geometryOf = (p: ViewParams[]): ViewGeometry[] =>
    p.map(({ box, flip }) => ({ box, flip }));
  const options = {
    geometry: params.map(geometryOf),
    mode: settings.plan.mode,
    microBatch: settings.plan.microBatch,
    keptSlices: settings.plan.keptSlices,
    onSlice: input.onSlice,
  };
  const { loss, grads } = await settings.online.during(
    model,
    input.labels,
    input.lr,
    async () =>
      settings.comm.size > 1
        ? await distributedStepGradients(model, views, settings.comm, options)
        : stepGradients(model, views, options),
    views.length,
  );
  tf.dispose(views);
  const norm = gradientNorm(grads.values());
  optimizer.step(Object.fromEntries(grads), input.lr);
  tf.dispose([...grads.values()]);
  const read = async (t: tf.Scalar) => (await t.data())[0];
  const { terms } = loss;
  const out: StepOutput = {
    loss: await read(loss.total),
    invariance: await read(terms.invariance),
    variance: await read(terms.variance),
    covariance: await read(terms.covariance),
    embeddingStd: await read(terms.embeddingStd),
    collapsedFraction: await read(terms.collapsedFraction),
    ...(terms.local ? { localLoss: await read(terms.local) } : {}),
    gradNorm: await read(norm),
  };
  tf.dispose([loss, norm]);
  return out;
}

/**
 * The error that stops a diverged run; rank 0 first moves the checkpoints
 * that may hold diverged weights aside (every rank sees the same loss and
 * gradients, so every rank stops at the same step).
 */
async function stopRun(
  run: Run,
  divergence: Divergence,
  where: { epoch: number; batch: number },
): Promise<DivergenceError> {
  if (run.lead) return await stopDiverged(run.dir, divergence, where);
  return new DivergenceError(
    divergence,
    `Rank ${run.comm.rank}: training diverged at step ${divergence.step}: ${divergence.reason}`,
  );
}

function warnOnCollapse(
  position: Position,
  onEvent: (event: PretrainEvent) => void,
): void {
  const last = position.last!;
  if (last.embeddingStd >= 0.05 || position.collapseWarned) return;
  position.collapseWarned = true;
  onEvent({
    level: "warning",
    message: `Embedding std fell to ${
      last.embeddingStd.toFixed(4)
    } at step ${last.step}: the representation may be collapsing`,
  });
}

/** Logs a step: its line of `metrics.jsonl`, and its TensorBoard scalars. */
async function logStep(run: Run, metrics: StepMetrics): Promise<void> {
  await guardWrite(
    `${run.dir}/${METRICS_FILE}`,
    () => appendMetrics(run.dir, metrics),
  );
  const events = run.events;
  if (events !== undefined) {
    await guardWrite(
      `${run.dir}/events.out.tfevents.*`,
      () => events.step(metrics),
    );
  }
}

/** Checkpoints the run at `position` (the next batch to train). */
async function saveRun(run: Run, position: Position): Promise<void> {
  if (!run.lead) {
    position.checkpoint = "(written by rank 0)";
    return;
  }
  const tensors = new Map<string, tf.Tensor>([...run.params, ...run.buffers]);
  const opt = run.optimizer.state();
  for (const [k, t] of opt.tensors) tensors.set(`optimizer.${k}`, t);
  for (const [k, t] of run.online.checkpointTensors()) tensors.set(k, t);
  const snapshot = await snapshotTensors(tensors);
  const name = checkpointName(position.step).replace(/json$/, "safetensors");
  position.checkpoint = await guardWrite(
    `${run.dir}/${name}`,
    () =>
      saveCheckpoint(
        run.dir,
        snapshot,
        {
          step: position.step,
          epoch: position.epoch,
          batch: position.batch,
          state: {
            optimizerStep: opt.step,
            last: position.last,
            online: run.online.checkpointState(),
            config: { ...run.config, resume: false },
            ...(run.dataFiles ? { dataFiles: run.dataFiles } : {}),
          },
        },
        {
          keep: run.config.keepCheckpoints,
          onDamaged: (d) =>
            run.onEvent({
              level: "warning",
              message:
                `Moved damaged checkpoint ${d.path} into ${run.dir}/damaged/: ${d.reason}`,
            }),
        },
      ),
  );
}

function restore(
  model: VicregModel,
  optimizer: Optimizer,
  saved: Record<string, SafeTensor>,
  optimizerStep: number,
): void {
  for (const [prefix, m] of model.modules()) {
    const mine: Record<string, SafeTensor> = {};
    for (const [k, t] of Object.entries(saved)) {
      if (k.startsWith(`${prefix}.`)) mine[k.slice(prefix.length + 1)] = t;
    }
    loadStateDict(m, mine);
  }
  const slots = new Map<string, tf.Tensor>();
  for (const [k, t] of Object.entries(saved)) {
    if (k.startsWith("optimizer.")) {
      slots.set(
        k.slice(10),
        tf.tensor(t.data as Float32Array, t.shape, "float32"),
      );
    }
  }
  optimizer.loadState({ step: optimizerStep, tensors: slots });
  tf.dispose([...slots.values()]);
}
