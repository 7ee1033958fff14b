/**
 * A self-contained VICReg training step on a CIFAR-style ResNet (BasicBlock,
 * 3x3 stem, no max-pool), written with `@tensorflow/tfjs-core` ops only, so
 * the bench can time backends without the `models` member. Its twin in
 * PyTorch is `bench/torch_step.py`: same layers, loss and plain-SGD update.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";

/** One benchmark case: the network, input size, batch and projector. */
export interface StepCase {
  /** Short name printed in the results, e.g. `resnet18-cifar-32px-b64`. */
  name: string;
  /** BasicBlocks per stage, e.g. `[2, 2, 2, 2]` for ResNet-18. */
  blocks: number[];
  /** Channels per stage, e.g. `[64, 128, 256, 512]`. */
  widths: number[];
  /** Input side in pixels (square RGB images). */
  imageSize: number;
  /** Images per view (each step runs two views of this many images). */
  batch: number;
  /** Projector layer widths after the backbone, e.g. `[512, 512]`. */
  projector: number[];
}

/** The cases `bench:compare` runs on the CPU (issue 11). */
export const STEP_CASES: Record<string, StepCase> = {
  "resnet18-cifar-32px-b64": {
    name: "resnet18-cifar-32px-b64",
    blocks: [2, 2, 2, 2],
    widths: [64, 128, 256, 512],
    imageSize: 32,
    batch: 64,
    projector: [512, 512],
  },
  "tiny-16px-b16": {
    name: "tiny-16px-b16",
    blocks: [1, 1],
    widths: [16, 32],
    imageSize: 16,
    batch: 16,
    projector: [64, 64],
  },
};

/** The trainable tensors of a {@linkcode StepCase} network. */
export interface StepModel {
  /** The case it was built for. */
  readonly spec: StepCase;
  /** Every trainable variable, in a fixed order. */
  readonly variables: tf.Variable[];
  /** Runs `[N, H, W, 3]` images to `[N, D]` embeddings (training-mode BN). */
  apply(x: tf.Tensor4D): tf.Tensor2D;
  /** Frees the variables. */
  dispose(): void;
}

/** A variable holding `init`'s values; `init` itself is disposed. */
function variable(init: tf.Tensor): tf.Variable {
  const v = tf.variable(init);
  init.dispose();
  return v;
}

function heNormal(rng: Rng, shape: number[], fanIn: number): tf.Variable {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillNormal(values, 0, Math.sqrt(2 / fanIn));
  return variable(tf.tensor(values, shape));
}

/** Options of {@linkcode batchNormAct}. */
export interface BatchNormActOptions {
  /**
   * Axes the batch statistics are taken over (`[0, 1, 2]` for NHWC maps,
   * `[0]` for `[N, D]` features).
   * @default {[0, 1, 2]}
   */
  axes?: number[];
  /**
   * Apply a ReLU after the affine transform.
   * @default {false}
   */
  relu?: boolean;
  /**
   * Added to the variance.
   * @default {1e-5}
   */
  epsilon?: number;
}

/** Defaults of {@linkcode BatchNormActOptions} (PyTorch's BatchNorm). */
export const DEFAULT_BATCH_NORM_ACT_OPTIONS: Required<BatchNormActOptions> = {
  axes: [0, 1, 2],
  relu: false,
  epsilon: 1e-5,
};

/**
 * Training-mode batch norm (+ optional ReLU) as one custom-gradient op
 * (Ioffe & Szegedy 2015): `y = γ·(x − μ)/√(σ² + ε) + β` with batch statistics,
 * channels last. Its backward pass keeps only `x`, the output and per-channel
 * statistics, where the same formula in plain ops keeps ~5 full-size tensors,
 * which runs the 4 GiB wasm heap out of memory at ResNet-18, batch 64.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { batchNormAct } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const x = tf.randomNormal([4, 2, 2, 3]);
 * const y = batchNormAct(x, { gamma: tf.ones([3]), beta: tf.zeros([3]) }, { relu: true });
 * console.log(y.shape); // [4, 2, 2, 3]
 * ```
 *
 * @param x Input, `[N, H, W, C]` (or `[N, C]` with `axes: [0]`).
 * @param params Scale `gamma` and shift `beta`, each `[C]`.
 * @param options See {@linkcode BatchNormActOptions}.
 * @returns The normalised activations, shaped like `x`.
 */
