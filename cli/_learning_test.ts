import { assertEquals } from "@scaling-vicreg/backend/testing";
import type { StepMetrics } from "@scaling-vicreg/train";
import { learningLine, onlineLine } from "./_learning.ts";

function step(
  step: number,
  loss: number,
  variance: number,
  embeddingStd: number,
): StepMetrics {
  return {
    step,
    epoch: 0,
    batch: step - 1,
    lr: 0.001,
    loss,
    invariance: 0.1,
    variance,
    covariance: 0.2,
    imagesPerSecond: 100,
    embeddingStd,
    collapsedFraction: 0,
    gradNorm: 1,
    totalSteps: 300,
    numTensors: 10,
  };
}

Deno.test("learningLine() reports the first and the last logged step, not the extremes", () => {
  const line = learningLine([
    step(2, 21.94, 0.7049, 0.2951),
    step(4, 30, 0.9, 0.1),
    step(300, 9.06, 0.1251, 0.8749),
  ]);
  assertEquals(
    line,
    "loss 21.9 → 9.1, variance term 0.70 → 0.13 (std of the projections 0.30 → 0.87) over steps 2–300",
  );
});

Deno.test("learningLine() gives nothing for fewer than two logged steps", () => {
  assertEquals(learningLine([]), undefined);
  assertEquals(learningLine([step(2, 21.94, 0.7, 0.3)]), undefined);
});

Deno.test("onlineLine() averages the probe's windows of the first and the last epoch, weighted by their steps, and names the kNN's first and last top-1", () => {
  const line = (
    at: number,
    epoch: number,
    onlineTop1: number,
    knnTop1?: number,
  ): StepMetrics => ({
    ...step(at, 20, 0.5, 0.5),
    epoch,
    onlineTop1,
    ...(knnTop1 === undefined ? {} : { knnTop1 }),
  });
  // Epoch 1: steps 1–3 at 10 %, step 4 at 30 %: (3·0.1 + 0.3)/4 = 15 %.
  // Epoch 3: steps 9–12 at 50 %.
  const metrics = [
    line(3, 0, 0.1),
    line(4, 0, 0.3, 0.2),
    line(8, 1, 0.4, 0.35),
    line(12, 2, 0.5, 0.45),
  ];
  assertEquals(
    onlineLine(metrics),
    "online probe top-1 (training views) 15.0 % in epoch 1 → 50.0 % in epoch 3; online kNN top-1 (held-back split) 20.0 % → 45.0 % (epochs 1–3)",
  );
  assertEquals(
    onlineLine(metrics.map(({ knnTop1: _, ...m }) => m)),
    "online probe top-1 (training views) 15.0 % in epoch 1 → 50.0 % in epoch 3",
  );
  assertEquals(onlineLine([step(2, 21.94, 0.7, 0.3)]), undefined);
});
