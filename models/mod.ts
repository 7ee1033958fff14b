/**
 * ResNet backbones and projector MLPs on `@tensorflow/tfjs-core` (NHWC),
 * structured and named as torchvision's and VICReg's, with safetensors and
 * `.npy` I/O.
 *
 * The paper's model is `createResNet("resnet50", rng)` with an
 * `"8192-8192-8192"` projector; a small one, as in the tests:
 *
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng, useBackend } from "@scaling-vicreg/backend";
 * import { createProjector, createResNet } from "@scaling-vicreg/models";
 * await useBackend("cpu");
 * const rng = new Rng(0);
 * const backbone = createResNet("tiny", rng);
 * const projector = createProjector(backbone.embeddingDim, "32-16", rng);
 * const z = tf.tidy(() => {
 *   const { embedding } = backbone.forward(tf.ones([2, 16, 16, 3]));
 *   return projector.forward(embedding); // [2, 16]
 * });
 * console.log(z.shape); // [2, 16]
 * tf.dispose(z);
 * backbone.dispose();
 * projector.dispose();
 * ```
 *
 * @module
 */
export * from "./module.ts";
export * from "./batch_norm.ts";
export * from "./layers.ts";
export * from "./resnet.ts";
export * from "./projector.ts";
export * from "./npy.ts";
export * from "./safetensors.ts";
export * from "./weights.ts";
export * from "./embed.ts";
// Sibling-member types this package's API names (documentation links).
export type { Rng, RngState } from "@scaling-vicreg/backend";
