/**
 * Image data for VICReg: the embedded procedural data set, JPEG/PNG decoding,
 * data-set layouts on disk (folder, ImageFolder, CUB-200-2011, SUN397,
 * Mini-ImageNet), a packed uint8 cache and a seeded, prefetching loader.
 *
 * ```ts
 * import { Loader, proceduralDataset } from "@scaling-vicreg/data";
 * const loader = new Loader(proceduralDataset({ n: 64 }), { batchSize: 16, seed: 0 });
 * for await (const batch of loader.batches(0)) console.log(batch.images.length); // 16
 * ```
 *
 * @module
 */
export * from "./source.ts";
export * from "./procedural.ts";
export * from "./decode.ts";
export * from "./decode_pool.ts";
export * from "./dataset_options.ts";
export * from "./stratified_split.ts";
export * from "./list_dataset.ts";
export * from "./file_dataset.ts";
export * from "./file_list_fingerprint.ts";
export * from "./datasets.ts";
export * from "./loader.ts";
export * from "./subset_source.ts";
export * from "./cache.ts";
export * from "./write_folder.ts";
// Sibling-member types this package's API names (documentation links).
export type { RgbImage } from "@scaling-vicreg/backend/image";
