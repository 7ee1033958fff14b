/**
 * A view of some of a source's images, in a given order: the pretraining
 * images of a run that holds a labelled split back (the online kNN), or any
 * other subset, without copying an image.
 *
 * @module
 */
import type { RgbImage } from "@scaling-vicreg/backend/image";
import { checkIndex, type ImageSource } from "./source.ts";

/**
 * The images `indices` of `source` as a source of their own: image i is
 * `source.get(indices[i])`, with its label. The subset does not own
 * `source`: it has no `close`, and the caller closes `source` when done.
 *
 * @example
 * ```ts
 * import { proceduralDataset } from "@scaling-vicreg/data/procedural";
 * import { subsetSource } from "@scaling-vicreg/data/subset-source";
 * const odd = subsetSource(proceduralDataset({ n: 10, size: 16 }), [1, 3, 5], "odd images");
 * console.log(odd.length, odd.label(1), odd.describe()); // 3 3 "odd images"
 * ```
 *
 * @param source The images.
 * @param indices Indices into `source` (each in [0, source.length)).
 * @param description What `describe()` says; by default "<n> of <source>".
 * @returns The subset.
 */
export function subsetSource(
  source: ImageSource,
  indices: readonly number[],
  description?: string,
): ImageSource {
  for (const i of indices) checkIndex(i, source.length, source.describe());
  const rows = [...indices];
  const at = (index: number) => {
    checkIndex(index, rows.length, "the subset");
    return rows[index];
  };
  return {
    length: rows.length,
    ...(source.classNames ? { classNames: source.classNames } : {}),
    get: (index: number): Promise<RgbImage> => source.get(at(index)),
    label: (index: number): number | undefined => source.label(at(index)),
    describe: () => description ?? `${rows.length} of ${source.describe()}`,
  };
}
