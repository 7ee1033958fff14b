/**
 * The VICReg pretraining loop and what it is made of: configuration (flags,
 * YAML, presets), LARS/AdamW/SGD, the warm-up + cosine schedule, atomic
 * checkpoints with exact resume.
 *
 * ```ts ignore
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { pretrain, resolveConfig } from "@scaling-vicreg/train";
 * await useBackend("cpu");
 * await pretrain(resolveConfig({ flags: { preset: "tiny" } }));
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./schedule.ts";
export * from "./optimizer.ts";
export * from "./checkpoint.ts";
export * from "./run_lock.ts";
export * from "./run_dir.ts";
export * from "./divergence.ts";
export * from "./pretrain.ts";
export {
  activationBytesPerView,
  chooseStepMode,
  STEP_BUDGET_BYTES,
  type StepMode,
} from "./_step.ts";
export * from "./evaluate.ts";
export * from "./study.ts";
export * from "./study_report.ts";
