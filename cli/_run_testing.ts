// Shared by the tests that stop, break and resume `vicreg pretrain` in a
// subprocess (preemption, a full disk, a changed data set): a tiny run, its
// command line, and what "ends identical" compares.
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { PREEMPTED_EXIT_CODE } from "./_interrupt.ts";

/** `cli/main.ts`. */
export const MAIN: string = new URL("./main.ts", import.meta.url).pathname;

/**
 * A tiny run: 16 px crops of 24 px procedural images, batches of 8 of 32
 * images, 2 epochs (8 steps), a metrics line per step.
 */
export const TINY_RUN: Readonly<Record<string, string | number | boolean>> = {
  preset: "tiny",
  backend: "cpu-fast",
  size: 16,
  "image-size": 24,
  "batch-size": 8,
  "num-images": 32,
  epochs: 2,
  mlp: "32-32",
  "local-mlp": "16-8",
  "log-every": 1,
};

/** `pretrain` and its flags (`true` is a bare flag, `false` leaves it out). */
export function pretrainArgs(
  dir: string,
  extra: Record<string, string | number | boolean> = {},
): string[] {
  const flags: Record<string, string | number | boolean> = {
    ...TINY_RUN,
    "exp-dir": dir,
    ...extra,
  };
  return [
    MAIN,
    "pretrain",
    ...Object.entries(flags).flatMap(([k, v]) =>
      v === false ? [] : v === true ? [`--${k}`] : [`--${k}`, String(v)]
    ),
  ];
}

/**
 * Starts `vicreg pretrain` on `dir` in a subprocess (stdout and stderr
 * piped); `command` runs it under something else (`["sh", "-c", …]`).
 */
export function spawnPretrain(
  dir: string,
  extra: Record<string, string | number | boolean> = {},
  wrap?: (args: string[]) => [string, string[]],
): Deno.ChildProcess {
  const args = ["run", "-A", ...pretrainArgs(dir, extra)];
  const [program, argv] = wrap
    ? wrap([Deno.execPath(), ...args])
    : [Deno.execPath(), args];
  return new Deno.Command(program, {
    args: argv,
    env: { NO_COLOR: "1", OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `vicreg pretrain` to its end: exit code and stderr. */
export async function runPretrainCli(
  dir: string,
  extra: Record<string, string | number | boolean> = {},
  wrap?: (args: string[]) => [string, string[]],
): Promise<{ code: number; stderr: string }> {
  const out = await spawnPretrain(dir, extra, wrap).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Waits until `dir/metrics.jsonl` holds `steps` logged steps (2 min at most). */
export async function waitForSteps(dir: string, steps: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(`${dir}/metrics.jsonl`).catch(() =>
      ""
    );
    const logged = text.split("\n").filter((l) => /"loss"/.test(l)).length;
    if (logged >= steps) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${dir}: no ${steps} logged steps within 2 min`);
}

/** The names in `dir` matching `pattern`, sorted. */
export function namesIn(dir: string, pattern: RegExp): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    pattern.test(n)
  ).sort();
}

/** What two runs that end identical share. */
export interface RunRecord {
  /** The newest checkpoint's tensors file. */
  checkpoint: string;
  /** Its bytes (weights, BatchNorm statistics, optimizer slots). */
  tensors: Uint8Array;
  /** `backbone.safetensors`' bytes. */
  backbone: Uint8Array;
  /** `metrics.jsonl`'s lines, each without its throughput (a timing). */
  metrics: string[];
}

/** The {@linkcode RunRecord} of a finished run. */
export async function runRecord(dir: string): Promise<RunRecord> {
  const checkpoint = namesIn(dir, /^checkpoint-\d+\.safetensors$/).at(-1);
  assertTrue(checkpoint !== undefined, `no checkpoint in ${dir}`);
  const metrics = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim()
    .split("\n").map((l) => {
      const { imagesPerSecond: _, ...rest } = JSON.parse(l);
      return JSON.stringify(rest);
    });
  return {
    checkpoint,
    tensors: await Deno.readFile(`${dir}/${checkpoint}`),
    backbone: await Deno.readFile(`${dir}/backbone.safetensors`),
    metrics,
  };
}

/** Asserts that two runs ended byte-identical (metrics up to throughput). */
export function assertSameRun(actual: RunRecord, expected: RunRecord): void {
  assertEquals(actual.checkpoint, expected.checkpoint);
  assertEquals(actual.metrics, expected.metrics);
  assertTrue(
    sameBytes(actual.tensors, expected.tensors),
    `${actual.checkpoint} differs`,
  );
  assertTrue(
    sameBytes(actual.backbone, expected.backbone),
    "backbone.safetensors differs",
  );
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The step a preempted run says it stopped after. */
export function stoppedAt(stderr: string): number {
  const m = /preempted after (\d+) steps/.exec(stderr);
  assertTrue(m !== null, stderr);
  return Number(m[1]);
}

/** `checkpoint-<step, 8 digits>.json`. */
export function checkpointJson(step: number): string {
  return `checkpoint-${String(step).padStart(8, "0")}.json`;
}

/**
 * Starts a run on `dir`, and once it has logged a step calls `send` (which
 * signals it); expects exit 75 with a checkpoint of the step it stopped
 * after, and returns that step and the run's stderr.
 */
export async function preemptRun(
  dir: string,
  extra: Record<string, string | number | boolean>,
  send: (child: Deno.ChildProcess) => void,
): Promise<{ step: number; stderr: string }> {
  const child = spawnPretrain(dir, extra);
  const output = child.output();
  await waitForSteps(dir, 1);
  send(child);
  const out = await output;
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, PREEMPTED_EXIT_CODE, stderr);
  const step = stoppedAt(stderr);
  assertTrue(
    namesIn(dir, /^checkpoint-\d+\.json$/).includes(checkpointJson(step)),
    `no checkpoint of step ${step}: ${namesIn(dir, /./)}`,
  );
  return { step, stderr };
}

/** Temp files (`*.tmp-<pid>-<id>`) under `dir`. */
export function tempFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) out.push(...tempFiles(`${dir}/${e.name}`));
    else if (/\.tmp-\d+-/.test(e.name)) out.push(`${dir}/${e.name}`);
  }
  return out;
}
