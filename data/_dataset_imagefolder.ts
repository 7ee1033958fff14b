/**
 * The ImageFolder layout: `<root>/<class>/<image>`, with `train/` + `test/`
 * (or `val/`) splits, or one tree split by a seeded stratified split.
 *
 * @module
 */
import { join } from "node:path";
import { DatasetError } from "./decode.ts";
import type { DatasetEntry, DatasetListing } from "./dataset_options.ts";
import {
  type ResolvedDatasetOptions,
  stratifiedNote,
} from "./_dataset_options.ts";
import { isDir, readDirSorted, walkImages } from "./_dataset_fs.ts";
import { stratifiedSplit } from "./stratified_split.ts";

/** Whether `root` holds `train/` and `test/` or `val/`. */
export async function hasSplitDirs(root: string): Promise<boolean> {
  return await isDir(join(root, "train")) &&
    (await isDir(join(root, "test")) || await isDir(join(root, "val")));
}

async function listImageFolderTree(
  dir: string,
  extensions: readonly string[],
  classNames?: string[],
): Promise<{ entries: DatasetEntry[]; classNames: string[] }> {
  const dirs = (await readDirSorted(dir)).filter((e) =>
    e.isDirectory && !e.name.startsWith(".")
  );
  const names = classNames ?? dirs.map((d) => d.name);
  const entries: DatasetEntry[] = [];
  for (const d of dirs) {
    const label = names.indexOf(d.name);
    if (label < 0) {
      throw new DatasetError(
        `Expected the classes of ${dir} to match the train split: class folder "${d.name}" is not in train/`,
        join(dir, d.name),
      );
    }
    for (const path of await walkImages(join(dir, d.name), extensions)) {
      entries.push({ path, label });
    }
  }
  if (names.length === 0) {
    throw new DatasetError(
      `Expected an ImageFolder layout (${dir}/<class>/<image>): found no class folders`,
      dir,
    );
  }
  return { entries, classNames: names };
}

/** Lists one split of an ImageFolder tree. */
export async function listImageFolder(
  root: string,
  o: ResolvedDatasetOptions,
): Promise<DatasetListing> {
  if (await hasSplitDirs(root)) {
    const train = await listImageFolderTree(join(root, "train"), o.extensions);
    if (o.split === "train") {
      return { kind: "imagefolder", ...train, splitNote: "train/" };
    }
    const testDir = await isDir(join(root, "test")) ? "test" : "val";
    const test = await listImageFolderTree(
      join(root, testDir),
      o.extensions,
      train.classNames,
    );
    return { kind: "imagefolder", ...test, splitNote: `${testDir}/` };
  }
  const all = await listImageFolderTree(root, o.extensions);
  const parts = stratifiedSplit(all.entries, o.testFraction, o.seed);
  return {
    kind: "imagefolder",
    entries: parts[o.split],
    classNames: all.classNames,
    splitNote: stratifiedNote(o),
  };
}
