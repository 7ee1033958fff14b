/**
 * `deno task bench:scale`: the same VICReg training step of one global batch
 * (ResNet-18, CIFAR stem, 32 px, batch 128 by default) on 1 process with
 * every core, and on R MPI ranks sharing the cores (`distributedStepGradients`
 * + SGD: what `vicreg pretrain --ranks R` runs), one JSON line each with
 * images/s, the milliseconds per step spent in collectives, and the scaling
 * efficiency (images/s over the 1-process line's).
 *
 * ```sh
 * deno task bench:scale                         # 1 rank × 2 threads, 2 ranks × 1 thread
 * deno task bench:scale --ranks 4 --case tiny-16px-b16 --batch 64
 * ```
 *
 * Flags: `--case` (a key of `STEP_CASES`), `--batch N` (the global batch;
 * 128), `--ranks R` (2), `--steps N` (3), `--warmup N` (1), `--backend`
 * (`blas`), `--micro-batch N` (per rank; the whole shard by default).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  type Communicator,
  createCommunicator,
  detectMpiLaunch,
  mpiexecCommand,
} from "@scaling-vicreg/distributed";
import { distributedStepGradients, stepGradients } from "@scaling-vicreg/train";
import { flag, machine, round } from "./_util.ts";
import { makeStepRunner, STEP_CASES } from "./resnet_step.ts";

/** One line of `bench:scale`. */
export interface ScaleResult {
  /** The case and its global batch. */
  case: string;
  /** The global batch. */
  batch: number;
  /** Processes. */
  ranks: number;
  /** OpenBLAS/OpenMP threads per process. */
  threads: number;
  /** Mean milliseconds per step. */
  ms_per_step: number;
  /** Global-batch images per second. */
  images_per_s: number;
  /** Milliseconds per step in collectives (all-gather, all-reduce), rank 0. */
  comm_ms_per_step: number;
  /** `comm_ms_per_step` over `ms_per_step`. */
  comm_fraction: number;
}

/** Wraps a communicator, adding up the time its calls take. */
function timed(comm: Communicator): { comm: Communicator; ms: () => number } {
  let total = 0;
  const time = <R>(f: () => R): R => {
    const start = performance.now();
    try {
      return f();
    } finally {
      total += performance.now() - start;
    }
  };
  const timeAsync = async <R>(f: () => Promise<R>): Promise<R> => {
    const start = performance.now();
    try {
      return await f();
    } finally {
      total += performance.now() - start;
    }
  };
  const timedComm: Communicator = {
    kind: comm.kind,
    rank: comm.rank,
    size: comm.size,
    allReduce: (b, op) => timeAsync(() => comm.allReduce(b, op)),
    allReduceBlocking: (b) => time(() => comm.allReduceBlocking(b)),
    allGather: (b) => timeAsync(() => comm.allGather(b)),
    allGatherBlocking: (b) => time(() => comm.allGatherBlocking(b)),
    broadcast: (b, r) => timeAsync(() => comm.broadcast(b, r)),
    barrier: () => timeAsync(() => comm.barrier()),
    close: () => comm.close(),
    abort: (code) => comm.abort(code),
  };
  return { comm: timedComm, ms: () => total };
}

/** Times steps on this process's shard (one rank of a launch, or alone). */
async function worker(args: string[]): Promise<void> {
  const base = STEP_CASES[flag(args, "case", "resnet18-cifar-32px-b64")];
  const batch = Number(flag(args, "batch", "128"));
  const steps = Number(flag(args, "steps", "3"));
  const warmup = Number(flag(args, "warmup", "1"));
  const micro = Number(flag(args, "micro-batch", "0"));
  await useBackend(flag(args, "backend", "blas") as BackendName);
  const clock = timed(createCommunicator({ kind: "auto" }));
  const comm = clock.comm;
  const local = batch / comm.size;
  const spec = { ...base, batch: local };
  const runner = makeStepRunner(spec, new Rng(0));
  // This rank's rows of one fixed global batch.
  const rng = new Rng(1).fork(`rank ${comm.rank}`);
  const view = () =>
    tf.tensor4d(
      rng.fillNormal(
        new Float32Array(local * spec.imageSize * spec.imageSize * 3),
        0,
        1,
      ),
      [local, spec.imageSize, spec.imageSize, 3],
    );
  const views: [tf.Tensor4D, tf.Tensor4D] = [view(), view()];
  const options = { mode: "joint" as const, microBatch: micro || local };
  const step = async () => {
    const { loss, grads } = comm.size > 1
      ? await distributedStepGradients(runner.model, views, comm, options)
      : stepGradients(runner.model, views, options);
    runner.optimizer.step(Object.fromEntries(grads), 0.01);
    await loss.total.data();
    tf.dispose([loss, ...grads.values()]);
  };
  for (let i = 0; i < warmup; i++) await step();
  await comm.barrier();
  const commBefore = clock.ms();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  await comm.barrier();
  const ms = (performance.now() - start) / steps;
  const commMs = (clock.ms() - commBefore) / steps;
  if (comm.rank === 0) {
    const result: ScaleResult = {
      case: base.name.replace(/-b\d+$/, `-b${batch}`),
      batch,
      ranks: comm.size,
      threads: Number(Deno.env.get("OMP_NUM_THREADS") ?? "0"),
      ms_per_step: round(ms, 1),
      images_per_s: round(batch * 1000 / ms, 2),
      comm_ms_per_step: round(commMs, 1),
      comm_fraction: round(commMs / ms, 3),
    };
    console.log(JSON.stringify(result));
  }
  tf.dispose(views);
  runner.optimizer.dispose();
  runner.model.dispose();
  await comm.close();
}

/** Runs the worker as one process and as `ranks` MPI ranks; prints both. */
async function main(args: string[]): Promise<number> {
  const ranks = Number(flag(args, "ranks", "2"));
  const cores = navigator.hardwareConcurrency;
  const script = new URL(import.meta.url).pathname;
  const env = (threads: number) => ({
    OMP_NUM_THREADS: String(threads),
    OPENBLAS_NUM_THREADS: String(threads),
  });
  const run = async (command: string, argv: string[], threads: number) => {
    const out = await new Deno.Command(command, {
      args: argv,
      env: env(threads),
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`${command} exited ${out.code}`);
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(
      -1,
    )!;
    return JSON.parse(line) as ScaleResult;
  };
  const one = await run(
    Deno.execPath(),
    ["run", "-A", script, "--worker", ...args],
    cores,
  );
  console.log(JSON.stringify({ ...one, efficiency: 1, machine: machine() }));
  const launch = mpiexecCommand(ranks, [script, "--worker", ...args]);
  const many = await run(
    launch.command,
    launch.args,
    Math.max(1, Math.floor(cores / ranks)),
  );
  console.log(JSON.stringify({
    ...many,
    efficiency: round(many.images_per_s / one.images_per_s, 3),
    machine: machine(),
  }));
  return 0;
}

if (import.meta.main) {
  if (Deno.args.includes("--worker") || detectMpiLaunch() !== undefined) {
    await worker(Deno.args);
  } else {
    Deno.exit(await main(Deno.args));
  }
}
