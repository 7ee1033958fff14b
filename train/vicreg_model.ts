/**
 * The VICReg model: backbone, expander (projector) and, with the local loss,
 * a local projector over the last feature map, with the loss of two views
 * (facebookresearch/vicreg `main_vicreg.py`'s `VICReg.forward`, plus the
 * scaling paper's local loss). Tensors are NHWC.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "@scaling-vicreg/backend";
import {
  embeddingStd,
  type LocalMatching,
  multiViewLocalLoss,
  multiViewLoss,
  type VicregVariant,
  type ViewGeometry,
} from "@scaling-vicreg/losses";
import {
  createProjector,
  createResNet,
  type ForwardOptions,
  type Module,
  type Projector,
  type ResNet,
  type ResNetOutput,
} from "@scaling-vicreg/models";
import type { PretrainConfig } from "./config.ts";

/** The loss settings of a {@linkcode VicregModel}; defaults are the paper's. */
export interface VicregLossSettings {
  /** λ, the invariance coefficient. @default {25} */
  simCoeff?: number;
  /** μ, the variance coefficient. @default {25} */
  stdCoeff?: number;
  /** ν, the covariance coefficient. @default {1} */
  covCoeff?: number;
  /**
   * `vicreg` (the reference formula) or `paper-code` (biased variance; the
   * local covariance divided by the global projector's width).
   * @default {"vicreg"}
   */
  variant?: VicregVariant;
  /** α, the weight of the local loss. @default {0.2} */
  localLossWeight?: number;
  /** How the local loss pairs cells of the two views. @default {"index"} */
  localMatching?: LocalMatching;
  /** Matches kept per image by `location`/`feature` matching. @default {4} */
  localTopK?: number;
  /**
   * G, how many of the views are global (the first ones; the rest are local
   * crops, compared with the global views only).
   * @default {2}
   */
  globalViews?: number;
  /**
   * BatchNorm normalises with its running statistics (evaluation mode) and
   * leaves them alone, instead of pretraining's batch statistics: for
   * training on frozen statistics, and for comparing how a step is sliced
   * without BatchNorm's dependence on the slice.
   * @default {false}
   */
  frozenBatchNorm?: boolean;
}

/** The defaults of {@linkcode VicregLossSettings}. */
export const DEFAULT_VICREG_LOSS_SETTINGS: Readonly<
  Required<VicregLossSettings>
> = Object.freeze({
  simCoeff: 25,
  stdCoeff: 25,
  covCoeff: 1,
  variant: "vicreg",
  localLossWeight: 0.2,
  localMatching: "index",
  localTopK: 4,
  globalViews: 2,
  frozenBatchNorm: false,
});

/** The networks of a {@linkcode VicregModel}. */
export interface VicregNetworks {
  /** The backbone. */
  backbone: ResNet;
  /** The global projector (the paper's expander). */
  projector: Projector;
  /** The local projector, when the local loss is on. */
  localProjector?: Projector;
}

/** One view's projections, what the loss reads. */
export interface Projections {
  /** Global projections `[N, D]`. */
  z: tf.Tensor2D;
  /** Local projections `[N, h·w, d]` of the feature-map cells (row-major). */
  local?: tf.Tensor3D;
  /** The feature-map grid of `local`. */
  grid?: { h: number; w: number };
}

/**
 * The loss of two views as named scalars (a type alias, so that it is a
 * `tf.TensorContainer`: `tf.dispose(loss)` frees every term).
 */
export type VicregLoss = {
  /** `λ·invariance + μ·variance + ν·covariance (+ α·local)`. */
  total: tf.Scalar;
  /** The unweighted terms and the collapse monitors. */
  terms: {
    /** Global invariance term (mean squared error). */
    invariance: tf.Scalar;
    /** Global variance term. */
    variance: tf.Scalar;
    /** Global covariance term. */
    covariance: tf.Scalar;
    /** The local loss (its weighted terms, before α), when it is on. */
    local?: tf.Scalar;
    /** Mean per-dimension std of the first view's projections. */
    embeddingStd: tf.Scalar;
    /** Fraction of projection dimensions whose std is below 0.01. */
    collapsedFraction: tf.Scalar;
  };
};

