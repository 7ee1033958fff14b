/**
 * `vicreg pretrain`: the paper's pretraining run from flags and/or a YAML
 * config, resumable, with a progress bar, JSONL metrics and checkpoints.
 *
 * @module
 */
import { useBackend } from "@scaling-vicreg/backend";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import { type SkippedFile, skippedReport } from "@scaling-vicreg/data";
import {
  DEFAULT_PRETRAIN_CONFIG,
  pretrain,
  PRETRAIN_SCHEMA,
  type PretrainConfig,
  readConfigFile,
  resolveConfig,
  savedRunConfig,
} from "@scaling-vicreg/train";
import { openTrainingData } from "./_data.ts";
import type { Command, FlagSpec } from "./args.ts";
import { Progress } from "./progress.ts";
import { interruptHandler } from "./_interrupt.ts";

/** Flags of `pretrain`: every config key, plus `--config`. */
export const PRETRAIN_FLAGS: Record<string, FlagSpec> = {
  config: {
    type: "string",
    help: "YAML file with the same keys as these flags (flags override it)",
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
    if (name !== "config" && name !== "help") flags[name] = values[name];
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

/** Runs a pretraining with progress output; shared by `pretrain` and `demo`. */
export async function runPretrain(
  config: PretrainConfig,
  label = "pretrain",
): Promise<number> {
  // The data is opened (and its layout checked) before a backend is started.
  const source = await openTrainingData(
    config,
    (message) => console.error(`${label}: warning: ${message}`),
  );
  let backend;
  try {
    backend = await useBackend(config.backend as "auto");
  } catch (error) {
    source.close?.();
    throw error;
  }
  console.error(
    `${label}: backend ${backend.name} — ${backend.device} (${backend.reason})`,
  );
  console.error(
    `${label}: data ${source.describe()}; run directory ${config.expDir}`,
  );
  const controller = new AbortController();
  const stop = interruptHandler(label, config.expDir, {
    stop: () => controller.abort(),
    print: (line) => console.error(line),
    exit: (code) => Deno.exit(code),
    now: () => performance.now(),
  });
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  let progress: Progress | undefined;
  try {
    const result = await pretrain(config, {
      source,
      signal: controller.signal,
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
          }) std ${m.embeddingStd.toFixed(3)} ${
            m.imagesPerSecond.toFixed(1)
          } img/s`,
        );
      },
      onEvent: (e) => {
        const kind = e.level === "warning" ? "warning: " : "";
        console.error(`\n${label}: ${kind}${e.message}`);
      },
    });
    progress?.done();
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    console.error(
      `${label}: ${result.status} after ${result.steps} steps; final loss ${
        result.last?.loss.toFixed(4) ?? "?"
      }; peak memory ${mb(result.peakMemory.tensorBytes)} tensors, ${
        mb(result.peakMemory.rssBytes)
      } RSS`,
    );
    console.error(
      `${label}: checkpoint ${result.checkpoint}; backbone ${result.backbone}`,
    );
    const skipped = (source as { skipped?: SkippedFile[] }).skipped ?? [];
    if (skipped.length > 0) {
      await writeFileAtomic(
        `${config.expDir}/skipped.json`,
        skippedReport(skipped),
      );
      console.error(
        `${label}: ${skipped.length} unreadable images skipped; listed in ${config.expDir}/skipped.json`,
      );
    }
    return 0;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
    source.close?.();
  }
}

/** The `pretrain` subcommand. */
export const pretrainCommand: Command = {
  name: "pretrain",
  summary: "Pretrain a backbone with VICReg (global + optional local loss)",
  description: `
Runs the paper's pretraining loop: two augmented views per image, VICReg on the
projections (λ·invariance + μ·variance + ν·covariance), plus α × the local loss
with --use-local-loss. Writes config.yaml, metrics.jsonl (one line per logged
step), checkpoints (atomic, the last --keep-checkpoints kept) and
backbone.safetensors to --exp-dir. Ctrl-C finishes the step, checkpoints and
exits 0; --resume continues exactly where it stopped.

Examples:
  vicreg pretrain --preset tiny --exp-dir runs/tiny
  vicreg pretrain --preset paper --data imagefolder:/data/imagenet --exp-dir runs/paper
  vicreg pretrain --config run.yaml --epochs 10`,
  flags: PRETRAIN_FLAGS,
  async run(values, _positionals, given) {
    return await runPretrain(await configFromFlags(values, given));
  },
};
