/**
 * Ablation studies in the shape of the paper's Table 1: several pretraining
 * configurations trained with one budget and one seed (or each with the same
 * `seeds` seeds), each backbone probed on every downstream data set (baseline
 * probe, sweep, sweep + 10-crop TTA, kNN).
 *
 * A study is resumable at every level: each (configuration, seed) is an
 * ordinary run directory under `out/runs/<name>` for the first seed and
 * `out/runs/<name>.seed<s>` for the others (a finished one carries
 * `done.json` and is never touched again; an interrupted one resumes from its
 * checkpoint), features are cached under `out/features`, and each
 * (configuration, seed, data set) result is saved under `out/results/` before
 * the next one starts. Seeds run one after another, each seed's rows
 * pretrained and then probed, so an interrupted study already has whole
 * seeds to report.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import type { BackendName } from "@scaling-vicreg/backend";
import {
  defaultDecodeWorkers,
  type ImageSource,
  openDataset,
  proceduralDataset,
} from "@scaling-vicreg/data";
import type { ProbeReport } from "@scaling-vicreg/probe";
import { percent } from "@scaling-vicreg/probe/svg";
import { readConfigFile, resolveConfig } from "@scaling-vicreg/train/config";
import { pretrain } from "@scaling-vicreg/train/pretrain";
import type { StepMetrics } from "@scaling-vicreg/train/run-metrics";
import { probeBackbone } from "./evaluate.ts";
import { loadRunBackbone } from "@scaling-vicreg/train/backbone-file";
import { gitCommit } from "./_git.ts";
import { writeStudyReport } from "./study_report.ts";
import { readMetrics } from "@scaling-vicreg/train/run-metrics";
import type {
  Study,
  StudyConfiguration,
  StudyDataset,
} from "./study_schema.ts";
import {
  assertEqualBudgets,
  budgetOf,
  type RunBudget,
  runConfig,
  runDirOf,
  runNameOf,
  studySeeds,
} from "./study_budget.ts";
import { checkStudy } from "./study_file.ts";
import type { StudyCell, StudyResult, StudyRun } from "./study_result.ts";

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
  /** The run's seed, where there is one. */
  seed?: number;
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
 * Runs (or resumes) a study on the active backend: for each of the study's
 * seeds, pretrains every configuration with the same budget and that seed
 * (skipping finished runs, resuming interrupted ones) and probes every
 * backbone on every downstream set with that seed (skipping saved cells);
 * then writes the report.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { parseStudy, runStudy } from "@scaling-vicreg/experiments";
 * await useBackend("cpu-fast");
 * const out = await Deno.makeTempDir();
 * try {
 *   // One configuration, one step on 16 procedural images, one tiny probe.
 *   const study = parseStudy({
 *     title: "One-step study",
 *     pretrain: { preset: "tiny", "num-images": 16, "image-size": 16, mlp: "16-16" },
 *     budget: { epochs: 1, "max-steps": 1, "batch-size": 8, size: 16, seed: 0 },
 *     configurations: ["global-only"],
 *     downstream: [{
 *       name: "shapes",
 *       data: "procedural",
 *       seed: 1,
 *       "train-images": 20,
 *       "test-images": 10,
 *       "image-size": 16,
 *     }],
 *     probe: { trials: 1, "max-epochs": 1, "baseline-epochs": 1, tta: false },
 *     out,
 *   });
 *   const result = await runStudy(study, { commit: null });
 *   console.log(result.status, result.cells.length); // completed 1
 * } finally {
 *   await Deno.remove(out, { recursive: true });
 * }
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

  const sets = new Map<string, { train: ImageSource; test: ImageSource }>();
  for (const seed of studySeeds(study)) {
    const runs: StudyRun[] = [];
    for (const c of study.configurations) {
      if (signal?.aborted) return await finish("interrupted");
      const run = await pretrainRow(study, c, seed, backend, onEvent, signal);
      if (run === undefined) return await finish("interrupted");
      runs.push(run);
      result.runs.push(run);
    }
    assertEqualBudgets(runs.map((r) => r.budget));
    const status = await probeSeed(study, seed, sets, result, {
      ...options,
      onEvent,
      backend,
    });
    if (status === "interrupted") return await finish("interrupted");
  }
  return await finish("completed");
}

/** A row's name in messages: with its seed when the study has several. */
function labelOf(study: Study, name: string, seed: number): string {
  return (study.seeds ?? 1) > 1 ? `${name} (seed ${seed})` : name;
}

