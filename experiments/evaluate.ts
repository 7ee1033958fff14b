/**
 * The paper's linear-probe protocol on a frozen backbone: the features of the
 * train and test images (`embedSource` of `@scaling-vicreg/train`: eval mode,
 * plain or 10-crop), cached on disk, then the probes of
 * `@scaling-vicreg/probe`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, useBackend } from "@scaling-vicreg/backend";
import { cacheKey, type ImageSource, labelsOf } from "@scaling-vicreg/data";
import { embedSource } from "@scaling-vicreg/train/source-features";
import type { ResNet } from "@scaling-vicreg/models";
import type { NpyArray } from "@scaling-vicreg/backend/npy";
import {
  featureCacheKey,
  type LabelledFeatures,
  loadOrComputeFeatures,
  type ProbeReport,
  runProbeProtocol,
  toLabelledFeatures,
  type TtaSplits,
} from "@scaling-vicreg/probe";

/** Options of {@linkcode probeBackbone}. */
export interface ProbeBackboneOptions {
  /**
   * Backend for the probes (linear classifiers, kNN, metrics) once the
   * features are extracted on the active one: they read tensors back
   * synchronously, which WebGPU cannot (see `synchronousBackendFor`). The
   * active backend is restored afterwards. @default {the active backend}
   */
  probeBackend?: BackendName;
  /** Input size of the backbone. @default {96} */
  size?: number;
  /** Also run the sweep with 10-crop TTA features (see `ttaOn`). @default {true} */
  tta?: boolean;
  /**
   * Which splits get 10-crop features in the TTA row: `"all"` (train,
   * validation and test, the paper's protocol) or `"test"` (the plain sweep's
   * classifier on 10-crop test features: a train/test shift, for comparison).
   * @default {"all"}
   */
  ttaOn?: TtaSplits;
  /** Sweep trials. @default {20} */
  trials?: number;
  /** Largest epoch count a probe may train for. @default {100} */
  maxEpochs?: number;
  /** Epochs of the baseline probe. @default {100} */
  baselineEpochs?: number;
  /** Seed of the sweep and the validation split. @default {0} */
  seed?: number;
  /** Images per forward pass. @default {64} */
  batchSize?: number;
  /**
   * Directory of the feature cache (`.npy` per weights × data × transform), or
   * `undefined` for no cache.
   */
  cacheDir?: string;
  /** Identity of the weights for the cache key (e.g. their SHA-256). @default {"unnamed"} */
  weightsKey?: string;
  /** Identity of the data for the cache key (e.g. its spec). @default {"unnamed"} */
  dataKey?: string;
  /** Report heading. */
  title?: string;
  /** Setup facts for the report. */
  meta?: Record<string, string | number | boolean>;
  /** Progress of feature extraction: stage (`train`, `test`, `train-tta`, `test-tta`), done, total. */
  onProgress?: (stage: string, done: number, total: number) => void;
}

/**
 * The paper's probe protocol on a frozen backbone: features of the train and
 * test images (eval transform; with `tta` also their 10-crop means — of the
 * train images too unless `ttaOn` is `"test"`), each set cached on disk when
 * `cacheDir` is given and extracted once for every trial, then the baseline
 * probe, the sweep (selected on a validation split of train, evaluated once on
 * test), the sweep on 10-crop features (fitted and selected on the 10-crop
 * train features), and kNN.
 *
 * @example
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { proceduralDataset } from "@scaling-vicreg/data";
 * import { createResNet } from "@scaling-vicreg/models";
 * import { probeBackbone } from "@scaling-vicreg/experiments";
 * await useBackend("cpu");
 * const backbone = createResNet("tiny", new Rng(0), { stem: "cifar" });
 * const data = {
 *   train: proceduralDataset({ n: 40, size: 16, split: "train" }),
 *   test: proceduralDataset({ n: 20, size: 16, split: "test" }),
 * };
 * const report = await probeBackbone(backbone, data, {
 *   size: 16,
 *   tta: false,
 *   trials: 2,
 *   maxEpochs: 5,
 *   baselineEpochs: 5,
 * });
 * console.log(report.title !== undefined);
 * backbone.dispose();
 * ```
 *
 * @param backbone The frozen backbone (eval mode is used).
 * @param data Labelled train and test images.
 * @param options See {@linkcode ProbeBackboneOptions}.
 * @returns The probe report (write it with `writeReport`).
 */
