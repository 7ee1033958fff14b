// The online probe and kNN inside pretrain(): they leave the backbone, its
// loss curve and the checkpoints' training state byte for byte as they are,
// they resume exactly, and they refuse data without labels (that the probe
// learns is online_probe_test.ts's, and the demo's).
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { type ImageSource, proceduralDataset } from "@scaling-vicreg/data";
import { ConfigError } from "./config.ts";
import { pretrain } from "./pretrain.ts";
import { loadLatestCheckpoint } from "./checkpoint.ts";
import { onlineKnnSplit } from "./online_knn.ts";
import type { StepMetrics } from "./run_metrics.ts";
import { tinyRunConfig } from "./_test_run.ts";
import { readMetrics as readStepMetrics } from "./run_metrics.ts";

await useBackend("cpu-fast");

/** The fields every run logs, whatever it monitors (not time or tensor counts). */
const TRAINING_FIELDS = [
  "step",
  "epoch",
  "batch",
  "lr",
  "loss",
  "invariance",
  "variance",
  "covariance",
  "localLoss",
  "embeddingStd",
  "collapsedFraction",
  "gradNorm",
  "totalSteps",
] as const;

function trainingFields(metrics: StepMetrics[]) {
  return metrics.map((m) => TRAINING_FIELDS.map((k) => m[k]));
}

/** The checkpoint's tensors, as bytes, by name. */
async function checkpointBytes(dir: string): Promise<Map<string, string>> {
  const ckpt = await loadLatestCheckpoint(dir);
  assertTrue(ckpt !== undefined, `no checkpoint in ${dir}`);
  return new Map(
    Object.entries(ckpt.tensors).map((
      [k, t],
    ) => [k, new Uint8Array(t.data.buffer).join()]),
  );
}

