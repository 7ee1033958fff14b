/**
 * The one interface every image collection implements — procedural, file
 * list, packed cache — and that the loader, training and the probe read.
 *
 * @module
 */
import type { RgbImage } from "@scaling-vicreg/backend/image";

/**
 * An indexed, possibly labelled collection of RGB images (`[H, W, 3]` uint8).
 *
 * `get` may be asynchronous (it can read and decode a file); `label` is cheap
 * and synchronous. Indices run from 0 to `length - 1`.
 */
export interface ImageSource {
  /** Number of images. */
  readonly length: number;
  /** Class names, indexed by label, when the source is labelled. */
  readonly classNames?: readonly string[];
  /**
   * The image at `index`.
   *
   * @param index 0 ≤ index < length.
   */
  get(index: number): Promise<RgbImage>;
  /**
   * The class label at `index`, or `undefined` for an unlabeled source.
   *
   * @param index 0 ≤ index < length.
   */
  label(index: number): number | undefined;
  /** One line naming the source (kind, root, split, count), for logs. */
  describe(): string;
  /**
   * Releases what the source holds (decode workers, open files); call it
   * once the source is no longer read. Sources that hold nothing omit it.
   */
  close?(): void;
}

/**
 * Throws a RangeError unless `index` is an integer in [0, length).
 *
 * @example
 * ```ts
 * import { checkIndex } from "@scaling-vicreg/data/source";
 * checkIndex(2, 3);
 * ```
 *
 * @param index The index asked for.
 * @param length The source's length.
 * @param what Names the source in the message.
 */
export function checkIndex(
  index: number,
  length: number,
  what = "source",
): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new RangeError(
      `Expected an index of ${what} in [0, ${length}): received ${index}`,
    );
  }
}

/**
 * All labels of a source as an Int32Array (−1 where unlabeled).
 *
 * @example
 * ```ts
 * import { labelsOf } from "@scaling-vicreg/data/source";
 * import { proceduralDataset } from "@scaling-vicreg/data/procedural";
 * console.log(labelsOf(proceduralDataset({ n: 3 }))); // Int32Array [0, 1, 2]
 * ```
 *
 * @param source The source.
 * @returns `[length]` labels.
 */
export function labelsOf(source: ImageSource): Int32Array {
  const out = new Int32Array(source.length);
  for (let i = 0; i < source.length; i++) out[i] = source.label(i) ?? -1;
  return out;
}
