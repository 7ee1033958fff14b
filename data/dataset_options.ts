/**
 * The vocabulary of data sets on disk: the layouts ({@linkcode DatasetKind}),
 * a listed file and a skipped one, a layout's listing, and the options of
 * `openDataset` / `listDataset` with their defaults.
 *
 * @module
 */
import { DEFAULT_MAX_IMAGE_PIXELS } from "./decode.ts";

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
