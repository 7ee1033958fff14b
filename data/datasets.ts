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
 * @module
 */
import { exists } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import { Rng } from "@scaling-vicreg/backend/random";
import { stratifiedHoldout } from "@scaling-vicreg/backend/stratified-split";
import type { RgbImage } from "@scaling-vicreg/backend/image";
import {
  checkImageHeader,
  DatasetError,
  DEFAULT_MAX_IMAGE_PIXELS,
  readImage,
} from "./decode.ts";
import { DecodePool } from "./decode_pool.ts";
import { checkIndex, type ImageSource } from "./source.ts";
import { proceduralDataset } from "./procedural.ts";

/** The data-set layouts {@linkcode openDataset} reads. */
export type DatasetKind =
  | "folder"
  | "imagefolder"
  | "cub200"
  | "sun397"
  | "miniimagenet"
  | "procedural";

/** Every {@linkcode DatasetKind}, for flag choices. */
export const DATASET_KINDS: readonly DatasetKind[] = Object.freeze([
  "folder",
  "imagefolder",
  "cub200",
  "sun397",
  "miniimagenet",
  "procedural",
]);

/** One image file of a data set. */
export interface DatasetEntry {
  /** The file's path. */
  path: string;
  /** Its class index, absent for unlabeled data. */
  label?: number;
}

/** A file left out of a data set, and why. */
export interface SkippedFile {
  /** The file. */
  path: string;
  /** The error message. */
  reason: string;
}

/** A data set's files, as listed from its layout (before any checks). */
export interface DatasetListing {
  /** The layout read. */
  kind: DatasetKind;
  /** The files of the requested split, in a fixed (sorted or listed) order. */
  entries: DatasetEntry[];
  /** Class names by label; empty when unlabeled. */
  classNames: string[];
  /** How the split was made, for `describe()`. */
  splitNote: string;
}

/** Options of {@linkcode openDataset} and {@linkcode listDataset}. */
export interface OpenDatasetOptions {
  /**
   * The layout; `undefined` detects it (see {@linkcode detectDatasetKind}).
   * @default {undefined}
   */
  kind?: DatasetKind;
  /**
   * Which split to read.
   * @default {"train"}
   */
  split?: "train" | "test";
  /**
   * Throw the first bad file's {@linkcode DatasetError} instead of skipping it.
   * @default {false}
   */
  strict?: boolean;
  /**
   * Seed of the stratified split made when a data set has no test split.
   * @default {0}
   */
  seed?: number;
  /**
   * Fraction of each class put in the test split when one is made.
   * @default {0.2}
   */
  testFraction?: number;
  /**
   * SUN397 partition (1–10): `Partitions/Training_01.txt`, `Testing_01.txt`, ….
   * @default {1}
   */
  partition?: number;
  /**
   * Check each file's size and first bytes when opening.
   * @default {true}
   */
  validate?: boolean;
  /**
   * File extensions of images (lower case, with the dot). Files of the
   * formats in {@linkcode UNSUPPORTED_IMAGE_EXTENSIONS} are counted as
   * skipped instead of ignored.
   * @default {[".jpg", ".jpeg", ".png", ".gif"]}
   */
  extensions?: readonly string[];
  /**
   * Largest width × height of an image; bigger ones are refused from their
   * header (skipped, or an error with `strict`) instead of decoded.
   * @default {DEFAULT_MAX_IMAGE_PIXELS}
   */
  maxImagePixels?: number;
  /**
   * Deno workers that read and decode images (a {@linkcode DecodePool}), so
   * decoding overlaps the training step; 0 decodes on the calling thread.
   * With workers, call the data set's `close()` when done, or the process
   * stays alive until they idle out. `defaultDecodeWorkers()` gives
   * one per spare core.
   * @default {0}
   */
  workers?: number;
  /**
   * Called once per skipped file (the CLI prints it).
   * @default {undefined}
   */
  onWarning?: (message: string, file: SkippedFile) => void;
}

/** Defaults of {@linkcode OpenDatasetOptions}. */
export const DEFAULT_OPEN_DATASET_OPTIONS: Readonly<
  Required<Omit<OpenDatasetOptions, "kind" | "onWarning">>
> = Object.freeze({
  split: "train",
  strict: false,
  seed: 0,
  testFraction: 0.2,
  partition: 1,
  validate: true,
  extensions: Object.freeze([".jpg", ".jpeg", ".png", ".gif"]),
  maxImagePixels: DEFAULT_MAX_IMAGE_PIXELS,
  workers: 0,
});

/**
 * Image formats that are not read (imagescript has no decoder for them):
 * their files are listed as skipped, so that they are not silently missing.
 */
