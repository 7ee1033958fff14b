/**
 * ResNet backbones (He et al. 2016) on NHWC tensors, structured and named as
 * torchvision's `resnet18/34/50` so that their `state_dict`s load here, plus
 * VICReg's widened `resnet50x2` and a `tiny` network for CPU demos and tests.
 * The classifier (`fc`) is removed, as in VICReg: the output is the pooled
 * feature.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";
import type { Module } from "./module.ts";
import { BatchNorm, type ForwardOptions } from "./batch_norm.ts";
import { Conv2d } from "./layers.ts";
import { collect } from "./_util.ts";

/**
 * The architectures: torchvision's `resnet18`, `resnet34` (BasicBlock),
 * `resnet50` (Bottleneck, stride on the 3x3 conv), VICReg's `resnet50x2`
 * (ResNet-50 with every width doubled: stem 128, stage outputs
 * 512/1024/2048/4096, embedding 4096; not torchvision's `wide_resnet50_2`),
 * and `tiny` (BasicBlock, widths 16/32/64/128, one block per stage,
 * embedding 128, CIFAR stem by default) for CPU demos and tests.
 */
export type ResNetArch =
  | "resnet18"
  | "resnet34"
  | "resnet50"
  | "resnet50x2"
  | "tiny";

/** Every {@linkcode ResNetArch}. */
export const RESNET_ARCHS: readonly ResNetArch[] = [
  "resnet18",
  "resnet34",
  "resnet50",
  "resnet50x2",
  "tiny",
];

/** Options of {@linkcode createResNet}. */
export interface ResNetOptions {
  /**
   * Multiplies every width (stem and stages) of the architecture; widths are
   * rounded to integers. `resnet50x2` is `resnet50` with 2. @default {1}
   */
  widthMultiplier?: number;
  /**
   * Sets γ of the last BatchNorm in each residual block to 0, so each block
   * starts as the identity (Goyal et al. 2017), as VICReg does. @default {true}
   */
  zeroInitResidual?: boolean;
  /**
   * `imagenet`: 7x7 stride-2 conv + 3x3 stride-2 max pool (torchvision);
   * `cifar`: 3x3 stride-1 conv, no max pool, for 32 px images.
   * @default {"imagenet"} (`"cifar"` for `tiny`)
   */
  stem?: "imagenet" | "cifar";
}

/** The defaults of {@linkcode ResNetOptions} (the `tiny` arch uses the CIFAR stem). */
export const DEFAULT_RESNET_OPTIONS: Readonly<Required<ResNetOptions>> = Object
  .freeze({ widthMultiplier: 1, zeroInitResidual: true, stem: "imagenet" });

/** Options of {@linkcode ResNet.forward}. */
export interface ResNetForwardOptions extends ForwardOptions {
  /** Also return the last feature map `[N, h, w, C]` (for the local loss). @default {false} */
  returnFeatureMap?: boolean;
}

/** What {@linkcode ResNet.forward} returns. */
export interface ResNetOutput {
  /** The globally average-pooled feature `[N, E]`. */
  embedding: tf.Tensor2D;
  /** The last feature map `[N, h, w, E]`, when requested. */
  featureMap?: tf.Tensor4D;
}

/** What {@linkcode ResNet.forwardCheckpointed} returns. */
export interface CheckpointedForward extends ResNetOutput {
  /**
   * Parameter gradients (by {@linkcode ResNet.parameters} name) for upstream
   * gradients of the embedding `[N, E]` and/or the feature map `[N, h, w, E]`;
   * recomputes the forward pass block by block without updating running
   * statistics. Call at most once per forward pass you want to differentiate.
   */
  backward(upstream: {
    embedding?: tf.Tensor2D;
    featureMap?: tf.Tensor4D;
  }): Map<string, tf.Tensor>;
  /** Disposes the outputs and the kept block inputs. */
  dispose(): void;
}

/** One link of the chain stem → blocks. */
interface Segment {
  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D;
  params: [string, tf.Variable][];
}