export async function probeBackbone(
  backbone: ResNet,
  data: { train: ImageSource; test: ImageSource },
  options: ProbeBackboneOptions = {},
): Promise<ProbeReport> {
  const {
    size = 96,
    tta = true,
    ttaOn = "all",
    trials = 20,
    maxEpochs = 100,
    baselineEpochs = 100,
    seed = 0,
    batchSize = 64,
    cacheDir,
    weightsKey = "unnamed",
    dataKey = "unnamed",
    onProgress,
    probeBackend,
  } = options;
  // The side of TenCrop's resize (augment's `tenCrop`, the paper's int()).
  const ttaSide = Math.floor(size / 0.875);
  const features = async (
    stage: string,
    source: ImageSource,
    crops: boolean,
  ) => {
    const compute = async (): Promise<NpyArray> => {
      const f = await embedSource(backbone, source, {
        size,
        tta: crops,
        batchSize: crops ? Math.max(1, Math.floor(batchSize / 10)) : batchSize,
        onProgress: (done, total) => onProgress?.(stage, done, total),
      });
      return { shape: [f.count, f.dim], dtype: "float32", data: f.features };
    };
    let array: NpyArray;
    if (cacheDir === undefined) {
      array = await compute();
    } else {
      await Deno.mkdir(cacheDir, { recursive: true });
      const key = await featureCacheKey({
        weights: weightsKey,
        data: dataKey,
        split: stage.replace("-tta", ""),
        size,
        // The resize side is named: features of the earlier round(size /
        // 0.875) resize are never reused.
        transform: crops ? `ten-crop-mean-${ttaSide}` : "resize",
        // The files themselves (paths, labels, sizes, mtimes), so features
        // of changed files are never reused.
        source: await cacheKey(source, size),
        arch: backbone.arch,
        stem: backbone.stem,
      });
      array = (await loadOrComputeFeatures(cacheDir, key, compute)).array;
    }
    return { array, labels: labelsOf(source) };
  };
  // Features come back to the host; the probes then run on `probeBackend`.
  if (ttaOn !== "all" && ttaOn !== "test") {
    throw new RangeError(
      `Expected ttaOn "all" or "test": received ${JSON.stringify(ttaOn)}`,
    );
  }
  const trainArray = await features("train", data.train, false);
  const testArray = await features("test", data.test, false);
  const trainTtaArray = tta && ttaOn === "all"
    ? await features("train-tta", data.train, true)
    : undefined;
  const ttaArray = tta
    ? await features("test-tta", data.test, true)
    : undefined;
  const active = tf.getBackend() as BackendName;
  const switched = probeBackend !== undefined && probeBackend !== active;
  if (switched) await useBackend(probeBackend);
  const sets: LabelledFeatures[] = [];
  try {
    const labelled = (f: { array: NpyArray; labels: Int32Array }) => {
      const set = toLabelledFeatures(f.array, f.labels);
      sets.push(set);
      return set;
    };
    return runProbeProtocol({
      train: labelled(trainArray),
      test: labelled(testArray),
      trainTta: trainTtaArray && labelled(trainTtaArray),
      testTta: ttaArray && labelled(ttaArray),
    }, {
      ttaOn,
      plainTransform:
        `the eval transform (bicubic resize to ${size} × ${size}), in eval mode`,
      ttaTransform:
        `bicubic resize to ${ttaSide} × ${ttaSide} (⌊${size} / 0.875⌋), the four corner and centre ${size} × ${size} crops and their mirror images, the mean of the ten feature vectors`,
      sweep: { trials, maxEpochs, seed },
      baseline: { epochs: Math.min(baselineEpochs, maxEpochs) },
      title: options.title,
      meta: options.meta,
    });
  } finally {
    tf.dispose(sets.map((s) => s.features));
    if (switched) await useBackend(active);
  }
}