/** Probes every row of one seed on every data set, appending to `result.cells`. */
async function probeSeed(
  study: Study,
  seed: number,
  sets: Map<string, { train: ImageSource; test: ImageSource }>,
  result: StudyResult,
  options: RunStudyOptions & {
    onEvent: (event: StudyEvent) => void;
    backend: string;
  },
): Promise<"completed" | "interrupted"> {
  const { onEvent, signal, backend } = options;
  for (const c of study.configurations) {
    const dir = runDirOf(study, c.name, seed);
    const name = labelOf(study, c.name, seed);
    let weightsKey: string | undefined;
    for (const d of study.downstream) {
      if (signal?.aborted) return "interrupted";
      const path = `${study.out}/results/${
        runNameOf(study, c.name, seed)
      }/${d.name}.json`;
      const read = await readJson<StudyCell>(path);
      // Cells saved before studies had seeds are the first seed's.
      const saved = read === undefined ? undefined : { ...read, seed };
      const same = saved !== undefined &&
        JSON.stringify([saved.probe, saved.data]) ===
          JSON.stringify([study.probe, d]);
      if (saved !== undefined && !same) {
        onEvent({
          kind: "warning",
          configuration: c.name,
          dataset: d.name,
          seed,
          message:
            `${name} × ${d.name}: saved result used other probe settings or data; probing again`,
        });
      }
      if (saved !== undefined && same) {
        onEvent({
          kind: "probe-skip",
          configuration: c.name,
          dataset: d.name,
          seed,
          message: `${name} × ${d.name}: saved result reused`,
        });
        result.cells.push(saved);
        continue;
      }
      onEvent({
        kind: "probe-start",
        configuration: c.name,
        dataset: d.name,
        seed,
        message: `${name} × ${d.name}: probing`,
      });
      const t0 = performance.now();
      const { backbone, sha256 } = await loadRunBackbone(dir);
      weightsKey ??= sha256;
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
          seed,
          cacheDir: `${study.out}/features`,
          weightsKey,
          dataKey: JSON.stringify(d),
          title: `${name} on ${d.name}`,
          meta: { configuration: c.name, dataset: d.name, seed, backend },
          probeBackend: options.probeBackend,
        });
      } finally {
        backbone.dispose();
      }
      const cell: StudyCell = {
        configuration: c.name,
        seed,
        dataset: d.name,
        probe: study.probe,
        data: d,
        report: probeReport,
        seconds: (performance.now() - t0) / 1000,
      };
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), {
        recursive: true,
      });
      await writeFileAtomic(path, JSON.stringify(cell, null, 2) + "\n");
      result.cells.push(cell);
      onEvent({
        kind: "probe-done",
        configuration: c.name,
        dataset: d.name,
        seed,
        message: `${name} × ${d.name}: baseline ${
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
  return "completed";
}

function pct(x: number): string {
  return `${percent(x, 1)} %`;
}

async function pretrainRow(
  study: Study,
  c: StudyConfiguration,
  seed: number,
  backend: string,
  onEvent: (event: StudyEvent) => void,
  signal: AbortSignal | undefined,
): Promise<StudyRun | undefined> {
  const dir = runDirOf(study, c.name, seed);
  const name = labelOf(study, c.name, seed);
  const done = await readJson<StudyRun>(`${dir}/done.json`);
  const config = runConfig(study, c, false, seed);
  if (done !== undefined) {
    sameBudget(dir, budgetOf(config), done.budget);
    onEvent({
      kind: "run-skip",
      configuration: c.name,
      seed,
      message: `${name}: finished run in ${dir} reused (${done.steps} steps)`,
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
    seed,
    message: `${name}: ${
      resume ? "resuming" : "pretraining"
    } (${c.description}) in ${dir}`,
  });
  const t0 = performance.now();
  const source = study.pretrainData === "procedural"
    ? undefined
    : await openDataset(study.pretrainData, {
      split: "train",
      seed,
      strict: config.strict,
      onWarning: (message) => onEvent({ kind: "warning", message }),
      workers: defaultDecodeWorkers(),
    });
  const result = await pretrain(runConfig(study, c, resume, seed), {
    source,
    signal,
    onStep: (m) =>
      onEvent({
        kind: "step",
        configuration: c.name,
        seed,
        step: m,
        message: `${name}: step ${m.step}/${m.totalSteps} loss ${
          m.loss.toFixed(3)
        } ${m.imagesPerSecond.toFixed(1)} img/s`,
      }),
    onEvent: (e) => {
      if (e.level === "warning") {
        onEvent({
          kind: "warning",
          configuration: c.name,
          seed,
          message: `${name}: ${e.message}`,
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
    seed,
    message: `${name}: ${run.steps} steps in ${
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
