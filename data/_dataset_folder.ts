/**
 * The unlabeled-folder layout: every image under the root, recursively.
 *
 * @module
 */
import type { DatasetListing } from "./dataset_options.ts";
import type { ResolvedDatasetOptions } from "./_dataset_options.ts";
import { walkImages } from "./_dataset_fs.ts";

/** Lists every image under `root` (no labels, no split). */
export async function listFolder(
  root: string,
  o: ResolvedDatasetOptions,
): Promise<DatasetListing> {
  const paths = await walkImages(root, o.extensions);
  return {
    kind: "folder",
    entries: paths.map((path) => ({ path })),
    classNames: [],
    splitNote: "all images (unlabeled)",
  };
}
