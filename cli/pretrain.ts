/**
 * `vicreg pretrain`: the paper's pretraining run from flags and/or a YAML
 * config, resumable, with a progress bar, JSONL metrics and checkpoints.
 *
 * @module
 */
import { setPrecision } from "@scaling-vicreg/backend";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import {
  type FileDataset,
  type FileListFingerprint,
  fingerprintFiles,
  type ImageSource,
  type SkippedFile,
  skippedReport,
} from "@scaling-vicreg/data";
import {
  type Communicator,
  createCommunicator,
  describeRankFailure,
  detectMpiLaunch,
  runRanks,
} from "@scaling-vicreg/distributed";
import {
  createVicregModel,
  cropsOf,
  DEFAULT_PRETRAIN_CONFIG,
  pretrain,
  PRETRAIN_SCHEMA,
  type PretrainConfig,
  readConfigFile,
  resolveConfig,
  savedRunConfig,
  stepPlanLine,
  stepPlanOf,
} from "@scaling-vicreg/train";
import { rankBatchOf } from "@scaling-vicreg/train/config";
import { openTrainingData } from "./_data.ts";
import { useStepBackend } from "./_step_backend.ts";
import type { Command, FlagSpec } from "./args.ts";
import { Progress } from "./progress.ts";
import {
  interruptHandler,
  PREEMPTED_EXIT_CODE,
  stopSignals,
} from "./_interrupt.ts";
import { previewPng } from "./preview.ts";

/** Flags of `pretrain`: every config key, plus `--config` and `--plan-only`. */
export const PRETRAIN_FLAGS: Record<string, FlagSpec> = {
  config: {
    type: "string",
    help: "YAML file with the same keys as these flags (flags override it)",
  },
  "plan-only": {
    type: "boolean",
    help:
      "Print how a step would run on the backend (the 'Step: …' line: mode, micro-batch, kept slices, and why) and exit, reading no data and writing nothing",
    default: false,
  },
  ...Object.fromEntries(
    PRETRAIN_SCHEMA.map((k) => [k.flag, {
      type: k.type,
      help: k.help,
      default: k.default,
      ...(k.choices ? { choices: k.choices } : {}),
    }]),
  ),
};

/**
 * Resolves the configuration from `--config` and the flags given.
 *
 * @param values Parsed flag values (defaults included).
 * @param given Names of the flags given on the command line.
 * @returns The configuration.
 */
export async function configFromFlags(
  values: Record<string, string | number | boolean | undefined>,
  given: Set<string>,
): Promise<PretrainConfig> {
  const flags: Record<string, unknown> = {};
  for (const name of given) {
    if (!["config", "help", "plan-only"].includes(name)) {
      flags[name] = values[name];
    }
  }
  const path = values.config as string | undefined;
  const file = path ? await readConfigFile(path) : undefined;
  if (values.resume === true) {
    // A resumed run starts from its own saved configuration; --config and the
    // flags given change it (pretrain refuses changes to what it trains).
    const dir = (flags["exp-dir"] ?? file?.["exp-dir"] ??
      DEFAULT_PRETRAIN_CONFIG.expDir) as string;
    // config.yaml, or the configuration recorded in the newest checkpoint.
    const saved = await savedRunConfig(dir);
    if (saved !== undefined) {
      return resolveConfig({
        file: { ...saved.file, ...file },
        fileName: path ?? saved.where,
        flags,
      });
    }
  }
  return resolveConfig({ file, fileName: path, flags });
}

/**
 * `--ranks R` outside an MPI launch: this command again under `mpiexec` with
 * R processes (the Deno binary itself, so that the launcher's PMI
 * connection reaches each of them) and `--distributed mpi`.
 *
 * A rank that dies (the launcher then stops the others) is reported in one
 * line naming it.
 *
 * @param ranks The number of processes.
 * @param args This process's arguments, `pretrain …`.
 * @param report The command's label and run directory, for that line.
 * @returns The launcher's exit code.
 */
export async function relaunchUnderMpi(
  ranks: number,
  args: readonly string[],
  report: { label: string; expDir: string } = {
    label: "pretrain",
    expDir: DEFAULT_PRETRAIN_CONFIG.expDir,
  },
): Promise<number> {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--ranks") {
      i++;
      continue;
    }
    if (args[i].startsWith("--ranks=") || args[i].startsWith("--distributed")) {
      if (args[i] === "--distributed") i++;
      continue;
    }
    kept.push(args[i]);
  }
  const main = new URL("./main.ts", import.meta.url).pathname;
  shareCores(ranks);
  return await runRanks(ranks, [main, ...kept, "--distributed", "mpi"], {
    onRankFailure: (failure) =>
      console.error(
        `${report.label}: ${
          describeRankFailure(failure)
        }; the launcher stopped the other ranks; the last checkpoint in ${report.expDir} is intact: the same command with --resume (and --ranks ${ranks}) continues from it`,
      ),
  });
}

