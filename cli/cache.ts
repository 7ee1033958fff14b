/**
 * `vicreg cache`: decodes a data set once into a packed uint8 cache
 * (shorter side resized with Pillow bicubic, centre crop, shards + manifest).
 *
 * @module
 */
import { join } from "node:path";
import {
  buildCache,
  DATASET_KINDS,
  type DatasetKind,
  defaultDecodeWorkers,
  openDataset,
  skippedReport,
} from "@scaling-vicreg/data";
import { type Command, UsageError } from "./args.ts";

/** The `cache` subcommand. */
export const cacheCommand: Command = {
  name: "cache",
  summary: "Decode a data set once into a packed, resized uint8 cache",
  description: `
Reads --data (a folder, optionally "kind:folder", or "procedural[:N]"), resizes
each image's shorter side to --size (bicubic) and centre-crops it, and writes
uint8 shards with a manifest to --out. An up-to-date cache is reused; a stale
or damaged one is rebuilt. Skipped files are listed in OUT/skipped.json.`,
  flags: {
    data: {
      type: "string",
      help: "Data set: folder, kind:folder, or procedural[:N]",
    },
    kind: {
      type: "string",
      help: "Data-set layout (default: detect)",
      choices: DATASET_KINDS,
    },
    split: {
      type: "string",
      help: "Split to cache",
      default: "train",
      choices: ["train", "test"],
    },
    size: {
      type: "int",
      help: "Side of the stored square images",
      default: 112,
    },
    out: { type: "string", help: "Cache folder" },
    seed: {
      type: "int",
      help: "Seed of the stratified split (when the data set has none)",
      default: 0,
    },
    "test-fraction": {
      type: "number",
      help: "Test fraction of that split",
      default: 0.2,
    },
    partition: { type: "int", help: "SUN397 partition (1–10)", default: 1 },
    "shard-size": { type: "int", help: "Images per shard file", default: 1024 },
    strict: {
      type: "boolean",
      help: "Fail on the first unreadable file instead of skipping it",
    },
  },
  async run(flags) {
    const data = flags.data as string | undefined;
    const out = flags.out as string | undefined;
    if (!data) {
      throw new UsageError("Flag --data is required: the data set to cache");
    }
    if (!out) throw new UsageError("Flag --out is required: the cache folder");
    const size = flags.size as number;
    if (size < 1) {
      throw new UsageError(
        `Flag --size expects a positive integer: received ${size}`,
      );
    }
    const source = await openDataset(data, {
      kind: flags.kind as DatasetKind | undefined,
      split: flags.split as "train" | "test",
      strict: flags.strict === true,
      seed: flags.seed as number,
      testFraction: flags["test-fraction"] as number,
      partition: flags.partition as number,
      onWarning: (message) => console.error(`warning: ${message}`),
      workers: defaultDecodeWorkers(),
    });
    console.error(`Source: ${source.describe()}`);
    const started = performance.now();
    const cache = await buildCache(source, {
      size,
      out,
      shardSize: flags["shard-size"] as number,
      onProgress: (done, total) => console.error(`cached ${done}/${total}`),
    });
    cache.close();
    source.close();
    if (source.skipped.length > 0) {
      await Deno.writeTextFile(
        join(out, "skipped.json"),
        skippedReport(source.skipped),
      );
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `${
        cache.rebuilt ? "Built" : "Reused"
      } ${cache.describe()} in ${seconds} s` +
        (cache.rebuilt ? ` (${cache.reason})` : "") +
        (source.skipped.length
          ? `; ${source.skipped.length} files skipped (see skipped.json)`
          : ""),
    );
    return 0;
  },
};
