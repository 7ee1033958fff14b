/**
 * The VICReg training step that `bench:compare` times: this project's
 * `models` ResNet and projector, `losses`' `vicregLoss` (25, 25, 1) and a
 * plain SGD update. Its PyTorch twin is `bench/torch_step.py`: the same
 * torchvision-structured backbone, VICReg projector, loss and update.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { leanTape, type Rng } from "@scaling-vicreg/backend";
import { vicregLoss } from "@scaling-vicreg/losses";
import {
  createProjector,
  createResNet,
  type Projector,
  type ResNet,
  type ResNetArch,
} from "@scaling-vicreg/models";

/** One benchmark case: the network, input size, batch and projector. */
export interface StepCase {
  /** Short name printed in the results, e.g. `resnet18-cifar-32px-b64`. */
  name: string;
  /** The backbone (`models`' {@linkcode ResNetArch}). */
  arch: ResNetArch;
  /** `cifar` (3x3 stride-1 conv, no max pool) or `imagenet` stem. */
  stem: "cifar" | "imagenet";
  /** Input side in pixels (square RGB images). */
  imageSize: number;
  /** Images per view (each step runs two views of this many images). */
  batch: number;
  /** Projector layer widths after the backbone, e.g. `[512, 512]`. */
  projector: number[];
}

/** The cases `bench:compare` runs (issue 11). */
export const STEP_CASES: Record<string, StepCase> = {
  "resnet18-cifar-32px-b64": {
    name: "resnet18-cifar-32px-b64",
    arch: "resnet18",
    stem: "cifar",
    imageSize: 32,
    batch: 64,
    projector: [512, 512],
  },
  "resnet50-96px-b32": {
    name: "resnet50-96px-b32",
    arch: "resnet50",
    stem: "imagenet",
    imageSize: 96,
    batch: 32,
    projector: [2048, 2048, 1024],
  },
  "tiny-16px-b16": {
    name: "tiny-16px-b16",
    arch: "tiny",
    stem: "cifar",
    imageSize: 16,
    batch: 16,
    projector: [64, 64],
  },
};

/** The networks of a {@linkcode StepCase}. */
export interface StepModel {
  /** The case it was built for. */
  readonly spec: StepCase;
  /** The backbone. */
  readonly backbone: ResNet;
  /** The projector. */
  readonly projector: Projector;
  /** Every trainable variable, backbone first, in a fixed order. */
  readonly variables: tf.Variable[];
  /** Frees the variables. */
  dispose(): void;
}

/**
 * Builds a case's ResNet (`createResNet`) and projector (`createProjector`)
 * with their default initialisation.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { makeStepModel, STEP_CASES } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const model = makeStepModel(STEP_CASES["tiny-16px-b16"], new Rng(0));
 * model.dispose();
 * ```
 *
 * @param spec The case.
 * @param rng Seeded generator for the initial weights.
 * @returns The model; call `dispose()` when done.
 */
export function makeStepModel(spec: StepCase, rng: Rng): StepModel {
  const backbone = createResNet(spec.arch, rng.fork("backbone"), {
    stem: spec.stem,
  });
  const projector = createProjector(
    backbone.embeddingDim,
    spec.projector.join("-"),
    rng.fork("projector"),
  );
  return {
    spec,
    backbone,
    projector,
    variables: [
      ...backbone.parameters().values(),
      ...projector.parameters().values(),
    ],
    dispose(): void {
      backbone.dispose();
      projector.dispose();
    },
  };
}

/** Options of {@linkcode trainStep}. */
export interface TrainStepOptions {
  /**
   * SGD learning rate.
   * @default {0.01}
   */
  lr?: number;
  /**
   * How to back-propagate, as `train`'s `StepMode`: `joint` (one tape over
   * both views); `mixed` (view 1 embedded without a tape by
   * `ResNet.forwardCheckpointed`, view 2 and the projector on one tape, then
   * view 1 back-propagated block by block); `view-by-view` (both views
   * embedded without a tape, the loss gradient taken w.r.t. the two
   * embeddings and the projector, each backbone back-propagated block by
   * block, recomputed with running statistics frozen). All three give the
   * same update (BN statistics are per view either way); each trades memory
   * for one more backbone forward pass per recomputed view.
   * @default {"joint"}
   */
  mode?: "joint" | "mixed" | "view-by-view";
}

