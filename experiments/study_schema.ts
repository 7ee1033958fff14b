/**
 * The shape of an ablation study (the paper's Table 1): its configurations
 * (rows), downstream data sets (columns), the one budget and probe protocol
 * every row shares, and their defaults.
 *
 * @module
 */
import type { DatasetKind } from "@scaling-vicreg/data";
import type { TtaSplits } from "@scaling-vicreg/probe";

/** One downstream (probe) data set of a study. */
export interface StudyDataset {
  /** Column name in the tables (unique). */
  name: string;
  /** `procedural`, a folder, or `kind:path` (as `openDataset` reads it). */
  data: string;
  /** Layout of `data` (`imagefolder`, `cub200`, `sun397`, `miniimagenet`…); detected when absent. */
  kind?: DatasetKind;
  /** Seed of the procedural images, or of the split made when a set has no test split. */
  seed: number;
  /** Procedural only: training images. */
  trainImages: number;
  /** Procedural only: test images. */
  testImages: number;
  /** Procedural only: side of the images. */
  imageSize: number;
}

/** The budget every configuration of a study gets, unchanged. */
export interface StudyBudget {
  /** Epochs (the schedule's length). */
  epochs: number;
  /** Stop after this many steps (0: no limit). */
  maxSteps: number;
  /** Images per step. */
  batchSize: number;
  /** Crop size of the views, and the probe's input size. */
  size: number;
  /**
   * Seed of initialisation, data order, augmentations and probes; with
   * {@linkcode Study.seeds} `N`, the first of the seeds `seed … seed + N − 1`.
   */
  seed: number;
}

/** One row of the study: a name and the pretraining flags it changes. */
export interface StudyConfiguration {
  /** Row name and run directory name (`[a-z0-9._-]+`, unique). */
  name: string;
  /** One line saying what it is. */
  description: string;
  /** Pretraining keys (kebab-case, as `vicreg pretrain` flags) it sets. */
  flags: Record<string, string | number | boolean>;
}

/** How every backbone is probed. */
export interface StudyProbe {
  /** Sweep trials. */
  trials: number;
  /** Cap on each probe's epochs. */
  maxEpochs: number;
  /** Epochs of the baseline probe. */
  baselineEpochs: number;
  /** Also run the sweep with 10-crop TTA features. */
  tta: boolean;
  /**
   * Which splits get 10-crop features in the TTA row: `"all"` (train,
   * validation and test: the paper's) or `"test"` (test only, a train/test
   * shift, for comparison).
   */
  ttaOn: TtaSplits;
}

/** A whole study, as read from a study file or a preset. */
export interface Study {
  /** Heading of the report. */
  title: string;
  /** Pretraining images: `procedural`, a folder or `kind:path`. */
  pretrainData: string;
  /** Pretraining keys shared by every configuration (e.g. `preset`, `mlp`, `num-images`). */
  pretrain: Record<string, string | number | boolean>;
  /** The budget, the same for every configuration. */
  budget: StudyBudget;
  /**
   * How many seeds each row is pretrained and probed with: seeds
   * `budget.seed … budget.seed + seeds − 1`, so the report can give each
   * row's mean ± spread and say which rows are within noise.
   * @default {1}
   */
  seeds?: number;
  /** The rows, in table order. */
  configurations: StudyConfiguration[];
  /** The columns. */
  downstream: StudyDataset[];
  /** The probe protocol. */
  probe: StudyProbe;
  /** Output directory. */
  out: string;
  /** Lines shown under the table (e.g. configurations left out, and why). */
  notes: string[];
}

/** The keys a configuration may not set: the budget, the data and the run directory. */
export const STUDY_RESERVED_KEYS: readonly string[] = Object.freeze([
  "epochs",
  "max-steps",
  "batch-size",
  "size",
  "seed",
  "data",
  "num-images",
  "image-size",
  "exp-dir",
  "resume",
  "backend",
  "preset",
]);

/** The default probe protocol of a study: the paper's (20 trials, ≤ 100 epochs, 10-crop TTA on every split). */
export const DEFAULT_STUDY_PROBE: Readonly<StudyProbe> = Object.freeze({
  trials: 20,
  maxEpochs: 100,
  baselineEpochs: 100,
  tta: true,
  ttaOn: "all",
});

/** The default budget of a study file that gives none. */
export const DEFAULT_STUDY_BUDGET: Readonly<StudyBudget> = Object.freeze({
  epochs: 100,
  maxSteps: 0,
  batchSize: 256,
  size: 96,
  seed: 0,
});
