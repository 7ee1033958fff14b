// Opens the training images a configuration names: the built-in procedural set
// or a data set on disk (through the data member's openDataset).
import {
  DATASET_KINDS,
  DatasetError,
  defaultDecodeWorkers,
  type ImageSource,
  openDataset,
  parseDataSpec,
  proceduralDataset,
} from "@scaling-vicreg/data";
import type { PretrainConfig } from "@scaling-vicreg/train";

/**
 * The pretraining images of a configuration.
 *
 * @param config The configuration (`data`, `numImages`, `imageSize`, `seed`, `strict`).
 * @param warn Receives one line per skipped file.
 * @returns The image source.
 */
export async function openTrainingData(
  config: PretrainConfig,
  warn: (message: string) => void,
): Promise<ImageSource> {
  if (config.data === "procedural") {
    return proceduralDataset({
      n: config.numImages,
      size: config.imageSize,
      seed: config.seed,
      split: "train",
    });
  }
  return await namingFlag("data", async () => {
    await checkDataKind(config.data);
    return await openDataset(config.data, {
      split: "train",
      strict: config.strict,
      maxImagePixels: config.maxImagePixels,
      seed: config.seed,
      onWarning: warn,
      workers: defaultDecodeWorkers(),
    });
  });
}

/**
 * A `kind:path` spec whose kind is not one of `DATASET_KINDS` and which is
 * not a path either: says that the kind is unknown (instead of "not found").
 */
async function checkDataKind(spec: string): Promise<void> {
  const m = /^([A-Za-z][\w-]+):(.+)$/.exec(spec);
  if (m === null || parseDataSpec(spec).kind !== undefined) return;
  if (await Deno.stat(spec).then(() => true, () => false)) return;
  throw new DatasetError(
    `Unknown data-set kind "${
      m[1]
    }" in "${spec}": expected procedural, a folder, or kind:path with kind ${
      DATASET_KINDS.filter((k) => k !== "procedural").join("|")
    }`,
    spec,
  );
}

/** Runs `open`, prefixing an error's message with the flag it came from. */
async function namingFlag<T>(flag: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (error instanceof Error && !error.message.startsWith("Flag --")) {
      error.message = `Flag --${flag}: ${error.message}`;
    }
    throw error;
  }
}

/** How {@linkcode openLabelledSplits} makes the procedural set. */
export interface SplitOptions {
  /** Training images of the procedural set (test: half as many). */
  numImages: number;
  /** Side of the procedural images. */
  imageSize: number;
  /** Seed of the procedural set and of any seeded split. */
  seed: number;
  /** Fail on unreadable files. */
  strict?: boolean;
  /** Receives one line per skipped file. */
  warn?: (message: string) => void;
}

/**
 * The labelled train and test splits of a downstream data set: the
 * procedural set's two splits, or a data set on disk (`kind:path`).
 *
 * @param spec `procedural` or a data-set spec.
 * @param options Sizes of the procedural set, seed, strictness.
 * @returns Both splits.
 */
export async function openLabelledSplits(
  spec: string,
  options: SplitOptions,
): Promise<{ train: ImageSource; test: ImageSource }> {
  const { numImages, imageSize, seed, strict = false, warn = () => {} } =
    options;
  if (spec === "procedural") {
    return {
      train: proceduralDataset({
        n: numImages,
        size: imageSize,
        seed,
        split: "train",
      }),
      test: proceduralDataset({
        n: Math.max(1, Math.floor(numImages / 2)),
        size: imageSize,
        seed,
        split: "test",
      }),
    };
  }
  const open = (split: "train" | "test") =>
    openDataset(spec, {
      split,
      strict,
      seed,
      onWarning: warn,
      workers: defaultDecodeWorkers(),
    });
  return await namingFlag("data", async () => {
    await checkDataKind(spec);
    const train = await open("train");
    const classes = new Set(train.entries.map((e) => e.label));
    if (classes.size < 2) {
      train.close();
      throw new DatasetError(
        `Expected at least 2 classes in the train split of ${train.root} for a classifier: found ${classes.size}`,
        train.root,
      );
    }
    return { train, test: await open("test") };
  });
}
