import * as tf from "@tensorflow/tfjs-core";
import { Rng, useBackend } from "@scaling-vicreg/backend";
import { TrainTransform } from "@scaling-vicreg/augment";
import { proceduralDataset } from "@scaling-vicreg/data";
import { vicregLoss } from "@scaling-vicreg/losses";
import { loadStateDict } from "@scaling-vicreg/models";
import {
  assertClose,
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { ConfigError, type PretrainConfig } from "./config.ts";
import { NonFiniteLossError, pretrain } from "./pretrain.ts";
import { createVicregModel, type VicregModel } from "./vicreg_model.ts";
import { loadLatestCheckpoint } from "./checkpoint.ts";
import { tinyRunConfig } from "./_test_run.ts";
import { readMetrics } from "./run_metrics.ts";

// cpu-fast is the CPU reference backend with the im2col conv-gradient kernels
// (tested against the reference in backend/kernels): the plain kernels make a
// training step ~10× slower.
await useBackend("cpu-fast");

const smallConfig = tinyRunConfig;

/**
 * VICReg loss (the run's λ, μ, ν) of fixed views of fixed images, BatchNorm
 * in training mode.
 */
async function fixedViewLoss(
  nets: VicregModel,
  seed: number,
  coefficients: PretrainConfig,
): Promise<number> {
  const source = proceduralDataset({
    n: 32,
    size: 24,
    seed: 99,
    split: "test",
  });
  const images = await Promise.all(
    Array.from({ length: 32 }, (_, i) => source.get(i)),
  );
  const views = new TrainTransform({ size: 16 }).apply(images, new Rng(seed));
  const loss = tf.tidy(() => {
    const za = nets.projector.forward(
      nets.backbone.forward(views.view1, { training: true }).embedding,
      {
        training: true,
      },
    );
    const zb = nets.projector.forward(
      nets.backbone.forward(views.view2, { training: true }).embedding,
      {
        training: true,
      },
    );
    const { simCoeff, stdCoeff, covCoeff } = coefficients;
    return vicregLoss(za, zb, { simCoeff, stdCoeff, covCoeff }).loss;
  });
  const value = (await loss.data())[0];
  tf.dispose([loss, views.view1, views.view2]);
  return value;
}

Deno.test("pretrain() lowers the VICReg loss of held-out views and keeps the embedding std away from 0", async () => {
  const dir = await Deno.makeTempDir();
  const config = smallConfig(dir, {
    epochs: 4,
    "use-local-loss": false,
    "base-lr": 0.1,
  });
  const result = await pretrain(config);
  assertEquals(result.status, "completed");
  assertEquals(result.steps, 16);
  const m = await readMetrics(dir);
  assertEquals(
    m.map((x) => x.step),
    Array.from({ length: 16 }, (_, i) => i + 1),
  );
  assertTrue(m[15].embeddingStd > 0.05, `std ${m[15].embeddingStd}`);
  // No tensor leak: the live tensor count is the same after every step.
  assertEquals(new Set(m.map((x) => x.numTensors)).size, 1);
  // Warm-up: the first step runs at lr 0.
  assertEquals(m[0].lr, 0);
  // The same held-out views, before training (same seed ⇒ same init) and after.
  const initial = createVicregModel(config);
  const trained = createVicregModel(config);
  const ckpt = await loadLatestCheckpoint(dir);
  assertEquals(ckpt?.meta.step, 16);
  for (
    const [prefix, module] of [["backbone", trained.backbone], [
      "projector",
      trained.projector,
    ]] as const
  ) {
    const mine = Object.fromEntries(
      Object.entries(ckpt!.tensors).filter(([k]) => k.startsWith(`${prefix}.`))
        .map(([k, t]) => [k.slice(prefix.length + 1), t]),
    );
    loadStateDict(module, mine);
  }
  const before = await fixedViewLoss(initial, 5, config);
  const after = await fixedViewLoss(trained, 5, config);
  initial.dispose();
  trained.dispose();
  assertTrue(
    after < before - 0.1,
    `loss on held-out views should fall: before ${before}, after ${after}`,
  );
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  for (
    const f of [
      "backbone.safetensors",
      "config.yaml",
      "metrics.jsonl",
      "checkpoint-00000016.json",
    ]
  ) {
    assertTrue(files.includes(f), `missing ${f} in ${files}`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretrain() with the local loss logs finite local terms", async () => {
  const dir = await Deno.makeTempDir();
  await pretrain(
    smallConfig(dir, { "max-steps": 2, "local-matching": "location" }),
  );
  const m = await readMetrics(dir);
  assertEquals(m.length, 2);
  assertTrue(
    m.every((x) => x.localLoss !== undefined && Number.isFinite(x.localLoss)),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretrain() interrupted and resumed gives the same losses as an uninterrupted run", async () => {
  const straight = await Deno.makeTempDir();
  await pretrain(smallConfig(straight, { "max-steps": 6 }));
  const expected = await readMetrics(straight);

  const split = await Deno.makeTempDir();
  const controller = new AbortController();
  const first = await pretrain(smallConfig(split, { "max-steps": 6 }), {
    signal: controller.signal,
    onStep: (m) => {
      if (m.step === 3) controller.abort();
    },
  });
  assertEquals(first.status, "interrupted");
  assertEquals(first.steps, 3);
  const ckpt = await loadLatestCheckpoint(split);
  assertEquals([ckpt?.meta.step, ckpt?.meta.epoch, ckpt?.meta.batch], [
    3,
    0,
    3,
  ]);
  const second = await pretrain(
    smallConfig(split, { "max-steps": 6, resume: true }),
  );
  assertEquals(second.status, "completed");
  assertEquals(second.steps, 6);
  const resumed = await readMetrics(split);
  assertEquals(resumed.map((m) => m.step), expected.map((m) => m.step));
  for (
    const key of [
      "loss",
      "invariance",
      "variance",
      "covariance",
      "localLoss",
      "lr",
      "onlineTop1",
      "onlineLoss",
    ] as const
  ) {
    assertTrue(expected.every((m) => m[key] !== undefined), key);
    assertClose(
      resumed.map((m) => m[key] as number),
      expected.map((m) => m[key] as number),
      {
        rtol: 1e-6,
        atol: 1e-6,
        message: key,
      },
    );
  }
  await Deno.remove(straight, { recursive: true });
  await Deno.remove(split, { recursive: true });
});

Deno.test("pretrain() in micro-batches, interrupted and resumed, writes the same weights byte for byte as an uninterrupted run", async () => {
  const flags = { "max-steps": 4, "micro-batch": 4, epochs: 1 };
  const straight = await Deno.makeTempDir();
  const split = await Deno.makeTempDir();
  try {
    const events: string[] = [];
    await pretrain(smallConfig(straight, flags), {
      onEvent: (e) => events.push(e.message),
    });
    assertTrue(
      events.some((m) => m.includes("micro-batches of 4")),
      events.join("\n"),
    );
    const controller = new AbortController();
    await pretrain(smallConfig(split, flags), {
      signal: controller.signal,
      onStep: (m) => {
        if (m.step === 2) controller.abort();
      },
    });
    await pretrain(smallConfig(split, { ...flags, resume: true }));
    assertEquals(
      await Deno.readFile(`${split}/backbone.safetensors`),
      await Deno.readFile(`${straight}/backbone.safetensors`),
    );
    // The online probe's weights and momentum too.
    const [a, b] = [
      await loadLatestCheckpoint(split),
      await loadLatestCheckpoint(straight),
    ];
    const probe = Object.keys(b!.tensors).filter((k) =>
      k.startsWith("online_probe.")
    );
    assertEquals(probe.length, 4);
    for (const k of probe) {
      assertEquals(a!.tensors[k].data, b!.tensors[k].data, k);
    }
    assertEquals(a!.meta.state.online, b!.meta.state.online);
  } finally {
    await Deno.remove(straight, { recursive: true });
    await Deno.remove(split, { recursive: true });
  }
});

Deno.test("pretrain() writes one TensorBoard event file in the run directory, none with tensorboard off", async () => {
  const dir = await Deno.makeTempDir();
  const events = (run: string) =>
    [...Deno.readDirSync(run)].map((e) => e.name)
      .filter((n) => n.startsWith("events.out.tfevents."));
  try {
    await pretrain(smallConfig(`${dir}/on`, { "max-steps": 2 }));
    const [file, ...more] = events(`${dir}/on`);
    assertEquals(more, []);
    assertTrue(
      /^events\.out\.tfevents\.\d{10}\.[A-Za-z0-9._-]+$/.test(file),
      file,
    );
    // The header, a SessionLog, the config and 2 steps of scalars.
    assertTrue((await Deno.stat(`${dir}/on/${file}`)).size > 500);
    await pretrain(
      smallConfig(`${dir}/off`, { "max-steps": 2, tensorboard: false }),
    );
    assertEquals(events(`${dir}/off`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrain() rejects a data set smaller than one batch before writing anything", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.remove(dir);
  await assertRejects(
    () =>
      pretrain(smallConfig(dir), {
        source: proceduralDataset({ n: 4, size: 24 }),
      }),
    RangeError,
    "Expected at least batchSize (8) images",
  );
  let exists = true;
  try {
    await Deno.stat(dir);
  } catch {
    exists = false;
  }
  assertEquals(exists, false);
});

Deno.test("pretrain() stops with NonFiniteLossError on a diverging run and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const config = smallConfig(dir, {
    optimizer: "sgd",
    "base-lr": 1e12,
    // Step 1 runs at lr 0 and step 2 blows the weights up: NaN at step 3.
    "warmup-epochs": 1,
    "use-local-loss": false,
    "checkpoint-every": 1,
    epochs: 4,
  });
  const error = await assertRejects(
    () => pretrain(config),
    NonFiniteLossError,
    "the last checkpoint before the blow-up",
  );
  // The loss of step k is computed with the weights of checkpoint k − 1:
  // that one goes to diverged/ too.
  const ckpt = await loadLatestCheckpoint(dir);
  assertEquals(ckpt?.meta.step, error.step - 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretrain() resumed after its last step rewrites no checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  await pretrain(smallConfig(dir, { "max-steps": 3, "use-local-loss": false }));
  const path = `${dir}/checkpoint-00000003.json`;
  const before = await Deno.readTextFile(path);
  const again = await pretrain(
    smallConfig(dir, { "max-steps": 3, "use-local-loss": false, resume: true }),
  );
  assertEquals(again.steps, 3);
  assertEquals(again.checkpoint, path);
  assertEquals(again.last?.step, 3);
  assertEquals(await Deno.readTextFile(path), before);
  assertEquals(JSON.parse(before).batch, 3);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretrain() refuses to start over a run or to resume it with a different model", async () => {
  const dir = await Deno.makeTempDir();
  await pretrain(smallConfig(dir, { "max-steps": 2, "use-local-loss": false }));
  const before = await Deno.readTextFile(`${dir}/metrics.jsonl`);
  await assertRejects(
    () =>
      pretrain(smallConfig(dir, { "max-steps": 2, "use-local-loss": false })),
    ConfigError,
    "already holds a run (checkpoint-00000002.json): pass --resume",
  );
  await assertRejects(
    () =>
      pretrain(
        smallConfig(dir, {
          "max-steps": 3,
          "use-local-loss": false,
          mlp: "64-64",
          resume: true,
        }),
      ),
    ConfigError,
    'Key "mlp" is "64-64" but the run being resumed used "32-32"',
  );
  assertEquals(await Deno.readTextFile(`${dir}/metrics.jsonl`), before);
  // A line torn by a kill mid-append does not stop a resume.
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":3,"lo', {
    append: true,
  });
  const more = await pretrain(
    smallConfig(dir, { "max-steps": 3, "use-local-loss": false, resume: true }),
  );
  assertEquals(more.steps, 3);
  assertEquals((await readMetrics(dir)).map((m) => m.step), [1, 2, 3]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pretrain() with 2 global + 3 local crops, interrupted and resumed, writes the same weights and online-probe losses; a resume with other crops is refused", async () => {
  const flags = {
    "max-steps": 4,
    epochs: 1,
    "local-crops": 3,
    "local-crop-size": 8,
    "local-matching": "location",
  };
  const straight = await Deno.makeTempDir();
  const split = await Deno.makeTempDir();
  try {
    await pretrain(smallConfig(straight, flags));
    const controller = new AbortController();
    await pretrain(smallConfig(split, flags), {
      signal: controller.signal,
      onStep: (m) => {
        if (m.step === 2) controller.abort();
      },
    });
    await assertRejects(
      () =>
        pretrain(
          smallConfig(split, { ...flags, "local-crops": 2, resume: true }),
        ),
      ConfigError,
      'Key "local-crops" is 2 but the run being resumed used 3',
    );
    await pretrain(smallConfig(split, { ...flags, resume: true }));
    assertEquals(
      await Deno.readFile(`${split}/backbone.safetensors`),
      await Deno.readFile(`${straight}/backbone.safetensors`),
    );
    const metrics = await readMetrics(straight);
    assertEquals(metrics.map((m) => m.step), [1, 2, 3, 4]);
    assertTrue(metrics.every((m) => Number.isFinite(m.localLoss!)));
    // The online probe trains on global view 1 of the five.
    assertTrue(metrics.every((m) => Number.isFinite(m.onlineTop1!)));
    assertEquals(
      (await readMetrics(split)).map((m) => m.onlineLoss),
      metrics.map((m) => m.onlineLoss),
    );
  } finally {
    await Deno.remove(straight, { recursive: true });
    await Deno.remove(split, { recursive: true });
  }
});

Deno.test("pretrain() with local crops differs from the two-view run of the same seed, whose global views it shares", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    const flags = { "max-steps": 1, epochs: 1, "use-local-loss": false };
    await pretrain(smallConfig(a, flags));
    await pretrain(
      smallConfig(b, { ...flags, "local-crops": 2, "local-crop-size": 8 }),
    );
    const [two] = await readMetrics(a);
    const [multi] = await readMetrics(b);
    // same initial weights and global views; the local views add pairs
    assertTrue(Math.abs(two.loss - multi.loss) > 1e-4);
    assertTrue(Math.abs(two.invariance - multi.invariance) > 1e-5);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});
