/**
 * The paper's two-view augmentation (VICReg `TrainTransform`), batched on the
 * tensor backend, plus evaluation transforms (resize, centre crop, TenCrop),
 * multi-crop, ViewMix and Pillow-exact bicubic resizing.
 *
 * ```ts
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { TrainTransform } from "@scaling-vicreg/augment";
 * await useBackend("cpu");
 * const image = { width: 32, height: 24, data: new Uint8Array(32 * 24 * 3).fill(100) };
 * const { view1, view2 } = new TrainTransform({ size: 16 }).apply([image], new Rng(0));
 * console.log(view1.shape); // [1, 16, 16, 3]
 * view1.dispose();
 * view2.dispose();
 * ```
 *
 * @module
 */
export * from "./resize.ts";
export * from "./color.ts";
export * from "./blur.ts";
export * from "./params.ts";
export * from "./render.ts";
export * from "./train_transform.ts";
export * from "./eval_transform.ts";
export * from "./multi_crop.ts";
export * from "./view_mix.ts";
// Sibling-member types this package's API names (documentation links).
export type { Rng, RngState } from "@scaling-vicreg/backend";
export type { RgbImage } from "@scaling-vicreg/backend/image";
