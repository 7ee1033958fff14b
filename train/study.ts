/**
 * Ablation studies in the shape of the paper's Table 1: several pretraining
 * configurations trained with one budget and one seed, each backbone probed on
 * every downstream data set (baseline probe, sweep, sweep + 10-crop TTA, kNN).
 *
 * A study is resumable at every level: each configuration is an ordinary run
 * directory under `out/runs/<name>` (a finished one carries `done.json` and
 * is never touched again; an interrupted one resumes from its checkpoint),
 * features are cached under `out/features`, and each (configuration, data
 * set) result is saved under `out/results/` before the next one starts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import type { BackendName } from "@scaling-vicreg/backend";
import {
  DATASET_KINDS,
  type DatasetKind,
  defaultDecodeWorkers,
  type ImageSource,
  openDataset,
  proceduralDataset,
} from "@scaling-vicreg/data";
import {
  type ProbeReport,
  sha256Hex,
  type TtaSplits,
} from "@scaling-vicreg/probe";
import {
  ConfigError,
  type PretrainConfig,
  readConfigFile,
  resolveConfig,
} from "./config.ts";
import { pretrain, type StepMetrics } from "./pretrain.ts";
import { loadRunBackbone, probeBackbone } from "./evaluate.ts";
import { parseYaml } from "./_yaml.ts";
import { readMetrics, writeStudyReport } from "./study_report.ts";

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
  /** Seed of initialisation, data order, augmentations and probes. */
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

const LOCAL = { "use-local-loss": true, "local-loss-weight": 0.2 };

/**
 * The paper's Table 1 configurations (Bardes et al.'s VICReg with the local
 * loss of VICRegL): `resnet34`, `global-only`, `local-only`, `full`, and the
 * `full` variants with location- and feature-based local matching.
 */
export const BUILTIN_CONFIGURATIONS: Readonly<
  Record<string, StudyConfiguration>
> = Object.freeze({
  "resnet34": {
    name: "resnet34",
    description: "ResNet-34 backbone, global + local loss (α = 0.2)",
    flags: { arch: "resnet34", ...LOCAL, "local-matching": "index" },
  },
  "global-only": {
    name: "global-only",
    description:
      "global crops only (scale 0.5–1.0), VICReg loss, no local loss",
    flags: {
      "crop-min-scale": 0.5,
      "crop-max-scale": 1,
      "use-local-loss": false,
    },
  },
  "local-only": {
    name: "local-only",
    description:
      "local crops only (scale 0.05–0.5): VICReg loss between small crops, no global-crop term",
    flags: {
      "crop-min-scale": 0.05,
      "crop-max-scale": 0.5,
      "use-local-loss": false,
    },
  },
  "full": {
    name: "full",
    description: "the paper: global + local loss (α = 0.2), index matching",
    flags: { ...LOCAL, "local-matching": "index" },
  },
  "full-location": {
    name: "full-location",
    description: "global + local loss (α = 0.2), location-based matching",
    flags: { ...LOCAL, "local-matching": "location" },
  },
  "full-feature": {
    name: "full-feature",
    description: "global + local loss (α = 0.2), feature-based matching",
    flags: { ...LOCAL, "local-matching": "feature" },
  },
});

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

/**
 * The `tiny` study: every configuration but `resnet34` on the `tiny` backbone,
 * each pretrained like `vicreg pretrain --preset tiny` (1024 procedural
 * images, 4 epochs of batch 64) and probed on two further procedural sets
 * (other seeds and image sizes); about 14 minutes on a busy 2-core CPU with
 * the wasm backend, measured when the TTA row embedded only the test split's
 * ten crops (it now also embeds the train split's: 4,000 more crops a cell).
 */
