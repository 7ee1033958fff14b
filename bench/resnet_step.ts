/**
 * The VICReg training step that `bench:compare` times: `train`'s
 * {@linkcode VicregModel} for a case (this project's `models` ResNet and
 * projector, VICReg (25, 25, 1), the local loss on index-paired cells), its
 * `stepGradients` (the step `pretrain()` runs) and `optim`'s plain SGD. Its
 * PyTorch twin is `bench/torch_step.py`: the same torchvision-structured
 * backbone, VICReg projector, loss and update.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";
import {
  createProjector,
  createResNet,
  type ResNetArch,
} from "@scaling-vicreg/models";
import { createOptimizer, type Optimizer } from "@scaling-vicreg/optim";
import {
  stepGradients,
  type StepOptions,
  VicregModel,
} from "@scaling-vicreg/train";

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
  /**
   * With a local loss: the local projector's widths, applied to every cell
   * of the backbone's last feature map (VICRegL-style); cells of the two
   * views are paired by grid index and their VICReg loss is added × `localAlpha`.
   */
  localProjector?: number[];
  /** Weight of the local loss. @default {0.2} */
  localAlpha?: number;
  /**
   * Multi-crop: M local views of `localSize` px besides the two global
   * views of `imageSize` (VICReg over all views, `train`'s multi-view
   * criterion). @default {0}
   */
  localCrops?: number;
  /** Side of the local views. @default {imageSize} */
  localSize?: number;
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
  // GPU only: a step takes minutes on a CPU.
  "resnet50x2-96px-b256-local": {
    name: "resnet50x2-96px-b256-local",
    arch: "resnet50x2",
    stem: "imagenet",
    imageSize: 96,
    batch: 256,
    projector: [2048, 2048, 1024],
    localProjector: [1024, 512],
    localAlpha: 0.2,
  },
  // Multi-crop at the paper's sizes: 2 × 96 px + 6 × 41 px (VICRegL's 96 of
  // 224, scaled to 96 px global views); compare with resnet50-96px-b32.
  "resnet50-96px-b32-mc6": {
    name: "resnet50-96px-b32-mc6",
    arch: "resnet50",
    stem: "imagenet",
    imageSize: 96,
    batch: 32,
    projector: [2048, 2048, 1024],
    localCrops: 6,
    localSize: 41,
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

/**
 * The one-line error for the first name that is not a key of
 * {@linkcode STEP_CASES}, if any.
 *
 * @example
 * ```ts
 * import { unknownStepCase } from "@scaling-vicreg/bench";
 * console.log(unknownStepCase(["tiny-16px-b16"])); // undefined
 * console.log(unknownStepCase(["tiny-16px-b16", "tiny"])?.startsWith('Unknown case "tiny"')); // true
 * ```
 *
 * @param names The case names asked for (`--cases`).
 * @returns The error naming the case and the known ones, or `undefined`.
 */
export function unknownStepCase(names: readonly string[]): string | undefined {
  const unknown = names.find((name) => !Object.hasOwn(STEP_CASES, name));
  return unknown === undefined
    ? undefined
    : `Unknown case "${unknown}": expected one of ${
      Object.keys(STEP_CASES).join(", ")
    }`;
}

/**
 * Builds a case's model: `createResNet` and `createProjector` with their
 * default initialisation, wrapped in `train`'s {@linkcode VicregModel} with
 * the paper's coefficients and, with a local projector, index matching and
 * α = `localAlpha`.
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
export function makeStepModel(spec: StepCase, rng: Rng): VicregModel {
  const backbone = createResNet(spec.arch, rng.fork("backbone"), {
    stem: spec.stem,
  });
  const projector = createProjector(
    backbone.embeddingDim,
    spec.projector.join("-"),
    rng.fork("projector"),
  );
  const localProjector = spec.localProjector === undefined
    ? undefined
    : createProjector(
      backbone.embeddingDim,
      spec.localProjector.join("-"),
      rng.fork("local-projector"),
    );
  return new VicregModel({ backbone, projector, localProjector }, {
    localLossWeight: spec.localAlpha ?? 0.2,
    localMatching: "index",
  });
}

/** A model and the optimizer that updates it, for {@linkcode benchStep}. */
export interface StepRunner {
  /** The model. */
  model: VicregModel;
  /** Plain SGD over the model's parameters (`optim`'s `sgd`, no momentum or weight decay). */
  optimizer: Optimizer;
}

/**
 * The model of a case with `optim`'s plain SGD over its parameters.
 *
 * @param spec The case.
 * @param rng Seeded generator for the initial weights.
 * @returns The model and optimizer (dispose both).
 */
export function makeStepRunner(spec: StepCase, rng: Rng): StepRunner {
  const model = makeStepModel(spec, rng);
  const optimizer = createOptimizer("sgd", model.parameters(), {
    weightDecay: 0,
    momentum: 0,
  });
  return { model, optimizer };
}

/**
 * One training step as `pretrain()` runs it on given views: `train`'s
 * `stepGradients` (as `options` slice and back-propagate it), then one
 * optimizer update at `lr`. Returns the loss (read it asynchronously).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { benchStep, makeStepRunner, STEP_CASES } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const runner = makeStepRunner(STEP_CASES["tiny-16px-b16"], new Rng(0));
 * const x = tf.randomNormal([2, 16, 16, 3]) as tf.Tensor4D;
 * const loss = benchStep(runner, [x, x], 0.01);
 * console.log(await loss.data());
 * tf.dispose([x, loss]);
 * runner.optimizer.dispose();
 * runner.model.dispose();
 * ```
 *
 * @param runner From {@linkcode makeStepRunner}.
 * @param views The views, each `[N, H_v, W_v, 3]`: two, or two global and
 * the case's local ones.
 * @param lr The learning rate.
 * @param options `mode` and `microBatch` of `stepGradients`.
 * @returns The loss before the update (a scalar the caller disposes).
 */
export function benchStep(
  runner: StepRunner,
  views: readonly tf.Tensor4D[],
  lr: number,
  options: StepOptions = {},
): tf.Scalar {
  const { loss, grads } = stepGradients(runner.model, views, options);
  runner.optimizer.step(Object.fromEntries(grads), lr);
  tf.dispose([...grads.values(), loss.terms]);
  return loss.total;
}

/**
 * A case at another batch, renamed to say so (`…-b64` → `…-b32`).
 *
 * @param base The case.
 * @param batch Its new batch; 0 or less keeps the case as it is.
 * @returns The case to run.
 */
export function withBatch(base: StepCase, batch: number): StepCase {
  return batch > 0
    ? { ...base, name: base.name.replace(/-b\d+(?=-|$)/, `-b${batch}`), batch }
    : base;
}
