import { useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { ConfigError, type PretrainConfig } from "./config.ts";
import { pretrain, type PretrainEvent } from "./pretrain.ts";
import { loadLatestCheckpoint } from "./checkpoint.ts";
import { processStartTick, RunLockedError } from "./run_lock.ts";
import { savedRunConfig } from "./run_dir.ts";
import { tinyRunConfig } from "./_test_run.ts";
import { DivergenceError, NonFiniteLossError } from "./divergence.ts";

await useBackend("cpu-fast");

function config(
  dir: string,
  flags: Record<string, unknown> = {},
): PretrainConfig {
  return tinyRunConfig(dir, {
    "use-local-loss": false,
    "max-steps": 4,
    "checkpoint-every": 1,
    "keep-checkpoints": 4,
    ...flags,
  });
}

/** A finished 4-step run with checkpoints 1–4, made once and copied. */
let base: Promise<string> | undefined;
async function copyOfRun(): Promise<string> {
  base ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "run-dir-base-" });
    await pretrain(config(dir));
    return dir;
  })();
  const from = await base;
  const to = await Deno.makeTempDir();
  for (const e of Deno.readDirSync(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
  return to;
}

function damage(dir: string, step: number): void {
  const path = `${dir}/checkpoint-${String(step).padStart(8, "0")}.safetensors`;
  const bytes = Deno.readFileSync(path);
  bytes[Math.min(5000, bytes.length - 1)] ^= 0xff;
  Deno.writeFileSync(path, bytes);
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("pretrain() resumed over damaged newer checkpoints keeps the checkpoints it writes", async () => {
  const dir = await copyOfRun();
  try {
    // Checkpoint 2 gone, 3 and 4 damaged: the run resumes from 1, and the
    // damaged ones must not fill the 2 slots that its new ones need.
    for (const ext of ["json", "safetensors"]) {
      await Deno.remove(`${dir}/checkpoint-00000002.${ext}`);
    }
    for (const s of [3, 4]) damage(dir, s);
    const events: PretrainEvent[] = [];
    const controller = new AbortController();
    // Stopping after one step, as a kill after the next checkpoint would.
    const result = await pretrain(
      config(dir, { resume: true, "keep-checkpoints": 2 }),
      {
        signal: controller.signal,
        onEvent: (e) => events.push(e),
        onStep: () => controller.abort(),
      },
    );
    assertEquals([result.status, result.steps], ["interrupted", 2]);
    assertEquals((await loadLatestCheckpoint(dir))?.meta.step, 2);
    assertTrue(names(dir).includes("checkpoint-00000001.json"));
    assertEquals(names(`${dir}/damaged`).length, 4);
    assertEquals(
      events.filter((e) =>
        e.level === "warning" && e.message.includes("damaged")
      ).length,
      2,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrain() --resume with nothing to resume fails saying what it found and keeps the metrics", async () => {
  const dir = await copyOfRun();
  try {
    const metrics = await Deno.readTextFile(`${dir}/metrics.jsonl`);
    for (const s of [1, 2, 3, 4]) damage(dir, s);
    await assertRejects(
      () => pretrain(config(dir, { resume: true })),
      ConfigError,
      `--resume: nothing to resume in ${dir}: found 4 damaged checkpoints`,
    );
    assertEquals(await Deno.readTextFile(`${dir}/metrics.jsonl`), metrics);
    assertEquals(names(dir).includes("run.lock"), false);
    await assertRejects(
      () => pretrain(config(`${dir}/mistyped`, { resume: true })),
      ConfigError,
      `${dir}/mistyped does not exist, so there is nothing to resume`,
    );
    await Deno.mkdir(`${dir}/empty`);
    await assertRejects(
      () => pretrain(config(`${dir}/empty`, { resume: true })),
      ConfigError,
      "found no checkpoint",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrain() --resume without config.yaml compares with the checkpoint's configuration", async () => {
  const dir = await copyOfRun();
  try {
    await Deno.remove(`${dir}/config.yaml`);
    await assertRejects(
      () => pretrain(config(dir, { resume: true, optimizer: "sgd", seed: 99 })),
      ConfigError,
      'Key "optimizer" is "sgd" but the run being resumed used "adamw"',
    );
    const saved = await savedRunConfig(dir);
    assertEquals(saved?.where, `${dir}/checkpoint-00000004.json`);
    assertEquals(saved?.file.optimizer, "adamw");
    assertEquals(saved?.file["max-steps"], 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrain() --resume may change the learning-rate keys, recording it in config.yaml and metrics.jsonl", async () => {
  const dir = await copyOfRun();
  try {
    const events: PretrainEvent[] = [];
    await pretrain(
      config(dir, { resume: true, "max-steps": 5, "base-lr": 0.01 }),
      { onEvent: (e) => events.push(e) },
    );
    assertTrue(
      events.some((e) =>
        e.level === "warning" &&
        e.message.includes("--resume changes base-lr from 0.05 to 0.01")
      ),
      JSON.stringify(events),
    );
    const yaml = await Deno.readTextFile(`${dir}/config.yaml`);
    assertTrue(
      yaml.includes("# changed on --resume: step 4: base-lr 0.05 -> 0.01"),
      yaml,
    );
    const lines = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => l.step), [1, 2, 3, 4, 4, 5]);
    assertEquals(lines[4], {
      step: 4,
      event: "config-change",
      changes: [{ key: "base-lr", from: 0.05, to: 0.01 }],
    });
    // The model keys still may not change.
    await assertRejects(
      () => pretrain(config(dir, { resume: true, mlp: "64-64" })),
      ConfigError,
      'Key "mlp"',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrain() refuses a run directory locked by a live run, and removes stale temp files when it opens one", async () => {
  const dir = await copyOfRun();
  try {
    const metrics = await Deno.readTextFile(`${dir}/metrics.jsonl`);
    const tick = await processStartTick(Deno.pid);
    await Deno.writeTextFile(
      `${dir}/run.lock`,
      JSON.stringify({
        pid: Deno.pid,
        host: Deno.hostname(),
        started: "2026-12-01T00:00:00.000Z",
        ...(tick !== undefined ? { startTick: tick } : {}),
      }),
    );
    await assertRejects(
      () => pretrain(config(dir, { resume: true, "max-steps": 5 })),
      RunLockedError,
      `is in use by another run (pid ${Deno.pid} on host`,
    );
    assertEquals(await Deno.readTextFile(`${dir}/metrics.jsonl`), metrics);
    await Deno.remove(`${dir}/run.lock`);
    // Temp files of a killed writer (a pid that has exited).
    const child = new Deno.Command("true").spawn();
    await child.status;
    const stale = `checkpoint-00000005.safetensors.tmp-${child.pid}-0123abcd`;
    await Deno.writeFile(`${dir}/${stale}`, new Uint8Array(64));
    const live = `metrics.jsonl.tmp-${Deno.pid}-0123abcd`;
    await Deno.writeFile(`${dir}/${live}`, new Uint8Array(4));
    const events: PretrainEvent[] = [];
    await pretrain(config(dir, { resume: true, "max-steps": 5 }), {
      onEvent: (e) => events.push(e),
    });
    assertEquals(names(dir).includes(stale), false);
    assertEquals(names(dir).includes(live), true);
    assertEquals(names(dir).includes("run.lock"), false);
    assertTrue(events.some((e) => e.message.includes("Removed 1 temp file")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pretrain() stops a blow-up before NaN keeping the checkpoint before it, and --resume may lower --base-lr", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const diverging = config(dir, {
      optimizer: "sgd",
      "base-lr": 1000,
      "max-steps": 0,
      epochs: 4,
    });
    const metrics: number[] = [];
    const error = await assertRejects(
      () => pretrain(diverging, { onStep: (m) => metrics.push(m.loss) }),
      DivergenceError,
      "the last checkpoint before the blow-up",
    );
    // Stopped on a finite loss, before NaN.
    assertEquals(error instanceof NonFiniteLossError, false);
    assertTrue(Number.isFinite(error.divergence.value));
    assertTrue(error.message.includes("--resume with a lower --base-lr"));
    const ckpt = await loadLatestCheckpoint(dir);
    assertEquals(ckpt?.meta.step, error.step - 2);
    // Its weights are those of a sane step: the loss of step k − 1, computed
    // with them, was not a blow-up.
    assertTrue(metrics[ckpt!.meta.step] < 100, `${metrics}`);
    for (const [name, t] of Object.entries(ckpt!.tensors)) {
      const big = (t.data as Float32Array).some((x) => !(Math.abs(x) < 1e4));
      assertEquals(big, false, name);
    }
    assertTrue(names(`${dir}/diverged`).length > 0);
    const events: PretrainEvent[] = [];
    const resumed = await pretrain(
      config(dir, {
        optimizer: "sgd",
        "base-lr": 0.05,
        "max-steps": ckpt!.meta.step + 2,
        epochs: 4,
        resume: true,
      }),
      { onEvent: (e) => events.push(e) },
    );
    assertEquals(resumed.status, "completed");
    assertTrue(
      events.some((e) => e.message.includes("base-lr from 1000 to 0.05")),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "run-dir tests: remove the shared base run",
  fn: async () => {
    if (base) await Deno.remove(await base, { recursive: true });
  },
});
