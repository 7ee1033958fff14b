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
  /**
   * With a local loss: the local projector's widths, applied to every cell
   * of the backbone's last feature map (VICRegL-style); cells of the two
   * views are paired by grid index and their VICReg loss is added × `localAlpha`.
   */
  localProjector?: number[];
  /** Weight of the local loss. @default {0.2} */
  localAlpha?: number;
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
  /** The local projector, when the case has a local loss. */
  readonly localProjector?: Projector;
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
  const localProjector = spec.localProjector === undefined
    ? undefined
    : createProjector(
      backbone.embeddingDim,
      spec.localProjector.join("-"),
      rng.fork("local-projector"),
    );
  return {
    spec,
    backbone,
    projector,
    localProjector,
    variables: [
      ...backbone.parameters().values(),
      ...projector.parameters().values(),
      ...(localProjector?.parameters().values() ?? []),
    ],
    dispose(): void {
      backbone.dispose();
      projector.dispose();
      localProjector?.dispose();
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
  const { backbone, projector, localProjector, variables } = model;
  const local = localProjector !== undefined;
  const alpha = model.spec.localAlpha ?? 0.2;
  // A view's outputs the heads use: the embedding, and the feature map with
  // a local loss.
  const embed = (x: tf.Tensor4D): tf.Tensor[] => {
    const out = backbone.forward(x, {
      training: true,
      returnFeatureMap: local,
    });
    return local ? [out.embedding, out.featureMap!] : [out.embedding];
  };
  const cells = (f: tf.Tensor) => {
    const [n, h, w, e] = f.shape;
    return localProjector!.forward(
      tf.reshape(f, [n * h * w, e]) as tf.Tensor2D,
      {
        training: true,
      },
    );
  };
  const heads = (a: tf.Tensor[], b: tf.Tensor[]): tf.Scalar => {
    const global = vicregLoss(
      projector.forward(a[0] as tf.Tensor2D, { training: true }),
      projector.forward(b[0] as tf.Tensor2D, { training: true }),
    ).loss;
    if (!local) return global;
    return tf.add(
      global,
      tf.mul(vicregLoss(cells(a[1]), cells(b[1])).loss, alpha),
    ) as tf.Scalar;
  };
  const outputsOf = (
    run: ReturnType<ResNet["forwardCheckpointed"]>,
  ): tf.Tensor[] => local ? [run.embedding, run.featureMap!] : [run.embedding];
  const backward = (
    run: ReturnType<ResNet["forwardCheckpointed"]>,
    dy: tf.Tensor[],
  ) => {
    const part = run.backward({
      embedding: dy[0] as tf.Tensor2D,
      featureMap: local ? dy[1] as tf.Tensor4D : undefined,
    });
    run.dispose();
    tf.dispose(dy);
    return part;
  };
  let loss: tf.Scalar;
  let grads: tf.Tensor[];
  const trunk = [...backbone.parameters()];
  const head = variables.slice(trunk.length);
  const checkpointed = (x: tf.Tensor4D) =>
    backbone.forwardCheckpointed(x, {
      training: true,
      returnFeatureMap: local,
    });
  if (mode === "mixed") {
    // No tape: view 1 keeps its outputs and its blocks' inputs.
    const run = checkpointed(views[0]);
    const first = outputsOf(run);
    const out = tf.engine().gradients(
      () => leanTape(() => heads(first, embed(views[1]))),
      [...variables, ...first],
      undefined,
      true,
    );
    loss = out.value as tf.Scalar;
    const part = backward(run, out.grads.slice(variables.length));
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
    // No tape: each run keeps its outputs and its blocks' inputs.
    const runs = views.map(checkpointed);
    const outputs = runs.map(outputsOf);
    const out = tf.engine().gradients(
      () => heads(outputs[0], outputs[1]),
      [...head, ...outputs[0], ...outputs[1]],
      undefined,
      true,
    );
    loss = out.value as tf.Scalar;
    const per = outputs[0].length;
    const sums: tf.Tensor[] = [];
    runs.forEach((run, v) => {
      const start = head.length + v * per;
      const part = backward(run, out.grads.slice(start, start + per));
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
