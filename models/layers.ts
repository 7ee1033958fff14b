/**
 * The convolution and linear layers of the ResNets and projectors, laid out
 * for TF.js (NHWC activations, HWIO conv weights, `[in, out]` linear weights)
 * and initialised as PyTorch does.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";
import type { Module } from "./module.ts";
import { makeVariable } from "./_util.ts";

/** Options of {@linkcode Conv2d}. */
export interface Conv2dOptions {
  /** Stride in both spatial axes. @default {1} */
  stride?: number;
  /**
   * Zero padding added on *every* side, as PyTorch's `padding` (not TF's
   * asymmetric `same`). @default {0}
   */
  padding?: number;
}

/** The defaults of {@linkcode Conv2dOptions}. */
export const DEFAULT_CONV2D_OPTIONS: Readonly<Required<Conv2dOptions>> = Object
  .freeze({ stride: 1, padding: 0 });

/**
 * A bias-free 2-D convolution with PyTorch's symmetric padding, on NHWC
 * inputs. The weight is HWIO `[k, k, in, out]`, initialised Kaiming-normal in
 * fan-out mode for ReLU (`std = √(2 / (out·k·k))`), as torchvision's ResNet.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { Conv2d } from "@scaling-vicreg/models";
 * import * as tf from "@tensorflow/tfjs-core";
 * await useBackend("cpu");
 * const conv = new Conv2d(3, 8, 3, new Rng(0), { stride: 2, padding: 1 });
 * const y = conv.forward(tf.zeros([1, 32, 32, 3]));
 * console.log(y.shape); // [1, 16, 16, 8]
 * y.dispose();
 * conv.dispose();
 * ```
 */
export class Conv2d implements Module {
  /** Input channels. */
  readonly inChannels: number;
  /** Output channels. */
  readonly outChannels: number;
  /** Kernel size k (square). */
  readonly kernelSize: number;
  /** Stride. */
  readonly stride: number;
  /** Symmetric zero padding per side. */
  readonly padding: number;
  /** HWIO weight `[k, k, in, out]`. */
  readonly weight: tf.Variable;

  /**
   * Makes a convolution with Kaiming-normal (fan-out) weights drawn from `rng`.
   *
   * @param inChannels Input channels.
   * @param outChannels Output channels.
   * @param kernelSize Square kernel size.
   * @param rng Source of the initial weights.
   * @param options Stride and padding; see {@linkcode Conv2dOptions}.
   */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    rng: Rng,
    options: Conv2dOptions = {},
  ) {
    const { stride, padding } = { ...DEFAULT_CONV2D_OPTIONS, ...options };
    for (
      const [key, value] of Object.entries({
        inChannels,
        outChannels,
        kernelSize,
        stride,
      })
    ) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(
          `Expected Conv2d ${key} to be a positive integer: received ${value}`,
        );
      }
    }
    if (!Number.isInteger(padding) || padding < 0) {
      throw new RangeError(
        `Expected Conv2d padding to be a non-negative integer: received ${padding}`,
      );
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = kernelSize;
    this.stride = stride;
    this.padding = padding;
    const shape = [kernelSize, kernelSize, inChannels, outChannels];
    const std = Math.sqrt(2 / (outChannels * kernelSize * kernelSize));
    const values = rng.fillNormal(
      new Float32Array(shape.reduce((a, b) => a * b)),
      0,
      std,
    );
    this.weight = makeVariable(values, shape, true);
  }

  /**
   * Convolves `x` `[N, H, W, in]` to `[N, ⌊(H + 2p − k)/s⌋ + 1, ..., out]`.
   *
   * @param x NHWC input.
   * @returns NHWC output.
   */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    this.#checkInput(x);
    // A numeric pad is symmetric (top = bottom = left = right), as PyTorch's.
    return tf.conv2d(
      x,
      this.weight as tf.Tensor4D,
      this.stride,
      this.padding === 0 ? "valid" : this.padding,
    );
  }

  /**
   * `act(conv(x)·scale + shift)` as one fused op (`tf.fused.conv2d`, which
   * backends run as a single kernel where they can: XNNPACK on wasm, oneDNN
   * on blas, one shader on WebGPU): the filter is multiplied by `scale` per
   * output channel and `shift` is its bias. This is an evaluation-mode
   * conv → BatchNorm (→ ReLU) with the BatchNorm folded in
   * ({@linkcode BatchNorm.evalAffine}); not for training (no gradients are
   * meant to flow through the folded statistics).
   *
   * @param x NHWC input.
   * @param scale Per-output-channel factor, `[out]`.
   * @param shift Per-output-channel offset, `[out]`.
   * @param relu Whether a ReLU follows.
   * @returns NHWC output, as {@linkcode Conv2d.forward}'s shape.
   */
  forwardAffine(
    x: tf.Tensor4D,
    scale: tf.Tensor1D,
    shift: tf.Tensor1D,
    relu: boolean,
  ): tf.Tensor4D {
    this.#checkInput(x);
    return tf.tidy(() =>
      tf.fused.conv2d({
        x,
        filter: tf.mul(this.weight, scale) as tf.Tensor4D,
        strides: this.stride,
        pad: this.padding === 0 ? "valid" : this.padding,
        bias: shift,
        activation: relu ? "relu" : "linear",
      })
    );
  }

  #checkInput(x: tf.Tensor4D): void {
    if (x.rank !== 4 || x.shape[3] !== this.inChannels) {
      throw new TypeError(
        `Expected Conv2d input [N, H, W, ${this.inChannels}]: received shape [${x.shape}]`,
      );
    }
  }

  /** `weight`. */
  parameters(): Map<string, tf.Variable> {
    return new Map([["weight", this.weight]]);
  }

  /** None. */
  buffers(): Map<string, tf.Variable> {
    return new Map();
  }

  /** Disposes the weight. */
  dispose(): void {
    this.weight.dispose();
  }
}

