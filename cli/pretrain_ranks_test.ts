// `vicreg pretrain` on 2 MPI ranks against one process: the same
// global batch, the same loss curve and the same trained parameters.
import { useBackend } from "@scaling-vicreg/backend";
import {
  assertClose,
  assertEquals,
  assertTrue,
  ignoreUnless,
  loadableBackends,
} from "@scaling-vicreg/backend/testing";
import {
  mpiexecCommand,
  mpiMissing,
  RankPids,
} from "@scaling-vicreg/distributed";
import {
  loadLatestCheckpoint,
  pretrain,
  readMetrics,
  resolveConfig,
  type StepMetrics,
} from "@scaling-vicreg/train";

await useBackend("cpu-fast");

const missing = mpiMissing();
const ignore = ignoreUnless(missing === undefined, "mpi", missing);
const [[, webgpu]] = await loadableBackends(["webgpu"], "cpu-fast");
const MAIN = new URL("./main.ts", import.meta.url).pathname;

// A tiny run that exercises every per-image path: location-matched local
// loss (geometry gathered), ViewMix (λ drawn for the whole batch).
const FLAGS = {
  preset: "tiny",
  backend: "cpu-fast",
  size: 16,
  "image-size": 24,
  "batch-size": 8,
  "num-images": 40,
  epochs: 1,
  mlp: "32-32",
  "local-mlp": "16-8",
  "local-matching": "location",
  "use-viewmix": true,
  "log-every": 1,
  "base-lr": 0.05,
  "checkpoint-every": 1,
};

function argv(dir: string, extra: Record<string, unknown>): string[] {
  return Object.entries({ ...FLAGS, "exp-dir": dir, ...extra }).flatMap((
    [k, v],
  ) => v === true ? [`--${k}`] : v === false ? [] : [`--${k}`, String(v)]);
}

