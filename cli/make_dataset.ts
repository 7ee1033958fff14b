/**
 * `vicreg make-dataset`: writes the embedded procedural data set as a PNG
 * ImageFolder with `train/` and `test/`.
 *
 * @module
 */
import { join } from "node:path";
import { proceduralDataset, writeImageFolder } from "@scaling-vicreg/data";
import { type Command, UsageError } from "./args.ts";

async function isNonEmptyDir(path: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(path)) return true;
  } catch {
    return false;
  }
  return false;
}

/** The `make-dataset` subcommand. */
export const makeDatasetCommand: Command = {
  name: "make-dataset",
  summary:
    "Write the procedural 10-class data set as a PNG ImageFolder (train/, test/)",
  description: `
Draws --n images of the embedded procedural data set (shapes and patterns,
deterministic from --seed) and writes round(n · (1 − test-fraction)) of them to
OUT/train/<class>/ and the rest to OUT/test/<class>/ as PNG files.`,
  flags: {
    out: {
      type: "string",
      help:
        "Output folder (its train/ and test/ must not exist unless --force)",
    },
    n: { type: "int", help: "Total number of images", default: 2000 },
    size: { type: "int", help: "Image side in pixels", default: 64 },
    seed: { type: "int", help: "Data-set seed", default: 0 },
    "test-fraction": {
      type: "number",
      help: "Fraction written to test/",
      default: 0.2,
    },
    force: { type: "boolean", help: "Replace an existing train/ and test/" },
  },
  async run(flags) {
    const out = flags.out as string | undefined;
    if (!out) {
      throw new UsageError("Flag --out is required: the folder to write");
    }
    const n = flags.n as number,
      size = flags.size as number,
      seed = flags.seed as number;
    const testFraction = flags["test-fraction"] as number;
    if (n < 2) {
      throw new UsageError(`Flag --n expects at least 2 images: received ${n}`);
    }
    if (size < 8) {
      throw new UsageError(`Flag --size expects at least 8: received ${size}`);
    }
    if (!(testFraction > 0 && testFraction < 1)) {
      throw new UsageError(
        `Flag --test-fraction expects a value in (0, 1): received ${testFraction}`,
      );
    }
    for (const split of ["train", "test"]) {
      const dir = join(out, split);
      if (await isNonEmptyDir(dir)) {
        if (!flags.force) {
          throw new UsageError(
            `${dir} already exists and is not empty: pass --force to replace it`,
          );
        }
        await Deno.remove(dir, { recursive: true });
      }
    }
    const nTest = Math.min(n - 1, Math.max(1, Math.round(n * testFraction)));
    const started = performance.now();
    for (
      const [split, count] of [["train", n - nTest], ["test", nTest]] as const
    ) {
      const source = proceduralDataset({ n: count, size, seed, split });
      await writeImageFolder(source, join(out, split), {
        onProgress: (done, total) => {
          if (done === total || done % 500 === 0) {
            console.error(`${split}: ${done}/${total}`);
          }
        },
      });
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `Wrote ${
        n - nTest
      } train and ${nTest} test images (${size}×${size}, seed ${seed}) to ${out} in ${seconds} s`,
    );
    return 0;
  },
};
