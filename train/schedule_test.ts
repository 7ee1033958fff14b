import { assertClose } from "@scaling-vicreg/backend/testing";
import { learningRate } from "./schedule.ts";

Deno.test("learningRate() warms up linearly then decays by cosine to 0.001 × peak", () => {
  const o = { baseLr: 0.2, batchSize: 512, warmupSteps: 10 }; // peak 0.4
  assertClose(learningRate(0, 100, o), 0);
  assertClose(learningRate(5, 100, o), 0.2);
  assertClose(learningRate(10, 100, o), 0.4);
  // Halfway through the decay q = 1/2: 0.4/2 + 0.0004/2.
  assertClose(learningRate(55, 100, o), 0.2002);
  assertClose(learningRate(100, 100, o), 0.0004);
});
