import {
  assertEquals,
  ignoreUnless,
  pythonImports,
} from "@scaling-vicreg/backend/testing";
import { timeTorchStep } from "./compare.ts";
import { STEP_CASES } from "./resnet_step.ts";

Deno.test({
  name:
    "timeTorchStep: --precision bf16 runs PyTorch's step under autocast and says so",
  ignore: ignoreUnless(await pythonImports("torch"), "torch"),
  async fn() {
    const spec = { ...STEP_CASES["tiny-16px-b16"], batch: 4 };
    for (const precision of ["fp32", "bf16"] as const) {
      const timing = await timeTorchStep(spec, {
        steps: 1,
        warmup: 0,
        threads: 1,
        python: "python3",
        precision,
      });
      assertEquals(
        "error" in timing ? timing.error : timing.precision,
        precision,
      );
    }
  },
});
