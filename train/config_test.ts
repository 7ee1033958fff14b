import { assertEquals, assertThrows } from "@scaling-vicreg/backend/testing";
import {
  ConfigError,
  configToYaml,
  PRETRAIN_SCHEMA,
  resolveConfig,
  warmupEpochsOf,
} from "./config.ts";
import { parseYaml } from "@scaling-vicreg/backend/yaml";

Deno.test("resolveConfig() applies defaults < preset < file < flags", () => {
  const config = resolveConfig({
    file: { preset: "paper", epochs: 20, "batch-size": 64 },
    flags: { epochs: 3 },
  });
  assertEquals(config.arch, "resnet50x2");
  assertEquals(config.mlp, "2048-2048-1024");
  assertEquals(config.useLocalLoss, true);
  assertEquals(config.batchSize, 64);
  assertEquals(config.epochs, 3);
  assertEquals(config.simCoeff, 25);
  assertEquals(config.baseLr, 0.2);
});

Deno.test("resolveConfig() names an unknown key and suggests the close one", () => {
  const error = assertThrows(
    () => resolveConfig({ file: { "bach-size": 8 }, fileName: "run.yaml" }),
    ConfigError,
    'Unknown key "bach-size" in run.yaml (did you mean "batch-size"?)',
  );
  assertEquals(error.key, "bach-size");
});

Deno.test("resolveConfig() rejects wrong types and impossible values, naming the key", () => {
  assertThrows(
    () => resolveConfig({ file: { epochs: "ten" } }),
    ConfigError,
    'Key "epochs"',
  );
  assertThrows(
    () => resolveConfig({ flags: { "batch-size": 1 } }),
    ConfigError,
    'Key "batch-size"',
  );
  assertThrows(
    () => resolveConfig({ flags: { "base-lr": 0 } }),
    ConfigError,
    'Key "base-lr"',
  );
  assertThrows(
    () => resolveConfig({ flags: { optimizer: "adam" } }),
    ConfigError,
    "one of lars, adamw, sgd",
  );
  assertThrows(
    () => resolveConfig({ flags: { step: "fast" } }),
    ConfigError,
    "one of auto, joint, mixed, view-by-view",
  );
  assertThrows(
    () => resolveConfig({ flags: { backend: "cuda" } }),
    ConfigError,
    "one of auto, tensorflow, webgpu, blas, wasm, cpu-fast, cpu",
  );
  assertThrows(
    () => resolveConfig({ flags: { mlp: "2048--x" } }),
    ConfigError,
    'Key "mlp"',
  );
  assertThrows(
    () => resolveConfig({ file: { resume: true } }),
    ConfigError,
    'Unknown key "resume"',
  );
  assertThrows(
    () => resolveConfig({ flags: { "micro-batch": "0" } }),
    ConfigError,
    'Key "micro-batch" in flags expects auto or an integer ≥ 1',
  );
  assertThrows(
    () => resolveConfig({ file: { "kept-slices": -1 } }),
    ConfigError,
    'Key "kept-slices" in',
  );
});

Deno.test("resolveConfig() takes kept-slices auto or any count from zero", () => {
  assertEquals(resolveConfig({}).keptSlices, "auto");
  assertEquals(resolveConfig({ flags: { "kept-slices": "0" } }).keptSlices, 0);
  assertEquals(resolveConfig({ file: { "kept-slices": 3 } }).keptSlices, 3);
});

Deno.test("configToYaml() round-trips through resolveConfig()", () => {
  const config = resolveConfig({ flags: { preset: "tiny", seed: 7 } });
  const again = resolveConfig({
    file: parseYaml(configToYaml(config)) as Record<string, unknown>,
  });
  assertEquals(again, config);
  assertEquals(PRETRAIN_SCHEMA.length > 20, true);
});

Deno.test("warmupEpochsOf() is 10 % of the epochs, at least one", () => {
  assertEquals(warmupEpochsOf(resolveConfig({ flags: { epochs: 147 } })), 15);
  assertEquals(warmupEpochsOf(resolveConfig({ flags: { epochs: 3 } })), 1);
  assertEquals(
    warmupEpochsOf(
      resolveConfig({ flags: { epochs: 30, "warmup-epochs": 2 } }),
    ),
    2,
  );
});