export const TINY_STUDY: Readonly<Study> = Object.freeze({
  title: "Tiny ablation study (procedural data, tiny backbone)",
  pretrainData: "procedural",
  pretrain: { preset: "tiny", "num-images": 1024, "image-size": 48 },
  budget: { epochs: 4, maxSteps: 0, batchSize: 64, size: 32, seed: 0 },
  configurations: [
    "global-only",
    "local-only",
    "full",
    "full-location",
    "full-feature",
  ].map((name) => BUILTIN_CONFIGURATIONS[name]),
  downstream: [
    {
      name: "procedural-a",
      data: "procedural",
      seed: 1,
      trainImages: 400,
      testImages: 150,
      imageSize: 48,
    },
    {
      name: "procedural-b",
      data: "procedural",
      seed: 2,
      trainImages: 400,
      testImages: 150,
      imageSize: 64,
    },
  ],
  probe: {
    trials: 10,
    maxEpochs: 50,
    baselineEpochs: 50,
    tta: true,
    ttaOn: "all" as const,
  },
  out: "runs/study-tiny",
  notes: [
    "resnet34 is left out of the tiny study: at 32 px it needs about 70× the tiny backbone's multiply-adds per image, which the equal budget cannot afford on a CPU, and running it as the tiny backbone would make it the same run as `full`. Add it in a study file to run it.",
  ],
});

/** Names of the study presets (`vicreg ablate --preset`). */
export const STUDY_PRESETS: Readonly<Record<string, Readonly<Study>>> = Object
  .freeze({ tiny: TINY_STUDY });

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

type Raw = Record<string, unknown>;

function isMapping(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(key: string, where: string, expected: string, value: unknown) {
  return new ConfigError(
    key,
    `Key "${key}" in ${where} expects ${expected}: received ${
      JSON.stringify(value)
    }`,
  );
}

function mapping(
  value: unknown,
  key: string,
  where: string,
  allowed: readonly string[],
): Raw {
  if (value === undefined || value === null) return {};
  if (!isMapping(value)) throw fail(key, where, "a mapping", value);
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(
        `${key}.${k}`,
        `Unknown key "${key}.${k}" in ${where}: expected one of ${
          allowed.join(", ")
        }`,
      );
    }
  }
  return value;
}

function int(
  raw: Raw,
  key: string,
  prefix: string,
  where: string,
  fallback: number,
  min: number,
): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw fail(`${prefix}${key}`, where, `an integer ≥ ${min}`, value);
  }
  return value;
}

function text(
  raw: Raw,
  key: string,
  prefix: string,
  where: string,
  fallback?: string,
): string {
  const value = raw[key] ?? fallback;
  if (typeof value !== "string" || value === "") {
    throw fail(`${prefix}${key}`, where, "a non-empty string", value);
  }
  return value;
}

function flagValues(
  value: unknown,
  key: string,
  where: string,
): Record<string, string | number | boolean> {
  if (value === undefined || value === null) return {};
  if (!isMapping(value)) throw fail(key, where, "a mapping of flags", value);
  for (const [k, v] of Object.entries(value)) {
    if (!["string", "number", "boolean"].includes(typeof v)) {
      throw fail(`${key}.${k}`, where, "a string, number or boolean", v);
    }
    if (
      STUDY_RESERVED_KEYS.includes(k) && !(key === "pretrain" && isShared(k))
    ) {
      throw new ConfigError(
        `${key}.${k}`,
        `Key "${key}.${k}" in ${where} is not allowed: the budget (epochs, max-steps, batch-size, size, seed), the data and the run directory are the same for every configuration; set them under "budget", "pretrain-data" or "pretrain"`,
      );
    }
  }
  return value as Record<string, string | number | boolean>;
}

// Keys a study may share through "pretrain" but a single row may not change.
function isShared(key: string): boolean {
  return key === "preset" || key === "num-images" || key === "image-size";
}

/**
 * Reads a study from its parsed YAML (kebab-case keys) and checks it: unknown
 * keys, wrong types, duplicate names, and configurations that try to change
 * the budget fail here, naming the key, before any work starts.
 *
 * @example
 * ```ts
 * import { parseStudy } from "@scaling-vicreg/train/study";
 * const study = parseStudy({
 *   budget: { epochs: 1, "batch-size": 8, size: 16 },
 *   configurations: ["global-only", { name: "mine", flags: { "use-local-loss": true } }],
 *   downstream: [{ name: "shapes", data: "procedural" }],
 * });
 * console.log(study.configurations.map((c) => c.name)); // ["global-only", "mine"]
 * ```
 *
 * @param value The file's top-level mapping.
 * @param where The file name, for messages.
 * @returns The study.
 * @throws {ConfigError} Naming the offending key.
 */
