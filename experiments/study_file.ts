/**
 * Reading and checking a study: the study file (YAML, kebab-case keys) is
 * parsed into a {@linkcode Study}, and a study from a file or from code is
 * checked (names, reserved keys, every row a valid pretraining configuration
 * with the same budget) before any work starts.
 *
 * @module
 */
import { DATASET_KINDS, type DatasetKind } from "@scaling-vicreg/data";
import { ConfigError } from "@scaling-vicreg/train/config";
import { parseYaml } from "@scaling-vicreg/backend/yaml";
import {
  DEFAULT_STUDY_BUDGET,
  DEFAULT_STUDY_PROBE,
  type Study,
  STUDY_RESERVED_KEYS,
  type StudyBudget,
  type StudyConfiguration,
  type StudyDataset,
  type StudyProbe,
} from "./study_schema.ts";
import { BUILTIN_CONFIGURATIONS } from "./study_presets.ts";
import { assertEqualBudgets, runConfig } from "./study_budget.ts";

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;
const SEED_SUFFIX = /\.seed\d+$/;

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
 * import { parseStudy } from "@scaling-vicreg/experiments/study-file";
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
    "seeds",
    "configurations",
    "downstream",
    "probe",
    "out",
    "notes",
  ]);
  const budget = parseBudget(raw.budget, where);
  const probe = parseProbe(raw.probe, where);
  const configurations = parseConfigurations(raw.configurations, where);
  const downstream = parseDownstream(raw.downstream, where);
  const notes = raw.notes ?? [];
  if (!Array.isArray(notes) || notes.some((n) => typeof n !== "string")) {
    throw fail("notes", where, "a list of strings", notes);
  }
  const study: Study = {
    title: text(raw, "title", "", where, "Ablation study"),
    pretrainData: text(raw, "pretrain-data", "", where, "procedural"),
    pretrain: flagValues(raw.pretrain, "pretrain", where),
    budget,
    seeds: int(raw, "seeds", "", where, 1, 1),
    configurations,
    downstream,
    probe,
    out: text(raw, "out", "", where, "runs/study"),
    notes: notes as string[],
  };
  checkStudy(study, where);
  return study;
}

/** The `budget` section: one budget for every row. */
function parseBudget(value: unknown, where: string): StudyBudget {
  const b = mapping(value, "budget", where, [
    "epochs",
    "max-steps",
    "batch-size",
    "size",
    "seed",
  ]);
  const D = DEFAULT_STUDY_BUDGET;
  return {
    epochs: int(b, "epochs", "budget.", where, D.epochs, 1),
    maxSteps: int(b, "max-steps", "budget.", where, D.maxSteps, 0),
    batchSize: int(b, "batch-size", "budget.", where, D.batchSize, 2),
    size: int(b, "size", "budget.", where, D.size, 8),
    seed: int(b, "seed", "budget.", where, D.seed, 0),
  };
}

/** The `probe` section: the protocol every row is probed with. */
function parseProbe(value: unknown, where: string): StudyProbe {
  const p = mapping(value, "probe", where, [
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
  return {
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
}

/** The `configurations` list: built-in names or `{name, flags}` rows. */
function parseConfigurations(
  value: unknown,
  where: string,
): StudyConfiguration[] {
  const configs = value ?? Object.keys(BUILTIN_CONFIGURATIONS);
  if (!Array.isArray(configs) || configs.length === 0) {
    throw fail(
      "configurations",
      where,
      "a non-empty list of built-in names or {name, flags} mappings",
      configs,
    );
  }
  return configs.map((c, i): StudyConfiguration => {
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
}

/** The `downstream` list: the labelled sets each row is probed on. */
function parseDownstream(value: unknown, where: string): StudyDataset[] {
  const downstreamRaw = value ?? [{ name: "procedural" }];
  if (!Array.isArray(downstreamRaw) || downstreamRaw.length === 0) {
    throw fail(
      "downstream",
      where,
      "a non-empty list of {name, data, kind?} mappings",
      downstreamRaw,
    );
  }
  return downstreamRaw.map((d, i): StudyDataset => {
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
}

/**
 * Checks a study built in code the way {@linkcode parseStudy} checks a file:
 * unique names, a whole number of seeds ≥ 1, and every configuration
 * resolving to a valid pretraining configuration with the study's budget.
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
      if (key === "configurations" && SEED_SUFFIX.test(item.name)) {
        throw fail(
          `${key}[${i}].name`,
          where,
          'a name that does not end in ".seed<n>" (the run directories of further seeds are named so)',
          item.name,
        );
      }
      seen.add(item.name);
    });
  }
  const seeds = study.seeds ?? 1;
  if (!Number.isInteger(seeds) || seeds < 1) {
    throw fail("seeds", where, "an integer ≥ 1", seeds);
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
