/**
 * The Mini-ImageNet layout: `train.csv` / `val.csv` / `test.csv`
 * ("filename,label" rows) beside `images/`, or an ImageFolder tree.
 *
 * @module
 */
import { exists } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import { DatasetError } from "./decode.ts";
import type { DatasetListing } from "./dataset_options.ts";
import {
  type ResolvedDatasetOptions,
  stratifiedNote,
} from "./_dataset_options.ts";
import { isDir, readLines } from "./_dataset_fs.ts";
import { hasSplitDirs, listImageFolder } from "./_dataset_imagefolder.ts";
import { stratifiedSplit } from "./stratified_split.ts";

/** The split lists a Mini-ImageNet folder may hold. */
export const MINI_CSVS = ["train.csv", "val.csv", "test.csv"];

/** Lists one split of Mini-ImageNet. */
export async function listMini(
  root: string,
  o: ResolvedDatasetOptions,
): Promise<DatasetListing> {
  const csvs: { name: string; rows: { file: string; cls: string }[] }[] = [];
  for (const name of MINI_CSVS) {
    const path = join(root, name);
    if (!await exists(path)) continue;
    const lines = await readLines(path, `Mini-ImageNet ${name}`);
    const start = lines[0]?.toLowerCase().startsWith("filename") ? 1 : 0;
    const rows = lines.slice(start).map((line) => {
      const [file, cls] = line.split(",").map((s) => s.trim());
      if (!file || !cls) {
        throw new DatasetError(
          `Expected "filename,label" rows in Mini-ImageNet ${name}: received "${line}"`,
          path,
        );
      }
      return { file, cls };
    });
    csvs.push({ name, rows });
  }
  if (csvs.length === 0) {
    if (await hasSplitDirs(root)) {
      return { ...await listImageFolder(root, o), kind: "miniimagenet" };
    }
    throw new DatasetError(
      `Expected a Mini-ImageNet folder (train.csv/val.csv/test.csv with "filename,label" rows beside images/, or an ImageFolder tree): none found in ${root}`,
      root,
    );
  }
  const imageDir = join(root, "images");
  if (!await isDir(imageDir)) {
    throw new DatasetError(
      `Expected Mini-ImageNet images in ${imageDir}: not a folder`,
      imageDir,
    );
  }
  const classesOf = (rows: { cls: string }[]) =>
    [...new Set(rows.map((r) => r.cls))].sort();
  const train = csvs.find((c) => c.name === "train.csv");
  const test = csvs.find((c) => c.name === "test.csv") ??
    csvs.find((c) => c.name === "val.csv");
  // The standard Ravi & Larochelle CSVs hold disjoint classes (64/16/20); a
  // linear probe needs the same classes in both splits, so then all rows are
  // pooled and split per class.
  if (
    train && test &&
    classesOf(train.rows).join("\n") === classesOf(test.rows).join("\n")
  ) {
    const classNames = classesOf(train.rows);
    const rows = (o.split === "train" ? train : test).rows;
    return {
      kind: "miniimagenet",
      entries: rows.map((r) => ({
        path: join(imageDir, r.file),
        label: classNames.indexOf(r.cls),
      })),
      classNames,
      splitNote: o.split === "train" ? "train.csv" : test.name,
    };
  }
  const all = csvs.flatMap((c) => c.rows);
  const classNames = classesOf(all);
  const labelOf = new Map(classNames.map((c, i) => [c, i]));
  const entries = all.map((r) => ({
    path: join(imageDir, r.file),
    label: labelOf.get(r.cls)!,
  }));
  const parts = stratifiedSplit(entries, o.testFraction, o.seed);
  return {
    kind: "miniimagenet",
    entries: parts[o.split],
    classNames,
    splitNote: `${csvs.map((c) => c.name).join(" + ")} pooled, ${
      stratifiedNote(o)
    }`,
  };
}
