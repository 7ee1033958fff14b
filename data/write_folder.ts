/**
 * Writing an image source out as a PNG ImageFolder tree
 * (`dir/<class>/<index>.png`), as `vicreg make-dataset` does with the
 * procedural set.
 *
 * @module
 */
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";
import { join } from "node:path";
import { encodePng } from "./decode.ts";
import type { ImageSource } from "./source.ts";

/** Options of {@linkcode writeImageFolder}. */
export interface WriteImageFolderOptions {
  /**
   * Called every 100 images and at the end, with images done and total.
   * @default {undefined}
   */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Writes every image of a labelled source as `dir/<class name>/<index>.png`
 * (index zero-padded to 5 digits); each file is written to a temporary name
 * and renamed.
 *
 * @example
 * ```ts
 * import { proceduralDataset, writeImageFolder } from "@scaling-vicreg/data";
 * const dir = await Deno.makeTempDir();
 * console.log(await writeImageFolder(proceduralDataset({ n: 3, size: 8 }), dir)); // 3
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param source A labelled source with class names.
 * @param dir The folder (created if missing).
 * @param options Progress callback.
 * @returns The number of files written.
 */
export async function writeImageFolder(
  source: ImageSource,
  dir: string,
  options?: WriteImageFolderOptions,
): Promise<number> {
  const names = source.classNames;
  if (!names || names.length === 0) {
    throw new TypeError(
      `Expected a labelled source with class names: ${source.describe()} has none`,
    );
  }
  for (const name of names) {
    await Deno.mkdir(join(dir, name), { recursive: true });
  }
  for (let i = 0; i < source.length; i++) {
    const label = source.label(i);
    if (label === undefined || names[label] === undefined) {
      throw new RangeError(
        `Expected image ${i} of ${source.describe()} to have a label in [0, ${names.length})`,
      );
    }
    const path = join(dir, names[label], `${String(i).padStart(5, "0")}.png`);
    await writeFileAtomic(path, await encodePng(await source.get(i)));
    if ((i + 1) % 100 === 0 || i + 1 === source.length) {
      options?.onProgress?.(i + 1, source.length);
    }
  }
  return source.length;
}
