import { assertEquals, assertThrows } from "@scaling-vicreg/backend/testing";
import {
  ConfigError,
  configRecord,
  configToYaml,
  cropsOf,
  PRETRAIN_SCHEMA,
  type PretrainConfig,
  resolveConfig,
  resumeConfig,
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
    "one of auto, tensorflow, webgpu, blas, native, wasm, cpu-fast, cpu",
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

const tiny = (flags: Record<string, unknown> = {}): PretrainConfig =>
  resolveConfig({ flags: { preset: "tiny", ...flags } });

Deno.test("resumeConfig() lets the budget, logging and compute keys change silently", () => {
  const saved = tiny();
  const requested = tiny({
    epochs: 64,
    "max-steps": 10,
    "checkpoint-every": 3,
    "keep-checkpoints": 5,
    "log-every": 2,
    backend: "wasm",
    precision: "bf16",
    step: "view-by-view",
    "micro-batch": 8,
    "kept-slices": 0,
    strict: true,
    "max-image-pixels": 1000,
    resume: true,
    "exp-dir": "elsewhere",
  });
  const { config, changes } = resumeConfig(saved, requested);
  assertEquals(config, requested);
  assertEquals(changes, []);
});

Deno.test("resumeConfig() reports each learning-rate key it changes, in schema order", () => {
  const saved = tiny({ "base-lr": 0.05, wd: 0.01, "warmup-epochs": 2 });
  const { config, changes } = resumeConfig(
    saved,
    tiny({ "base-lr": 0.01, wd: 0.02, "warmup-epochs": 2 }),
  );
  assertEquals(config.baseLr, 0.01);
  assertEquals(changes, [
    { key: "base-lr", from: 0.05, to: 0.01 },
    { key: "wd", from: 0.01, to: 0.02 },
  ]);
});

Deno.test("resumeConfig() refuses every key that defines what is trained, naming it and the saved copy", () => {
  const saved = tiny();
  const changed: Record<string, unknown> = {
    arch: "resnet18",
    stem: "imagenet",
    mlp: "64-64",
    "sim-coeff": 5,
    "loss-variant": "paper-code",
    "use-local-loss": !saved.useLocalLoss,
    optimizer: "sgd",
    "batch-size": 32,
    size: 24,
    "crop-min-scale": 0.5,
    "num-images": 100,
    seed: 7,
    "use-viewmix": !saved.useViewmix,
  };
  for (const [flag, value] of Object.entries(changed)) {
    const key = PRETRAIN_SCHEMA.find((k) => k.flag === flag)!.key;
    const requested = tiny({ [flag]: value });
    assertEquals(requested[key] !== saved[key], true, `${flag} must differ`);
    const error = assertThrows(
      () => resumeConfig(saved, requested, "runs/a/checkpoint-00000004.json"),
      ConfigError,
      `Key "${flag}" is ${
        JSON.stringify(requested[key])
      } but the run being resumed used ${JSON.stringify(saved[key])}`,
    );
    assertEquals(error.key, flag);
    assertEquals(
      error.message.includes("(runs/a/checkpoint-00000004.json); only epochs"),
      true,
      error.message,
    );
  }
  // Every schema key is in one class: free, warn, or fixed (no mark).
  for (const k of PRETRAIN_SCHEMA) {
    assertEquals(
      [undefined, "free", "warn"].includes(k.onResume),
      true,
      k.flag,
    );
  }
});

Deno.test("resolveConfig() takes precision fp32 (default) or bf16 from a flag or the YAML key, and names the key otherwise", () => {
  assertEquals(resolveConfig({}).precision, "fp32");
  assertEquals(
    resolveConfig({ flags: { precision: "bf16" } }).precision,
    "bf16",
  );
  assertEquals(
    resolveConfig({
      file: parseYaml("precision: bf16\n") as Record<string, unknown>,
    })
      .precision,
    "bf16",
  );
  assertEquals(
    resolveConfig({ file: { precision: "bf16" }, flags: { precision: "fp32" } })
      .precision,
    "fp32",
  );
  assertThrows(
    () => resolveConfig({ flags: { precision: "fp16" } }),
    ConfigError,
    'Key "precision"',
  );
  assertEquals(
    configRecord(resolveConfig({ flags: { precision: "bf16" } })).precision,
    "bf16",
  );
});

Deno.test("resumeConfig() with no saved configuration keeps the request", () => {
  const requested = tiny({ arch: "resnet18" });
  assertEquals(resumeConfig(undefined, requested), {
    config: requested,
    changes: [],
  });
});

Deno.test("resumeConfig() refuses a changed preset at the preset key", () => {
  assertThrows(
    () => resumeConfig(tiny(), resolveConfig({ flags: { preset: "paper" } })),
    ConfigError,
    'Key "preset" is "paper" but the run being resumed used "tiny"',
  );
});

Deno.test("configRecord() is the kebab-case record resolveConfig() reads back, without flag-only keys", () => {
  const config = tiny({ "base-lr": 0.3 });
  const record = configRecord(config);
  assertEquals(record["base-lr"], 0.3);
  assertEquals("resume" in record || "ranks" in record, false);
  assertEquals(resolveConfig({ file: record }), { ...config, resume: false });
});

Deno.test("cropsOf() gives two views of TrainTransform by default and VICRegL's crops with --preset vicregl", () => {
  const plain = resolveConfig({ flags: { "crop-min-scale": 0.3 } });
  assertEquals(cropsOf(plain), {
    numGlobal: 2,
    numLocal: 0,
    globalSize: 96,
    localSize: 41,
    globalScale: [0.3, 1],
    localScale: [0.08, 0.4],
  });
  const vicregl = resolveConfig({ flags: { preset: "vicregl" } });
  assertEquals(cropsOf(vicregl), {
    numGlobal: 2,
    numLocal: 6,
    globalSize: 96,
    localSize: 41,
    globalScale: [0.4, 1],
    localScale: [0.08, 0.4],
  });
  assertEquals(vicregl.localMatching, "location");
  assertEquals(vicregl.arch, "resnet50x2");
  const set = resolveConfig({
    file: {
      "local-crops": 4,
      "local-crop-size": 16,
      "global-crop-scale": "0.5,1",
    },
    flags: { "local-crop-scale": "0.05,0.5", size: 32 },
  });
  assertEquals(cropsOf(set), {
    numGlobal: 2,
    numLocal: 4,
    globalSize: 32,
    localSize: 16,
    globalScale: [0.5, 1],
    localScale: [0.05, 0.5],
  });
});

Deno.test("resolveConfig() rejects bad crop keys in one line naming the key", () => {
  const cases: [Record<string, unknown>, string, string][] = [
    [
      { "local-crops": 2, "local-crop-size": 120 },
      "local-crop-size",
      'Key "local-crop-size" (120) exceeds "size" (96)',
    ],
    [
      { "local-crop-scale": "0,0.4" },
      "local-crop-scale",
      'key "local-crop-scale" = [lo, hi] with 0 < lo ≤ hi ≤ 1',
    ],
    [
      { "global-crop-scale": "0.5,1.2" },
      "global-crop-scale",
      "0 < lo ≤ hi ≤ 1",
    ],
    [{ "global-crop-scale": "half" }, "global-crop-scale", "two numbers lo,hi"],
    [{ "global-crops": 1 }, "global-crops", "fewer than 2 views"],
    [{ "global-crops": 0 }, "global-crops", "≥ 1"],
    [{ "local-crops": -1 }, "local-crops", "≥ 0"],
    [
      { "local-crops": 2, "use-viewmix": true },
      "use-viewmix",
      "mixes the two views",
    ],
  ];
  for (const [flags, key, message] of cases) {
    const error = assertThrows(
      () => resolveConfig({ flags }),
      ConfigError,
      message,
    );
    assertEquals(error.key, key);
    assertEquals(error.message.includes("\n"), false);
  }
});

Deno.test("resolveConfig() turns the online probe off from a file or a flag, and rejects bad online-probe and online-kNN values in one line naming the key", () => {
  assertEquals(resolveConfig({}).onlineProbe, true);
  assertEquals(resolveConfig({}).onlineKnnEvery, 0);
  assertEquals(
    resolveConfig({ file: { "online-probe": false } }).onlineProbe,
    false,
  );
  assertEquals(
    resolveConfig({ flags: { "online-probe": false } }).onlineProbe,
    false,
  );
  const cases: [Record<string, unknown>, string][] = [
    [
      { "online-probe": "yes" },
      'Key "online-probe" in flags expects true or false: received "yes"',
    ],
    [
      { "online-probe-lr": 0 },
      'Key "online-probe-lr" in flags expects a number > 0: received 0',
    ],
    [
      { "online-knn-every": -1 },
      'Key "online-knn-every" in flags expects a number ≥ 0: received -1',
    ],
    [
      { "online-knn-every": 1.5 },
      'Key "online-knn-every" in flags expects an integer: received 1.5',
    ],
    [
      { "online-knn-every": 5, epochs: 4 },
      'Key "online-knn-every" (5) exceeds "epochs" (4): the kNN would never run (0 turns it off)',
    ],
    [
      { "online-knn-holdout": 0 },
      'Key "online-knn-holdout" in flags expects a number > 0: received 0',
    ],
    [
      { "online-knn-holdout": 0.6 },
      'Key "online-knn-holdout" in flags expects a number ≤ 0.5: received 0.6',
    ],
  ];
  for (const [flags, message] of cases) {
    const error = assertThrows(
      () => resolveConfig({ flags }),
      ConfigError,
      message,
    );
    assertEquals(error.message, message);
    assertEquals(error.message.includes("\n"), false);
    assertEquals(error.key, Object.keys(flags)[0]);
  }
});