/**
 * Gives each of `ranks` processes on this machine its share of the cores for
 * OpenBLAS and oneDNN (OpenMP), unless the user set the thread counts: more
 * threads than cores make the ranks' workers take each other's cores.
 *
 * @param ranks Processes on this machine.
 */
function shareCores(ranks: number): void {
  const threads = String(
    Math.max(1, Math.floor(navigator.hardwareConcurrency / ranks)),
  );
  for (const name of ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"]) {
    if (Deno.env.get(name) === undefined) Deno.env.set(name, threads);
  }
}

/**
 * `pretrain --plan-only`: starts the backend, builds the configuration's
 * model and prints the step plan `pretrain` would follow (`train`'s
 * `stepPlanOf`, per rank with `--ranks`) on stdout, without opening the data
 * or the run directory.
 *
 * @param config The resolved configuration.
 * @param label The command's name in messages.
 * @returns The exit code.
 */
export async function printStepPlan(
  config: PretrainConfig,
  label = "pretrain",
): Promise<number> {
  const ranks = config.ranks;
  rankBatchOf(config, ranks);
  const backend = await useStepBackend(config, ranks);
  await setPrecision(config.precision);
  console.error(
    `${label}: backend ${backend.name} — ${backend.device} (${backend.reason}); precision ${config.precision}`,
  );
  const model = createVicregModel(config);
  try {
    const plan = await stepPlanOf(config, model, ranks);
    console.log(stepPlanLine(plan, config, ranks));
  } finally {
    model.dispose();
  }
  return 0;
}

/** Runs a pretraining with progress output; shared by `pretrain` and `demo`. */
export async function runPretrain(
  config: PretrainConfig,
  label = "pretrain",
): Promise<number> {
  if (config.ranks > 1 && detectMpiLaunch() === undefined) {
    console.error(
      `${label}: starting ${config.ranks} ranks under mpiexec; rank 0 reports`,
    );
    return await relaunchUnderMpi(config.ranks, Deno.args, {
      label,
      expDir: config.expDir,
    });
  }
  const comm = createCommunicator({
    kind: config.distributed,
  });
  // MPICH's launcher says how many ranks share this machine.
  const local = Number(Deno.env.get("MPI_LOCALNRANKS") ?? "1");
  if (comm.size > 1 && local > 1) shareCores(local);
  let failed = false;
  try {
    return await runRanked(config, label, comm);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // A rank that fails alone (a full disk on rank 0, a changed data set)
    // must not wait in MPI_Finalize for ranks blocked in a collective: it
    // exits non-zero without it, and the launcher stops the others.
    if (!failed || comm.size === 1) await comm.close();
  }
}

/** Images in the TensorBoard preview of a run. */
const PREVIEW_ROWS = 8;