export const UNSUPPORTED_IMAGE_EXTENSIONS: readonly string[] = Object.freeze([
  ".webp",
  ".bmp",
  ".tif",
  ".tiff",
  ".avif",
  ".heic",
]);

type Resolved = Required<Omit<OpenDatasetOptions, "kind" | "onWarning">> & {
  kind?: DatasetKind;
  onWarning?: (message: string, file: SkippedFile) => void;
};

function resolve(options: OpenDatasetOptions | undefined): Resolved {
  const o = { ...DEFAULT_OPEN_DATASET_OPTIONS, ...options };
  if (o.kind !== undefined && !DATASET_KINDS.includes(o.kind)) {
    throw new RangeError(
      `Expected dataset kind to be one of ${
        DATASET_KINDS.join(", ")
      }: received ${o.kind}`,
    );
  }
  if (o.split !== "train" && o.split !== "test") {
    throw new RangeError(
      `Expected split "train" or "test": received ${o.split}`,
    );
  }
  if (!(o.testFraction > 0 && o.testFraction < 1)) {
    throw new RangeError(
      `Expected testFraction in (0, 1): received ${o.testFraction}`,
    );
  }
  if (!Number.isInteger(o.workers) || o.workers < 0) {
    throw new RangeError(
      `Expected a non-negative integer number of decode workers: received ${o.workers}`,
    );
  }
  if (!(o.maxImagePixels >= 1)) {
    throw new RangeError(
      `Expected maxImagePixels >= 1: received ${o.maxImagePixels}`,
    );
  }
  if (!Number.isInteger(o.partition) || o.partition < 1 || o.partition > 10) {
    throw new RangeError(
      `Expected SUN397 partition in 1–10: received ${o.partition}`,
    );
  }
  return o;
}

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

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

async function readDirSorted(path: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(path)) out.push(entry);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function hasExtension(name: string, extensions: readonly string[]): boolean {
  const lower = name.toLowerCase();
  return extensions.some((e) => lower.endsWith(e));
}

/** Image files under `dir`, recursively, sorted by path; hidden entries skipped. */
async function walkImages(
  dir: string,
  extensions: readonly string[],
): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readDirSorted(dir)) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await walkImages(path, extensions));
    else if (entry.isFile && hasExtension(entry.name, extensions)) {
      out.push(path);
    }
  }
  return out;
}

async function readLines(path: string, what: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new DatasetError(
      `Expected ${what} at ${path}: cannot read it`,
      path,
      { cause },
    );
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}

const CUB_FILES = [
  "images.txt",
  "image_class_labels.txt",
  "train_test_split.txt",
  "classes.txt",
];