/** Defaults of {@linkcode TrainStepOptions}. */
export const DEFAULT_TRAIN_STEP_OPTIONS: Required<TrainStepOptions> = {
  lr: 0.01,
  mode: "joint",
};

/**
 * One VICReg training step: both views `[N, H, W, 3]` through backbone and
 * projector (training-mode BN), `vicregLoss`, gradients, and a plain SGD
 * update in place. Returns the loss tensor (read it asynchronously).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { makeStepModel, STEP_CASES, trainStep } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const model = makeStepModel(STEP_CASES["tiny-16px-b16"], new Rng(0));
 * const x = tf.randomNormal([2, 16, 16, 3]) as tf.Tensor4D;
 * const loss = trainStep(model, [x, x], { lr: 0.01 });
 * console.log(await loss.data());
 * tf.dispose([x, loss]);
 * model.dispose();
 * ```
 *
 * @param model From {@linkcode makeStepModel}.
 * @param views The two views, each `[N, H, W, 3]`.
 * @param options See {@linkcode TrainStepOptions}.
 * @returns The loss before the update (a scalar the caller disposes).
 */
export function trainStep(
  model: StepModel,
  views: [tf.Tensor4D, tf.Tensor4D],
  options: TrainStepOptions = {},
): tf.Scalar {
  const { lr, mode } = { ...DEFAULT_TRAIN_STEP_OPTIONS, ...options };
  if (!(lr > 0)) throw new RangeError(`Expected lr > 0: received ${lr}`);
  const { backbone, projector, variables } = model;
  const embed = (x: tf.Tensor4D, updateRunningStats = true) =>
    backbone.forward(x, { training: true, updateRunningStats }).embedding;
  const heads = (ea: tf.Tensor2D, eb: tf.Tensor2D) =>
    vicregLoss(
      projector.forward(ea, { training: true }),
      projector.forward(eb, { training: true }),
    ).loss;
  let loss: tf.Scalar;
  let grads: tf.Tensor[];
  const trunk = [...backbone.parameters()];
  const head = variables.slice(trunk.length);
  if (mode === "mixed") {
    // No tape: view 1 keeps its embedding [N, E] and its blocks' inputs.
    const run = backbone.forwardCheckpointed(views[0], { training: true });
    const out = tf.engine().gradients(
      () => leanTape(() => heads(run.embedding, embed(views[1]))),
      [...variables, run.embedding],
      undefined,
      true,
    );
    loss = out.value as tf.Scalar;
    const de = out.grads[variables.length] as tf.Tensor2D;
    const part = run.backward({ embedding: de });
    run.dispose();
    de.dispose();
    grads = variables.map((_, i) => {
      if (i >= trunk.length) return out.grads[i];
      const sum = tf.add(out.grads[i], part.get(trunk[i][0])!);
      tf.dispose([out.grads[i], part.get(trunk[i][0])!]);
      return sum;
    });
  } else if (mode === "joint") {
    const out = tf.variableGrads(
      () => leanTape(() => heads(embed(views[0]), embed(views[1]))),
      variables,
    );
    loss = out.value;
    grads = variables.map((v) => out.grads[v.name]);
  } else {
    // No tape: each run keeps its embedding [N, E] and its blocks' inputs.
    const runs = views.map((x) =>
      backbone.forwardCheckpointed(x, { training: true })
    );
    const out = tf.engine().gradients(
      () => heads(runs[0].embedding, runs[1].embedding),
      [...head, runs[0].embedding, runs[1].embedding],
      undefined,
      true,
    );
    loss = out.value as tf.Scalar;
    const sums: tf.Tensor[] = [];
    runs.forEach((run, v) => {
      const de = out.grads[head.length + v] as tf.Tensor2D;
      const part = run.backward({ embedding: de });
      run.dispose();
      de.dispose();
      trunk.forEach(([name], i) => {
        const g = part.get(name)!;
        if (v === 0) {
          sums.push(g);
        } else {
          const previous = sums[i];
          sums[i] = tf.add(previous, g);
          tf.dispose([previous, g]);
        }
      });
    });
    grads = [...sums, ...out.grads.slice(0, head.length)];
  }
  tf.tidy(() => {
    variables.forEach((v, i) => v.assign(tf.sub(v, tf.mul(grads[i], lr))));
  });
  tf.dispose(grads);
  return loss;
}