/** Starts `vicreg pretrain` on 2 ranks under mpiexec. */
function spawnRanks(dir: string, extra: Record<string, unknown>) {
  const { command, args } = mpiexecCommand(2, [
    MAIN,
    "pretrain",
    ...argv(dir, extra),
    "--distributed",
    "mpi",
  ]);
  return new Deno.Command(command, {
    args,
    env: { NO_COLOR: "1", OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The trained parameters (not the per-rank running statistics). */
async function parameters(dir: string): Promise<Map<string, Float32Array>> {
  const ckpt = await loadLatestCheckpoint(dir);
  assertTrue(ckpt !== undefined, `no checkpoint in ${dir}`);
  return new Map(
    Object.entries(ckpt.tensors)
      .filter(([k]) => !/running_|num_batches|^optimizer\./.test(k))
      .map(([k, t]) => [k, t.data as Float32Array]),
  );
}

function assertSameRun(
  actual: { metrics: StepMetrics[]; params: Map<string, Float32Array> },
  expected: { metrics: StepMetrics[]; params: Map<string, Float32Array> },
): void {
  assertEquals(
    actual.metrics.map((m) => m.step),
    expected.metrics.map((m) => m.step),
  );
  for (
    const key of [
      "loss",
      "invariance",
      "variance",
      "covariance",
      "localLoss",
      // The online probe: each rank trains on its shard, its gradients summed.
      "onlineTop1",
      "onlineLoss",
    ]
  ) {
    assertClose(
      actual.metrics.map((m) => m[key as keyof StepMetrics] as number),
      expected.metrics.map((m) => m[key as keyof StepMetrics] as number),
      { rtol: 1e-5, message: key },
    );
  }
  assertEquals(
    [...actual.params.keys()].sort(),
    [...expected.params.keys()].sort(),
  );
  for (const [k, v] of expected.params) {
    assertClose(actual.params.get(k)!, v, {
      rtol: 1e-5,
      atol: 1e-7,
      message: k,
    });
  }
}

/** The run's metrics and trained parameters. */
async function runOf(dir: string) {
  return { metrics: await readMetrics(dir), params: await parameters(dir) };
}

/** `pretrain()` in this process, on `dir` with `extra` flags. */
async function inProcess(
  dir: string,
  extra: Record<string, unknown>,
): Promise<void> {
  await pretrain(
    resolveConfig({ flags: { ...FLAGS, ...extra, "exp-dir": dir } }),
  );
}

/** `vicreg pretrain` in a subprocess, on `dir` with `extra` flags. */
async function inSubprocess(
  dir: string,
  extra: Record<string, unknown>,
): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "pretrain", ...argv(dir, extra)],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
}

/**
 * Runs one process with `single`'s flags (by `runOne`) and 2 ranks with
 * `ranks`' flags on the same data, asserts they train the same; returns the
 * ranks' stderr.
 */
async function compareWithOneProcess(
  single: Record<string, unknown>,
  ranks: Record<string, unknown>,
  runOne: typeof inProcess = inProcess,
): Promise<string> {
  const one = await Deno.makeTempDir();
  const two = await Deno.makeTempDir();
  try {
    await runOne(one, single);
    const out = await spawnRanks(two, ranks).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, stderr);
    assertSameRun(await runOf(two), await runOf(one));
    const events = [...Deno.readDirSync(two)]
      .filter((e) => e.name.startsWith("events.out.tfevents."));
    assertEquals(events.length, 1, "rank 0 alone writes TensorBoard events");
    return stderr;
  } finally {
    await Deno.remove(one, { recursive: true });
    await Deno.remove(two, { recursive: true });
  }
}

Deno.test({
  name:
    "pretrain() on 2 MPI ranks of 4 images equals one process with micro-batches of 4: loss curve and every parameter after 5 steps",
  ignore,
  async fn() {
    // LARS: AdamW's per-element normalisation would magnify the float
    // rounding of near-zero gradients summed in another order (one process
    // keeps its second slice on the loss's tape; each rank runs one tape).
    const steps = { "max-steps": 5, optimizer: "lars", "base-lr": 0.3 };
    const stderr = await compareWithOneProcess(
      { ...steps, "micro-batch": 4 },
      steps,
    );
    assertTrue(stderr.includes("2 ranks (mpi), 4 images each"), stderr);
  },
});

Deno.test({
  name:
    "pretrain() with 2 global + 2 local crops on 2 MPI ranks of 4 images equals one process with micro-batches of 4: loss curve and the weights (≤ 1e-5 relative over all of them) after 4 steps",
  ignore,
  async fn() {
    // Location-matched local loss between 2×2 global and 1×1 local maps
    // (geometry of every view gathered); ViewMix is for two views only.
    const steps = {
      "max-steps": 4,
      optimizer: "lars",
      "base-lr": 0.3,
      "local-crops": 2,
      "local-crop-size": 8,
      "use-viewmix": false,
    };
    const one = await Deno.makeTempDir();
    const two = await Deno.makeTempDir();
    try {
      await inProcess(one, { ...steps, "micro-batch": 4 });
      const out = await spawnRanks(two, steps).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      assertTrue(stderr.includes("2 ranks (mpi), 4 images each"), stderr);
      const [ranks, single] = [await runOf(two), await runOf(one)];
      assertSameRun(ranks, single);
      let diff = 0, norm = 0;
      for (const [k, w] of single.params) {
        const v = ranks.params.get(k)!;
        w.forEach((x, i) => {
          diff += (v[i] - x) ** 2;
          norm += x * x;
        });
      }
      assertTrue(
        Math.sqrt(diff / norm) <= 1e-5,
        `relative ${Math.sqrt(diff / norm)}`,
      );
      assertTrue(single.metrics.every((m) => Number.isFinite(m.localLoss!)));
    } finally {
      await Deno.remove(one, { recursive: true });
      await Deno.remove(two, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "pretrain() on 2 MPI ranks on webgpu (gradients read back to the host) equals one webgpu process with micro-batches of 4: loss curve and every parameter after 3 steps",
  ignore: ignore || ignoreUnless(webgpu, "webgpu"),
  async fn() {
    const steps = {
      "max-steps": 3,
      optimizer: "lars",
      "base-lr": 0.3,
      backend: "webgpu",
    };
    // The one process in a subprocess: this one stays on cpu-fast.
    const stderr = await compareWithOneProcess(
      { ...steps, "micro-batch": 4 },
      steps,
      inSubprocess,
    );
    assertTrue(stderr.includes("2 ranks (mpi), 4 images each"), stderr);
  },
});

Deno.test({
  name:
    "pretrain() on 2 MPI ranks with --sync-bn equals one process with the whole batch in one slice: loss curve and every parameter after 5 steps",
  ignore,
  async fn() {
    // LARS, the paper's optimizer: AdamW's per-element normalisation would
    // magnify the float rounding of the summed statistics in near-zero
    // gradients.
    const steps = { "max-steps": 5, optimizer: "lars", "base-lr": 0.3 };
    await compareWithOneProcess(
      { ...steps, step: "joint" },
      { ...steps, "sync-bn": true },
    );
  },
});

Deno.test({
  name:
    "vicreg pretrain --ranks 2: a SIGKILLed rank stops the other within 60 s with one line naming it, and --resume on 2 ranks continues exactly",
  ignore,
  async fn() {
    const straight = await Deno.makeTempDir();
    const killed = await Deno.makeTempDir();
    try {
      const steps = { epochs: 3, "max-steps": 12 };
      const full = await spawnRanks(straight, steps).output();
      assertEquals(full.code, 0, new TextDecoder().decode(full.stderr));

      // Kill rank 1 of `--ranks 2` (mpiexec under this command) once the
      // run has checkpointed step 2.
      const job = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "pretrain",
          ...argv(killed, { ...steps, ranks: 2 }),
        ],
        env: { NO_COLOR: "1", OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = job.output();
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const ckpt = await loadLatestCheckpoint(killed).catch(() => undefined);
        if ((ckpt?.meta.step ?? 0) >= 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const ranks = new RankPids(job.pid, 2);
      ranks.stop();
      const pid = ranks.pidOf(1);
      assertTrue(pid !== undefined, "rank 1 not found");
      const killedAt = Date.now();
      Deno.kill(pid, "SIGKILL");
      const result = await output;
      assertTrue(result.code !== 0, "the job should fail");
      assertTrue(
        Date.now() - killedAt < 60_000,
        "the other rank should stop within 60 s",
      );
      // One line names the rank, in place of mpiexec's banner.
      const stderr = new TextDecoder().decode(result.stderr);
      const stdout = new TextDecoder().decode(result.stdout);
      assertTrue(
        stderr.includes(
          `pretrain: rank 1 (pid ${pid} on ${Deno.hostname()}) was killed by SIGKILL; the launcher stopped the other ranks; the last checkpoint in ${killed} is intact`,
        ),
        stderr,
      );
      assertTrue(!stdout.includes("BAD TERMINATION"), stdout);
      // What was checkpointed is intact, and the run continues from it.
      const ckpt = await loadLatestCheckpoint(killed);
      assertTrue((ckpt?.meta.step ?? 0) >= 2);
      const resumed = await spawnRanks(killed, { ...steps, resume: true })
        .output();
      assertEquals(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
      assertSameRun(await runOf(killed), await runOf(straight));
    } finally {
      await Deno.remove(straight, { recursive: true });
      await Deno.remove(killed, { recursive: true });
    }
  },
});