export function parseStudy(value: unknown, where = "study file"): Study {
  const raw = mapping(value, "study", where, [
    "title",
    "pretrain-data",
    "pretrain",
    "budget",
    "configurations",
    "downstream",
    "probe",
    "out",
    "notes",
  ]);
  const b = mapping(raw.budget, "budget", where, [
    "epochs",
    "max-steps",
    "batch-size",
    "size",
    "seed",
  ]);
  const D = DEFAULT_STUDY_BUDGET;
  const budget: StudyBudget = {
    epochs: int(b, "epochs", "budget.", where, D.epochs, 1),
    maxSteps: int(b, "max-steps", "budget.", where, D.maxSteps, 0),
    batchSize: int(b, "batch-size", "budget.", where, D.batchSize, 2),
    size: int(b, "size", "budget.", where, D.size, 8),
    seed: int(b, "seed", "budget.", where, D.seed, 0),
  };
  const p = mapping(raw.probe, "probe", where, [
    "trials",
    "max-epochs",
    "baseline-epochs",
    "tta",
    "tta-on",
  ]);
  const P = DEFAULT_STUDY_PROBE;
  const tta = p.tta ?? P.tta;
  if (typeof tta !== "boolean") {
    throw fail("probe.tta", where, "true or false", tta);
  }
  const ttaOn = p["tta-on"] ?? P.ttaOn;
  if (ttaOn !== "all" && ttaOn !== "test") {
    throw fail("probe.tta-on", where, "all or test", ttaOn);
  }
  const probe: StudyProbe = {
    trials: int(p, "trials", "probe.", where, P.trials, 1),
    maxEpochs: int(p, "max-epochs", "probe.", where, P.maxEpochs, 1),
    baselineEpochs: int(
      p,
      "baseline-epochs",
      "probe.",
      where,
      P.baselineEpochs,
      1,
    ),
    tta,
    ttaOn,
  };
  const configs = raw.configurations ?? Object.keys(BUILTIN_CONFIGURATIONS);
  if (!Array.isArray(configs) || configs.length === 0) {
    throw fail(
      "configurations",
      where,
      "a non-empty list of built-in names or {name, flags} mappings",
      configs,
    );
  }
  const configurations = configs.map((c, i): StudyConfiguration => {
    const key = `configurations[${i}]`;
    if (typeof c === "string") {
      const builtin = BUILTIN_CONFIGURATIONS[c];
      if (builtin === undefined) {
        throw new ConfigError(
          key,
          `Unknown configuration "${c}" at ${key} in ${where}: expected one of ${
            Object.keys(BUILTIN_CONFIGURATIONS).join(", ")
          } or a {name, flags} mapping`,
        );
      }
      return structuredClone(builtin);
    }
    const m = mapping(c, key, where, ["name", "description", "flags"]);
    return {
      name: text(m, "name", `${key}.`, where),
      description: text(m, "description", `${key}.`, where, "custom"),
      flags: flagValues(m.flags, `${key}.flags`, where),
    };
  });
  const downstreamRaw = raw.downstream ?? [{ name: "procedural" }];
  if (!Array.isArray(downstreamRaw) || downstreamRaw.length === 0) {
    throw fail(
      "downstream",
      where,
      "a non-empty list of {name, data, kind?} mappings",
      downstreamRaw,
    );
  }
  const downstream = downstreamRaw.map((d, i): StudyDataset => {
    const key = `downstream[${i}]`;
    const m = mapping(d, key, where, [
      "name",
      "data",
      "kind",
      "seed",
      "train-images",
      "test-images",
      "image-size",
    ]);
    const data = text(m, "data", `${key}.`, where, "procedural");
    const kind = m.kind;
    if (
      kind !== undefined && !DATASET_KINDS.includes(kind as DatasetKind)
    ) {
      throw fail(
        `${key}.kind`,
        where,
        `one of ${DATASET_KINDS.join(", ")}`,
        kind,
      );
    }
    const procedural = data === "procedural";
    if (!procedural) {
      for (const k of ["train-images", "test-images", "image-size"]) {
        if (m[k] !== undefined) {
          throw new ConfigError(
            `${key}.${k}`,
            `Key "${key}.${k}" in ${where} applies only to procedural data: "${data}" is read as it is`,
          );
        }
      }
    }
    return {
      name: text(m, "name", `${key}.`, where, procedural ? "procedural" : data),
      data,
      ...(kind !== undefined ? { kind: kind as DatasetKind } : {}),
      seed: int(m, "seed", `${key}.`, where, i + 1, 0),
      trainImages: int(m, "train-images", `${key}.`, where, 500, 2),
      testImages: int(m, "test-images", `${key}.`, where, 200, 1),
      imageSize: int(m, "image-size", `${key}.`, where, 64, 8),
    };
  });
  const notes = raw.notes ?? [];
  if (!Array.isArray(notes) || notes.some((n) => typeof n !== "string")) {
    throw fail("notes", where, "a list of strings", notes);
  }
  const study: Study = {
    title: text(raw, "title", "", where, "Ablation study"),
    pretrainData: text(raw, "pretrain-data", "", where, "procedural"),
    pretrain: flagValues(raw.pretrain, "pretrain", where),
    budget,
    configurations,
    downstream,
    probe,
    out: text(raw, "out", "", where, "runs/study"),
    notes: notes as string[],
  };
  checkStudy(study, where);
  return study;
}