function checkImages(x: tf.Tensor4D): void {
  if (x.rank !== 4 || x.shape[3] !== 3) {
    throw new TypeError(
      `Expected ResNet input images [N, H, W, 3]: received shape [${x.shape}]`,
    );
  }
}

function bnOptionsOf(options: ResNetForwardOptions): ForwardOptions {
  return {
    training: options.training ?? false,
    updateRunningStats: options.updateRunningStats ?? true,
    foldBatchNorm: options.foldBatchNorm ?? true,
    ...(options.syncStatistics
      ? { syncStatistics: options.syncStatistics }
      : {}),
  };
}

interface ArchSpec {
  block: "basic" | "bottleneck";
  layers: [number, number, number, number];
  width: number;
  stem: "imagenet" | "cifar";
}

const ARCHS: Record<ResNetArch, ArchSpec> = {
  resnet18: {
    block: "basic",
    layers: [2, 2, 2, 2],
    width: 64,
    stem: "imagenet",
  },
  resnet34: {
    block: "basic",
    layers: [3, 4, 6, 3],
    width: 64,
    stem: "imagenet",
  },
  resnet50: {
    block: "bottleneck",
    layers: [3, 4, 6, 3],
    width: 64,
    stem: "imagenet",
  },
  resnet50x2: {
    block: "bottleneck",
    layers: [3, 4, 6, 3],
    width: 128,
    stem: "imagenet",
  },
  tiny: { block: "basic", layers: [1, 1, 1, 1], width: 16, stem: "cifar" },
};

interface BlockSpec {
  name: string;
  inplanes: number;
  planes: number;
  stride: number;
  downsample: boolean;
}

interface Layout {
  block: "basic" | "bottleneck";
  expansion: number;
  stem: "imagenet" | "cifar";
  stemChannels: number;
  blocks: BlockSpec[];
  embeddingDim: number;
  zeroInitResidual: boolean;
}

function layout(arch: ResNetArch, options: ResNetOptions): Layout {
  const spec = ARCHS[arch];
  if (spec === undefined) {
    throw new RangeError(
      `Expected arch to be one of ${
        RESNET_ARCHS.join(", ")
      }: received "${arch}"`,
    );
  }
  const { widthMultiplier, zeroInitResidual, stem } = {
    ...DEFAULT_RESNET_OPTIONS,
    stem: spec.stem,
    ...options,
  };
  if (!(widthMultiplier > 0) || !Number.isFinite(widthMultiplier)) {
    throw new RangeError(
      `Expected widthMultiplier > 0: received ${widthMultiplier}`,
    );
  }
  if (stem !== "imagenet" && stem !== "cifar") {
    throw new RangeError(
      `Expected stem "imagenet" or "cifar": received "${stem}"`,
    );
  }
  const width = Math.max(1, Math.round(spec.width * widthMultiplier));
  const expansion = spec.block === "basic" ? 1 : 4;
  const blocks: BlockSpec[] = [];
  let inplanes = width;
  spec.layers.forEach((count, stage) => {
    const planes = width * 2 ** stage;
    for (let i = 0; i < count; i++) {
      const stride = i === 0 && stage > 0 ? 2 : 1;
      blocks.push({
        name: `layer${stage + 1}.${i}`,
        inplanes,
        planes,
        stride,
        downsample: stride !== 1 || inplanes !== planes * expansion,
      });
      inplanes = planes * expansion;
    }
  });
  return {
    block: spec.block,
    expansion,
    stem,
    stemChannels: width,
    blocks,
    embeddingDim: inplanes,
    zeroInitResidual,
  };
}

/** One parameter or buffer of a network: its name, shape and kind. */
export interface ParameterShape {
  /** The PyTorch `state_dict` name (`layer1.0.conv1.weight`). */
  name: string;
  /** The shape here (HWIO for conv weights). */
  shape: number[];
  /** Whether it is trainable (a parameter) or a buffer. */
  trainable: boolean;
}