/** Options of {@linkcode VicregModel.embed} and {@linkcode VicregModel.project}. */
export interface EmbedOptions {
  /**
   * Whether training-mode BatchNorm updates its running statistics (the
   * recomputing passes of a step do not).
   * @default {true}
   */
  updateRunningStats?: boolean;
}

/**
 * VICReg's backbone + expander and its loss on two views (Bardes, Ponce &
 * LeCun 2022, eq. 6; `main_vicreg.py`'s `VICReg.forward`), plus α × the
 * local loss on the last feature maps when a local projector is given.
 * Every pass runs in training mode (BatchNorm on batch statistics), as
 * pretraining does.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { createVicregModel, resolveConfig } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const config = resolveConfig({ flags: { preset: "tiny", mlp: "32-32", "use-local-loss": false } });
 * const model = createVicregModel(config);
 * const x1 = tf.randomNormal([4, 16, 16, 3]) as tf.Tensor4D;
 * const x2 = tf.randomNormal([4, 16, 16, 3]) as tf.Tensor4D;
 * const loss = model.loss([x1, x2]);
 * console.log((await loss.total.data())[0]);
 * tf.dispose([x1, x2, loss]);
 * model.dispose();
 * ```
 */
export class VicregModel {
  /** The backbone. */
  readonly backbone: ResNet;
  /** The global projector. */
  readonly projector: Projector;
  /** The local projector, when the local loss is on. */
  readonly localProjector?: Projector;
  /** The loss settings, defaults filled in. */
  readonly settings: Readonly<Required<VicregLossSettings>>;
  /**
   * Sums BatchNorm's statistics over the processes of a data-parallel run
   * (SyncBatchNorm; see `ForwardOptions.syncStatistics` in `models`), or
   * `undefined` for each process's own statistics.
   */
  syncBatchNorm?: (sums: Float64Array) => Float64Array;
  /**
   * Receives the backbone's embedding `[n, E]` of every first pass through
   * {@linkcode VicregModel.project} (`updateRunningStats` not `false`: the
   * passes of a step that move BatchNorm's running statistics, per slice
   * view 1 then view 2, and not the passes that re-run a slice), for a
   * monitor that reads the step's own features (the online probe, through
   * `captureFirstView`); `undefined` for none. The tensor is the pass's: a
   * monitor copies what it keeps (`tf.keep(tf.clone(e))`), which leaves the
   * step's values and gradients as they are.
   */
  onEmbedding?: (embedding: tf.Tensor2D) => void;

  /**
   * Wraps networks with loss settings.
   *
   * @param networks Backbone, projector and optional local projector.
   * @param settings The loss settings; see {@linkcode VicregLossSettings}.
   */
  constructor(networks: VicregNetworks, settings: VicregLossSettings = {}) {
    this.backbone = networks.backbone;
    this.projector = networks.projector;
    this.localProjector = networks.localProjector;
    this.settings = Object.freeze({
      ...DEFAULT_VICREG_LOSS_SETTINGS,
      ...settings,
    });
  }

  /** Whether the local loss is on. */
  get usesLocalLoss(): boolean {
    return this.localProjector !== undefined;
  }

  /**
   * How the networks' BatchNorms run in this model's passes: training mode
   * (batch statistics, summed over processes with `syncBatchNorm`) unless
   * `frozenBatchNorm`, never folded into the convolutions (the passes are
   * differentiated).
   *
   * @param options `updateRunningStats`; see {@linkcode EmbedOptions}.
   * @returns The forward options of the networks.
   */
  batchNormOptions(options: EmbedOptions = {}): ForwardOptions {
    const frozen = this.settings.frozenBatchNorm;
    return {
      training: !frozen,
      updateRunningStats: !frozen && (options.updateRunningStats ?? true),
      foldBatchNorm: false,
      ...(this.syncBatchNorm && !frozen
        ? { syncStatistics: this.syncBatchNorm }
        : {}),
    };
  }