export function batchNormAct(
  x: tf.Tensor,
  params: { gamma: tf.Tensor; beta: tf.Tensor },
  options: BatchNormActOptions = {},
): tf.Tensor {
  const { axes, relu, epsilon } = {
    ...DEFAULT_BATCH_NORM_ACT_OPTIONS,
    ...options,
  };
  const op = tf.customGrad(
    ((
      x: tf.Tensor,
      gamma: tf.Tensor,
      beta: tf.Tensor,
      save: tf.GradSaveFunc,
    ) => {
      // mean, invStd, scale: [C]
      const { mean, variance } = tf.moments(x, axes);
      const invStd = tf.rsqrt(tf.add(variance, epsilon));
      const scale = tf.mul(gamma, invStd);
      const affine = tf.add(
        tf.mul(x, scale),
        tf.sub(beta, tf.mul(mean, scale)),
      );
      const value = relu ? tf.relu(affine) : affine;
      save(relu ? [x, mean, invStd, gamma, value] : [x, mean, invStd, gamma]);
      return {
        value,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [sx, sMean, sInvStd, sGamma, sOut] = saved;
          const g = relu
            ? tf.mul(dy as tf.Tensor, tf.step(sOut))
            : dy as tf.Tensor;
          const m = sx.size / sGamma.size;
          const xHat = tf.mul(tf.sub(sx, sMean), sInvStd);
          const dBeta = tf.sum(g, axes);
          const dGamma = tf.sum(tf.mul(g, xHat), axes);
          // dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂))
          const dx = tf.mul(
            tf.mul(sGamma, sInvStd),
            tf.sub(
              tf.sub(g, tf.div(dBeta, m)),
              tf.mul(xHat, tf.div(dGamma, m)),
            ),
          );
          return [dx, dGamma, dBeta];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return (op as unknown as (...t: tf.Tensor[]) => tf.Tensor)(
    x,
    params.gamma,
    params.beta,
  );
}

/**
 * Builds a CIFAR-style ResNet + projector for a case, He-initialised.
 *
 * @example
 * ```ts
 * import { useBackend, Rng } from "@scaling-vicreg/backend";
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
  const variables: tf.Variable[] = [];
  const conv = (k: number, cin: number, cout: number): tf.Variable => {
    const v = heNormal(rng, [k, k, cin, cout], k * k * cin);
    variables.push(v);
    return v;
  };
  const bn = (c: number): [tf.Variable, tf.Variable] => {
    const pair: [tf.Variable, tf.Variable] = [
      variable(tf.ones([c])),
      variable(tf.zeros([c])),
    ];
    variables.push(...pair);
    return pair;
  };
  const batchNorm = (
    x: tf.Tensor,
    [gamma, beta]: [tf.Variable, tf.Variable],
    axes: number[],
    relu = false,
  ): tf.Tensor => batchNormAct(x, { gamma, beta }, { axes, relu });
  // Symmetric explicit padding, PyTorch's `padding=k//2` (TF's "same" pads
  // stride-2 convs asymmetrically).
  const conv2d = (x: tf.Tensor4D, w: tf.Variable, stride: number) => {
    const p = (w.shape[0] - 1) >> 1;
    return tf.conv2d(x, w as tf.Tensor4D, stride, [[0, 0], [p, p], [p, p], [
      0,
      0,
    ]]);
  };
  const axes4 = [0, 1, 2];
  const stemW = conv(3, 3, spec.widths[0]);
  const stemBn = bn(spec.widths[0]);
  type Block = {
    w1: tf.Variable;
    b1: [tf.Variable, tf.Variable];
    w2: tf.Variable;
    b2: [tf.Variable, tf.Variable];
    stride: number;
    short?: { w: tf.Variable; b: [tf.Variable, tf.Variable] };
  };
  const blocks: Block[] = [];
  let cin = spec.widths[0];
  spec.widths.forEach((cout, stage) => {
    for (let i = 0; i < spec.blocks[stage]; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const block: Block = {
        w1: conv(3, cin, cout),
        b1: bn(cout),
        w2: conv(3, cout, cout),
        b2: bn(cout),
        stride,
      };
      if (stride !== 1 || cin !== cout) {
        block.short = { w: conv(1, cin, cout), b: bn(cout) };
      }
      blocks.push(block);
      cin = cout;
    }
  });
  const proj: { w: tf.Variable; b?: [tf.Variable, tf.Variable] }[] = [];
  spec.projector.forEach((d, i) => {
    const w = heNormal(rng, [cin, d], cin);
    variables.push(w);
    proj.push({ w, b: i < spec.projector.length - 1 ? bn(d) : undefined });
    cin = d;
  });
  return {
    spec,
    variables,
    apply(x: tf.Tensor4D): tf.Tensor2D {
      return tf.tidy(() => {
        let h = batchNorm(conv2d(x, stemW, 1), stemBn, axes4, true);
        for (const b of blocks) {
          const y = batchNorm(
            conv2d(h as tf.Tensor4D, b.w1, b.stride),
            b.b1,
            axes4,
            true,
          );
          const z = batchNorm(conv2d(y as tf.Tensor4D, b.w2, 1), b.b2, axes4);
          const s = b.short
            ? batchNorm(
              conv2d(h as tf.Tensor4D, b.short.w, b.stride),
              b.short.b,
              axes4,
            )
            : h;
          h = tf.relu(tf.add(z, s));
        }
        // h: [N, h, w, C] -> global average pool -> [N, C]
        let e: tf.Tensor = tf.mean(h, [1, 2]);
        for (const layer of proj) {
          e = tf.matMul(e as tf.Tensor2D, layer.w as tf.Tensor2D);
          if (layer.b) e = batchNorm(e, layer.b, [0], true);
        }
        return e as tf.Tensor2D;
      });
    },
    dispose(): void {
      for (const v of variables) v.dispose();
    },
  };
}

/**
 * The VICReg loss (Bardes et al. 2022, eq. 6) with the paper's weights
 * λ = 25, μ = 25, ν = 1, for two `[N, D]` embeddings.
 *
 * @param za First view's embeddings, `[N, D]`.
 * @param zb Second view's embeddings, `[N, D]`.
 * @returns The scalar loss.
 */
export function vicregStepLoss(za: tf.Tensor2D, zb: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const [n, d] = za.shape;
    const inv = tf.mean(tf.square(tf.sub(za, zb)));
    const terms = [za, zb].map((z) => {
      const c = tf.sub(z, tf.mean(z, 0));
      const std = tf.sqrt(tf.add(tf.mean(tf.square(c), 0), 1e-4));
      const variance = tf.mean(tf.relu(tf.sub(1, std)));
      // c: [N, D] -> cov: [D, D]
      const cov = tf.div(tf.matMul(c, c, true, false), n - 1);
      const off = tf.sub(
        tf.sum(tf.square(cov)),
        tf.sum(tf.square(tf.mul(cov, tf.eye(d)))),
      );
      return [variance, tf.div(off, d)];
    });
    return tf.addN([
      tf.mul(inv, 25),
      tf.mul(tf.add(terms[0][0], terms[1][0]), 25 / 2),
      tf.add(terms[0][1], terms[1][1]),
    ]) as tf.Scalar;
  });
}

/** Options of {@linkcode trainStep}. */
export interface TrainStepOptions {
  /**
   * SGD learning rate.
   * @default {0.01}
   */
  lr?: number;
  /**
   * Back-propagate one view at a time: embed both views without a tape, take
   * the loss gradient w.r.t. the two embeddings, then run each view again
   * with a tape and push its embedding gradient through. Exact (BN statistics
   * are per view either way), one extra forward pass, half the activation
   * memory (ResNet-18 at batch 64 does not fit the 4 GiB wasm heap otherwise).
   * @default {false}
   */
  viewByView?: boolean;
}

/** Defaults of {@linkcode TrainStepOptions}. */
export const DEFAULT_TRAIN_STEP_OPTIONS: Required<TrainStepOptions> = {
  lr: 0.01,
  viewByView: false,
};

/**
 * One VICReg training step: both views forward, loss, gradients, plain SGD
 * update in place. Returns the loss tensor (read it asynchronously).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend, Rng } from "@scaling-vicreg/backend";
 * import { makeStepModel, trainStep, STEP_CASES } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const spec = STEP_CASES["tiny-16px-b16"];
 * const model = makeStepModel(spec, new Rng(0));
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
  const { lr, viewByView } = { ...DEFAULT_TRAIN_STEP_OPTIONS, ...options };
  if (!(lr > 0)) throw new RangeError(`Expected lr > 0: received ${lr}`);
  const [xa, xb] = views;
  let loss: tf.Scalar;
  let grads: tf.NamedTensorMap;
  if (!viewByView) {
    ({ value: loss, grads } = tf.variableGrads(
      () => vicregStepLoss(model.apply(xa), model.apply(xb)),
      model.variables,
    ));
  } else {
    // z: [N, D] per view, no tape; dz = dLoss/dz.
    const za = model.apply(xa);
    const zb = model.apply(xb);
    const { value, grads: dz } = tf.valueAndGrads(
      (a: tf.Tensor, b: tf.Tensor) =>
        vicregStepLoss(a as tf.Tensor2D, b as tf.Tensor2D),
    )([za, zb]);
    tf.dispose([za, zb]);
    loss = value as tf.Scalar;
    grads = {};
    for (const [x, g] of [[xa, dz[0]], [xb, dz[1]]] as const) {
      const part = tf.variableGrads(
        () => tf.sum(tf.mul(model.apply(x), g)),
        model.variables,
      );
      part.value.dispose();
      for (const [name, t] of Object.entries(part.grads)) {
        const sum = grads[name] ? tf.add(grads[name], t) : t;
        if (grads[name]) tf.dispose([grads[name], t]);
        grads[name] = sum;
      }
    }
    tf.dispose(dz);
  }
  tf.tidy(() => {
    for (const v of model.variables) {
      v.assign(tf.sub(v, tf.mul(grads[v.name], lr)));
    }
  });
  tf.dispose(Object.values(grads));
  return loss;
}
