import { assertEquals } from "@scaling-vicreg/backend/testing";
import { PRESETS, resolveConfig } from "@scaling-vicreg/train";
import { demoCommand } from "./demo.ts";

Deno.test("vicreg demo's budget flags default to the tiny preset's", () => {
  const tiny = resolveConfig({ flags: { preset: "tiny" } });
  assertEquals(demoCommand.flags?.epochs.default, PRESETS.tiny.epochs);
  assertEquals(demoCommand.flags?.["num-images"].default, tiny.numImages);
  assertEquals(tiny.epochs, PRESETS.tiny.epochs);
});