  /**
   * The projections of one view's backbone outputs.
   *
   * @param features The backbone's embedding `[N, E]` (and feature map `[N, h, w, E]` with the local loss).
   * @param options `updateRunningStats`; see {@linkcode EmbedOptions}.
   * @returns `z` `[N, D]` and, with the local loss, `local` `[N, h·w, d]`.
   */
  project(features: ResNetOutput, options: EmbedOptions = {}): Projections {
    if (options.updateRunningStats ?? true) {
      this.onEmbedding?.(features.embedding);
    }
    const bn = this.batchNormOptions(options);
    const z = this.projector.forward(features.embedding, bn);
    if (this.localProjector === undefined) return { z };
    if (features.featureMap === undefined) {
      throw new TypeError(
        "Expected a feature map [N, h, w, E] for the local loss: received only the embedding",
      );
    }
    const local = this.localProjector;
    const [n, h, w, c] = features.featureMap.shape;
    const projected = tf.tidy(() => {
      // f: [N, h, w, C] -> [N·h·w, C] -> projector -> [N·h·w, d] -> [N, h·w, d]
      const cells = tf.reshape(features.featureMap!, [n * h * w, c]);
      const y = local.forward(cells as tf.Tensor2D, bn);
      return tf.reshape(y, [n, h * w, y.shape[1]]) as tf.Tensor3D;
    });
    return { z, local: projected, grid: { h, w } };
  }

  /**
   * One view through the backbone and the projectors.
   *
   * @param x Images `[N, H, W, 3]`.
   * @param options `updateRunningStats`; see {@linkcode EmbedOptions}.
   * @returns The view's projections.
   */
  embed(x: tf.Tensor4D, options: EmbedOptions = {}): Projections {
    return tf.tidy(() =>
      this.project(
        this.backbone.forward(x, {
          ...this.batchNormOptions(options),
          returnFeatureMap: this.usesLocalLoss,
        }),
        options,
      ) as unknown as tf.TensorContainer
    ) as unknown as Projections;
  }

  /**
   * The loss of the views' projections, the first `globalViews` global (two
   * views: VICReg's eq. 6; more: multi-crop as VICRegL's `global_loss`, each
   * global view against every other view, see `multiViewLoss`) plus α × the
   * local loss on `local` over the same pairs (`multiViewLocalLoss`). Index
   * matching pairs a cell with the same cell of the other view, which only
   * views of one size have: with local views it compares the global views'
   * maps only (location and feature matching compare every pair).
   *
   * @param views Each view's projections, global views first; `z` all
   * `[N, D]`.
   * @param geometry Each view's crop boxes and flips (one per sample), for
   * `location` matching.
   * @returns The total and its terms.
   */
  criterion(
    views: readonly Projections[],
    geometry?: readonly (readonly ViewGeometry[])[],
  ): VicregLoss {
    const s = this.settings;
    const options = {
      simCoeff: s.simCoeff,
      stdCoeff: s.stdCoeff,
      covCoeff: s.covCoeff,
      variant: s.variant,
      globalViews: s.globalViews,
    };
    return tf.tidy(() => {
      const global = multiViewLoss(views.map((p) => p.z), options);
      const std = embeddingStd(views[0].z, { threshold: 0.01 });
      const terms: VicregLoss["terms"] = {
        invariance: global.invariance,
        variance: global.variance,
        covariance: global.covariance,
        embeddingStd: std.meanStd,
        collapsedFraction: std.fractionBelow,
      };
      let total = global.loss;
      if (this.usesLocalLoss) {
        if (views.some((p) => p.local === undefined)) {
          throw new TypeError(
            "Expected local projections [N, h·w, d] of every view for the local loss",
          );
        }
        // index matching: the global views' maps only (equal grids)
        const compared = s.localMatching === "index"
          ? views.slice(0, s.globalViews)
          : views;
        terms.local = multiViewLocalLoss(compared.map((p) => p.local!), {
          ...options,
          matching: s.localMatching,
          topK: s.localTopK,
          grids: compared.map((p) => p.grid!),
          geometries: geometry?.slice(0, compared.length),
          covDivisor: s.variant === "paper-code"
            ? this.projector.outputDim
            : undefined,
        }).loss;
        total = tf.add(total, tf.mul(terms.local, s.localLossWeight));
      }
      return { total, terms } as unknown as tf.TensorContainer;
    }) as unknown as VicregLoss;
  }