/**
 * Checks a study built in code the way {@linkcode parseStudy} checks a file:
 * unique names, and every configuration resolving to a valid pretraining
 * configuration with the study's budget.
 *
 * @param study The study.
 * @param where Where it came from, for messages.
 * @throws {ConfigError} Naming the configuration and the key.
 */
export function checkStudy(study: Study, where = "study"): void {
  for (
    const [list, key] of [
      [study.configurations, "configurations"],
      [study.downstream, "downstream"],
    ] as const
  ) {
    const seen = new Set<string>();
    list.forEach((item, i) => {
      if (!NAME_PATTERN.test(item.name)) {
        throw fail(
          `${key}[${i}].name`,
          where,
          "a name of lower-case letters, digits, '.', '_' or '-'",
          item.name,
        );
      }
      if (seen.has(item.name)) {
        throw new ConfigError(
          `${key}[${i}].name`,
          `Duplicate name "${item.name}" in ${key} of ${where}`,
        );
      }
      seen.add(item.name);
    });
  }
  for (const c of study.configurations) {
    for (const k of Object.keys(c.flags)) {
      if (STUDY_RESERVED_KEYS.includes(k)) {
        throw new ConfigError(
          k,
          `Configuration "${c.name}" of ${where} sets "${k}": the budget, the data and the run directory are the study's, the same for every configuration`,
        );
      }
    }
    try {
      runConfig(study, c, false);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(
        error.key,
        `Configuration "${c.name}" of ${where}: ${error.message}`,
        { cause: error },
      );
    }
  }
  assertEqualBudgets(
    study.configurations.map((c) => runConfig(study, c, false)),
  );
}

/**
 * Reads a study file (YAML) and checks it.
 *
 * @param path The file.
 * @returns The study.
 * @throws {ConfigError} For an unreadable file, bad YAML or a bad key.
 */
export async function readStudyFile(path: string): Promise<Study> {
  let parsed: unknown;
  try {
    parsed = parseYaml(await Deno.readTextFile(path));
  } catch (cause) {
    throw new ConfigError(
      "config",
      `Cannot read study file ${path}: ${
        (cause as Error).message.split("\n")[0]
      }`,
      { cause },
    );
  }
  return parseStudy(parsed ?? {}, path);
}

/**
 * The directory of a configuration's pretraining run.
 *
 * @param study The study.
 * @param name The configuration's name.
 * @returns `out/runs/<name>`.
 */
export function runDirOf(study: Study, name: string): string {
  return `${study.out}/runs/${name}`;
}

