/**
 * The CUB-200-2011 layout: `images.txt`, `image_class_labels.txt`,
 * `train_test_split.txt` and `classes.txt` beside `images/`.
 *
 * @module
 */
import { exists } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import { DatasetError } from "./decode.ts";
import type { DatasetEntry, DatasetListing } from "./dataset_options.ts";
import type { ResolvedDatasetOptions } from "./_dataset_options.ts";
import { readLines } from "./_dataset_fs.ts";

const CUB_FILES = [
  "images.txt",
  "image_class_labels.txt",
  "train_test_split.txt",
  "classes.txt",
];

/** The CUB folder: `root` or `root/CUB_200_2011`, if either holds the lists. */
export async function cubRoot(root: string): Promise<string | undefined> {
  for (const dir of [root, join(root, "CUB_200_2011")]) {
    if (
      await exists(join(dir, "images.txt")) &&
      await exists(join(dir, "image_class_labels.txt"))
    ) {
      return dir;
    }
  }
  return undefined;
}

function splitFields(
  line: string,
  n: number,
  path: string,
  what: string,
): string[] {
  const fields = line.split(/\s+/);
  if (fields.length < n) {
    throw new DatasetError(
      `Expected ${n} space-separated fields per line in ${what} (${path}): received "${line}"`,
      path,
    );
  }
  return [...fields.slice(0, n - 1), fields.slice(n - 1).join(" ")];
}

/** Lists one split of CUB-200-2011 (`train_test_split.txt`). */
export async function listCub(
  root: string,
  o: ResolvedDatasetOptions,
): Promise<DatasetListing> {
  const dir = await cubRoot(root) ?? root;
  for (const name of CUB_FILES) {
    if (!await exists(join(dir, name))) {
      throw new DatasetError(
        `Expected a CUB-200-2011 folder with ${
          CUB_FILES.join(", ")
        } and images/: ${name} is missing in ${dir}`,
        join(dir, name),
      );
    }
  }
  const read = async (name: string) => {
    const path = join(dir, name);
    const map = new Map<string, string>();
    for (const line of await readLines(path, name)) {
      const [id, value] = splitFields(line, 2, path, name);
      map.set(id, value);
    }
    return map;
  };
  const [images, labels, isTrain, classes] = await Promise.all(
    CUB_FILES.map((n) => read(n)),
  );
  const classIds = [...classes.keys()].sort((a, b) => Number(a) - Number(b));
  const classNames = classIds.map((id) => classes.get(id)!);
  const labelOf = new Map(classIds.map((id, i) => [id, i]));
  const entries: DatasetEntry[] = [];
  const ids = [...images.keys()].sort((a, b) => Number(a) - Number(b));
  for (const id of ids) {
    const cls = labels.get(id), train = isTrain.get(id);
    if (cls === undefined || train === undefined || !labelOf.has(cls)) {
      throw new DatasetError(
        `Expected image ${id} of images.txt to have a class and a split in ${dir}`,
        join(dir, "image_class_labels.txt"),
      );
    }
    if ((train === "1") === (o.split === "train")) {
      entries.push({
        path: join(dir, "images", images.get(id)!),
        label: labelOf.get(cls)!,
      });
    }
  }
  return {
    kind: "cub200",
    entries,
    classNames,
    splitNote: "train_test_split.txt",
  };
}
