/**
 * The paper's evaluation around pretraining, as `evaluate.py` stands beside
 * `main_vicreg.py`: the linear-probe protocol on a backbone
 * ({@linkcode probeBackbone}, on the frozen features `embedSource` of
 * `@scaling-vicreg/train` extracts), and the Table-1 ablation study (a study
 * file, its runs, budget, tables, charts and report).
 *
 * ```ts
 * import { parseStudy, TINY_STUDY } from "@scaling-vicreg/experiments";
 * console.log(TINY_STUDY.configurations.map((c) => c.name)); // Table 1's rows
 * const study = parseStudy({
 *   budget: { epochs: 1, "batch-size": 8, size: 16 },
 *   configurations: ["global-only", "local-only"],
 *   downstream: [{ name: "shapes", data: "procedural" }],
 * });
 * console.log(study.configurations.length); // 2
 * ```
 *
 * @module
 */
export * from "./evaluate.ts";
export * from "./study_schema.ts";
export * from "./study_presets.ts";
export * from "./study_file.ts";
export * from "./study_budget.ts";
export * from "./study_result.ts";
export * from "./study.ts";
export * from "./study_noise.ts";
export * from "./study_table.ts";
export * from "./study_bar_chart.ts";
export * from "./study_loss_curves.ts";
export * from "./study_report.ts";
// Sibling-member types this package's API names (documentation links).
export type { BackendName, Precision } from "@scaling-vicreg/backend";
export type { DatasetKind, ImageSource } from "@scaling-vicreg/data";
export type {
  CheckpointedForward,
  ForwardOptions,
  Module,
  ResNet,
  ResNetArch,
  ResNetForwardOptions,
  ResNetOutput,
} from "@scaling-vicreg/models";
export type { LocalMatching, VicregVariant } from "@scaling-vicreg/losses";
export type { RgbImage } from "@scaling-vicreg/backend/image";
export type { PretrainConfig, StepMetrics } from "@scaling-vicreg/train";
export type {
  ProbeHyperparams,
  ProbeOptimizer,
  ProbeReport,
  ProbeScheduler,
  ReportKnn,
  ReportMetrics,
  ReportSplits,
  ReportTransforms,
  ReportTtaSweep,
  SweepTrial,
  TextBox,
  TtaSplits,
} from "@scaling-vicreg/probe";
