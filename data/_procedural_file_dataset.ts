/**
 * The embedded procedural data set as a {@linkcode FileDataset} (no files,
 * nothing skipped), so that `openDataset("procedural")` has one return type.
 *
 * @module
 */
import type { RgbImage } from "@scaling-vicreg/backend/image";
import type { ImageSource } from "./source.ts";
import type {
  DatasetEntry,
  DatasetKind,
  SkippedFile,
} from "./dataset_options.ts";
import type { FileDataset } from "./file_dataset.ts";

/** An {@linkcode ImageSource} wrapped as a {@linkcode FileDataset}. */
export class ProceduralFileDataset implements FileDataset {
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
