/**
 * The VICReg pretraining loop (facebookresearch/vicreg `main_vicreg.py`, plus
 * the paper's local loss): two augmented views per image, backbone and
 * projector in training mode on both, VICReg on the projections (+ α × the
 * local loss on last-feature-map descriptors), LARS/AdamW/SGD with warm-up and
 * cosine decay; atomic checkpoints, exact resume, JSONL metrics.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng, usesWasmHeap } from "@scaling-vicreg/backend";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import { TrainTransform, viewMix } from "@scaling-vicreg/augment";
import { type ImageSource, Loader } from "@scaling-vicreg/data";
import type { ViewGeometry } from "@scaling-vicreg/losses";
import {
  createProjector,
  createResNet,
  loadStateDict,
  type Module,
  type Projector,
  type ResNet,
  type ResNetArch,
} from "@scaling-vicreg/models";
import { type PretrainConfig, warmupEpochsOf } from "./config.ts";
import { learningRate } from "./schedule.ts";
import {
  createOptimizer,
  type Optimizer,
  type OptimizerKind,
} from "./optimizer.ts";
import {
  activationBytesPerView,
  chooseStepMode,
  stepGradients,
  type StepMode,
} from "./_step.ts";
import { saveCheckpoint, snapshotTensors } from "./checkpoint.ts";
import { openRunDirectory, stopDiverged } from "./run_dir.ts";
import { DivergenceGuard, gradientNorm } from "./divergence.ts";

/** One logged step, as written to `metrics.jsonl`. */
export interface StepMetrics {
  /** Steps completed (1-based). */
  step: number;
  /** Epoch of the step (0-based). */
  epoch: number;
  /** Batch index within the epoch. */
  batch: number;
  /** Learning rate used. */
  lr: number;
  /** Total loss. */
  loss: number;
  /** Global L2 norm of the step's gradients. */
  gradNorm: number;
  /** Global invariance term (unweighted). */
  invariance: number;
  /** Global variance term (unweighted). */
  variance: number;
  /** Global covariance term (unweighted). */
  covariance: number;
  /** Local loss (weighted total of its terms, before α), when used. */
  localLoss?: number;
  /** Training throughput of this step. */
  imagesPerSecond: number;
  /** Mean per-dimension std of the first view's projections. */
  embeddingStd: number;
  /** Fraction of projection dimensions whose std is below 0.01. */
  collapsedFraction: number;
  /** Steps in the whole run. */
  totalSteps: number;
  /** Live tensors after the step (constant across steps: no leak). */
  numTensors: number;
}

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
  /** Called for notable events (resume, checkpoints, warnings). */
  onEvent?: (event: PretrainEvent) => void;
  /** Stops after the current step, checkpointing first (SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** What {@linkcode pretrain} returns. */
export interface PretrainResult {
  /** `completed`, or `interrupted` when the signal stopped it. */
  status: "completed" | "interrupted";
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

/** The networks of a run. */
export interface VicregNetworks {
  /** The backbone. */
  backbone: ResNet;
  /** The global projector. */
  projector: Projector;
  /** The local projector, when the local loss is on. */
  localProjector?: Projector;
}

/**
 * Builds the backbone and projectors of a configuration from one seed.
 *
 * @param config The configuration.
 * @returns The networks (dispose them with {@linkcode disposeNetworks}).
 */
export function buildNetworks(config: PretrainConfig): VicregNetworks {
  const rng = new Rng(config.seed).fork("init");
  const stem = config.stem === "auto"
    ? (config.size < 64 ? "cifar" : "imagenet")
    : config.stem;
  const backbone = createResNet(
    config.arch as ResNetArch,
    rng.fork("backbone"),
    {
      stem: stem as "imagenet" | "cifar",
    },
  );
  const projector = createProjector(
    backbone.embeddingDim,
    config.mlp,
    rng.fork("projector"),
  );
  const localProjector = config.useLocalLoss
    ? createProjector(
      backbone.embeddingDim,
      config.localMlp,
      rng.fork("local-projector"),
    )
    : undefined;
  return { backbone, projector, localProjector };
}

/**
 * Disposes the networks' variables.
 *
 * @param nets The networks.
 */
export function disposeNetworks(nets: VicregNetworks): void {
  nets.backbone.dispose();
  nets.projector.dispose();
  nets.localProjector?.dispose();
}

function modules(nets: VicregNetworks): [string, Module][] {
  const out: [string, Module][] = [["backbone", nets.backbone], [
    "projector",
    nets.projector,
  ]];
  if (nets.localProjector) out.push(["local_projector", nets.localProjector]);
  return out;
}

/**
 * Every variable of the networks under `<module>.<name>`.
 *
 * @param nets The networks.
 * @param which `parameters` (trainable) or `buffers` (running statistics).
 * @returns Variables by prefixed name.
 */
export function namedVariables(
  nets: VicregNetworks,
  which: "parameters" | "buffers",
): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [prefix, m] of modules(nets)) {
    for (const [name, v] of m[which]()) out.set(`${prefix}.${name}`, v);
  }
  return out;
}

