/**
 * Opening a run directory for a pretraining run: what may start or resume
 * there, an exclusive lock, clean-up of what killed runs left, and the
 * checkpoint a resume continues from.
 *
 * - A fresh run refuses a directory that holds a run; `--resume` refuses a
 *   directory with nothing to resume (it never starts over, and never
 *   truncates the metrics of a run it did not find).
 * - A resume continues from the newest good checkpoint, whose recorded
 *   configuration is the run's one source of truth: `resumeConfig`
 *   (`config.ts`) decides what may change, and the learning-rate changes it
 *   reports are recorded in `config.yaml` (the human-readable copy, rewritten
 *   from the configuration) and `metrics.jsonl`.
 * - Damaged checkpoints are moved into `damaged/` with a warning.
 *
 * @module
 */
import {
  removeStaleTempFiles,
  writeFileAtomic,
} from "@scaling-vicreg/backend/fs";
import {
  type Checkpoint,
  checkpointName,
  listCheckpoints,
  loadLatestCheckpoint,
  moveCheckpointAside,
  type SkippedCheckpoint,
} from "./checkpoint.ts";
import {
  type ConfigChange,
  ConfigError,
  configRecord,
  configToYaml,
  type PretrainConfig,
  readConfigFile,
  resolveConfig,
  resumeConfig,
} from "./config.ts";
import { createMetrics, truncateMetrics } from "./run_metrics.ts";
import { acquireRunLock, type RunLock } from "./run_lock.ts";
import {
  type Divergence,
  DivergenceError,
  firstSuspectStep,
  NonFiniteLossError,
} from "./divergence.ts";

/** A notable thing found while opening a run directory. */
export interface RunDirectoryEvent {
  /** `info`, or `warning` for things a person should look at. */
  level: "info" | "warning";
  /** One line. */
  message: string;
}

/** Options of {@linkcode openRunDirectory}. */
export interface OpenRunDirectoryOptions {
  /** Told of stale locks and temp files removed, damaged checkpoints, changes. */
  onEvent?: (event: RunDirectoryEvent) => void;
}

/** An open run directory; {@linkcode RunDirectory.close} it in a `finally`. */
export interface RunDirectory {
  /** The directory. */
  dir: string;
  /** The held lock. */
  lock: RunLock;
  /** The checkpoint to continue from (resume only). */
  checkpoint?: Checkpoint;
  /** Learning-rate keys this resume changes. */
  changes: ConfigChange[];
  /** Releases the lock. */
  close(): Promise<void>;
  /** The same as {@linkcode RunDirectory.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const CHECKPOINT = /^checkpoint-\d+\.json$/;
const HISTORY = "# changed on --resume:";

/**
 * The saved configuration of the run in `dir`, as a config-file record: the
 * one its newest checkpoint records (the run's source of truth; read without
 * loading the tensors), or `config.yaml` for a run with no checkpoint that
 * records one. `undefined` when it has neither.
 *
 * @param dir The run directory.
 * @returns The record and the file it came from, or `undefined`.
 */
export async function savedRunConfig(
  dir: string,
): Promise<{ file: Record<string, unknown>; where: string } | undefined> {
  for (const step of await listCheckpoints(dir)) {
    const where = `${dir}/${checkpointName(step)}`;
    const meta = await Deno.readTextFile(where).then(JSON.parse).catch(() =>
      undefined
    );
    const config = meta?.state?.config as Partial<PretrainConfig> | undefined;
    if (config !== undefined) return { file: configRecord(config), where };
  }
  const yaml = `${dir}/config.yaml`;
  const file = await readConfigFile(yaml).catch(() => undefined);
  return file === undefined ? undefined : { file, where: yaml };
}

async function listNames(dir: string): Promise<string[] | undefined> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return names.sort();
}

/**
 * Refuses to start a fresh run over one already in the directory (its
 * checkpoints would be pruned and a later `--resume` would mix the two), and
 * a resume of a directory that does not exist. Writes nothing.
 *
 * @param config The configuration.
 * @returns Resolves when the run may go ahead.
 */