/**
 * The pretraining configuration of one row: the shared keys, the row's keys,
 * then the study's budget and data (which nothing else may change).
 *
 * @param study The study.
 * @param configuration The row.
 * @param resume Whether to continue from the run directory's checkpoint.
 * @returns The resolved configuration.
 */
export function runConfig(
  study: Study,
  configuration: StudyConfiguration,
  resume: boolean,
): PretrainConfig {
  const { budget } = study;
  return resolveConfig({
    flags: {
      ...study.pretrain,
      ...configuration.flags,
      epochs: budget.epochs,
      "max-steps": budget.maxSteps,
      "batch-size": budget.batchSize,
      size: budget.size,
      seed: budget.seed,
      data: study.pretrainData,
      "exp-dir": runDirOf(study, configuration.name),
      resume,
    },
  });
}

/** What every run of a study shares, as recorded in its `done.json`. */
export interface RunBudget extends StudyBudget {
  /** The pretraining data. */
  data: string;
  /** Procedural images. */
  numImages: number;
  /** Side of the procedural images. */
  imageSize: number;
}

/**
 * The budget part of a pretraining configuration.
 *
 * @param config The configuration.
 * @returns Epochs, step cap, batch, size, seed and data.
 */
export function budgetOf(config: PretrainConfig): RunBudget {
  return {
    epochs: config.epochs,
    maxSteps: config.maxSteps,
    batchSize: config.batchSize,
    size: config.size,
    seed: config.seed,
    data: config.data,
    numImages: config.numImages,
    imageSize: config.imageSize,
  };
}

/**
 * Asserts that configurations (or recorded run budgets) share one budget.
 *
 * @param items Configurations or budgets.
 * @throws {RangeError} Naming the first key that differs.
 */
export function assertEqualBudgets(
  items: readonly (PretrainConfig | RunBudget)[],
): void {
  if (items.length === 0) return;
  const budgets = items.map((c) =>
    "expDir" in c ? budgetOf(c as PretrainConfig) : c as RunBudget
  );
  const first = budgets[0];
  budgets.forEach((b, i) => {
    for (const key of Object.keys(first) as (keyof RunBudget)[]) {
      if (b[key] !== first[key]) {
        throw new RangeError(
          `Expected every configuration to have the same budget: "${key}" is ${
            JSON.stringify(first[key])
          } in the first and ${JSON.stringify(b[key])} in number ${i + 1}`,
        );
      }
    }
  });
}

/** A finished pretraining run of a study (its `done.json`). */
export interface StudyRun {
  /** The configuration's name. */
  configuration: string;
  /** What it is. */
  description: string;
  /** The row's own keys. */
  flags: Record<string, string | number | boolean>;
  /** Backbone. */
  arch: string;
  /** The budget it was given. */
  budget: RunBudget;
  /** Steps trained. */
  steps: number;
  /** Wall-clock seconds of pretraining (summed over sessions). */
  wallSeconds: number;
  /** Mean training images per second over the logged steps. */
  imagesPerSecond: number;
  /** Last logged total loss. */
  finalLoss: number | null;
  /** Backend name. */
  backend: string;
  /** Sessions it took (more than one when it was resumed). */
  sessions: number;
  /** ISO time it finished. */
  finishedAt: string;
}

/** The probe results of one (configuration, data set) cell. */
export interface StudyCell {
  /** The configuration. */
  configuration: string;
  /** The data set. */
  dataset: string;
  /** The probe settings it was computed with. */
  probe: StudyProbe;
  /** The data set's definition it was computed with. */
  data: StudyDataset;
  /** The probe report (baseline, sweep with its validation-scored trials, TTA, kNN). */
  report: ProbeReport;
  /** Wall-clock seconds of feature extraction and probing. */
  seconds: number;
}

