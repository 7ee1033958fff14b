/**
 * {@linkcode OpenDatasetOptions} resolved against their defaults and
 * validated, in one place, and the split note of a seeded stratified split.
 *
 * @module
 */
import {
  DATASET_KINDS,
  type DatasetKind,
  DEFAULT_OPEN_DATASET_OPTIONS,
  type OpenDatasetOptions,
  type SkippedFile,
} from "./dataset_options.ts";

/** Options with every default filled in (see {@linkcode resolveDatasetOptions}). */
export type ResolvedDatasetOptions =
  & Required<Omit<OpenDatasetOptions, "kind" | "onWarning">>
  & {
    kind?: DatasetKind;
    onWarning?: (message: string, file: SkippedFile) => void;
  };

/** Fills in the defaults of `options` and checks every value. */
export function resolveDatasetOptions(
  options: OpenDatasetOptions | undefined,
): ResolvedDatasetOptions {
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

/** `describe()`'s note for a seeded stratified split. */
export function stratifiedNote(o: ResolvedDatasetOptions): string {
  return `seeded stratified ${o.split} split (test fraction ${o.testFraction}, seed ${o.seed})`;
}
