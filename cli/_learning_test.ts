import { assertEquals } from "@scaling-vicreg/backend/testing";
import type { StepMetrics } from "@scaling-vicreg/train";
import { learningLine } from "./_learning.ts";

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