/**
 * The names and shapes of every parameter and buffer of a ResNet, computed
 * from the architecture alone (nothing is allocated), in the order of
 * {@linkcode ResNet.parameters} then {@linkcode ResNet.buffers} per layer.
 *
 * @example
 * ```ts
 * import { resnetParameterShapes } from "@scaling-vicreg/models";
 * const count = resnetParameterShapes("resnet50")
 *   .filter((p) => p.trainable)
 *   .reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
 * console.log(count); // 23508032 (torchvision's 25557032 less the fc layer)
 * ```
 *
 * @param arch The architecture.
 * @param options Width multiplier and stem; see {@linkcode ResNetOptions}.
 * @returns One entry per variable.
 */
export function resnetParameterShapes(
  arch: ResNetArch,
  options: ResNetOptions = {},
): ParameterShape[] {
  const l = layout(arch, options);
  const out: ParameterShape[] = [];
  const conv = (name: string, k: number, cin: number, cout: number) =>
    out.push({
      name: `${name}.weight`,
      shape: [k, k, cin, cout],
      trainable: true,
    });
  const bn = (name: string, c: number) => {
    out.push({ name: `${name}.weight`, shape: [c], trainable: true });
    out.push({ name: `${name}.bias`, shape: [c], trainable: true });
    out.push({ name: `${name}.running_mean`, shape: [c], trainable: false });
    out.push({ name: `${name}.running_var`, shape: [c], trainable: false });
  };
  conv("conv1", l.stem === "imagenet" ? 7 : 3, 3, l.stemChannels);
  bn("bn1", l.stemChannels);
  for (const b of l.blocks) {
    const outC = b.planes * l.expansion;
    if (l.block === "basic") {
      conv(`${b.name}.conv1`, 3, b.inplanes, b.planes);
      bn(`${b.name}.bn1`, b.planes);
      conv(`${b.name}.conv2`, 3, b.planes, b.planes);
      bn(`${b.name}.bn2`, b.planes);
    } else {
      conv(`${b.name}.conv1`, 1, b.inplanes, b.planes);
      bn(`${b.name}.bn1`, b.planes);
      conv(`${b.name}.conv2`, 3, b.planes, b.planes);
      bn(`${b.name}.bn2`, b.planes);
      conv(`${b.name}.conv3`, 1, b.planes, outC);
      bn(`${b.name}.bn3`, outC);
    }
    if (b.downsample) {
      conv(`${b.name}.downsample.0`, 1, b.inplanes, outC);
      bn(`${b.name}.downsample.1`, outC);
    }
  }
  return out;
}

/**
 * The number of trainable parameters of a ResNet without its `fc` layer,
 * from the architecture alone (nothing is allocated).
 *
 * @example
 * ```ts
 * import { resnetParameterCount } from "@scaling-vicreg/models";
 * console.log(resnetParameterCount("resnet18")); // 11176512
 * ```
 *
 * @param arch The architecture.
 * @param options Width multiplier and stem; see {@linkcode ResNetOptions}.
 * @returns Σ sizes of the trainable variables.
 */