/** Options of {@linkcode Linear}. */
export interface LinearOptions {
  /** Whether the layer adds a bias. @default {true} */
  bias?: boolean;
}

/** The defaults of {@linkcode LinearOptions}. */
export const DEFAULT_LINEAR_OPTIONS: Readonly<Required<LinearOptions>> = Object
  .freeze({ bias: true });

/**
 * A fully connected layer `y = x·W + b` with W `[in, out]` (PyTorch's weight
 * transposed), initialised as PyTorch's `nn.Linear`: W and b uniform in
 * `[−1/√in, 1/√in]` (`kaiming_uniform_(a=√5)`).
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { Linear } from "@scaling-vicreg/models";
 * import * as tf from "@tensorflow/tfjs-core";
 * await useBackend("cpu");
 * const fc = new Linear(4, 2, new Rng(0), { bias: false });
 * const y = fc.forward(tf.ones([3, 4]));
 * console.log(y.shape); // [3, 2]
 * y.dispose();
 * fc.dispose();
 * ```
 */
export class Linear implements Module {
  /** Input features. */
  readonly inFeatures: number;
  /** Output features. */
  readonly outFeatures: number;
  /** Weight `[in, out]`. */
  readonly weight: tf.Variable;
  /** Bias `[out]`, or `undefined` without bias. */
  readonly bias: tf.Variable | undefined;

  /**
   * Makes a linear layer with PyTorch's default initialisation drawn from `rng`.
   *
   * @param inFeatures Input features.
   * @param outFeatures Output features.
   * @param rng Source of the initial weights.
   * @param options Whether to add a bias; see {@linkcode LinearOptions}.
   */
  constructor(
    inFeatures: number,
    outFeatures: number,
    rng: Rng,
    options: LinearOptions = {},
  ) {
    const { bias } = { ...DEFAULT_LINEAR_OPTIONS, ...options };
    for (const [key, value] of Object.entries({ inFeatures, outFeatures })) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(
          `Expected Linear ${key} to be a positive integer: received ${value}`,
        );
      }
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = makeVariable(
      rng.fillUniform(
        new Float32Array(inFeatures * outFeatures),
        -bound,
        bound,
      ),
      [inFeatures, outFeatures],
      true,
    );
    this.bias = bias
      ? makeVariable(
        rng.fillUniform(new Float32Array(outFeatures), -bound, bound),
        [outFeatures],
        true,
      )
      : undefined;
  }

  /**
   * Applies the layer: `[N, in]` → `[N, out]`.
   *
   * @param x Input rows.
   * @returns Output rows.
   */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new TypeError(
        `Expected Linear input [N, ${this.inFeatures}]: received shape [${x.shape}]`,
      );
    }
    return tf.tidy((): tf.Tensor2D => {
      // x: [N, in] · W: [in, out] -> [N, out]
      const y = tf.matMul(x, this.weight as tf.Tensor2D) as tf.Tensor2D;
      return this.bias ? tf.add<tf.Tensor2D>(y, this.bias) : y;
    });
  }

  /** `weight` and, with bias, `bias`. */
  parameters(): Map<string, tf.Variable> {
    const out = new Map([["weight", this.weight]]);
    if (this.bias) out.set("bias", this.bias);
    return out;
  }

  /** None. */
  buffers(): Map<string, tf.Variable> {
    return new Map();
  }

  /** Disposes the variables. */
  dispose(): void {
    tf.dispose([this.weight, ...(this.bias ? [this.bias] : [])]);
  }
}
