/**
 * `vicreg embed`: pooled evaluation-mode embeddings of a `.npy` image array
 * with a ResNet backbone loaded from safetensors (this project's layout or a
 * torchvision `state_dict`).
 *
 * @module
 */
import {
  BACKEND_CHOICES,
  BACKEND_HELP,
  useBackend,
} from "@scaling-vicreg/backend";
import {
  createResNet,
  decodeSafetensors,
  embedImages,
  fromTorchvision,
  loadStateDict,
  readNpy,
  RESNET_ARCHS,
  type ResNetArch,
  type SafeTensor,
  writeNpy,
} from "@scaling-vicreg/models";
import { Rng } from "@scaling-vicreg/backend";
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import { defaultDecodeWorkers, openDataset } from "@scaling-vicreg/data";
import type { NpyArray } from "@scaling-vicreg/backend/npy";
import { embedSource } from "@scaling-vicreg/train";
import { type Command, UsageError } from "./args.ts";

/** The `embed` subcommand. */
export const embedCommand: Command = {
  name: "embed",
  summary: "Write a backbone's pooled embeddings of a .npy image array",
  usage: "--arch A --weights W.safetensors --input X.npy --out F.npy [flags]",
  description: `
Reads X.npy, float32 [N, H, W, 3] images already normalised (NHWC), or a
folder of images, runs the
backbone in evaluation mode (BatchNorm running statistics) and writes the
globally pooled embeddings as float32 [N, E] to F.npy. --torchvision reads a
PyTorch state_dict saved as safetensors (OIHW conv weights; fc.* and
num_batches_tracked ignored). With a folder as --input, every image in it
(recursively; JPEG, PNG) is resized to --size × --size (bicubic) and
normalised with the ImageNet mean and std, in sorted path order.`,
  flags: {
    arch: {
      type: "string",
      help: "Backbone architecture",
      default: "resnet50",
      choices: RESNET_ARCHS,
    },
    weights: { type: "string", help: "Backbone weights (.safetensors)" },
    torchvision: {
      type: "boolean",
      help: "The weights file is a torchvision/PyTorch state_dict",
    },
    prefix: {
      type: "string",
      help:
        "Only load tensors whose names start with this (stripped), e.g. backbone.",
      default: "",
    },
    "width-multiplier": {
      type: "number",
      help: "Width multiplier the backbone was built with",
      default: 1,
    },
    stem: {
      type: "string",
      help: "Stem (default: the architecture's)",
      choices: ["imagenet", "cifar"],
    },
    input: {
      type: "string",
      help:
        "Images: float32 .npy [N, H, W, 3] (normalised), or a folder of images (bicubic resize to --size, ImageNet normalisation)",
    },
    size: {
      type: "int",
      help: "Input size for a folder of images",
      default: 96,
    },
    strict: {
      type: "boolean",
      help: "Fail on an unreadable image in a folder instead of skipping it",
    },
    out: { type: "string", help: "Output: float32 .npy [N, E]" },
    "batch-size": { type: "int", help: "Images per forward pass", default: 64 },
    backend: {
      type: "string",
      help: BACKEND_HELP,
      default: "auto",
      choices: BACKEND_CHOICES,
    },
  },
  async run(values) {
    for (const flag of ["weights", "input", "out"]) {
      if (!values[flag]) throw new UsageError(`Flag --${flag} is required`);
    }
    const batchSize = values["batch-size"] as number;
    if (batchSize < 1) {
      throw new UsageError(
        `Flag --batch-size expects a positive integer: received ${batchSize}`,
      );
    }
    const backend = await useBackend(values.backend as "auto");
    console.error(
      `embed: backend ${backend.name} — ${backend.device} (${backend.reason})`,
    );
    const input = values.input as string;
    const isFolder = (await Deno.stat(input).catch(() => undefined))
      ?.isDirectory === true;
    let images: NpyArray | undefined;
    if (!isFolder) {
      try {
        images = readNpy(await Deno.readFile(input));
      } catch (error) {
        if (error instanceof TypeError) {
          throw new TypeError(`${input}: ${error.message}`, { cause: error });
        }
        throw error;
      }
    }
    const net = createResNet(values.arch as ResNetArch, new Rng(0), {
      widthMultiplier: values["width-multiplier"] as number,
      ...(values.stem ? { stem: values.stem as "imagenet" | "cifar" } : {}),
    });
    try {
      const weightsPath = values.weights as string;
      const prefix = values.prefix as string;
      let tensors: Record<string, SafeTensor> =
        decodeSafetensors(await Deno.readFile(weightsPath)).tensors;
      if (prefix) {
        tensors = Object.fromEntries(
          Object.entries(tensors)
            .filter(([name]) => name.startsWith(prefix))
            .map(([name, t]) => [name.slice(prefix.length), t]),
        );
      }
      try {
        loadStateDict(
          net,
          values.torchvision ? fromTorchvision(tensors) : tensors,
        );
      } catch (error) {
        if (error instanceof TypeError) {
          const looksTorch = !values.torchvision &&
            Object.keys(tensors).some((k) =>
              k.endsWith("num_batches_tracked") || k.startsWith("fc.")
            );
          throw new TypeError(
            `${weightsPath}: ${error.message}${
              looksTorch
                ? " (a torchvision state_dict? pass --torchvision)"
                : ""
            }`,
            { cause: error },
          );
        }
        throw error;
      }
      const started = performance.now();
      let embeddings: NpyArray;
      if (images !== undefined) {
        embeddings = await embedImages(net, images, { batchSize });
      } else {
        const source = await openDataset(`folder:${input}`, {
          strict: values.strict === true,
          onWarning: (m) => console.error(`embed: warning: ${m}`),
          workers: defaultDecodeWorkers(),
        });
        const f = await embedSource(net, source, {
          size: values.size as number,
          batchSize,
        });
        embeddings = {
          shape: [f.count, f.dim],
          dtype: "float32",
          data: f.features,
        };
        console.error(`embed: ${source.describe()}`);
        source.close();
      }
      const seconds = (performance.now() - started) / 1000;
      const out = values.out as string;
      await writeFileAtomic(out, writeNpy(embeddings));
      console.error(
        `embed: wrote ${out} [${embeddings.shape}] in ${
          seconds.toFixed(1)
        } s (${(embeddings.shape[0] / seconds).toFixed(1)} images/s)`,
      );
      return 0;
    } finally {
      net.dispose();
    }
  },
};