export function resnetParameterCount(
  arch: ResNetArch,
  options: ResNetOptions = {},
): number {
  return resnetParameterShapes(arch, options)
    .filter((p) => p.trainable)
    .reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** A residual block: BasicBlock (two 3x3) or Bottleneck (1x1, 3x3/s, 1x1). */
/**
 * conv → BatchNorm (→ ReLU). In evaluation mode the BatchNorm is folded into
 * the convolution (filter × scale, bias = shift) and run as one fused op,
 * unless `foldBatchNorm` is false.
 */
function convBn(
  conv: Conv2d,
  bn: BatchNorm,
  x: tf.Tensor4D,
  options: ForwardOptions,
  relu: boolean,
): tf.Tensor4D {
  if (options.training || options.foldBatchNorm === false) {
    return bn.forward(conv.forward(x), { ...options, relu });
  }
  return tf.tidy(() => {
    const { scale, shift } = bn.evalAffine();
    return conv.forwardAffine(x, scale, shift, relu);
  });
}

class Block implements Module {
  readonly #convs: Conv2d[];
  readonly #bns: BatchNorm[];
  readonly #downsample: [Conv2d, BatchNorm] | undefined;

  constructor(
    kind: "basic" | "bottleneck",
    b: BlockSpec,
    expansion: number,
    rng: Rng,
    zeroInitResidual: boolean,
  ) {
    const outC = b.planes * expansion;
    if (kind === "basic") {
      this.#convs = [
        new Conv2d(b.inplanes, b.planes, 3, rng, {
          stride: b.stride,
          padding: 1,
        }),
        new Conv2d(b.planes, b.planes, 3, rng, { padding: 1 }),
      ];
    } else {
      this.#convs = [
        new Conv2d(b.inplanes, b.planes, 1, rng),
        new Conv2d(b.planes, b.planes, 3, rng, {
          stride: b.stride,
          padding: 1,
        }),
        new Conv2d(b.planes, outC, 1, rng),
      ];
    }
    this.#bns = this.#convs.map((c) => new BatchNorm(c.outChannels));
    this.#downsample = b.downsample
      ? [
        new Conv2d(b.inplanes, outC, 1, rng, { stride: b.stride }),
        new BatchNorm(outC),
      ]
      : undefined;
    if (zeroInitResidual) {
      const last = this.#bns[this.#bns.length - 1].weight;
      tf.tidy(() => last.assign(tf.zerosLike(last)));
    }
  }

  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      let out = x;
      this.#convs.forEach((conv, i) => {
        out = convBn(
          conv,
          this.#bns[i],
          out,
          options,
          i < this.#convs.length - 1,
        );
      });
      const identity = this.#downsample
        ? convBn(this.#downsample[0], this.#downsample[1], x, options, false)
        : x;
      return tf.relu(tf.add(out, identity));
    });
  }

  #children(): [string, Module][] {
    const out: [string, Module][] = [];
    this.#convs.forEach((c, i) => {
      out.push([`conv${i + 1}`, c], [`bn${i + 1}`, this.#bns[i]]);
    });
    if (this.#downsample) {
      out.push(
        ["downsample.0", this.#downsample[0]],
        ["downsample.1", this.#downsample[1]],
      );
    }
    return out;
  }

  parameters(): Map<string, tf.Variable> {
    return collect(this.#children(), (m) => m.parameters());
  }

  buffers(): Map<string, tf.Variable> {
    return collect(this.#children(), (m) => m.buffers());
  }

  dispose(): void {
    for (const [, m] of this.#children()) m.dispose();
  }
}

/**
 * A ResNet backbone without its classifier; see {@linkcode createResNet}.
 * Parameter and buffer names are torchvision's (`conv1.weight`,
 * `layer1.0.bn1.running_mean`, `layer2.0.downsample.0.weight`, ...).
 */
export class ResNet implements Module {
  /** The architecture. */
  readonly arch: ResNetArch;
  /** The stem. */
  readonly stem: "imagenet" | "cifar";
  /** The width of the pooled embedding E (2048 for resnet50, 512 for resnet18). */
  readonly embeddingDim: number;
  readonly #conv1: Conv2d;
  readonly #bn1: BatchNorm;
  readonly #blocks: [string, Block][];

  /**
   * Builds the network; prefer {@linkcode createResNet}.
   *
   * @param arch The architecture.
   * @param rng Source of the initial weights.
   * @param options See {@linkcode ResNetOptions}.
   */
  constructor(arch: ResNetArch, rng: Rng, options: ResNetOptions = {}) {
    const l = layout(arch, options);
    this.arch = arch;
    this.stem = l.stem;
    this.embeddingDim = l.embeddingDim;
    this.#conv1 = l.stem === "imagenet"
      ? new Conv2d(3, l.stemChannels, 7, rng, { stride: 2, padding: 3 })
      : new Conv2d(3, l.stemChannels, 3, rng, { padding: 1 });
    this.#bn1 = new BatchNorm(l.stemChannels);
    this.#blocks = l.blocks.map((b) => [
      b.name,
      new Block(l.block, b, l.expansion, rng, l.zeroInitResidual),
    ]);
  }

  /**
   * Runs the backbone on normalised NHWC images `[N, H, W, 3]`.
   *
   * In training mode every BatchNorm uses batch statistics and updates its
   * running statistics (so call it once per step, inside the loss function
   * given to `tf.variableGrads`, or pass `updateRunningStats: false` to a
   * second pass over the same batch); otherwise the running statistics are
   * used.
   *
   * @param x Normalised images `[N, H, W, 3]`, float32.
   * @param options `training`, `updateRunningStats`, `foldBatchNorm` and `returnFeatureMap`; see {@linkcode ResNetForwardOptions}.
   * @returns The pooled embedding `[N, E]` and optionally the last feature map `[N, h, w, E]`.
   */
  forward(x: tf.Tensor4D, options: ResNetForwardOptions = {}): ResNetOutput {
    checkImages(x);
    const bnOptions = bnOptionsOf(options);
    return tf.tidy(() => {
      let h = x;
      for (const segment of this.#segments()) h = segment.forward(h, bnOptions);
      // h: [N, h, w, E] -> embedding: [N, E]
      const embedding = tf.mean(h, [1, 2]) as tf.Tensor2D;
      return options.returnFeatureMap
        ? { embedding, featureMap: h }
        : { embedding };
    }) as ResNetOutput;
  }

  /**
   * Runs {@linkcode ResNet.forward} without keeping activations for autodiff,
   * keeping only each residual block's input, and returns a `backward` that
   * gives the parameter gradients for upstream gradients of the outputs.
   * `backward` recomputes one block at a time on a tape (gradient
   * checkpointing at block granularity, running statistics frozen), so only
   * one block's activations and gradients are alive at once: TF.js keeps
   * every intermediate gradient of a tape until its end, which otherwise
   * holds ~4× the activations of the whole network. The gradients equal
   * `tf.variableGrads` of `Σ embedding·dE + Σ featureMap·dF` through
   * `forward` (up to float rounding). Call it outside any gradient tape, and
   * keep `x` alive until `backward` has run.
   *
   * @example
   * ```ts
   * import { Rng, useBackend } from "@scaling-vicreg/backend";
   * import { createResNet } from "@scaling-vicreg/models";
   * import * as tf from "@tensorflow/tfjs-core";
   * await useBackend("cpu");
   * const net = createResNet("tiny", new Rng(0));
   * const run = net.forwardCheckpointed(tf.ones([2, 8, 8, 3]), { training: true });
   * const grads = run.backward({ embedding: tf.onesLike(run.embedding) });
   * console.log(grads.get("conv1.weight")!.shape); // [3, 3, 3, 16]
   * run.dispose();
   * tf.dispose([...grads.values()]);
   * net.dispose();
   * ```
   *
   * @param x Normalised images `[N, H, W, 3]`, float32.
   * @param options As {@linkcode ResNet.forward}'s; the forward pass updates the running statistics in training mode, `backward` does not.
   * @returns The outputs, `backward(upstream)` (gradients by parameter name, which the caller disposes) and `dispose()` for the kept block inputs.
   */
  forwardCheckpointed(
    x: tf.Tensor4D,
    options: ResNetForwardOptions = {},
  ): CheckpointedForward {
    checkImages(x);
    const bnOptions = bnOptionsOf(options);
    const segments = this.#segments();
    // inputs[i]: the input of segment i; the last entry is the feature map.
    const inputs: tf.Tensor4D[] = [x];
    for (const segment of segments) {
      inputs.push(segment.forward(inputs[inputs.length - 1], bnOptions));
    }
    const featureMap = inputs[inputs.length - 1];
    const embedding = tf.tidy(() => tf.mean(featureMap, [1, 2]) as tf.Tensor2D);
    const frozen = { ...bnOptions, updateRunningStats: false };
    const owned = inputs.slice(1);
    let disposed = false;
    return {
      embedding,
      ...(options.returnFeatureMap ? { featureMap } : {}),
      backward: (upstream) => {
        if (disposed) {
          throw new Error("forwardCheckpointed(): backward() after dispose()");
        }
        if (!upstream.embedding && !upstream.featureMap) {
          throw new TypeError(
            "Expected forwardCheckpointed() backward() to get an upstream embedding or featureMap gradient: received neither",
          );
        }
        const grads = new Map<string, tf.Tensor>();
        let dy: tf.Tensor4D | undefined;
        for (let i = segments.length - 1; i >= 0; i--) {
          const { forward, params } = segments[i];
          const last = i === segments.length - 1;
          const xs: tf.Tensor[] = params.map(([, v]) => v);
          if (i > 0) xs.push(inputs[i]);
          const out = tf.engine().gradients(
            () => {
              const h = forward(inputs[i], frozen);
              if (!last) return h;
              // Σ mean(h)·dE + Σ h·dF has gradient dE, dF w.r.t. the outputs.
              const terms: tf.Tensor[] = [];
              if (upstream.embedding) {
                terms.push(
                  tf.sum(tf.mul(tf.mean(h, [1, 2]), upstream.embedding)),
                );
              }
              if (upstream.featureMap) {
                terms.push(tf.sum(tf.mul(h, upstream.featureMap)));
              }
              return terms.length === 1 ? terms[0] : tf.addN(terms);
            },
            xs,
            last ? undefined : dy,
            true,
          );
          out.value.dispose();
          dy?.dispose();
          params.forEach(([name], j) => grads.set(name, out.grads[j]));
          dy = i > 0 ? out.grads[params.length] as tf.Tensor4D : undefined;
        }
        // In parameters() order.
        return new Map(
          segments.flatMap((s) =>
            s.params.map(([name]): [string, tf.Tensor] => [
              name,
              grads.get(name)!,
            ])
          ),
        );
      },
      dispose: () => {
        disposed = true;
        tf.dispose([embedding, ...owned]);
      },
    };
  }

  /** The chain stem → blocks, each with its parameters by full name. */
  #segments(): Segment[] {
    const stem: Segment = {
      forward: (x, options) =>
        tf.tidy(() => {
          const h = convBn(this.#conv1, this.#bn1, x, options, true);
          // PyTorch's MaxPool2d(3, 2, padding=1): a numeric pad is symmetric
          // and padded cells never win the max.
          return this.stem === "imagenet" ? tf.maxPool(h, 3, 2, 1) : h;
        }),
      params: [
        ...collect(
          [["conv1", this.#conv1], ["bn1", this.#bn1]],
          (m) => m.parameters(),
        ),
      ],
    };
    return [
      stem,
      ...this.#blocks.map(([name, block]): Segment => ({
        forward: (x, options) => block.forward(x, options),
        params: [...collect([[name, block]], (m) => m.parameters())],
      })),
    ];
  }

  #children(): [string, Module][] {
    return [["conv1", this.#conv1], ["bn1", this.#bn1], ...this.#blocks];
  }

  /** The trainable variables by torchvision name. */
  parameters(): Map<string, tf.Variable> {
    return collect(this.#children(), (m) => m.parameters());
  }

  /** The BatchNorm running statistics by torchvision name. */
  buffers(): Map<string, tf.Variable> {
    return collect(this.#children(), (m) => m.buffers());
  }

  /** Disposes every variable. */
  dispose(): void {
    for (const [, m] of this.#children()) m.dispose();
  }
}

/**
 * Builds a ResNet backbone with torchvision's initialisation: conv weights
 * Kaiming-normal (fan-out, ReLU), BatchNorm γ = 1, β = 0, and with
 * `zeroInitResidual` the last γ of each block 0. Weights are drawn from `rng`.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { createResNet } from "@scaling-vicreg/models";
 * import * as tf from "@tensorflow/tfjs-core";
 * await useBackend("cpu");
 * const net = createResNet("tiny", new Rng(0));
 * const { embedding } = net.forward(tf.zeros([2, 16, 16, 3]));
 * console.log(embedding.shape); // [2, 128]
 * embedding.dispose();
 * net.dispose();
 * ```
 *
 * @param arch The architecture; see {@linkcode ResNetArch}.
 * @param rng Source of the initial weights.
 * @param options Width multiplier, zero-init of residuals, stem; see {@linkcode ResNetOptions}.
 * @returns The network; call `dispose()` when done.
 */
export function createResNet(
  arch: ResNetArch,
  rng: Rng,
  options: ResNetOptions = {},
): ResNet {
  return new ResNet(arch, rng, options);
}
