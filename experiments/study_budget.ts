/**
 * One study row as a pretraining run: its run directory, its resolved
 * configuration (the row's keys, then the study's budget and data), and the
 * budget every run of a study must share.
 *
 * @module
 */
import {
  type PretrainConfig,
  resolveConfig,
} from "@scaling-vicreg/train/config";
import type { Study, StudyBudget, StudyConfiguration } from "./study_schema.ts";

/**
 * The seeds every row of a study is run with: `budget.seed` and the
 * `seeds − 1` after it.
 *
 * @example
 * ```ts
 * import { parseStudy, studySeeds } from "@scaling-vicreg/experiments";
 * console.log(studySeeds(parseStudy({ seeds: 3, budget: { seed: 5 } }))); // [5, 6, 7]
 * ```
 *
 * @param study The study.
 * @returns The seeds, in run order.
 */
export function studySeeds(study: Study): number[] {
  const n = study.seeds ?? 1;
  return Array.from({ length: n }, (_, i) => study.budget.seed + i);
}

/**
 * The name of one (configuration, seed) run: the configuration's name for
 * the study's first seed (as a one-seed study names it, so a one-seed study's
 * runs are reused when seeds are added), `<name>.seed<seed>` for the others.
 *
 * @example
 * ```ts
 * import { parseStudy, runNameOf } from "@scaling-vicreg/experiments";
 * const study = parseStudy({ seeds: 2 });
 * console.log(runNameOf(study, "full", 0), runNameOf(study, "full", 1)); // full full.seed1
 * ```
 *
 * @param study The study.
 * @param name The configuration's name.
 * @param seed The run's seed. @default {study.budget.seed}
 * @returns The run's name (its run and results directories' name).
 */
export function runNameOf(
  study: Study,
  name: string,
  seed: number = study.budget.seed,
): string {
  return seed === study.budget.seed ? name : `${name}.seed${seed}`;
}

/**
 * The directory of a configuration's pretraining run with one seed.
 *
 * @param study The study.
 * @param name The configuration's name.
 * @param seed The run's seed. @default {study.budget.seed}
 * @returns `out/runs/<name>` for the first seed, `out/runs/<name>.seed<seed>` for the others.
 */
export function runDirOf(
  study: Study,
  name: string,
  seed: number = study.budget.seed,
): string {
  return `${study.out}/runs/${runNameOf(study, name, seed)}`;
}

/**
 * The pretraining configuration of one row: the shared keys, the row's keys,
 * then the study's budget and data (which nothing else may change).
 *
 * @param study The study.
 * @param configuration The row.
 * @param resume Whether to continue from the run directory's checkpoint.
 * @param seed The run's seed (one of {@linkcode studySeeds}). @default {study.budget.seed}
 * @returns The resolved configuration.
 */
export function runConfig(
  study: Study,
  configuration: StudyConfiguration,
  resume: boolean,
  seed: number = study.budget.seed,
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
      seed,
      data: study.pretrainData,
      "exp-dir": runDirOf(study, configuration.name, seed),
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