export async function checkRunDirectory(config: PretrainConfig): Promise<void> {
  const dir = config.expDir;
  const names = await listNames(dir);
  if (names === undefined) {
    if (config.resume) {
      throw new ConfigError(
        "resume",
        `--resume: ${dir} does not exist, so there is nothing to resume (check --exp-dir)`,
      );
    }
    return;
  }
  if (!config.resume) {
    const previous = names.filter((n) => CHECKPOINT.test(n));
    if (previous.length > 0) {
      throw new ConfigError(
        "exp-dir",
        `${dir} already holds a run (${
          previous.at(-1)
        }): pass --resume to continue it, or choose another --exp-dir`,
      );
    }
  }
}

function describeFound(
  names: string[],
  damaged: SkippedCheckpoint[],
): string {
  const parts: string[] = [];
  if (damaged.length > 0) {
    parts.push(
      `${damaged.length} damaged checkpoint${
        damaged.length > 1 ? "s" : ""
      } (moved to damaged/: ${damaged[0].reason})`,
    );
  } else {
    parts.push("no checkpoint");
  }
  const other = names.filter((n) =>
    n !== "run.lock" && n !== "damaged" && !/\.tmp-\d+-/.test(n)
  );
  parts.push(
    other.length > 0 ? `other files: ${other.slice(0, 6).join(", ")}` : "",
  );
  return parts.filter((p) => p !== "").join("; ");
}

/**
 * Appends the learning-rate changes of a resume to a run's `config.yaml` text
 * as comments, keeping those of earlier resumes.
 */
function configYaml(
  config: PretrainConfig,
  previous: string,
  step: number,
  changes: ConfigChange[],
): string {
  const history = previous.split("\n").filter((l) => l.startsWith(HISTORY));
  for (const c of changes) {
    history.push(
      `${HISTORY} step ${step}: ${c.key} ${JSON.stringify(c.from)} -> ${
        JSON.stringify(c.to)
      }`,
    );
  }
  const body = configToYaml(config);
  return history.length > 0 ? `${body}${history.join("\n")}\n` : body;
}

