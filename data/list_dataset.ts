/**
 * Listing a data set on disk: detecting its layout and reading one split's
 * files and labels (no image is opened), dispatched to the layout's reader.
 *
 * @module
 */
import { exists } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import { DatasetError } from "./decode.ts";
import {
  type DatasetKind,
  type DatasetListing,
  DEFAULT_OPEN_DATASET_OPTIONS,
  type OpenDatasetOptions,
} from "./dataset_options.ts";
import { resolveDatasetOptions } from "./_dataset_options.ts";
import { hasExtension, isDir, readDirSorted } from "./_dataset_fs.ts";
import { listFolder } from "./_dataset_folder.ts";
import { hasSplitDirs, listImageFolder } from "./_dataset_imagefolder.ts";
import { cubRoot, listCub } from "./_dataset_cub200.ts";
import { listSun, sunPartitions } from "./_dataset_sun397.ts";
import { listMini, MINI_CSVS } from "./_dataset_miniimagenet.ts";

/**
 * Detects a data set's layout: CUB-200-2011 (`images.txt` +
 * `image_class_labels.txt`, here or in `CUB_200_2011/`), SUN397
 * (`Partitions/Training_01.txt`), Mini-ImageNet (`train.csv`/`val.csv`/
 * `test.csv`), ImageFolder (`train/` + `test/` or `val/`, or only class
 * subfolders and no images at the top), else an unlabeled folder.
 *
 * @example
 * ```ts ignore
 * import { detectDatasetKind } from "@scaling-vicreg/data/list-dataset";
 * console.log(await detectDatasetKind("/data/CUB_200_2011")); // "cub200"
 * ```
 *
 * @param root The folder.
 * @param extensions Image file extensions.
 * @returns The kind.
 * @throws {DatasetError} If `root` is not a folder.
 */
export async function detectDatasetKind(
  root: string,
  extensions: readonly string[] = DEFAULT_OPEN_DATASET_OPTIONS.extensions,
): Promise<DatasetKind> {
  if (!await isDir(root)) {
    throw new DatasetError(
      `Expected a data-set folder at ${root}: not a folder`,
      root,
    );
  }
  if (await cubRoot(root)) return "cub200";
  if (await sunPartitions(root)) return "sun397";
  for (const csv of MINI_CSVS) {
    if (await exists(join(root, csv))) return "miniimagenet";
  }
  if (await hasSplitDirs(root)) return "imagefolder";
  const top = await readDirSorted(root);
  const dirs = top.filter((e) => e.isDirectory && !e.name.startsWith("."));
  const images = top.filter((e) =>
    e.isFile && hasExtension(e.name, extensions)
  );
  return dirs.length >= 2 && images.length === 0 ? "imagefolder" : "folder";
}

/**
 * Lists a data set's files and labels for one split, without opening any
 * image.
 *
 * @example
 * ```ts ignore
 * import { listDataset } from "@scaling-vicreg/data/list-dataset";
 * const { entries, classNames } = await listDataset("/data/CUB_200_2011", { split: "test" });
 * ```
 *
 * @param root The data set's folder.
 * @param options Kind, split, seed, test fraction, partition, extensions.
 * @returns The listing.
 * @throws {DatasetError} If the layout is not the one expected.
 */
export async function listDataset(
  root: string,
  options?: OpenDatasetOptions,
): Promise<DatasetListing> {
  const o = resolveDatasetOptions(options);
  const kind = o.kind ?? await detectDatasetKind(root, o.extensions);
  if (!await isDir(root)) {
    throw new DatasetError(
      `Expected a data-set folder at ${root}: not a folder`,
      root,
    );
  }
  switch (kind) {
    case "folder":
      return await listFolder(root, o);
    case "imagefolder":
      return await listImageFolder(root, o);
    case "cub200":
      return await listCub(root, o);
    case "sun397":
      return await listSun(root, o);
    case "miniimagenet":
      return await listMini(root, o);
    default:
      throw new RangeError(`Expected a folder data-set kind: received ${kind}`);
  }
}
