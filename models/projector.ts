/**
 * VICReg's projector (expander) MLP, built from a spec string as
 * `main_vicreg.py`'s `--mlp` (`2048-2048-1024`), also used for the VICRegL
 * local projector (`--local-mlp`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "@scaling-vicreg/backend";
import type { Module } from "./module.ts";
import { BatchNorm, type ForwardOptions } from "./batch_norm.ts";
import { Linear } from "./layers.ts";
import { collect } from "./_util.ts";

/**
 * Parses an MLP spec: positive integers joined by `-` (`"2048-2048-1024"`).
 * Throws a `RangeError` naming the spec for an empty spec, an empty or
 * non-integer part, or a non-positive width.
 *
 * @example
 * ```ts
 * import { parseMlpSpec } from "@scaling-vicreg/models";
 * console.log(parseMlpSpec("8192-8192-8192")); // [8192, 8192, 8192]
 * ```
 *
 * @param spec The spec string.
 * @returns The layer widths.
 */
export function parseMlpSpec(spec: string): number[] {
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new RangeError(
      `Expected an MLP spec like "2048-2048-1024": received ${
        JSON.stringify(spec)
      }`,
    );
  }
  return spec.trim().split("-").map((part) => {
    if (!/^\d+$/.test(part) || Number(part) < 1) {
      throw new RangeError(
        `Expected an MLP spec of positive integers joined by "-" (like "2048-2048-1024"): received "${spec}" (bad part "${part}")`,
      );
    }
    return Number(part);
  });
}

/**
 * VICReg's projector: for widths `[d1, ..., dk]` on an input of width E, the
 * layers are `E→d1, ..., d(k−2)→d(k−1)` each Linear (with bias) + BatchNorm1d
 * + ReLU, then `d(k−1)→dk` Linear without bias. Linear weights are `[in, out]`;
 * names are PyTorch's `nn.Sequential` indices (`0.weight`, `0.bias`,
 * `1.weight`, `1.running_mean`, ..., `6.weight` for three layers).
 */
export class Projector implements Module {
  /** Input width E. */
  readonly inputDim: number;
  /** Output width (the last number of the spec). */
  readonly outputDim: number;
  /** The spec's widths. */
  readonly widths: readonly number[];
  readonly #layers: [string, Linear | BatchNorm][];

  /**
   * Builds the projector; prefer {@linkcode createProjector}.
   *
   * @param inputDim Input width E.
   * @param spec The MLP spec (`2048-2048-1024`).
   * @param rng Source of the initial weights.
   */
  constructor(inputDim: number, spec: string, rng: Rng) {
    if (!Number.isInteger(inputDim) || inputDim < 1) {
      throw new RangeError(
        `Expected projector inputDim to be a positive integer: received ${inputDim}`,
      );
    }
    const widths = parseMlpSpec(spec);
    this.inputDim = inputDim;
    this.widths = widths;
    this.outputDim = widths[widths.length - 1];
    const dims = [inputDim, ...widths];
    this.#layers = [];
    let index = 0;
    for (let i = 0; i < dims.length - 2; i++) {
      this.#layers.push([`${index}`, new Linear(dims[i], dims[i + 1], rng)]);
      this.#layers.push([`${index + 1}`, new BatchNorm(dims[i + 1])]);
      index += 3; // the ReLU holds index + 2
    }
    this.#layers.push([
      `${index}`,
      new Linear(dims[dims.length - 2], dims[dims.length - 1], rng, {
        bias: false,
      }),
    ]);
  }

  /**
   * Projects embeddings `[N, E]` to `[N, outputDim]`.
   *
   * @param x Embeddings `[N, E]`.
   * @param options `training` (BatchNorm mode) and `updateRunningStats`; see {@linkcode ForwardOptions}.
   * @returns Projections `[N, outputDim]`.
   */
  forward(x: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inputDim) {
      throw new TypeError(
        `Expected projector input [N, ${this.inputDim}]: received shape [${x.shape}]`,
      );
    }
    const bn = {
      training: options.training ?? false,
      updateRunningStats: options.updateRunningStats ?? true,
    };
    return tf.tidy(() => {
      let h = x;
      for (const [, layer] of this.#layers) {
        h = layer instanceof Linear
          ? layer.forward(h)
          : tf.relu(layer.forward(h, bn));
      }
      return h;
    });
  }

  /** The trainable variables by `nn.Sequential` name. */
  parameters(): Map<string, tf.Variable> {
    return collect(this.#layers, (m) => m.parameters());
  }

  /** The BatchNorm running statistics by `nn.Sequential` name. */
  buffers(): Map<string, tf.Variable> {
    return collect(this.#layers, (m) => m.buffers());
  }

  /** Disposes every variable. */
  dispose(): void {
    for (const [, m] of this.#layers) m.dispose();
  }
}

/**
 * Builds VICReg's projector MLP for an input of width `inputDim` from a spec
 * (see {@linkcode Projector}), with PyTorch's default Linear initialisation
 * drawn from `rng`.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { createProjector } from "@scaling-vicreg/models";
 * import * as tf from "@tensorflow/tfjs-core";
 * await useBackend("cpu");
 * const projector = createProjector(16, "32-32-8", new Rng(0));
 * console.log([...projector.parameters().keys()]);
 * // ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias", "6.weight"]
 * const z = projector.forward(tf.ones([4, 16]), { training: true });
 * console.log(z.shape); // [4, 8]
 * z.dispose();
 * projector.dispose();
 * ```
 *
 * @param inputDim Input width E (the backbone's `embeddingDim`).
 * @param spec The MLP spec (`2048-2048-1024`); see {@linkcode parseMlpSpec}.
 * @param rng Source of the initial weights.
 * @returns The projector; call `dispose()` when done.
 */
export function createProjector(
  inputDim: number,
  spec: string,
  rng: Rng,
): Projector {
  return new Projector(inputDim, spec, rng);
}
