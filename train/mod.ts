/**
 * The VICReg pretraining loop and what it is made of: configuration (flags,
 * YAML, presets), LARS/AdamW/SGD, the warm-up + cosine schedule, atomic
 * checkpoints with exact resume.
 *
 * This entry point holds what a user of the method needs: the configuration,
 * `pretrain()`, the model and its step, the step planner, and what a run
 * directory leaves behind (metrics, the backbone, checkpoints). The parts the
 * loop is made of (the run lock, checkpoint pruning, the online probe, the
 * storage and data-change guards, …) are each a subpath of their own, e.g.
 * `@scaling-vicreg/train/checkpoint` or `@scaling-vicreg/train/online-probe`.
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
export {
  ConfigError,
  configToYaml,
  cropsOf,
  DEFAULT_PRETRAIN_CONFIG,
  PRESETS,
  PRETRAIN_SCHEMA,
  readConfigFile,
  resolveConfig,
} from "./config.ts";
export type {
  ConfigKey,
  ConfigSources,
  MultiCropRecipe,
  PretrainConfig,
} from "./config.ts";
export { learningRate } from "./schedule.ts";
export type { ScheduleOptions } from "./schedule.ts";
export {
  pretrain,
  stepPlanLine,
  stepPlannerOf,
  stepPlanOf,
} from "./pretrain.ts";
export type {
  PretrainEvent,
  PretrainOptions,
  PretrainResult,
} from "./pretrain.ts";
export {
  createBackbone,
  createVicregModel,
  DEFAULT_VICREG_LOSS_SETTINGS,
  VicregModel,
} from "./vicreg_model.ts";
export type {
  EmbedOptions,
  Projections,
  VicregLoss,
  VicregLossSettings,
  VicregNetworks,
} from "./vicreg_model.ts";
export { stepGradients } from "./step.ts";
export { distributedStepGradients } from "./distributed_step.ts";
export { DEFAULT_STEP_OPTIONS } from "./step_options.ts";
export type { StepGradients, StepMode, StepOptions } from "./step_options.ts";
export {
  BATCH_NORM_FLOOR,
  measureStepMemory,
  measureViewBackward,
  planStep,
  viewsOf,
} from "./step_plan.ts";
export type { StepMemoryProfile, StepPlan, StepRequest } from "./step_plan.ts";
export { readMetrics } from "./run_metrics.ts";
export type { StepMetrics } from "./run_metrics.ts";
export { BACKBONE_FILE, loadRunBackbone } from "./backbone_file.ts";
export type { RunBackbone } from "./backbone_file.ts";
export { loadLatestCheckpoint } from "./checkpoint.ts";
export type { Checkpoint, CheckpointMeta } from "./checkpoint.ts";
export { openRunDirectory, savedRunConfig } from "./run_dir.ts";
export type { OpenRunDirectoryOptions, RunDirectory } from "./run_dir.ts";
export { NonFiniteLossError } from "./divergence.ts";
export { embedSource } from "./source_features.ts";
export type { EmbedSourceOptions, SourceFeatures } from "./source_features.ts";
export { StopRequest } from "./stop_request.ts";
export type { StopKind } from "./stop_request.ts";
export { StorageError } from "./storage_error.ts";
export { DataChangedError } from "./data_change.ts";
// Sibling-member types this package's API names (documentation links).
export type {
  BroadcastArray,
  CollectiveArray,
  Communicator,
} from "@scaling-vicreg/distributed";
export type {
  BackendName,
  MemoryBudget,
  Precision,
} from "@scaling-vicreg/backend";
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