async function cubRoot(root: string): Promise<string | undefined> {
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

async function sunPartitions(root: string): Promise<string | undefined> {
  for (
    const dir of [
      join(root, "Partitions"),
      root,
      join(root, "..", "Partitions"),
    ]
  ) {
    if (await exists(join(dir, "Training_01.txt"))) return dir;
  }
  return undefined;
}

const MINI_CSVS = ["train.csv", "val.csv", "test.csv"];

async function hasSplitDirs(root: string): Promise<boolean> {
  return await isDir(join(root, "train")) &&
    (await isDir(join(root, "test")) || await isDir(join(root, "val")));
}

/**
 * Detects a data set's layout: CUB-200-2011 (`images.txt` +
 * `image_class_labels.txt`, here or in `CUB_200_2011/`), SUN397
 * (`Partitions/Training_01.txt`), Mini-ImageNet (`train.csv`/`val.csv`/
 * `test.csv`), ImageFolder (`train/` + `test/` or `val/`, or only class
 * subfolders and no images at the top), else an unlabeled folder.
 *
 * @example
 * ```ts ignore
 * import { detectDatasetKind } from "@scaling-vicreg/data/datasets";
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
 * A seeded, stratified train/test split of labelled entries: each class's
 * entries are shuffled by `Rng(seed).fork("split:<label>")` and the first
 * `round(testFraction · count)` of them (at least 1 when the class has ≥ 2)
 * go to test (`stratifiedHoldout` of `@scaling-vicreg/backend/stratified-split`
 * with `streams: "fork"`; unlabelled entries form one class). Both parts keep
 * the input order.
 *
 * @example
 * ```ts
 * import { stratifiedSplit } from "@scaling-vicreg/data/datasets";
 * const entries = Array.from({ length: 10 }, (_, i) => ({ path: `${i}.png`, label: i % 2 }));
 * const { train, test } = stratifiedSplit(entries, 0.2, 0);
 * console.log(train.length, test.length); // 8 2
 * ```
 *
 * @param entries Labelled entries.
 * @param testFraction Fraction in (0, 1).
 * @param seed The seed.
 * @returns The two parts.
 */
export function stratifiedSplit(
  entries: readonly DatasetEntry[],
  testFraction: number,
  seed: number,
): { train: DatasetEntry[]; test: DatasetEntry[] } {
  const isTest = stratifiedHoldout(
    entries.map((e) => e.label ?? -1),
    new Rng(seed),
    { fraction: testFraction, streams: "fork" },
  );
  return {
    train: entries.filter((_, i) => !isTest[i]),
    test: entries.filter((_, i) => isTest[i] === 1),
  };
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

async function listImageFolder(
  root: string,
  o: Resolved,
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

function stratifiedNote(o: Resolved): string {
  return `seeded stratified ${o.split} split (test fraction ${o.testFraction}, seed ${o.seed})`;
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

async function listCub(root: string, o: Resolved): Promise<DatasetListing> {
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

async function listSun(root: string, o: Resolved): Promise<DatasetListing> {
  const partitions = await sunPartitions(root);
  if (!partitions) {
    throw new DatasetError(
      `Expected a SUN397 folder (<letter>/<class>/<image> with Partitions/Training_01.txt … Testing_10.txt): no Partitions/Training_01.txt in ${root}`,
      join(root, "Partitions"),
    );
  }
  const k = String(o.partition).padStart(2, "0");
  const listName = `${o.split === "train" ? "Training" : "Testing"}_${k}.txt`;
  const lines = await readLines(
    join(partitions, listName),
    `SUN397 ${listName}`,
  );
  const classFile = join(partitions, "ClassName.txt");
  const classKeys = await exists(classFile)
    ? (await readLines(classFile, "SUN397 ClassName.txt")).map((l) =>
      l.replace(/^\/+|\/+$/g, "")
    )
    : [
      ...new Set(
        (await readLines(
          join(partitions, `Training_${k}.txt`),
          "SUN397 training list",
        ))
          .map((l) => classKey(l)),
      ),
    ].sort();
  const labelOf = new Map(classKeys.map((key, i) => [key, i]));
  // Images live beside Partitions/ or in a SUN397/ folder inside the root.
  const imageRoot = await isDir(join(root, "SUN397"))
    ? join(root, "SUN397")
    : root;
  const entries: DatasetEntry[] = lines.map((line) => {
    const key = classKey(line);
    const label = labelOf.get(key);
    if (label === undefined) {
      throw new DatasetError(
        `Expected SUN397 ${listName} to list images of known classes: class "${key}" is not in ClassName.txt`,
        join(partitions, listName),
      );
    }
    return { path: join(imageRoot, line.replace(/^\/+/, "")), label };
  });
  // "/a/abbey" → "abbey", "/b/bakery/shop" → "bakery/shop".
  const classNames = classKeys.map((key) => key.split("/").slice(1).join("/"));
  return {
    kind: "sun397",
    entries,
    classNames,
    splitNote: `partition ${o.partition} (${listName})`,
  };
}

function classKey(line: string): string {
  const parts = line.replace(/^\/+/, "").split("/");
  return parts.slice(0, -1).join("/");
}

async function listMini(root: string, o: Resolved): Promise<DatasetListing> {
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

/**
 * Lists a data set's files and labels for one split, without opening any
 * image.
 *
 * @example
 * ```ts ignore
 * import { listDataset } from "@scaling-vicreg/data/datasets";
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
  const o = resolve(options);
  const kind = o.kind ?? await detectDatasetKind(root, o.extensions);
  if (!await isDir(root)) {
    throw new DatasetError(
      `Expected a data-set folder at ${root}: not a folder`,
      root,
    );
  }
  switch (kind) {
    case "folder": {
      const paths = await walkImages(root, o.extensions);
      return {
        kind,
        entries: paths.map((path) => ({ path })),
        classNames: [],
        splitNote: "all images (unlabeled)",
      };
    }
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

/** An {@linkcode ImageSource} over image files, with the files it skipped. */
export interface FileDataset extends ImageSource {
  /** The layout read. */
  readonly kind: DatasetKind;
  /** The data set's folder ("" for the procedural set). */
  readonly root: string;
  /** The split read. */
  readonly split: "train" | "test";
  /** The usable files, in index order. */
  readonly entries: readonly DatasetEntry[];
  /** Files skipped so far (up front, and any that failed to decode since). */
  readonly skipped: readonly SkippedFile[];
  /** Stops the decode workers, if any (see `workers`); a no-op otherwise. */
  close(): void;
}

const HEAD_BYTES = 64 * 1024;

async function checkFile(path: string, maxPixels: number): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new DatasetError(`Cannot read ${path}: ${why}`, path, { cause });
  }
  try {
    const head = new Uint8Array(HEAD_BYTES);
    let n = 0;
    while (n < head.length) {
      const got = await file.read(head.subarray(n));
      if (got === null) break;
      n += got;
    }
    checkImageHeader(head.subarray(0, n), path, maxPixels);
  } finally {
    file.close();
  }
}

class FileListSource implements FileDataset {
  readonly kind: DatasetKind;
  readonly root: string;
  readonly split: "train" | "test";
  readonly entries: readonly DatasetEntry[];
  readonly classNames?: readonly string[];
  readonly skipped: SkippedFile[];
  #strict: boolean;
  #note: string;
  #bad = new Set<number>();
  #onWarning?: (message: string, file: SkippedFile) => void;
  #pool?: DecodePool;

  constructor(
    listing: DatasetListing,
    root: string,
    o: Resolved,
    entries: DatasetEntry[],
    skipped: SkippedFile[],
  ) {
    this.kind = listing.kind;
    this.root = root;
    this.split = o.split;
    this.entries = entries;
    if (listing.classNames.length > 0) this.classNames = listing.classNames;
    this.skipped = skipped;
    this.#strict = o.strict;
    this.#note = listing.splitNote;
    this.#onWarning = o.onWarning;
    if (o.workers > 0) this.#pool = new DecodePool({ workers: o.workers });
  }

  get length(): number {
    return this.entries.length;
  }

  label(index: number): number | undefined {
    checkIndex(index, this.length, this.root);
    return this.entries[index].label;
  }

  async get(index: number): Promise<RgbImage> {
    checkIndex(index, this.length, this.root);
    const label = this.entries[index].label;
    // A file that fails is recorded once and stands in for the next usable
    // file of the same class (deterministic, so resumed runs see the same).
    for (let step = 0; step < this.length; step++) {
      const i = (index + step) % this.length;
      if (this.#bad.has(i) || this.entries[i].label !== label) continue;
      try {
        const path = this.entries[i].path;
        return await (this.#pool ? this.#pool.decode(path) : readImage(path));
      } catch (error) {
        if (this.#strict || !(error instanceof DatasetError)) throw error;
        if (!this.#bad.has(i)) {
          this.#bad.add(i);
          const file = { path: this.entries[i].path, reason: error.message };
          this.skipped.push(file);
          this.#onWarning?.(`Skipping ${file.path}: ${file.reason}`, file);
        }
      }
    }
    throw new DatasetError(
      `No decodable image of class ${
        label ?? "(unlabeled)"
      } left in ${this.root}`,
      this.entries[index].path,
    );
  }

  describe(): string {
    const classes = this.classNames
      ? `, ${this.classNames.length} classes`
      : "";
    const skipped = this.skipped.length
      ? `, ${this.skipped.length} skipped`
      : "";
    return `${this.kind} ${this.root}: ${this.length} images${classes}, ${this.#note}${skipped}`;
  }

  close(): void {
    this.#pool?.close();
  }
}

class ProceduralFileDataset implements FileDataset {
  readonly kind: DatasetKind = "procedural";
  readonly root = "";
  readonly entries: readonly DatasetEntry[] = [];
  readonly skipped: readonly SkippedFile[] = [];
  readonly split: "train" | "test";
  readonly classNames?: readonly string[];
  #source: ImageSource;

  constructor(source: ImageSource, split: "train" | "test") {
    this.#source = source;
    this.split = split;
    this.classNames = source.classNames;
  }

  get length(): number {
    return this.#source.length;
  }

  get(index: number): Promise<RgbImage> {
    return this.#source.get(index);
  }

  label(index: number): number | undefined {
    return this.#source.label(index);
  }

  describe(): string {
    return this.#source.describe();
  }

  close(): void {}
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
  const o = resolve({ ...options, kind: options?.kind ?? parsed.kind });
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
          await checkFile(listing.entries[i].path, o.maxImagePixels);
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

/**
 * The skipped-file list as JSON text, for `skipped.json` in a run directory.
 *
 * @example
 * ```ts
 * import { skippedReport } from "@scaling-vicreg/data/datasets";
 * console.log(JSON.parse(skippedReport([{ path: "a.png", reason: "empty" }])).count); // 1
 * ```
 *
 * @param skipped The files.
 * @returns `{ count, files: [{ path, reason }] }` as indented JSON.
 */
export function skippedReport(skipped: readonly SkippedFile[]): string {
  return JSON.stringify({ count: skipped.length, files: skipped }, null, 2) +
    "\n";
}