async function runRanked(
  config: PretrainConfig,
  label: string,
  comm: Communicator,
): Promise<number> {
  // Rank 0 reports; every rank reports its errors.
  const log = comm.rank === 0 ? console.error : () => {};
  // The data is opened (and its layout checked) before a backend is started.
  const source = await openTrainingData(
    config,
    (message) => log(`${label}: warning: ${message}`),
  );
  let backend;
  try {
    backend = await useStepBackend(config, comm.size);
    await setPrecision(config.precision);
  } catch (error) {
    source.close?.();
    throw error;
  }
  log(
    `${label}: backend ${backend.name} — ${backend.device} (${backend.reason}); precision ${config.precision}`,
  );
  log(`${label}: data ${source.describe()}; run directory ${config.expDir}`);
  if (comm.size > 1) {
    log(
      `${label}: ${comm.size} ranks (${comm.kind}), ${
        config.batchSize / comm.size
      } images each per batch`,
    );
  }
  const controller = new AbortController();
  const stop = interruptHandler(label, config.expDir, {
    stop: (request) => controller.abort(request),
    print: (line) => console.error(line),
    exit: (code) => Deno.exit(code),
    now: () => performance.now(),
  });
  const listeners = stopSignals().map((signal) => {
    const listener = () => stop(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  let progress: Progress | undefined;
  // A step in many micro-batches can take minutes: its slices get a line too.
  let slices: Progress | undefined;
  try {
    const dataFiles = await fingerprintOf(source);
    const result = await pretrain(config, {
      source,
      dataFiles,
      communicator: comm,
      signal: controller.signal,
      // `vicreg preview` of the run's first images and transform.
      preview: async () =>
        await previewPng(
          await Promise.all(
            Array.from(
              { length: Math.min(PREVIEW_ROWS, source.length) },
              (_, i) => source.get(i),
            ),
          ),
          // the run's views: its two, or its global and local crops
          { size: config.size, preset: config.augment, ...cropsOf(config) },
          config.seed,
        ),
      onSlice: (step, done, total) => {
        slices ??= new Progress(`${label} step ${step}`, total);
        slices.update(
          done,
          done <= total / 2 ? "slices embedded" : "slices back-propagated",
        );
        if (done === total) {
          slices.done();
          slices = undefined;
        }
      },
      onStep: (m) => {
        progress ??= new Progress(label, m.totalSteps, m.step - 1);
        progress.update(
          m.step,
          `epoch ${m.epoch + 1}/${config.epochs} loss ${
            m.loss.toFixed(3)
          } (inv ${m.invariance.toFixed(3)} var ${m.variance.toFixed(3)} cov ${
            m.covariance.toFixed(3)
          }${
            m.localLoss !== undefined ? ` local ${m.localLoss.toFixed(3)}` : ""
          }) std ${m.embeddingStd.toFixed(3)}${
            m.onlineTop1 !== undefined
              ? ` probe ${(100 * m.onlineTop1).toFixed(1)}%`
              : ""
          }${
            m.knnTop1 !== undefined
              ? ` kNN ${(100 * m.knnTop1).toFixed(1)}%`
              : ""
          } ${m.imagesPerSecond.toFixed(1)} img/s`,
        );
      },
      onEvent: (e) => {
        const kind = e.level === "warning" ? "warning: " : "";
        console.error(`\n${label}: ${kind}${e.message}`);
      },
    });
    progress?.done();
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    log(
      `${label}: ${result.status} after ${result.steps} steps; final loss ${
        result.last?.loss.toFixed(4) ?? "?"
      }; peak memory ${mb(result.peakMemory.tensorBytes)} tensors, ${
        mb(result.peakMemory.rssBytes)
      } RSS`,
    );
    log(
      `${label}: checkpoint ${result.checkpoint}; backbone ${result.backbone}`,
    );
    const skipped = (source as { skipped?: SkippedFile[] }).skipped ?? [];
    if (skipped.length > 0 && comm.rank === 0) {
      await writeFileAtomic(
        `${config.expDir}/skipped.json`,
        skippedReport(skipped),
      );
      console.error(
        `${label}: ${skipped.length} unreadable images skipped; listed in ${config.expDir}/skipped.json`,
      );
    }
    if (result.status === "preempted") {
      log(
        `${label}: preempted: exiting with ${PREEMPTED_EXIT_CODE}; requeue the same command with --resume to continue from ${result.checkpoint}`,
      );
      return PREEMPTED_EXIT_CODE;
    }
    return 0;
  } finally {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
    source.close?.();
  }
}

/**
 * The fingerprint of a data set read from files (what a resume checks), or
 * `undefined` for the procedural set.
 */
async function fingerprintOf(
  source: ImageSource,
): Promise<FileListFingerprint | undefined> {
  const files = source as Partial<FileDataset>;
  if (files.entries === undefined || !files.root) return undefined;
  return await fingerprintFiles(files.root, files.entries.map((e) => e.path));
}

/** The `pretrain` subcommand. */
export const pretrainCommand: Command = {
  name: "pretrain",
  summary: "Pretrain a backbone with VICReg (global + optional local loss)",
  description: `
Runs the paper's pretraining loop: two augmented views per image, VICReg on the
projections (λ·invariance + μ·variance + ν·covariance), plus α × the local loss
with --use-local-loss. Writes config.yaml, metrics.jsonl (one line per logged
step), checkpoints (atomic, the last --keep-checkpoints kept),
backbone.safetensors and a TensorBoard event file (events.out.tfevents.*: the
metrics as scalars, the configuration, an augmentation preview; see
--tensorboard) to --exp-dir; tensorboard --logdir <exp-dir> shows the run.
Ctrl-C finishes the step, checkpoints and exits 0; SIGTERM or SIGUSR1 (a
scheduler's preemption warning, e.g. srun --signal=USR1@120) does the same on
every rank and exits 75, for a requeue; --resume continues exactly where it
stopped. A resume whose data set lost, gained or resized files
since the checkpoint is refused with the files named (--allow-data-change
continues on the files there are now); a checkpoint the disk cannot take stops
the run in one line, the previous checkpoint intact.

Examples:
  vicreg pretrain --preset tiny --exp-dir runs/tiny
  vicreg pretrain --preset paper --data imagefolder:/data/imagenet --exp-dir runs/paper
  vicreg pretrain --config run.yaml --epochs 10
  vicreg pretrain --preset paper --backend webgpu --plan-only   # the step plan only
  vicreg pretrain --preset tiny --ranks 2 --exp-dir runs/two   # 2 processes under mpiexec
  mpiexec -n 8 -f hosts deno run -A cli/main.ts pretrain --distributed mpi …`,
  flags: PRETRAIN_FLAGS,
  async run(values, _positionals, given) {
    const config = await configFromFlags(values, given);
    if (values["plan-only"] === true) return await printStepPlan(config);
    return await runPretrain(config);
  },
};
