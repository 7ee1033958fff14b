/**
 * What `openDataset` returns: an {@linkcode ImageSource} over image files
 * with the files it skipped, and the skipped list as a run-directory report.
 *
 * @module
 */
import type { ImageSource } from "./source.ts";
import type {
  DatasetEntry,
  DatasetKind,
  SkippedFile,
} from "./dataset_options.ts";

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

/**
 * The skipped-file list as JSON text, for `skipped.json` in a run directory.
 *
 * @example
 * ```ts
 * import { skippedReport } from "@scaling-vicreg/data/file-dataset";
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
