/**
 * Data sets on disk: an unlabeled folder, ImageFolder, CUB-200-2011, SUN397
 * and Mini-ImageNet layouts, each read as a list of `{ path, label }` and
 * opened as an {@linkcode ImageSource} that decodes on `get`.
 *
 * Bad files never crash a run midway: by default they are skipped with a
 * warning (through `onWarning`; only the CLI prints) and listed in
 * `skipped`, to be written to the run directory; `strict` throws the first
 * {@linkcode DatasetError} instead. Files are checked cheaply up front (empty
 * file, unknown signature, CMYK JPEG); a file that fails to decode later is
 * recorded the same way and replaced by the next image of the same class, so
 * batches keep their size and labels stay right.
 *
 * Images are decoded on the calling thread, or with `workers: n` in a
 * {@linkcode DecodePool} of Deno workers (same pixels, same errors), so that
 * decoding overlaps the training step; `close()` the data set when done.
 *
 * This file holds {@linkcode openDataset}; the layouts, listing and split
 * live in their own files and are re-exported here, so that
 * `@scaling-vicreg/data/datasets` keeps its exports.
 *
 * @module
 */
import { DatasetError } from "./decode.ts";
import { proceduralDataset } from "./procedural.ts";
import {
  DATASET_KINDS,
  type DatasetEntry,
  type DatasetKind,
  type OpenDatasetOptions,
  type SkippedFile,
  UNSUPPORTED_IMAGE_EXTENSIONS,
} from "./dataset_options.ts";
import { resolveDatasetOptions } from "./_dataset_options.ts";
import { isDir, walkImages } from "./_dataset_fs.ts";
import { listDataset } from "./list_dataset.ts";
import type { FileDataset } from "./file_dataset.ts";
import { checkImageFile } from "./_check_image_file.ts";
import { FileListSource } from "./_file_list_source.ts";
import { ProceduralFileDataset } from "./_procedural_file_dataset.ts";

export * from "./dataset_options.ts";
export * from "./stratified_split.ts";
export * from "./list_dataset.ts";
export * from "./file_dataset.ts";

/**
 * Splits a `--data` value into an optional kind prefix and a path:
 * `"cub200:/data/CUB_200_2011"` → kind `cub200`; a path alone → no kind;
 * `"procedural"` or `"procedural:5000"` → the embedded set (with a count).
 *
 * @example
 * ```ts
 * import { parseDataSpec } from "@scaling-vicreg/data/datasets";
 * console.log(parseDataSpec("sun397:/data/SUN397")); // { kind: "sun397", path: "/data/SUN397" }
 * ```
 *
 * @param spec The value.
 * @returns The kind (if given) and path.
 */
export function parseDataSpec(
  spec: string,
): { kind?: DatasetKind; path: string } {
  if (spec === "procedural") return { kind: "procedural", path: "" };
  const colon = spec.indexOf(":");
  if (colon > 0) {
    const prefix = spec.slice(0, colon).toLowerCase();
    if ((DATASET_KINDS as readonly string[]).includes(prefix)) {
      return { kind: prefix as DatasetKind, path: spec.slice(colon + 1) };
    }
  }
  return { path: spec };
}

/**
 * Opens a data set for one split as an {@linkcode ImageSource} that decodes
 * each image on `get`. `spec` is a folder, optionally prefixed by its kind
 * (`"cub200:/data/CUB_200_2011"`), or `"procedural"` / `"procedural:N"` for
 * the embedded set (N images, default 2000, 64×64; `seed` is its seed).
 * Without a kind the layout is detected by {@linkcode detectDatasetKind}.
 * With `workers > 0` images are decoded in Deno workers; `close()` the data
 * set when done.
 *
 * @example
 * ```ts
 * import { openDataset } from "@scaling-vicreg/data/datasets";
 * const test = await openDataset("procedural:100", { split: "test" });
 * console.log(test.length, test.label(0)); // 100 0
 * ```
 *
 * @param spec Folder (with optional `kind:` prefix) or `procedural[:N]`.
 * @param options Kind, split, strict, seed, test fraction, SUN397 partition,
 *   validation, extensions and a warning callback.
 * @returns The data set, with the files skipped when it was opened.
 * @throws {DatasetError} For a wrong layout, or (with `strict`) a bad file.
 */
export async function openDataset(
  spec: string,
  options?: OpenDatasetOptions,
): Promise<FileDataset> {
  const parsed = parseDataSpec(spec);
  const o = resolveDatasetOptions({
    ...options,
    kind: options?.kind ?? parsed.kind,
  });
  if (o.kind === "procedural") {
    const n = parsed.path === "" ? undefined : Number(parsed.path);
    if (n !== undefined && !(Number.isInteger(n) && n > 0)) {
      throw new RangeError(
        `Expected "procedural:N" with a positive integer N: received "${spec}"`,
      );
    }
    return new ProceduralFileDataset(
      proceduralDataset({ n, seed: o.seed, split: o.split }),
      o.split,
    );
  }
  const root = parsed.path;
  const listing = await listDataset(root, o);
  const entries: DatasetEntry[] = [];
  const skipped: SkippedFile[] = [];
  // Reported once, with the train split (the split a pretraining reads).
  const unsupported = UNSUPPORTED_IMAGE_EXTENSIONS.filter((e) =>
    !o.extensions.includes(e)
  );
  if (o.split === "train" && (await isDir(root))) {
    for (const path of await walkImages(root, unsupported)) {
      const ext = path.slice(path.lastIndexOf(".")).toLowerCase();
      const reason =
        `${ext} images are not read (expected JPEG, PNG or GIF): convert them to PNG`;
      if (o.strict) {
        throw new DatasetError(`Cannot decode ${path}: ${reason}`, path);
      }
      const file = { path, reason };
      skipped.push(file);
      o.onWarning?.(`Skipping ${path}: ${reason}`, file);
    }
  }
  if (o.validate) {
    const ok = new Uint8Array(listing.entries.length);
    const errors: (DatasetError | undefined)[] = new Array(
      listing.entries.length,
    );
    let next = 0;
    const worker = async () => {
      while (next < listing.entries.length) {
        const i = next++;
        try {
          await checkImageFile(listing.entries[i].path, o.maxImagePixels);
          ok[i] = 1;
        } catch (error) {
          if (!(error instanceof DatasetError)) throw error;
          errors[i] = error;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    for (let i = 0; i < listing.entries.length; i++) {
      if (ok[i]) {
        entries.push(listing.entries[i]);
        continue;
      }
      const error = errors[i]!;
      if (o.strict) throw error;
      const file = { path: listing.entries[i].path, reason: error.message };
      skipped.push(file);
      o.onWarning?.(`Skipping ${file.path}: ${file.reason}`, file);
    }
  } else {
    entries.push(...listing.entries);
  }
  if (entries.length === 0) {
    throw new DatasetError(
      `Expected images in the ${o.split} split of ${root} (${listing.kind}): found none${
        skipped.length ? ` usable (${skipped.length} skipped)` : ""
      }`,
      root,
    );
  }
  return new FileListSource(listing, root, o, entries, skipped);
}
