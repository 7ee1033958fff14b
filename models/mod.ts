/**
 * ResNet backbones and projector MLPs on `@tensorflow/tfjs-core` (NHWC),
 * structured and named as torchvision's and VICReg's, with safetensors and
 * `.npy` I/O.
 *
 * ```ts ignore
 * import { createProjector, createResNet } from "@scaling-vicreg/models";
 * const backbone = createResNet("resnet50", rng);
 * const projector = createProjector(backbone.embeddingDim, "8192-8192-8192", rng);
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
