/**
 * The {@linkcode FileDataset} over a listed split's files: decodes on `get`
 * (on the calling thread or in a {@linkcode DecodePool}), and replaces a file
 * that fails by the next usable one of the same class.
 *
 * @module
 */
import type { RgbImage } from "@scaling-vicreg/backend/image";
import { DatasetError, readImage } from "./decode.ts";
import { DecodePool } from "./decode_pool.ts";
import { checkIndex } from "./source.ts";
import type {
  DatasetEntry,
  DatasetKind,
  DatasetListing,
  SkippedFile,
} from "./dataset_options.ts";
import type { ResolvedDatasetOptions } from "./_dataset_options.ts";
import type { FileDataset } from "./file_dataset.ts";

/** A listed split's usable files as a {@linkcode FileDataset}. */
export class FileListSource implements FileDataset {
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
    o: ResolvedDatasetOptions,
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