async function withDirs(
  n: number,
  body: (...dirs: string[]) => Promise<void>,
): Promise<void> {
  const dirs = await Promise.all(
    Array.from({ length: n }, () => Deno.makeTempDir()),
  );
  try {
    await body(...dirs);
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
}

Deno.test("pretrain() with and without the online probe, in micro-batches: the same backbone.safetensors and training checkpoint byte for byte, the same metrics but the probe's", async () => {
  const flags = { "max-steps": 4, "micro-batch": 3, "kept-slices": 1 };
  await withDirs(2, async (on, off) => {
    await pretrain(tinyRunConfig(on, flags));
    await pretrain(tinyRunConfig(off, { ...flags, "online-probe": false }));
    assertEquals(
      await Deno.readFile(`${on}/backbone.safetensors`),
      await Deno.readFile(`${off}/backbone.safetensors`),
    );
    const [withProbe, without] = [
      await checkpointBytes(on),
      await checkpointBytes(off),
    ];
    const probeKeys = [...withProbe.keys()].filter((k) =>
      k.startsWith("online_probe.")
    );
    assertEquals(probeKeys.sort(), [
      "online_probe.bias",
      "online_probe.optimizer.bias.momentum_buffer",
      "online_probe.optimizer.weight.momentum_buffer",
      "online_probe.weight",
    ]);
    for (const k of probeKeys) withProbe.delete(k);
    assertEquals(withProbe, without);
    const [a, b] = [await readStepMetrics(on), await readStepMetrics(off)];
    assertEquals(trainingFields(a), trainingFields(b));
    assertTrue(a.every((m) => m.onlineTop1! >= 0 && m.onlineTop1! <= 1));
    assertTrue(a.every((m) => Number.isFinite(m.onlineLoss)));
    assertTrue(b.every((m) => m.onlineTop1 === undefined));
    // The first step's probe is at zero: every logit 0, loss ln C (10 classes).
    assertEquals(Math.abs(a[0].onlineLoss! - Math.log(10)) < 1e-5, true);
  });
});

Deno.test("pretrain()'s online probe, interrupted mid-window and resumed, logs the same top-1 and loss and ends with the same probe byte for byte", async () => {
  // Lines every 3 steps, interrupted during step 2 (its slices report
  // progress): the checkpoint at step 2 holds a window of two steps, which
  // the resumed run's line at step 3 must count.
  const flags = { "max-steps": 6, "log-every": 3, "micro-batch": 4 };
  await withDirs(2, async (straight, split) => {
    await pretrain(tinyRunConfig(straight, flags));
    const controller = new AbortController();
    const first = await pretrain(tinyRunConfig(split, flags), {
      signal: controller.signal,
      onSlice: (step) => {
        if (step === 2) controller.abort();
      },
    });
    assertEquals([first.status, first.steps], ["interrupted", 2]);
    const ckpt = await loadLatestCheckpoint(split);
    assertEquals(ckpt?.meta.step, 2);
    await pretrain(tinyRunConfig(split, { ...flags, resume: true }));
    const [a, b] = [
      await readStepMetrics(split),
      await readStepMetrics(straight),
    ];
    assertEquals(a.map((m) => m.step), [3, 4, 6]); // 4: the end of epoch 1
    assertEquals(
      a.map((m) => [m.onlineTop1, m.onlineLoss]),
      b.map((m) => [m.onlineTop1, m.onlineLoss]),
    );
    assertEquals(trainingFields(a), trainingFields(b));
    const [x, y] = [
      await checkpointBytes(split),
      await checkpointBytes(straight),
    ];
    for (
      const k of [...y.keys()].filter((k) => k.startsWith("online_probe."))
    ) {
      assertEquals(x.get(k), y.get(k), k);
    }
  });
});

Deno.test("pretrain()'s online kNN holds its split back from pretraining, logs knnTop1 at the epoch ends, and leaves training as on the remaining images alone", async () => {
  const flags = {
    epochs: 2,
    "online-knn-every": 1,
    "online-knn-holdout": 0.25,
    "use-local-loss": false,
  };
  await withDirs(2, async (knn, plain) => {
    const source = proceduralDataset({ n: 32, size: 24, seed: 0 });
    const events: string[] = [];
    await pretrain(tinyRunConfig(knn, flags), {
      source,
      onEvent: (e) => events.push(e.message),
    });
    // 32 images of 10 classes, ¼ of each held back (1 each): 22 left, 2
    // batches of 8 per epoch.
    assertTrue(
      events.some((e) =>
        e.startsWith("Online kNN every 1 epochs: 10 images held back")
      ),
      events.join("\n"),
    );
    const m = await readStepMetrics(knn);
    assertEquals(m.map((x) => x.step), [1, 2, 3, 4]);
    assertEquals(m.map((x) => x.knnTop1 === undefined), [
      true,
      false,
      true,
      false,
    ]);
    for (const x of [m[1], m[3]]) {
      // 10 queries: a multiple of 0.1.
      assertTrue(x.knnTop1! >= 0 && x.knnTop1! <= 1, `${x.knnTop1}`);
      assertEquals(
        Math.abs(x.knnTop1! * 10 - Math.round(x.knnTop1! * 10)) < 1e-9,
        true,
      );
    }
    // The same run without the kNN, on the images it pretrained on.
    const rest: ImageSource = onlineKnnSplit(source, {
      fraction: 0.25,
      seed: 0,
    }).pretrain;
    await pretrain(tinyRunConfig(plain, { ...flags, "online-knn-every": 0 }), {
      source: rest,
    });
    const p = await readStepMetrics(plain);
    assertEquals(trainingFields(m), trainingFields(p));
    assertEquals(
      m.map((x) => x.onlineTop1),
      p.map((x) => x.onlineTop1),
    );
    assertEquals(
      await Deno.readFile(`${knn}/backbone.safetensors`),
      await Deno.readFile(`${plain}/backbone.safetensors`),
    );
  });
});

Deno.test("pretrain() on images without labels: the online probe says it is off, the online kNN is a ConfigError before anything is written", async () => {
  const procedural = proceduralDataset({ n: 16, size: 24 });
  const unlabelled: ImageSource = {
    length: 16,
    get: (i) => procedural.get(i),
    label: () => undefined,
    describe: () => "16 unlabelled images",
  };
  await withDirs(1, async (dir) => {
    const events: string[] = [];
    await pretrain(tinyRunConfig(dir, { "max-steps": 1 }), {
      source: unlabelled,
      onEvent: (e) => events.push(e.message),
    });
    assertTrue(
      events.includes(
        "Online probe off: 16 unlabelled images has images without a label",
      ),
      events.join("\n"),
    );
    assertEquals((await readStepMetrics(dir))[0].onlineTop1, undefined);
  });
  const fresh = await Deno.makeTempDir();
  await Deno.remove(fresh);
  const error = await assertRejects(
    () =>
      pretrain(tinyRunConfig(fresh, { "online-knn-every": 1 }), {
        source: unlabelled,
      }),
    ConfigError,
    'Key "online-knn-every" (1) needs labelled images: 16 unlabelled images has images without a label (0 turns it off)',
  );
  assertEquals(error.key, "online-knn-every");
  assertEquals(
    await Deno.stat(fresh).then(() => true, () => false),
    false,
  );
});
