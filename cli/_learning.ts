/**
 * The demo's one-line account of what pretraining did to the VICReg terms,
 * read from the run's logged steps.
 *
 * @module
 */
import type { StepMetrics } from "@scaling-vicreg/train";

/**
 * Says how the loss, the variance term and the projections' std moved from
 * the first logged step to the last, e.g. `loss 22.0 → 9.1, variance term
 * 0.70 → 0.12 (std of the projections 0.30 → 0.88) over steps 2–256`.
 *
 * @param metrics The logged steps, in order (`metrics.jsonl`).
 * @returns The line, or `undefined` when fewer than two steps were logged.
 */
export function learningLine(
  metrics: readonly StepMetrics[],
): string | undefined {
  if (metrics.length < 2) return undefined;
  const first = metrics[0], last = metrics[metrics.length - 1];
  const move = (a: number, b: number, digits: number) =>
    `${a.toFixed(digits)} → ${b.toFixed(digits)}`;
  return `loss ${move(first.loss, last.loss, 1)}, variance term ${
    move(first.variance, last.variance, 2)
  } (std of the projections ${
    move(first.embeddingStd, last.embeddingStd, 2)
  }) over steps ${first.step}–${last.step}`;
}
