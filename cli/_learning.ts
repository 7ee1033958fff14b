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

/**
 * Says how the online probe's top-1 on the training views moved from the
 * first epoch to the last (each epoch's logged windows, weighted by the steps
 * they cover), and the online kNN's first and last top-1 when it ran, e.g.
 * `online probe top-1 (training views) 10.2 % in epoch 1 → 44.8 % in epoch
 * 32; online kNN top-1 (held-back split) 31.0 % → 52.0 % (epochs 8–32)`.
 *
 * @param metrics The logged steps, in order (`metrics.jsonl`).
 * @returns The line, or `undefined` when the probe logged nothing.
 */
export function onlineLine(
  metrics: readonly StepMetrics[],
): string | undefined {
  const probed = metrics.filter((m) => m.onlineTop1 !== undefined);
  if (probed.length === 0) return undefined;
  // Each line's window covers the steps since the line before it.
  const windows = probed.map((m, i) => ({
    epoch: m.epoch,
    top1: m.onlineTop1!,
    steps: m.step - (i === 0 ? 0 : probed[i - 1].step),
  }));
  const meanOf = (epoch: number) => {
    const w = windows.filter((x) => x.epoch === epoch);
    const steps = w.reduce((s, x) => s + x.steps, 0);
    return w.reduce((s, x) => s + x.top1 * x.steps, 0) / steps;
  };
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const [first, last] = [windows[0].epoch, windows.at(-1)!.epoch];
  const parts = [
    `online probe top-1 (training views) ${pct(meanOf(first))} in epoch ${
      first + 1
    } → ${pct(meanOf(last))} in epoch ${last + 1}`,
  ];
  const knn = metrics.filter((m) => m.knnTop1 !== undefined);
  if (knn.length > 0) {
    const [a, b] = [knn[0], knn.at(-1)!];
    parts.push(
      `online kNN top-1 (held-back split) ${pct(a.knnTop1!)} → ${
        pct(b.knnTop1!)
      } (epochs ${a.epoch + 1}–${b.epoch + 1})`,
    );
  }
  return parts.join("; ");
}