function geometryOf(
  params: { box: [number, number, number, number]; flip: boolean }[],
): ViewGeometry[] {
  return params.map((p) => ({ box: p.box, flip: p.flip }));
}

interface StepOutput {
  gradNorm: number;
  loss: number;
  invariance: number;
  variance: number;
  covariance: number;
  localLoss?: number;
  embeddingStd: number;
  collapsedFraction: number;
}

/**
 * Runs (or resumes) a pretraining run as configured, writing `config.yaml`,
 * `metrics.jsonl`, checkpoints and `backbone.safetensors` to `config.expDir`.
 *
 * The active TF.js backend is used as it is: pick it with `useBackend` first.
 *
 * @example
 * ```ts ignore
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { pretrain, resolveConfig } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const config = resolveConfig({ flags: { preset: "tiny", "exp-dir": "runs/demo" } });
 * const result = await pretrain(config, { onStep: (m) => console.log(m.loss) });
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
  const { onStep, onEvent = () => {}, signal } = options;
  const dir = config.expDir;
  const source = options.source ??
    (await import("@scaling-vicreg/data")).proceduralDataset({
      n: config.numImages,
      size: config.imageSize,
      seed: config.seed,
      split: "train",
    });
  const loader = new Loader(source, {
    batchSize: config.batchSize,
    seed: config.seed,
    shuffle: true,
    dropLast: true,
  });
  const perEpoch = loader.batchesPerEpoch;
  // Checked, locked and cleaned before anything is built; released on return.
  await using run = await openRunDirectory(config, { onEvent });
  const totalSteps = config.epochs * perEpoch;
  const stopAt = config.maxSteps > 0
    ? Math.min(totalSteps, config.maxSteps)
    : totalSteps;
  const warmupSteps = warmupEpochsOf(config) * perEpoch;

  const nets = buildNetworks(config);
  const params = namedVariables(nets, "parameters");
  const buffers = namedVariables(nets, "buffers");
  const optimizer = createOptimizer(config.optimizer as OptimizerKind, params, {
    weightDecay: config.wd,
  });
  const transform = new TrainTransform({
    size: config.size,
    scale: [config.cropMinScale, config.cropMaxScale],
    preset: config.augment as "vicreg" | "paper-code",
  });
  const augmentBase = new Rng(config.seed).fork("augment");
  const lossOptions = {
    simCoeff: config.simCoeff,
    stdCoeff: config.stdCoeff,
    covCoeff: config.covCoeff,
    variant: config.lossVariant as "vicreg" | "paper-code",
  };
  const projectorDim = nets.projector.outputDim;
  const wasmHeap = usesWasmHeap(tf.getBackend());
  const { mode: stepMode, reason: stepReason } = chooseStepMode(
    config.step,
    wasmHeap,
    config.step === "auto" && wasmHeap
      ? await activationBytesPerView(nets.backbone, config.size)
      : 0,
    config.batchSize,
    config.useLocalLoss,
  );
  onEvent({
    level: "info",
    message: `Step: ${stepMode} (${stepReason})`,
  });

  let step = 0;
  let epoch = 0;
  let batchStart = 0;
  let resumed: { path: string; last?: StepMetrics } | undefined;
  const metricsPath = `${dir}/metrics.jsonl`;
  try {
    const ckpt = run.checkpoint;
    if (ckpt !== undefined) {
      restore(
        nets,
        optimizer,
        ckpt.tensors,
        ckpt.meta.state.optimizerStep as number,
      );
      step = ckpt.meta.step;
      epoch = ckpt.meta.epoch;
      batchStart = ckpt.meta.batch;
      resumed = {
        path: `${dir}/${ckpt.meta.tensors.replace(/\.safetensors$/, ".json")}`,
        last: ckpt.meta.state.last as StepMetrics | undefined,
      };
      onEvent({
        level: "info",
        message:
          `Resumed from ${ckpt.meta.tensors} at step ${step} (epoch ${epoch}, batch ${batchStart})`,
      });
    }

    const peak = { tensorBytes: 0, rssBytes: 0 };
    // A resumed run that has nothing left to do keeps its checkpoint as it is.
    let last: StepMetrics | undefined = resumed?.last;
    let lastCheckpoint = resumed?.path ?? "";
    let collapseWarned = false;
    const checkpoint = async (nextEpoch: number, nextBatch: number) => {
      const tensors = new Map<string, tf.Tensor>([...params, ...buffers]);
      const opt = optimizer.state();
      for (const [k, t] of opt.tensors) tensors.set(`optimizer.${k}`, t);
      lastCheckpoint = await saveCheckpoint(
        dir,
        await snapshotTensors(tensors),
        {
          step,
          epoch: nextEpoch,
          batch: nextBatch,
          state: {
            optimizerStep: opt.step,
            last,
            config: { ...config, resume: false },
          },
        },
        {
          keep: config.keepCheckpoints,
          onDamaged: (d) =>
            onEvent({
              level: "warning",
              message:
                `Moved damaged checkpoint ${d.path} into ${dir}/damaged/: ${d.reason}`,
            }),
        },
      );
    };

    let interrupted = false;
    const guard = new DivergenceGuard();
    outer: for (
      ;
      epoch < config.epochs && step < stopAt;
      epoch++, batchStart = 0
    ) {
      for await (const batch of loader.batches(epoch, batchStart)) {
        const started = performance.now();
        const lr = learningRate(step, totalSteps, {
          baseLr: config.baseLr,
          batchSize: config.batchSize,
          warmupSteps,
        });
        const rng = augmentBase.fork(`${epoch}/${batch.index}`);
        const out = await trainStep(
          nets,
          optimizer,
          params,
          transform,
          batch.images,
          rng,
          lr,
          config,
          lossOptions,
          projectorDim,
          stepMode,
        );
        step += 1;
        const diverged = guard.observe(step, out);
        if (diverged) {
          throw await stopDiverged(dir, diverged, {
            epoch,
            batch: batch.index,
          });
        }
        const seconds = (performance.now() - started) / 1000;
        last = {
          step,
          epoch,
          batch: batch.index,
          lr,
          ...out,
          imagesPerSecond: batch.images.length / seconds,
          totalSteps: stopAt,
          numTensors: tf.memory().numTensors,
        };
        peak.tensorBytes = Math.max(peak.tensorBytes, tf.memory().numBytes);
        peak.rssBytes = Math.max(peak.rssBytes, Deno.memoryUsage().rss);
        if (out.embeddingStd < 0.05 * 1 && !collapseWarned) {
          collapseWarned = true;
          onEvent({
            level: "warning",
            message: `Embedding std fell to ${
              out.embeddingStd.toFixed(4)
            } at step ${step}: the representation may be collapsing`,
          });
        }
        if (
          step % config.logEvery === 0 || step === stopAt ||
          batch.index === perEpoch - 1
        ) {
          await Deno.writeTextFile(metricsPath, JSON.stringify(last) + "\n", {
            append: true,
          });
          onStep?.(last);
        }
        const endOfEpoch = batch.index === perEpoch - 1;
        const nextEpoch = endOfEpoch ? epoch + 1 : epoch;
        const nextBatch = endOfEpoch ? 0 : batch.index + 1;
        if (signal?.aborted) {
          await checkpoint(nextEpoch, nextBatch);
          interrupted = true;
          break outer;
        }
        if (
          endOfEpoch ||
          (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) ||
          step === stopAt
        ) {
          await checkpoint(nextEpoch, nextBatch);
          onEvent({ level: "info", message: `Checkpoint ${lastCheckpoint}` });
        }
        if (step >= stopAt) break outer;
      }
    }
    if (lastCheckpoint === "") await checkpoint(epoch, batchStart);
    const backbonePath = `${dir}/backbone.safetensors`;
    await exportBackbone(nets, backbonePath);
    return {
      status: interrupted ? "interrupted" : "completed",
      steps: step,
      last,
      checkpoint: lastCheckpoint,
      backbone: backbonePath,
      peakMemory: peak,
    };
  } finally {
    optimizer.dispose();
    disposeNetworks(nets);
  }
}

async function trainStep(
  nets: VicregNetworks,
  optimizer: Optimizer,
  params: Map<string, tf.Variable>,
  transform: TrainTransform,
  images: import("@scaling-vicreg/backend").RgbImage[],
  rng: Rng,
  lr: number,
  config: PretrainConfig,
  lossOptions: {
    simCoeff: number;
    stdCoeff: number;
    covCoeff: number;
    variant: "vicreg" | "paper-code";
  },
  projectorDim: number,
  stepMode: StepMode,
): Promise<StepOutput> {
  const views = transform.apply(images, rng);
  let [x1, x2] = [views.view1, views.view2];
  if (config.useViewmix) {
    const mixed = viewMix(x1, x2, rng.fork("viewmix"));
    tf.dispose([x1, x2]);
    [x1, x2] = [mixed.x, mixed.y];
  }
  const geometry: [ViewGeometry[], ViewGeometry[]] = [
    geometryOf(views.params[0]),
    geometryOf(views.params[1]),
  ];
  // Every mode gives the same update; they trade memory for forward passes
  // (see chooseStepMode).
  const { value, metrics, grads } = stepGradients(
    nets,
    params,
    [x1, x2],
    geometry,
    { config, lossOptions, projectorDim },
    stepMode,
  );
  tf.dispose([x1, x2]);
  const norm = gradientNorm(grads.values());
  optimizer.step(Object.fromEntries(grads), lr);
  tf.dispose([...grads.values()]);
  const values = await Promise.all(
    [value, ...metrics].map(async (t) => (await t.data())[0]),
  );
  const gradNorm = (await norm.data())[0];
  tf.dispose([value, ...metrics, norm]);
  return {
    gradNorm,
    loss: values[0],
    invariance: values[1],
    variance: values[2],
    covariance: values[3],
    embeddingStd: values[4],
    collapsedFraction: values[5],
    ...(values.length > 6 ? { localLoss: values[6] } : {}),
  };
}

function restore(
  nets: VicregNetworks,
  optimizer: Optimizer,
  saved: Record<
    string,
    import("@scaling-vicreg/models/safetensors").SafeTensor
  >,
  optimizerStep: number,
): void {
  for (const [prefix, m] of modules(nets)) {
    const mine: Record<
      string,
      import("@scaling-vicreg/models/safetensors").SafeTensor
    > = {};
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

async function exportBackbone(
  nets: VicregNetworks,
  path: string,
): Promise<void> {
  const tensors = new Map<string, tf.Tensor>([
    ...nets.backbone.parameters(),
    ...nets.backbone.buffers(),
  ]);
  const { encodeSafetensors } = await import(
    "@scaling-vicreg/models/safetensors"
  );
  await writeFileAtomic(
    path,
    encodeSafetensors(await snapshotTensors(tensors), {
      arch: nets.backbone.arch,
    }),
  );
}