function opened(
  dir: string,
  lock: RunLock,
  checkpoint: Checkpoint | undefined,
  changes: ConfigChange[],
): RunDirectory {
  const close = () => lock.release();
  return {
    dir,
    lock,
    ...(checkpoint ? { checkpoint } : {}),
    changes,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Opens `config.expDir` for a run: checks it ({@linkcode checkRunDirectory}),
 * creates it, takes its lock (a live holder is a `RunLockedError`), removes
 * temp files of killed writers, and writes `config.yaml` and `metrics.jsonl`
 * (empty for a fresh run; cut back to the checkpoint for a resume). A resume
 * also loads the newest good checkpoint (damaged newer ones go to
 * `damaged/`), compares the configurations (see the module doc), and fails
 * with a {@linkcode ConfigError} saying what it found when there is nothing to
 * resume.
 *
 * @example
 * ```ts
 * import { openRunDirectory, resolveConfig } from "@scaling-vicreg/train";
 * const dir = await Deno.makeTempDir();
 * const run = await openRunDirectory(
 *   resolveConfig({ flags: { preset: "tiny", "exp-dir": `${dir}/run` } }),
 * );
 * try {
 *   console.log(run.checkpoint); // undefined: a fresh run
 * } finally {
 *   await run.close();
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 *
 * @param config The resolved configuration.
 * @param options See {@linkcode OpenRunDirectoryOptions}.
 * @returns The open directory.
 */
export async function openRunDirectory(
  config: PretrainConfig,
  options: OpenRunDirectoryOptions = {},
): Promise<RunDirectory> {
  const { onEvent = () => {} } = options;
  const dir = config.expDir;
  await checkRunDirectory(config);
  await Deno.mkdir(dir, { recursive: true });
  const lock = await acquireRunLock(dir, {
    onStale: (message) => onEvent({ level: "warning", message }),
  });
  try {
    const removed = await removeStaleTempFiles(dir);
    if (removed.length > 0) {
      onEvent({
        level: "info",
        message: `Removed ${removed.length} temp file${
          removed.length > 1 ? "s" : ""
        } left by killed writes (${removed.slice(0, 3).join(", ")}${
          removed.length > 3 ? ", …" : ""
        })`,
      });
    }
    const yamlPath = `${dir}/config.yaml`;
    if (!config.resume) {
      // checkRunDirectory found no checkpoint: nothing of a run is lost.
      await createMetrics(dir);
      await writeFileAtomic(yamlPath, configToYaml(config));
      return opened(dir, lock, undefined, []);
    }
    const skipped: SkippedCheckpoint[] = [];
    const checkpoint = await loadLatestCheckpoint(dir, skipped);
    for (const s of skipped) {
      await moveCheckpointAside(dir, s.step, "damaged");
      onEvent({
        level: "warning",
        message:
          `Moved damaged checkpoint ${s.path} into ${dir}/damaged/: ${s.reason}`,
      });
    }
    if (checkpoint === undefined) {
      throw new ConfigError(
        "resume",
        `--resume: nothing to resume in ${dir}: found ${
          describeFound((await listNames(dir)) ?? [], skipped)
        }; metrics.jsonl is left as it is`,
      );
    }
    const step = checkpoint.meta.step;
    const recorded = checkpoint.meta.state.config as
      | Partial<PretrainConfig>
      | undefined;
    const where = `${dir}/${checkpointName(step)}`;
    const { changes } = resumeConfig(
      recorded &&
        resolveConfig({ file: configRecord(recorded), fileName: where }),
      config,
      where,
    );
    for (const c of changes) {
      onEvent({
        level: "warning",
        message: `--resume changes ${c.key} from ${JSON.stringify(c.from)} to ${
          JSON.stringify(c.to)
        } at step ${step} (recorded in config.yaml and metrics.jsonl)`,
      });
    }
    await truncateMetrics(
      dir,
      step,
      changes.length > 0 ? [{ step, event: "config-change", changes }] : [],
    );
    const previousYaml = await Deno.readTextFile(yamlPath).catch(() => "");
    await writeFileAtomic(
      yamlPath,
      configYaml(config, previousYaml, step, changes),
    );
    return opened(dir, lock, checkpoint, changes);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/**
 * Stops a run that diverged: the checkpoints that may hold diverged weights
 * (from {@linkcode firstSuspectStep} on) are moved into `diverged/`, and the
 * error returned names the blow-up and the checkpoint a `--resume` continues
 * from.
 *
 * @param dir The run directory.
 * @param divergence The blow-up, from `DivergenceGuard.observe`.
 * @param where Epoch and batch index of the step that blew up.
 * @returns A {@linkcode NonFiniteLossError} for a non-finite loss, else a
 *   {@linkcode DivergenceError}; the caller throws it.
 */
export async function stopDiverged(
  dir: string,
  divergence: Divergence,
  where: { epoch: number; batch: number },
): Promise<DivergenceError> {
  const from = firstSuspectStep(divergence);
  const moved: number[] = [];
  for (const step of await listCheckpoints(dir)) {
    if (step >= from) {
      await moveCheckpointAside(dir, step, "diverged");
      moved.push(step);
    }
  }
  const kept = (await listCheckpoints(dir))[0];
  const keptName = kept === undefined ? undefined : checkpointName(kept);
  const message = `Training diverged at step ${divergence.step} (epoch ${
    where.epoch + 1
  }, batch ${where.batch}): ${divergence.reason}${
    moved.length > 0
      ? `; ${moved.length} checkpoint${
        moved.length > 1 ? "s" : ""
      } from step ${from} on moved to ${dir}/diverged/`
      : ""
  }; ${
    keptName === undefined
      ? "no earlier checkpoint is kept: start again"
      : `the last checkpoint before the blow-up, ${keptName}, is kept: --resume`
  } with a lower --base-lr (or a longer --warmup-epochs)`;
  return divergence.quantity === "loss" && !Number.isFinite(divergence.value)
    ? new NonFiniteLossError(divergence, message)
    : new DivergenceError(divergence, message);
}
