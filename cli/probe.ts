/**
 * `vicreg probe`: the paper's linear-probe protocol on a frozen backbone
 * (baseline probe, hyper-parameter sweep selected on a validation split,
 * 10-crop TTA, kNN) or on precomputed `.npy` features, with a report.
 *
 * @module
 */
import { checkProbeFlags } from "./_checks.ts";
import * as tf from "@tensorflow/tfjs-core";
import {
  BACKEND_CHOICES,
  BACKEND_HELP,
  useBackend,
} from "@scaling-vicreg/backend";
import { exists } from "@scaling-vicreg/backend/fs";
import {
  loadWeights,
  type ResNet,
  RESNET_ARCHS,
  type ResNetArch,
} from "@scaling-vicreg/models";
import {
  formatHeadline,
  type LabelledFeatures,
  type ProbeReport,
  readLabelledFeatures,
  runProbeProtocol,
  sha256Hex,
  type TtaSplits,
  writeReport,
} from "@scaling-vicreg/probe";
import { probeBackbone } from "@scaling-vicreg/experiments";
import {
  createBackbone,
  loadRunBackbone,
  readMetrics,
} from "@scaling-vicreg/train";
import { openLabelledSplits } from "./_data.ts";
import type { ImageSource } from "@scaling-vicreg/data";
import { type Command, UsageError } from "./args.ts";
import { Progress } from "./progress.ts";
import { probeBackendFor } from "./_backend.ts";
import { writeProbeEvents } from "./_probe_events.ts";

async function loadBackbone(
  values: Record<string, string | number | boolean | undefined>,
): Promise<
  {
    backbone: ResNet;
    size: number;
    imageSize: number;
    weightsKey: string;
    describe: string;
  }
> {
  const run = values.run as string | undefined;
  const weights = values.weights as string | undefined;
  if (run !== undefined) {
    const { backbone, config, sha256 } = await loadRunBackbone(run);
    return {
      backbone,
      size: (values.size as number | undefined) ?? config.size,
      imageSize: (values["image-size"] as number | undefined) ??
        config.imageSize,
      weightsKey: sha256,
      describe: `${config.arch} from run ${run}`,
    };
  }
  const arch = values.arch as ResNetArch;
  const size = (values.size as number | undefined) ?? 96;
  const imageSize = (values["image-size"] as number | undefined) ?? 64;
  const stem = (values.stem as "imagenet" | "cifar" | undefined) ??
    (size < 64 ? "cifar" : "imagenet");
  const backbone = createBackbone({
    arch,
    stem,
    size,
    seed: values.seed as number,
  });
  if (weights === undefined) {
    return {
      backbone,
      size,
      imageSize,
      weightsKey: `random-${arch}-${stem}-${values.seed}`,
      describe: `${arch}, random init`,
    };
  }
  try {
    await loadWeights(weights, backbone, {
      torchvision: values.torchvision === true,
    });
  } catch (error) {
    backbone.dispose();
    throw error;
  }
  return {
    backbone,
    size,
    imageSize,
    weightsKey: await sha256Hex(await Deno.readFile(weights)),
    describe: `${arch} from ${weights}`,
  };
}

async function fromFeatures(
  values: Record<string, string | number | boolean | undefined>,
): Promise<ProbeReport> {
  const names = [
    "train-features",
    "train-labels",
    "test-features",
    "test-labels",
  ];
  const missing = names.filter((n) => !values[n]);
  if (missing.length) {
    throw new UsageError(
      `Flag --${missing[0]} is required with --train-features`,
    );
  }
  const ttaOn = values["tta-on"] as TtaSplits;
  const trainTtaPath = values["train-tta-features"] as string | undefined;
  const testTtaPath = values["test-tta-features"] as string | undefined;
  if (trainTtaPath !== undefined && testTtaPath === undefined) {
    throw new UsageError(
      "Flag --train-tta-features needs --test-tta-features (the TTA row is tested on 10-crop test features)",
    );
  }
  if (testTtaPath !== undefined && ttaOn === "all" && !trainTtaPath) {
    throw new UsageError(
      "Flag --test-tta-features needs --train-tta-features with --tta-on all (the paper's protocol fits on 10-crop train features); pass --tta-on test for the test-only variant",
    );
  }
  const sets: LabelledFeatures[] = [];
  const read = async (features: string, labels: string) => {
    const set = await readLabelledFeatures(features, labels);
    sets.push(set);
    return set;
  };
  try {
    const train = await read(
      values["train-features"] as string,
      values["train-labels"] as string,
    );
    const test = await read(
      values["test-features"] as string,
      values["test-labels"] as string,
    );
    const trainTta = trainTtaPath !== undefined && ttaOn === "all"
      ? await read(trainTtaPath, values["train-labels"] as string)
      : undefined;
    const testTta = testTtaPath !== undefined
      ? await read(testTtaPath, values["test-labels"] as string)
      : undefined;
    return runProbeProtocol({ train, test, trainTta, testTta }, {
      ttaOn,
      sweep: {
        trials: values.trials as number,
        maxEpochs: values["max-epochs"] as number,
        seed: values.seed as number,
      },
      baseline: { epochs: values["max-epochs"] as number },
      title: "Linear probe on precomputed features",
      meta: { features: values["train-features"] as string },
      plainTransform: "precomputed: --train-features, --test-features",
      ttaTransform: "precomputed: --train-tta-features, --test-tta-features",
    });
  } finally {
    tf.dispose(sets.map((s) => s.features));
  }
}

