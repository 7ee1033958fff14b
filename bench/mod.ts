/**
 * Benchmarks: the VICReg training step as `pretrain()` runs it (`train`'s
 * `VicregModel` and `stepGradients`), followed by a plain SGD update
 * (`optim`'s `createOptimizer("sgd")` without momentum or decay, as
 * `torch_step.py`'s `torch.optim.SGD`), timed here and in PyTorch
 * (`deno task bench:compare`), plus `deno bench` suites (`*_bench.ts`).
 *
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { STEP_CASES, timeTfjsStep } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const spec = { ...STEP_CASES["tiny-16px-b16"], batch: 2 };
 * console.log(await timeTfjsStep(spec, { steps: 1, warmup: 0 }));
 * ```
 *
 * @module
 */
export * from "./resnet_step.ts";
export * from "./compare.ts";
export * from "./augment_compare.ts";
export * from "./probe_compare.ts";
// Sibling-member types this package's API names (documentation links).
export type { Precision, Rng, RngState } from "@scaling-vicreg/backend";
export type { RgbImage } from "@scaling-vicreg/backend/image";
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
export type {
  LocalMatching,
  VicregVariant,
  ViewGeometry,
} from "@scaling-vicreg/losses";
export type {
  Optimizer,
  OptimizerKind,
  OptimizerState,
} from "@scaling-vicreg/optim";
export type {
  EmbedOptions,
  Projections,
  StepMode,
  StepOptions,
  StepPlan,
  VicregLoss,
  VicregLossSettings,
  VicregModel,
} from "@scaling-vicreg/train";