/** What {@linkcode runStudy} returns (and `study.json` holds). */
export interface StudyResult {
  /** `completed`, or `interrupted` when the signal stopped it. */
  status: "completed" | "interrupted";
  /** The study. */
  study: Study;
  /** Finished runs, in configuration order. */
  runs: StudyRun[];
  /** Finished cells, configuration-major. */
  cells: StudyCell[];
  /** Backend name. */
  backend: string;
  /** Git commit of the code, or `null` when unknown. */
  commit: string | null;
  /** Wall-clock seconds of this invocation. */
  wallSeconds: number;
}

/** A progress event of {@linkcode runStudy}. */
export interface StudyEvent {
  /** What happened. */
  kind:
    | "run-start"
    | "run-skip"
    | "run-done"
    | "step"
    | "probe-start"
    | "probe-skip"
    | "probe-done"
    | "report"
    | "warning";
  /** The configuration, where there is one. */
  configuration?: string;
  /** The data set, where there is one. */
  dataset?: string;
  /** One line. */
  message: string;
  /** The step's metrics, for `step`. */
  step?: StepMetrics;
}

/** Options of {@linkcode runStudy}. */
export interface RunStudyOptions {
  /** Progress callback. */
  onEvent?: (event: StudyEvent) => void;
  /** Stops after the current step (the run checkpoints) or between stages. */
  signal?: AbortSignal;
  /** Name of the active backend, for the metadata. @default {tf.getBackend()} */
  backend?: string;
  /**
   * Backend for the probes after feature extraction (see
   * `ProbeBackboneOptions.probeBackend`). @default {the active backend}
   */
  probeBackend?: BackendName;
  /** Git commit for the metadata; `undefined` asks `git rev-parse HEAD`. */
  commit?: string | null;
  /** Write `study.md`, `study.json` and the figures at the end. @default {true} */
  report?: boolean;
}

/**
 * Runs (or resumes) a study on the active backend: pretrains every
 * configuration with the same budget and seed (skipping finished runs,
 * resuming interrupted ones), probes every backbone on every downstream set
 * (skipping saved cells), and writes the report.
 *
 * @example
 * ```ts ignore
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { runStudy, TINY_STUDY } from "@scaling-vicreg/train";
 * await useBackend("auto");
 * const result = await runStudy({ ...TINY_STUDY, out: "runs/tiny-study" });
 * ```
 *
 * @param study The study (see {@linkcode parseStudy}).
 * @param options Callbacks, an abort signal and metadata.
 * @returns The finished runs and cells.
 */
