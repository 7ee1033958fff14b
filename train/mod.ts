/**
 * The VICReg pretraining loop and what it is made of: configuration (flags,
 * YAML, presets), LARS/AdamW/SGD, the warm-up + cosine schedule, atomic
 * checkpoints with exact resume.
 *
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { pretrain, resolveConfig } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * const expDir = await Deno.makeTempDir();
 * const config = resolveConfig({
 *   flags: { preset: "tiny", "exp-dir": expDir, "max-steps": 1, "batch-size": 4, "num-images": 8, size: 16 },
 * });
 * console.log((await pretrain(config)).steps); // 1
 * await Deno.remove(expDir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./schedule.ts";
export * from "./checkpoint.ts";
export * from "./run_lock.ts";
export * from "./run_dir.ts";
export * from "./divergence.ts";
export * from "./pretrain.ts";
export * from "./vicreg_model.ts";
export * from "./step_options.ts";
export * from "./step.ts";
export * from "./distributed_step.ts";
export * from "./step_plan.ts";
export * from "./run_metrics.ts";
export * from "./backbone_file.ts";
export * from "./source_features.ts";
export * from "./online_probe.ts";
export * from "./online_knn.ts";
export * from "./stop_request.ts";
export * from "./storage_error.ts";
export * from "./data_change.ts";
// Sibling-member types this package's API names (documentation links).
export type {
  BroadcastArray,
  CollectiveArray,
  Communicator,
} from "@scaling-vicreg/distributed";
export type { BackendName, MemoryBudget } from "@scaling-vicreg/backend";
export type { OptimizerKind, OptimizerState } from "@scaling-vicreg/optim";
export type {
  DatasetKind,
  FileListChange,
  FileListFingerprint,
  FileRecord,
  ImageSource,
} from "@scaling-vicreg/data";
export type {
  LocalMatching,
  VicregVariant,
  ViewGeometry,
} from "@scaling-vicreg/losses";
export type { RgbImage } from "@scaling-vicreg/backend/image";
export type {
  SafeData,
  SafeDtype,
  SafeTensor,
} from "@scaling-vicreg/backend/safetensors";
export type {
  CheckpointedForward,
  ForwardOptions,
  Module,
  Projector,
  ResNet,
  ResNetArch,
  ResNetForwardOptions,
  ResNetOutput,
} from "@scaling-vicreg/models";
