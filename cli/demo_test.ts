import { assertEquals } from "@scaling-vicreg/backend/testing";
import { PRESETS, resolveConfig } from "@scaling-vicreg/train";
import { demoCommand } from "./demo.ts";

Deno.test("vicreg demo's budget flags default to the tiny preset's", () => {
  const tiny = resolveConfig({ flags: { preset: "tiny" } });
  assertEquals(demoCommand.flags?.epochs.default, PRESETS.tiny.epochs);
  assertEquals(demoCommand.flags?.["num-images"].default, tiny.numImages);
  assertEquals(tiny.epochs, PRESETS.tiny.epochs);
});

Deno.test("vicreg demo's --help states the tiny preset's loss coefficients and budget", () => {
  const tiny = resolveConfig({ flags: { preset: "tiny" } });
  const help = demoCommand.description ?? "";
  for (
    const part of [
      `${tiny.epochs} epochs of ${tiny.numImages} images`,
      `λ = ${tiny.simCoeff}, μ = ${tiny.stdCoeff}, ν = ${tiny.covCoeff}`,
      `${tiny.optimizer} at base lr ${tiny.baseLr}`,
    ]
  ) {
    assertEquals(help.includes(part), true, `--help lacks "${part}"`);
  }
});
