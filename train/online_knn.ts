/**
 * The online kNN of pretraining (solo-learn's online kNN, with eval-mode
 * features): a labelled split held back from pretraining, and every few
 * epochs the kNN top-1 of its images against the pretraining images, with
 * the rule the probe's kNN uses (`knnVote`: k = 20, cosine similarity,
 * exp(s/0.07) votes).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "@scaling-vicreg/backend";
import { stratifiedHoldout } from "@scaling-vicreg/backend/stratified-split";
import {
  DEFAULT_KNN_VOTE_OPTIONS,
  knnVote,
} from "@scaling-vicreg/backend/knn-vote";
import { type ImageSource, labelsOf, subsetSource } from "@scaling-vicreg/data";
import type { ResNet } from "@scaling-vicreg/models";
import { embedSource } from "./source_features.ts";

/** The classes of a source, when every image has a label. */
export interface SourceLabels {
  /** Every image's label. */
  labels: Int32Array;
  /** Number of classes: the class names', or max(label) + 1. */
  numClasses: number;
}

/**
 * The labels of a source and its number of classes, or `undefined` when it
 * is empty or some image has no label.
 *
 * @example
 * ```ts
 * import { proceduralDataset } from "@scaling-vicreg/data";
 * import { sourceLabels } from "@scaling-vicreg/train/online-knn";
 * console.log(sourceLabels(proceduralDataset({ n: 4 }))?.numClasses); // 10
 * ```
 *
 * @param source The images.
 * @returns The labels and class count, or `undefined`.
 */
export function sourceLabels(source: ImageSource): SourceLabels | undefined {
  const labels = labelsOf(source);
  if (labels.length === 0 || labels.some((l) => l < 0)) return undefined;
  const numClasses = Math.max(
    source.classNames?.length ?? 0,
    labels.reduce((m, l) => Math.max(m, l), 0) + 1,
  );
  return { labels, numClasses };
}

/** A source split for the online kNN. */
export interface OnlineKnnSplit {
  /** The images pretraining sees (and the kNN's bank). */
  pretrain: ImageSource;
  /** The held-back images, the kNN's queries (never pretrained on). */
  heldOut: ImageSource;
  /** Number of classes. */
  numClasses: number;
}

/** Options of {@linkcode onlineKnnSplit}. */
export interface OnlineKnnSplitOptions {
  /** Fraction of each class held back. @default {0.1} */
  fraction?: number;
  /** Seed of the split (the run's seed). @default {0} */
  seed?: number;
}

/**
 * Holds a stratified fraction of each class of a labelled source back from
 * pretraining: `stratifiedHoldout` (round(fraction · n) rows of each class,
 * at least one of a class of two or more) drawn from
 * `Rng(seed).fork("online-knn")` with one stream per class, so the split is
 * fixed by the seed and a class's rows do not depend on the others.
 *
 * @example
 * ```ts
 * import { proceduralDataset } from "@scaling-vicreg/data";
 * import { onlineKnnSplit } from "@scaling-vicreg/train/online-knn";
 * const split = onlineKnnSplit(proceduralDataset({ n: 100 }), { fraction: 0.1 });
 * console.log(split.pretrain.length, split.heldOut.length); // 90 10
 * ```
 *
 * @param source The labelled images.
 * @param options The fraction and the seed.
 * @returns The pretraining images and the held-back ones.
 * @throws {RangeError} If some image has no label, or nothing is held back.
 */
export function onlineKnnSplit(
  source: ImageSource,
  options: OnlineKnnSplitOptions = {},
): OnlineKnnSplit {
  const { fraction = 0.1, seed = 0 } = options;
  const classes = sourceLabels(source);
  if (classes === undefined) {
    throw new RangeError(
      `Expected labelled images for the online kNN: ${source.describe()} has images without a label`,
    );
  }
  const held = stratifiedHoldout(
    classes.labels,
    new Rng(seed).fork("online-knn"),
    { fraction, streams: "fork" },
  );
  const heldOut: number[] = [], kept: number[] = [];
  held.forEach((h, i) => (h ? heldOut : kept).push(i));
  if (heldOut.length === 0) {
    throw new RangeError(
      `Expected the online kNN to hold back at least one image of ${source.describe()}: every class has fewer than two`,
    );
  }
  return {
    pretrain: subsetSource(
      source,
      kept,
      `${source.describe()}, less ${heldOut.length} held back for the online kNN`,
    ),
    heldOut: subsetSource(
      source,
      heldOut,
      `${heldOut.length} images of ${source.describe()} held back for the online kNN`,
    ),
    numClasses: classes.numClasses,
  };
}

/** Options of {@linkcode onlineKnnTop1}. */
export interface OnlineKnnOptions {
  /** Side of the eval transform's resize (the run's crop size). @default {96} */
  size?: number;
  /** Neighbours. @default {20} */
  k?: number;
  /** Temperature of the votes. @default {0.07} */
  temperature?: number;
  /** Images per forward pass. @default {64} */
  batchSize?: number;
}

/**
 * The kNN top-1 of the held-back images against the pretraining images:
 * both embedded by `embedSource` (eval mode: BatchNorm on its running
 * statistics, which do not move; bicubic resize to `size`), each held-back
 * image classified by `knnVote` of its k nearest pretraining images.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { proceduralDataset } from "@scaling-vicreg/data";
 * import { createResNet } from "@scaling-vicreg/models";
 * import { onlineKnnSplit, onlineKnnTop1 } from "@scaling-vicreg/train/online-knn";
 * await useBackend("cpu");
 * const backbone = createResNet("tiny", new Rng(0), { stem: "cifar" });
 * const split = onlineKnnSplit(proceduralDataset({ n: 40, size: 16 }), { fraction: 0.25 });
 * const top1 = await onlineKnnTop1(backbone, split, { size: 16 });
 * console.log(top1 >= 0 && top1 <= 1); // true
 * backbone.dispose();
 * ```
 *
 * @param backbone The backbone (its eval mode is used; nothing changes).
 * @param split The pretraining and held-back images.
 * @param options Size, k, temperature and batch size.
 * @returns The fraction of held-back images whose vote is their label.
 */
export async function onlineKnnTop1(
  backbone: ResNet,
  split: OnlineKnnSplit,
  options: OnlineKnnOptions = {},
): Promise<number> {
  const {
    size = 96,
    k = DEFAULT_KNN_VOTE_OPTIONS.k,
    temperature = DEFAULT_KNN_VOTE_OPTIONS.temperature,
    batchSize = 64,
  } = options;
  const [bank, queries] = [
    await embedSource(backbone, split.pretrain, { size, batchSize }),
    await embedSource(backbone, split.heldOut, { size, batchSize }),
  ];
  const [b, q] = [bank, queries].map((f) =>
    tf.tensor2d(f.features, [f.count, f.dim])
  );
  try {
    const best = knnVote(
      { features: b, labels: bank.labels, numClasses: split.numClasses },
      q,
      { k, temperature },
    ); // [Nq, 1]
    const predicted = await best.data();
    best.dispose();
    let hits = 0;
    queries.labels.forEach((label, i) => {
      if (predicted[i] === label) hits++;
    });
    return hits / queries.count;
  } finally {
    tf.dispose([b, q]);
  }
}
