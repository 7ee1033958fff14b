/**
 * The injected tensor backend and the seeded generator every member shares.
 *
 * ```ts
 * import { useBackend, Rng } from "@scaling-vicreg/backend";
 * await useBackend("cpu");
 * const rng = new Rng(0);
 * ```
 *
 * @module
 */
export * from "./backend.ts";
export * from "./memory_budget.ts";
export * from "./random.ts";
export * from "./image.ts";
export * from "./fs.ts";
export * from "./lean_tape.ts";
export * from "./kernel_names.ts";
export * from "./gradients.ts";
export {
  activePrecision,
  isPrecision,
  type Precision,
  PRECISIONS,
} from "./precision.ts";
export * from "./set_precision.ts";
export * from "./cpu_features.ts";