  /**
   * The loss of views `[N, H_v, W_v, 3]`, global views first (training
   * mode; running statistics updated, view by view in order).
   *
   * @param views The views, global first.
   * @param geometry Each view's crop boxes and flips, for `location` matching.
   * @returns The total and its terms.
   */
  loss(
    views: readonly tf.Tensor4D[],
    geometry?: readonly (readonly ViewGeometry[])[],
  ): VicregLoss {
    return tf.tidy(() =>
      this.criterion(
        views.map((x) => this.embed(x)),
        geometry,
      ) as unknown as tf.TensorContainer
    ) as unknown as VicregLoss;
  }

  /** The networks under their checkpoint prefixes. */
  modules(): [string, Module][] {
    const out: [string, Module][] = [
      ["backbone", this.backbone],
      ["projector", this.projector],
    ];
    if (this.localProjector) {
      out.push(["local_projector", this.localProjector]);
    }
    return out;
  }

  /** Every trainable variable under `<module>.<name>`, backbone first. */
  parameters(): Map<string, tf.Variable> {
    return this.#named("parameters");
  }

  /** Every BatchNorm running statistic under `<module>.<name>`. */
  buffers(): Map<string, tf.Variable> {
    return this.#named("buffers");
  }

  #named(which: "parameters" | "buffers"): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [prefix, m] of this.modules()) {
      for (const [name, v] of m[which]()) out.set(`${prefix}.${name}`, v);
    }
    return out;
  }

  /** Disposes every variable. */
  dispose(): void {
    for (const [, m] of this.modules()) m.dispose();
  }
}

/**
 * The backbone a run with this configuration starts from: `config.arch` with
 * its stem (`auto`: the CIFAR stem below 64 px crops, else ImageNet's),
 * initialised from `config.seed` exactly as {@linkcode createVicregModel}
 * initialises it, so "the same network at random initialisation" is this.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { createBackbone } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const backbone = createBackbone({ arch: "tiny", stem: "auto", size: 16, seed: 0 });
 * console.log(backbone.arch, backbone.embeddingDim);
 * backbone.dispose();
 * ```
 *
 * @param config The run's `arch`, `stem`, `size` and `seed`.
 * @returns The freshly initialised backbone (the caller disposes it).
 */
export function createBackbone(
  config: Pick<PretrainConfig, "arch" | "stem" | "size" | "seed">,
): ResNet {
  const stem = config.stem === "auto"
    ? (config.size < 64 ? "cifar" : "imagenet")
    : config.stem;
  return createResNet(
    config.arch,
    new Rng(config.seed).fork("init").fork("backbone"),
    { stem },
  );
}

/**
 * Builds the model of a configuration from its seed: backbone, projector and
 * (with `use-local-loss`) local projector, each from its own fork of the
 * seed, with the configuration's loss settings.
 *
 * @param config The resolved configuration.
 * @returns The model (dispose it when done).
 */
export function createVicregModel(config: PretrainConfig): VicregModel {
  const rng = new Rng(config.seed).fork("init");
  const backbone = createBackbone(config);
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
  return new VicregModel({ backbone, projector, localProjector }, {
    simCoeff: config.simCoeff,
    stdCoeff: config.stdCoeff,
    covCoeff: config.covCoeff,
    variant: config.lossVariant,
    localLossWeight: config.localLossWeight,
    localMatching: config.localMatching,
    localTopK: config.localTopK,
    globalViews: config.globalCrops,
  });
}