export async function runStudy(
  study: Study,
  options: RunStudyOptions = {},
): Promise<StudyResult> {
  const { onEvent = () => {}, signal, report = true } = options;
  const started = performance.now();
  checkStudy(study);
  const backend = options.backend ?? tf.getBackend();
  const commit = options.commit === undefined
    ? await gitCommit()
    : options.commit;
  await Deno.mkdir(`${study.out}/runs`, { recursive: true });
  await writeFileAtomic(
    `${study.out}/study.input.json`,
    JSON.stringify(study, null, 2) + "\n",
  );
  const result: StudyResult = {
    status: "completed",
    study,
    runs: [],
    cells: [],
    backend,
    commit,
    wallSeconds: 0,
  };
  const finish = async (status: StudyResult["status"]) => {
    result.status = status;
    result.wallSeconds = (performance.now() - started) / 1000;
    if (report && result.runs.length > 0) {
      const files = await writeStudyReport(study.out, result);
      onEvent({ kind: "report", message: `Wrote ${files.join(", ")}` });
    }
    return result;
  };

  for (const c of study.configurations) {
    if (signal?.aborted) return await finish("interrupted");
    const run = await pretrainRow(study, c, backend, onEvent, signal);
    if (run === undefined) return await finish("interrupted");
    result.runs.push(run);
  }
  assertEqualBudgets(result.runs.map((r) => r.budget));

  const sets = new Map<string, { train: ImageSource; test: ImageSource }>();
  for (const c of study.configurations) {
    const dir = runDirOf(study, c.name);
    let weightsKey: string | undefined;
    for (const d of study.downstream) {
      if (signal?.aborted) return await finish("interrupted");
      const path = `${study.out}/results/${c.name}/${d.name}.json`;
      const saved = await readJson<StudyCell>(path);
      const same = saved !== undefined &&
        JSON.stringify([saved.probe, saved.data]) ===
          JSON.stringify([study.probe, d]);
      if (saved !== undefined && !same) {
        onEvent({
          kind: "warning",
          configuration: c.name,
          dataset: d.name,
          message:
            `${c.name} × ${d.name}: saved result used other probe settings or data; probing again`,
        });
      }
      if (saved !== undefined && same) {
        onEvent({
          kind: "probe-skip",
          configuration: c.name,
          dataset: d.name,
          message: `${c.name} × ${d.name}: saved result reused`,
        });
        result.cells.push(saved);
        continue;
      }
      onEvent({
        kind: "probe-start",
        configuration: c.name,
        dataset: d.name,
        message: `${c.name} × ${d.name}: probing`,
      });
      const t0 = performance.now();
      weightsKey ??= await sha256Hex(
        await Deno.readFile(`${dir}/backbone.safetensors`),
      );
      const { backbone } = await loadRunBackbone(dir);
      let probeReport: ProbeReport;
      try {
        if (!sets.has(d.name)) sets.set(d.name, await openDownstream(d));
        probeReport = await probeBackbone(backbone, sets.get(d.name)!, {
          size: study.budget.size,
          tta: study.probe.tta,
          ttaOn: study.probe.ttaOn,
          trials: study.probe.trials,
          maxEpochs: study.probe.maxEpochs,
          baselineEpochs: study.probe.baselineEpochs,
          seed: study.budget.seed,
          cacheDir: `${study.out}/features`,
          weightsKey,
          dataKey: JSON.stringify(d),
          title: `${c.name} on ${d.name}`,
          meta: { configuration: c.name, dataset: d.name, backend },
          probeBackend: options.probeBackend,
        });
      } finally {
        backbone.dispose();
      }
      const cell: StudyCell = {
        configuration: c.name,
        dataset: d.name,
        probe: study.probe,
        data: d,
        report: probeReport,
        seconds: (performance.now() - t0) / 1000,
      };
      await Deno.mkdir(`${study.out}/results/${c.name}`, { recursive: true });
      await writeFileAtomic(path, JSON.stringify(cell, null, 2) + "\n");
      result.cells.push(cell);
      onEvent({
        kind: "probe-done",
        configuration: c.name,
        dataset: d.name,
        message: `${c.name} × ${d.name}: baseline ${
          pct(probeReport.baseline.top1)
        }, sweep ${pct(probeReport.sweep.top1)}${
          probeReport.sweepTta
            ? `, sweep + TTA ${pct(probeReport.sweepTta.top1)}`
            : ""
        }${probeReport.knn ? `, kNN ${pct(probeReport.knn.top1)}` : ""} (${
          cell.seconds.toFixed(0)
        } s)`,
      });
    }
  }
  return await finish("completed");
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

async function pretrainRow(
  study: Study,
  c: StudyConfiguration,
  backend: string,
  onEvent: (event: StudyEvent) => void,
  signal: AbortSignal | undefined,
): Promise<StudyRun | undefined> {
  const dir = runDirOf(study, c.name);
  const done = await readJson<StudyRun>(`${dir}/done.json`);
  const config = runConfig(study, c, false);
  if (done !== undefined) {
    sameBudget(dir, budgetOf(config), done.budget);
    onEvent({
      kind: "run-skip",
      configuration: c.name,
      message: `${c.name}: finished run in ${dir} reused (${done.steps} steps)`,
    });
    return done;
  }
  const progress = await readJson<{ wallSeconds: number; sessions: number }>(
    `${dir}/study-progress.json`,
  );
  const resume = await hasCheckpoint(dir);
  if (resume) {
    const path = `${dir}/config.yaml`;
    const saved = resolveConfig({
      file: await readConfigFile(path),
      fileName: path,
    });
    sameBudget(dir, budgetOf(config), budgetOf(saved));
  }
  onEvent({
    kind: "run-start",
    configuration: c.name,
    message: `${c.name}: ${
      resume ? "resuming" : "pretraining"
    } (${c.description}) in ${dir}`,
  });
  const t0 = performance.now();
  const source = study.pretrainData === "procedural"
    ? undefined
    : await openDataset(study.pretrainData, {
      split: "train",
      seed: study.budget.seed,
      strict: config.strict,
      onWarning: (message) => onEvent({ kind: "warning", message }),
      workers: defaultDecodeWorkers(),
    });
  const result = await pretrain(runConfig(study, c, resume), {
    source,
    signal,
    onStep: (m) =>
      onEvent({
        kind: "step",
        configuration: c.name,
        step: m,
        message: `${c.name}: step ${m.step}/${m.totalSteps} loss ${
          m.loss.toFixed(3)
        } ${m.imagesPerSecond.toFixed(1)} img/s`,
      }),
    onEvent: (e) => {
      if (e.level === "warning") {
        onEvent({
          kind: "warning",
          configuration: c.name,
          message: `${c.name}: ${e.message}`,
        });
      }
    },
  });
  source?.close?.();
  const wallSeconds = (progress?.wallSeconds ?? 0) +
    (performance.now() - t0) / 1000;
  const sessions = (progress?.sessions ?? 0) + 1;
  if (result.status === "interrupted") {
    await writeFileAtomic(
      `${dir}/study-progress.json`,
      JSON.stringify({ wallSeconds, sessions }) + "\n",
    );
    return undefined;
  }
  const metrics = await readMetrics(dir);
  const run: StudyRun = {
    configuration: c.name,
    description: c.description,
    flags: c.flags,
    arch: config.arch,
    budget: budgetOf(config),
    steps: result.steps,
    wallSeconds,
    imagesPerSecond: metrics.length
      ? metrics.reduce((s, m) => s + m.imagesPerSecond, 0) / metrics.length
      : 0,
    finalLoss: result.last?.loss ?? metrics.at(-1)?.loss ?? null,
    backend,
    sessions,
    finishedAt: new Date().toISOString(),
  };
  await writeFileAtomic(
    `${dir}/done.json`,
    JSON.stringify(run, null, 2) + "\n",
  );
  onEvent({
    kind: "run-done",
    configuration: c.name,
    message: `${c.name}: ${run.steps} steps in ${
      wallSeconds.toFixed(0)
    } s, final loss ${run.finalLoss?.toFixed(3) ?? "?"}`,
  });
  return run;
}

function sameBudget(dir: string, wanted: RunBudget, found: RunBudget): void {
  for (const key of Object.keys(wanted) as (keyof RunBudget)[]) {
    if (wanted[key] !== found[key]) {
      throw new RangeError(
        `Run directory ${dir} was trained with another budget ("${key}" ${
          JSON.stringify(found[key])
        }, the study asks for ${
          JSON.stringify(wanted[key])
        }): give the study a new output directory`,
      );
    }
  }
}

async function hasCheckpoint(dir: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (/^checkpoint-\d+\.json$/.test(e.name)) return true;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return false;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * The labelled train and test images of a downstream set: procedural sets are
 * generated from their seed and sizes; others are opened from disk.
 *
 * @param d The data set.
 * @returns Its train and test splits.
 */
export async function openDownstream(
  d: StudyDataset,
): Promise<{ train: ImageSource; test: ImageSource }> {
  if (d.data === "procedural") {
    const common = { size: d.imageSize, seed: d.seed };
    return {
      train: proceduralDataset({ ...common, n: d.trainImages, split: "train" }),
      test: proceduralDataset({ ...common, n: d.testImages, split: "test" }),
    };
  }
  const options = {
    seed: d.seed,
    workers: defaultDecodeWorkers(),
    ...(d.kind ? { kind: d.kind } : {}),
  };
  return {
    train: await openDataset(d.data, { ...options, split: "train" }),
    test: await openDataset(d.data, { ...options, split: "test" }),
  };
}

/**
 * The commit of the code (`git rev-parse HEAD` in the working directory), or
 * `null` when git or the repository is absent.
 *
 * @returns 40 hex digits, or `null`.
 */
export async function gitCommit(): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const hash = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{40}$/.test(hash) ? hash : null;
  } catch {
    return null;
  }
}
