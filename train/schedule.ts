/**
 * The learning-rate schedule of VICReg: linear warm-up, then cosine decay to
 * 0.001 × the peak (facebookresearch/vicreg `adjust_learning_rate`), with the
 * peak scaled by batch size: lr = base_lr × batch / 256.
 *
 * @module
 */

/** Options of {@linkcode learningRate}. */
export interface ScheduleOptions {
  /** Base learning rate before batch scaling. @default {0.2} */
  baseLr?: number;
  /** Batch size: the peak is `baseLr × batchSize / 256`. @default {256} */
  batchSize?: number;
  /** Steps of linear warm-up from 0. @default {0} */
  warmupSteps?: number;
  /** Final learning rate as a fraction of the peak. @default {0.001} */
  endFactor?: number;
}

/**
 * The learning rate at `step` of `totalSteps`.
 *
 * warm-up: lr = peak × step / warmupSteps; then with
 * q = ½(1 + cos(π (step − warmup) / (total − warmup))):
 * lr = peak × q + peak × endFactor × (1 − q).
 *
 * @example
 * ```ts
 * import { learningRate } from "@scaling-vicreg/train/schedule";
 * learningRate(0, 100, { baseLr: 0.2, batchSize: 512, warmupSteps: 10 }); // 0
 * learningRate(10, 100, { baseLr: 0.2, batchSize: 512, warmupSteps: 10 }); // 0.4
 * ```
 *
 * @param step The step, from 0.
 * @param totalSteps All steps of the run.
 * @param options See {@linkcode ScheduleOptions}.
 * @returns The learning rate.
 */
export function learningRate(
  step: number,
  totalSteps: number,
  options: ScheduleOptions = {},
): number {
  const {
    baseLr = 0.2,
    batchSize = 256,
    warmupSteps = 0,
    endFactor = 0.001,
  } = options;
  const peak = baseLr * batchSize / 256;
  if (step < warmupSteps) return peak * step / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  const q = 0.5 *
    (1 + Math.cos(Math.PI * Math.min(step - warmupSteps, span) / span));
  return peak * q + peak * endFactor * (1 - q);
}