/** The `probe` subcommand. */
export const probeCommand: Command = {
  name: "probe",
  summary:
    "Linear-probe a frozen backbone: baseline, sweep, 10-crop TTA, kNN, report",
  usage:
    "(--run DIR | --weights W.safetensors --arch A | --train-features F.npy …) [flags]",
  description: `
The paper's protocol: features of the train and test images from the frozen
backbone in evaluation mode (bicubic resize to --size), cached on disk; a
baseline probe (fixed lr 0.01, wd 1e-4, SGD + cosine); a random-search sweep of
--trials trials (lr, weight decay, optimizer, schedule, epochs) scored on a
validation split carved from train, the best retrained on all of train and
evaluated once on test; and kNN (k = 20, cosine, temperature 0.07). Writes
report.md, report.json, SVG plots and a TensorBoard event file (see
--tensorboard) to --out and prints the headline table.
The test split is never used for selection.

With --tta, a second sweep on 10-crop features, as the paper's
create_submission_linear_tta.py: every train, validation and test image is
resized to floor(size/0.875) squared, its four corner and centre crops and
their mirror images embedded, and the ten feature vectors averaged; the sweep
is fitted and selected on these train/validation features and tested once on
these test features (--tta-on all, the default). --tta-on test instead applies
the plain sweep's classifier to 10-crop test features only (a train/test shift,
reported as "test split only"). The report states which split got which
features.

Examples:
  vicreg probe --run runs/tiny --data procedural --trials 8
  vicreg probe --weights backbone.safetensors --arch resnet50 --data cub200:/data/CUB_200_2011 --tta
  vicreg probe --train-features tr.npy --train-labels ytr.npy --test-features te.npy --test-labels yte.npy`,
  flags: {
    run: {
      type: "string",
      help:
        "A pretraining run directory (its config.yaml and backbone.safetensors)",
    },
    weights: {
      type: "string",
      help:
        "Backbone weights (.safetensors); without --run or --weights: random init",
    },
    arch: {
      type: "string",
      help: "Architecture of --weights",
      default: "resnet50",
      choices: RESNET_ARCHS,
    },
    stem: {
      type: "string",
      help: "Stem of --weights (default: cifar below 64 px)",
      choices: ["imagenet", "cifar"],
    },
    torchvision: {
      type: "boolean",
      help: "--weights is a torchvision state_dict",
    },
    data: {
      type: "string",
      help:
        "Labelled data: procedural, or kind:path (imagefolder, cub200, sun397, miniimagenet)",
      default: "procedural",
    },
    "num-images": {
      type: "int",
      help: "Procedural training images (test: half)",
      default: 1000,
    },
    "image-size": {
      type: "int",
      help: "Side of the procedural images (default: the run's, else 64)",
    },
    size: {
      type: "int",
      help: "Backbone input size (default: the run's --size, else 96)",
    },
    tta: {
      type: "boolean",
      help: "Also run the sweep with 10-crop TTA features (see --tta-on)",
    },
    "tta-on": {
      type: "string",
      help:
        "Splits that get 10-crop features: all (train, validation, test: the paper's) or test (test only)",
      default: "all",
      choices: ["all", "test"],
    },
    trials: { type: "int", help: "Sweep trials", default: 20 },
    "max-epochs": {
      type: "int",
      help: "Most epochs a probe trains (≤ 100)",
      default: 100,
    },
    seed: {
      type: "int",
      help: "Seed of the sweep, the split and random init",
      default: 0,
    },
    "batch-size": { type: "int", help: "Images per forward pass", default: 64 },
    out: {
      type: "string",
      help: "Report directory (default: <run>/probe or runs/probe)",
    },
    "cache-dir": {
      type: "string",
      help: "Feature cache directory (default: <out>/features)",
    },
    strict: {
      type: "boolean",
      help: "Fail on unreadable images instead of skipping them",
    },
    backend: {
      type: "string",
      help: BACKEND_HELP,
      default: "auto",
      choices: BACKEND_CHOICES,
    },
    tensorboard: {
      type: "boolean",
      default: true,
      help:
        "Also write a TensorBoard event file to --out (events.out.tfevents.*.probe, replacing an earlier probe's): top-1 in [0, 1] of each row as probe/<row>/top1 (baseline, sweep, sweep_tta, knn) at the --run's last step (else 0), and each sweep trial's validation top-1 as probe/sweep/trial_validation_top1 at its trial index; --no-tensorboard turns it off",
    },
    "train-features": {
      type: "string",
      help: "Precomputed train features (.npy [N, D]) instead of a backbone",
    },
    "train-labels": { type: "string", help: "Train labels (.npy [N])" },
    "test-features": { type: "string", help: "Test features (.npy [M, D])" },
    "test-labels": { type: "string", help: "Test labels (.npy [M])" },
    "train-tta-features": {
      type: "string",
      help: "Precomputed 10-crop mean train features (.npy [N, D])",
    },
    "test-tta-features": {
      type: "string",
      help: "Precomputed 10-crop mean test features (.npy [M, D])",
    },
  },
  async run(values) {
    const trials = values.trials as number;
    const maxEpochs = values["max-epochs"] as number;
    checkProbeFlags(trials, maxEpochs);
    if (values.run !== undefined && values.weights !== undefined) {
      throw new UsageError("Flags --run and --weights exclude each other");
    }
    const batchSize = values["batch-size"] as number;
    if (batchSize < 1) {
      throw new UsageError(
        `Flag --batch-size expects a positive integer: received ${batchSize}`,
      );
    }
    // Paths are checked before a backend is started, so a typo costs nothing.
    const needed: [string, string][] = [];
    if (values.run !== undefined) {
      needed.push(["run", `${values.run}/config.yaml`], [
        "run",
        `${values.run}/backbone.safetensors`,
      ]);
    }
    for (
      const f of [
        "weights",
        "train-features",
        "train-labels",
        "test-features",
        "test-labels",
        "train-tta-features",
        "test-tta-features",
      ]
    ) {
      if (values[f] !== undefined) needed.push([f, values[f] as string]);
    }
    for (const [f, path] of needed) {
      if (!await exists(path)) {
        throw new UsageError(`Flag --${f}: ${path} does not exist`);
      }
    }
    const backend = await useBackend(values.backend as "auto");
    console.error(`probe: backend ${backend.name} (${backend.reason})`);
    const probeBackend = await probeBackendFor("probe", backend.name);
    const out = (values.out as string | undefined) ??
      (values.run !== undefined ? `${values.run}/probe` : "runs/probe");
    let report: ProbeReport;
    if (values["train-features"] !== undefined) {
      // Precomputed features: everything runs on the probes' backend.
      await useBackend(probeBackend);
      report = await fromFeatures(values);
    } else {
      const { backbone, size, imageSize, weightsKey, describe } =
        await loadBackbone(values);
      let data: { train: ImageSource; test: ImageSource } | undefined;
      try {
        data = await openLabelledSplits(values.data as string, {
          numImages: values["num-images"] as number,
          imageSize,
          seed: values.seed as number,
          strict: values.strict === true,
          warn: (m) => console.error(`probe: warning: ${m}`),
        });
        console.error(
          `probe: ${describe}; train ${data.train.describe()}; test ${data.test.describe()}`,
        );
        const bars = new Map<string, Progress>();
        report = await probeBackbone(backbone, data, {
          size,
          tta: values.tta === true,
          ttaOn: values["tta-on"] as TtaSplits,
          trials,
          maxEpochs,
          baselineEpochs: maxEpochs,
          seed: values.seed as number,
          batchSize: values["batch-size"] as number,
          cacheDir: (values["cache-dir"] as string | undefined) ??
            `${out}/features`,
          weightsKey,
          dataKey: `${values.data}|${
            values["num-images"]
          }|${imageSize}|${values.seed}`,
          title: `Linear probe: ${describe}`,
          meta: {
            backbone: describe,
            data: values.data as string,
            size,
            backend: backend.name,
          },
          onProgress: (stage, done, total) => {
            let bar = bars.get(stage);
            if (bar === undefined) {
              bars.set(stage, bar = new Progress(`features ${stage}`, total));
            }
            bar.update(done, "");
            if (done === total) bar.done();
          },
          probeBackend,
        });
      } finally {
        backbone.dispose();
        data?.train.close?.();
        data?.test.close?.();
      }
    }
    await Deno.mkdir(out, { recursive: true });
    await writeReport(out, report);
    if (values.tensorboard !== false) {
      // At the run's last step, so the probe lines up with its curves.
      const step = values.run === undefined
        ? 0
        : (await readMetrics(values.run as string)).at(-1)?.step ?? 0;
      const events = await writeProbeEvents(out, report, step);
      console.error(`probe: TensorBoard events ${events} (step ${step})`);
    }
    console.log(formatHeadline(report));
    console.error(`probe: report written to ${out}/report.md`);
    return 0;
  },
};
