/**
 * `vicreg demo`: the whole pipeline on the built-in procedural data, in a few
 * minutes on a CPU — pretrain the tiny ResNet with VICReg, then linear-probe
 * it next to the same network at random initialisation.
 *
 * @module
 */
import { checkProbeFlags } from "./_checks.ts";
import { exists } from "@scaling-vicreg/backend/fs";
import * as tf from "@tensorflow/tfjs-core";
import {
  BACKEND_CHOICES,
  BACKEND_HELP,
  type BackendName,
} from "@scaling-vicreg/backend";
import { probeBackendFor } from "./_backend.ts";
import type { ResNet } from "@scaling-vicreg/models";
import {
  formatHeadline,
  type ProbeReport,
  writeReport,
} from "@scaling-vicreg/probe";
import { probeBackbone } from "@scaling-vicreg/experiments";
import {
  createBackbone,
  loadRunBackbone,
  type PretrainConfig,
  readMetrics,
  resolveConfig,
} from "@scaling-vicreg/train";
import { openLabelledSplits } from "./_data.ts";
import { learningLine, onlineLine } from "./_learning.ts";
import { type Command, UsageError } from "./args.ts";
import { runPretrain } from "./pretrain.ts";

const MARKER = ".vicreg-demo";

/** The `tiny` preset as the demo runs it: its budget is the demo's default. */
const TINY: PretrainConfig = resolveConfig({ flags: { preset: "tiny" } });

/** The preset's values, on three lines of `--help`. */
function describeTiny(c: PretrainConfig): string {
  const local = c.useLocalLoss
    ? `local loss ${c.localMlp} at α = ${c.localLossWeight}`
    : "no local loss";
  return `${c.size} px views of ${c.imageSize} px images, batch ${c.batchSize}, ` +
    `${c.epochs} epochs of ${c.numImages} images,\nprojector ${c.mlp}, ` +
    `λ = ${c.simCoeff}, μ = ${c.stdCoeff}, ν = ${c.covCoeff}, ${local},\n` +
    `${c.optimizer} at base lr ${c.baseLr}`;
}

/** The `demo` subcommand. */
export const demoCommand: Command = {
  name: "demo",
  summary:
    "Pretrain a tiny ResNet on procedural images, then probe it against random init",
  description: `
Runs the pipeline end to end with no download: VICReg pretraining of the tiny
ResNet on the built-in procedural data set with --preset tiny
(${describeTiny(TINY)}),
then the linear-probe protocol (baseline, sweep, 10-crop TTA, kNN) on the
procedural train/test splits, for the pretrained backbone and for the same
network at random initialisation. It prints how the loss, the variance term
and the projections' std moved from the first logged step to the last (the
variance term falls only once the two views' projections agree well enough
for the projections to spread out), how the online probe's top-1 on the
training views rose from the first epoch to the last (a linear classifier on
the detached backbone features, trained beside the backbone on every step:
see --online-probe of vicreg pretrain), then both networks' probe accuracies.
The run directory is recreated each time.`,
  flags: {
    epochs: { type: "int", help: "Pretraining epochs", default: TINY.epochs },
    "max-steps": {
      type: "int",
      help: "Stop pretraining after this many steps (0 = no limit)",
      default: 0,
    },
    "num-images": {
      type: "int",
      help: "Procedural images for pretraining",
      default: TINY.numImages,
    },
    "probe-images": {
      type: "int",
      help: "Procedural images for the probe's train split (test: half)",
      default: 1000,
    },
    trials: { type: "int", help: "Probe sweep trials", default: 6 },
    "max-epochs": {
      type: "int",
      help: "Most epochs a probe trains",
      default: 30,
    },
    "exp-dir": {
      type: "string",
      help: "Run directory (recreated)",
      default: "runs/demo",
    },
    backend: {
      type: "string",
      help: BACKEND_HELP,
      default: "auto",
      choices: BACKEND_CHOICES,
    },
    seed: { type: "int", help: "Seed", default: 0 },
  },
  async run(values) {
    const dir = values["exp-dir"] as string;
    // Every flag is checked before the old demo directory is removed.
    const config: PretrainConfig = resolveConfig({
      flags: {
        preset: "tiny",
        "exp-dir": dir,
        epochs: values.epochs,
        "max-steps": values["max-steps"],
        "num-images": values["num-images"],
        backend: values.backend,
        seed: values.seed,
      },
    });
    const trials = values.trials as number;
    const maxEpochs = values["max-epochs"] as number;
    const probeImages = values["probe-images"] as number;
    checkProbeFlags(trials, maxEpochs);
    if (probeImages < 40) {
      throw new UsageError(
        `Flag --probe-images expects at least 40 (4 per class, for the validation split): received ${probeImages}`,
      );
    }
    if (await exists(dir)) {
      if (!await exists(`${dir}/${MARKER}`)) {
        throw new UsageError(
          `Flag --exp-dir: ${dir} exists and is not a demo run directory: choose another --exp-dir`,
        );
      }
      await Deno.remove(dir, { recursive: true });
    }
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/${MARKER}`, "");
    const started = performance.now();
    const code = await runPretrain(config, "demo");
    if (code !== 0) return code;
    const metrics = await readMetrics(dir);
    const learned = learningLine(metrics);
    const online = onlineLine(metrics);
    const probeBackend = await probeBackendFor(
      "demo",
      tf.getBackend() as BackendName,
    );
    const data = await openLabelledSplits("procedural", {
      numImages: probeImages,
      imageSize: config.imageSize,
      seed: config.seed + 1,
    });
    const probe = async (
      backbone: ResNet,
      name: string,
    ): Promise<ProbeReport> => {
      console.error(`demo: probing ${name} features…`);
      try {
        const report = await probeBackbone(backbone, data, {
          size: config.size,
          tta: true,
          trials,
          maxEpochs,
          baselineEpochs: maxEpochs,
          seed: config.seed,
          title: `Linear probe: tiny ResNet, ${name}`,
          meta: { backbone: name, data: "procedural", size: config.size },
          probeBackend,
        });
        await writeReport(`${dir}/probe-${name.replaceAll(" ", "-")}`, report);
        return report;
      } finally {
        backbone.dispose();
      }
    };
    const trained = await probe(
      (await loadRunBackbone(dir)).backbone,
      "VICReg",
    );
    const random = await probe(
      createBackbone(config),
      "random init",
    );
    console.log("\nVICReg-pretrained tiny ResNet:\n" + formatHeadline(trained));
    console.log(
      "\nSame network, random initialisation:\n" + formatHeadline(random),
    );
    const pct = (x: number) => (100 * x).toFixed(1).padStart(5);
    console.log(
      [
        ...(learned === undefined ? [] : ["", `pretraining: ${learned}`]),
        ...(online === undefined ? [] : [`during pretraining: ${online}`]),
        "",
        "features       baseline  sweep  sweep+TTA    kNN   (top-1 %, procedural test split, 10 classes)",
        `VICReg           ${pct(trained.baseline.top1)}  ${
          pct(trained.sweep.top1)
        }      ${pct(trained.sweepTta?.top1 ?? NaN)}  ${
          pct(trained.knn?.top1 ?? NaN)
        }`,
        `random init      ${pct(random.baseline.top1)}  ${
          pct(random.sweep.top1)
        }      ${pct(random.sweepTta?.top1 ?? NaN)}  ${
          pct(random.knn?.top1 ?? NaN)
        }`,
        "",
        `demo: done in ${
          ((performance.now() - started) / 1000).toFixed(0)
        } s; reports in ${dir}/probe-*/report.md`,
      ].join("\n"),
    );
    return 0;
  },
};
