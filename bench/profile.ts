/**
 * `deno task bench:profile`: where a training step's time goes. Runs the
 * step `bench:compare` times (`prepareTfjsStep`: `train`'s `stepGradients`
 * on a `VicregModel`, plain SGD) on one backend, first unprofiled, then
 * under `@scaling-vicreg/backend/kernel-profile` (every kernel registered for
 * the backend and every native function it calls wrapped with timers), and
 * prints a table per case (convolution forward / input gradient / weight
 * gradient, batch norm, matmul, element-wise, …, oneDNN's reorders, FFI
 * crossings, and the engine + tape + model JavaScript outside every kernel)
 * and one JSON line per case. With PyTorch at hand, `bench/torch_profile.py`
 * profiles the same step with `torch.profiler` and its table follows.
 *
 * ```sh
 * deno task bench:profile                                  # three cases, blas
 * deno task bench:profile --cases tiny-16px-b16 --steps 5 --no-torch
 * ```
 *
 * Flags: `--cases a,b` (keys of `STEP_CASES`; default tiny-16px-b16,
 * resnet18-cifar-32px-b64, resnet50-96px-b32), `--backend NAME` (blas),
 * `--steps N` (5), `--warmup N` (2), `--batch N` (overrides the cases'
 * batch), `--step`, `--micro-batch` (as `bench:compare`; auto),
 * `--torch-threads N` (2), `--python PATH`, `--no-torch`, `--rows N` (rows of torch.profiler's table, 25).
 *
 * @module
 */
import { flag, machine, round, runPythonJson } from "./_util.ts";
import {
  type BackendName,
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
  useBackend,
} from "@scaling-vicreg/backend";
import {
  type KernelProfile,
  profileKernels,
} from "@scaling-vicreg/backend/kernel-profile";
import type { StepMode } from "@scaling-vicreg/train";
import { prepareTfjsStep } from "./compare.ts";
import {
  STEP_CASES,
  type StepCase,
  unknownStepCase,
  withBatch,
} from "./resnet_step.ts";

/** The kernel categories of the table, in order; the rest is element-wise. */
export const KERNEL_CATEGORIES: readonly [string, readonly string[]][] = [
  ["conv forward", ["Conv2D", "FusedConv2D"]],
  ["conv input-gradient", ["Conv2DBackpropInput"]],
  ["conv weight-gradient", ["Conv2DBackpropFilter"]],
  ["batch norm (+ ReLU)", [
    BATCH_NORM_TRAIN_KERNEL,
    BATCH_NORM_TRAIN_GRAD_KERNEL,
  ]],
  ["matmul", ["BatchMatMul", "_FusedMatMul"]],
  ["pooling", ["MaxPool", "MaxPoolGrad", "AvgPool", "AvgPoolGrad"]],
  ["reductions", ["Sum", "Mean", "Max", "Min", "Prod", "ArgMax", "ArgMin"]],
  [
    "copies, reshapes, fills",
    [
      "Identity",
      "Cast",
      "Reshape",
      "Transpose",
      "Slice",
      "StridedSlice",
      "Concat",
      "Pack",
      "Unpack",
      "SplitV",
      "Pad",
      "PadV2",
      "MirrorPad",
      "Tile",
      "GatherV2",
      "Fill",
      "ZerosLike",
      "OnesLike",
      "Reverse",
    ],
  ],
];

/** Native functions that do the arithmetic (the rest is bookkeeping). */
const NATIVE_WORK = /^(cblas_sgemm|dnnl_primitive_execute)/;

/** One row of a profile table, per step. */
export interface ProfileRow {
  /** What it is. */
  label: string;
  /** Calls per step (kernels, or native calls for the native rows). */
  calls: number;
  /** Milliseconds per step. */
  ms: number;
  /** Share of the profiled step, percent. */
  percent: number;
}

/**
 * The rows of the table for a profile of `steps` steps whose mean profiled
 * step took `stepMs`: one per kernel category (self time), the oneDNN
 * executions by kind and OpenBLAS's GEMMs inside them, the other FFI
 * crossings, the kernels' own JavaScript, and what lies outside every
 * kernel (the TF.js engine, the gradient tape and the model's JavaScript).
 *
 * @example
 * ```ts
 * import { profileRows } from "./profile.ts";
 * const rows = profileRows({
 *   backend: "cpu", wallMs: 10,
 *   kernels: { Add: { calls: 2, totalMs: 4, selfMs: 4, nativeMs: 0, nativeCalls: 0 } },
 *   native: {},
 * }, 1, 10);
 * console.log(rows.find((r) => r.label === "element-wise")?.ms); // 4
 * ```
 *
 * @param profile The kernel profile.
 * @param steps Steps it covers.
 * @param stepMs Mean milliseconds of a profiled step.
 * @returns The rows.
 */
export function profileRows(
  profile: KernelProfile,
  steps: number,
  stepMs: number,
): ProfileRow[] {
  const row = (label: string, calls: number, ms: number): ProfileRow => ({
    label,
    calls: round(calls / steps, 1),
    ms: round(ms / steps, 2),
    percent: round(100 * ms / steps / stepMs, 1),
  });
  const byCategory = new Map<string, { calls: number; ms: number }>();
  const categoryOf = (kernel: string) =>
    KERNEL_CATEGORIES.find(([, names]) => names.includes(kernel))?.[0] ??
      "element-wise";
  let kernelSelf = 0;
  let kernelNative = 0;
  for (const [name, k] of Object.entries(profile.kernels)) {
    const c = categoryOf(name);
    const entry = byCategory.get(c) ?? { calls: 0, ms: 0 };
    entry.calls += k.calls;
    entry.ms += k.selfMs;
    byCategory.set(c, entry);
    kernelSelf += k.selfMs;
    kernelNative += k.nativeMs;
  }
  const rows: ProfileRow[] = [];
  for (const [label] of [...KERNEL_CATEGORIES, ["element-wise", []]]) {
    const e = byCategory.get(label as string);
    if (e !== undefined) rows.push(row(label as string, e.calls, e.ms));
  }
  rows.push(row("all kernels (self time)", 0, kernelSelf));
  let bookkeepingCalls = 0;
  let bookkeepingMs = 0;
  let nativeCalls = 0;
  for (const [name, n] of Object.entries(profile.native)) {
    nativeCalls += n.calls;
    if (NATIVE_WORK.test(name)) {
      rows.push(
        row(
          `  native: ${name.replace("dnnl_primitive_execute:", "oneDNN ")}`,
          n.calls,
          n.ms,
        ),
      );
    } else {
      bookkeepingCalls += n.calls;
      bookkeepingMs += n.ms;
    }
  }
  rows.push(
    row(
      "  native: other FFI calls (handles, waits, threads)",
      bookkeepingCalls,
      bookkeepingMs,
    ),
  );
  rows.push(
    row(
      "  kernels' own JavaScript / wasm (self − native)",
      0,
      kernelSelf - kernelNative,
    ),
  );
  rows.push(row("FFI crossings (all native calls)", nativeCalls, 0));
  rows.push(
    row(
      "outside kernels: TF.js engine, tape, model JS",
      0,
      stepMs * steps - kernelSelf,
    ),
  );
  return rows;
}

function table(rows: ProfileRow[]): string {
  const width = Math.max(...rows.map((r) => r.label.length));
  const lines = [
    `${"".padEnd(width)}  ${"calls/step".padStart(10)}  ${
      "ms/step".padStart(9)
    }  ${"% step".padStart(6)}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.label.padEnd(width)}  ${
        (r.calls === 0 ? "" : String(r.calls)).padStart(10)
      }  ${(r.ms === 0 && r.calls > 0 ? "" : r.ms.toFixed(2)).padStart(9)}  ${
        (r.ms === 0 && r.calls > 0 ? "" : r.percent.toFixed(1)).padStart(6)
      }`,
    );
  }
  return lines.join("\n");
}

async function profileCase(
  spec: StepCase,
  steps: number,
  warmup: number,
  mode: StepMode | "auto",
  microBatch: number | "auto",
) {
  const step = await prepareTfjsStep(spec, { mode, microBatch });
  try {
    for (let i = 0; i < warmup; i++) await step.run();
    let t0 = performance.now();
    for (let i = 0; i < steps; i++) await step.run();
    const plainMs = (performance.now() - t0) / steps;
    const profiler = profileKernels();
    try {
      t0 = performance.now();
      for (let i = 0; i < steps; i++) await step.run();
      const profiledMs = (performance.now() - t0) / steps;
      const profile = profiler.snapshot();
      return { plan: step.plan, plainMs, profiledMs, profile };
    } finally {
      profiler.dispose();
    }
  } finally {
    step.dispose();
  }
}

async function main(args: string[]): Promise<number> {
  const caseNames = flag(
    args,
    "cases",
    "tiny-16px-b16,resnet18-cifar-32px-b64,resnet50-96px-b32",
  ).split(",");
  const backend = flag(args, "backend", "blas");
  const steps = Number(flag(args, "steps", "5"));
  const warmup = Number(flag(args, "warmup", "2"));
  const stepFlag = flag(args, "step", "auto") as StepMode | "auto";
  const microFlag = flag(args, "micro-batch", "auto");
  const batch = Number(flag(args, "batch", "0"));
  const threads = Number(flag(args, "torch-threads", "2"));
  const python = flag(args, "python", "python3");
  const rowsFlag = flag(args, "rows", "25");
  const torch = !args.includes("--no-torch");
  const unknown = unknownStepCase(caseNames);
  if (unknown !== undefined) {
    console.error(unknown);
    return 1;
  }
  const info = await useBackend(backend as BackendName);
  for (const name of caseNames) {
    const spec = withBatch(STEP_CASES[name], batch);
    const ours = await profileCase(
      spec,
      steps,
      warmup,
      stepFlag,
      microFlag === "auto" ? "auto" : Number(microFlag),
    );
    const rows = profileRows(ours.profile, steps, ours.profiledMs);
    const theirs = torch
      ? await runPythonJson<
        & { table: string; self_ms_per_step: Record<string, number> }
        & Record<string, unknown>
      >(python, new URL("./torch_profile.py", import.meta.url).pathname, [
        JSON.stringify(spec),
        ...["--steps", String(steps), "--warmup", String(warmup)],
        ...["--threads", String(threads), "--rows", rowsFlag],
      ])
      : { error: "skipped (--no-torch)" };
    console.log(
      `\n# ${spec.name} on ${info.name}: ${
        round(ours.plainMs, 1)
      } ms a step unprofiled, ${
        round(ours.profiledMs, 1)
      } profiled (${ours.plan.mode}, micro-batch ${ours.plan.microBatch})\n`,
    );
    console.log(table(rows));
    if ("table" in theirs) {
      console.log(
        `\n# PyTorch ${theirs.torch} (${theirs.threads} threads): ${theirs.ms_per_step} ms a step unprofiled, ${theirs.profiled_ms_per_step} profiled; self CPU ms/step by category:`,
      );
      for (const [label, ms] of Object.entries(theirs.self_ms_per_step)) {
        console.log(`  ${label.padEnd(34)} ${ms.toFixed(2).padStart(9)}`);
      }
      console.log(theirs.table);
    } else {
      console.log(`\n# PyTorch: ${theirs.error}`);
    }
    const { table: _, ...torchJson } = "table" in theirs
      ? theirs
      : { table: "", ...theirs };
    console.log(JSON.stringify({
      case: spec.name,
      backend: info.name,
      steps,
      tfjs: {
        ms_per_step: round(ours.plainMs, 1),
        profiled_ms_per_step: round(ours.profiledMs, 1),
        mode: ours.plan.mode,
        micro_batch: ours.plan.microBatch,
        rows,
        kernels: Object.fromEntries(
          Object.entries(ours.profile.kernels).map(([k, v]) => [k, {
            calls: v.calls / steps,
            self_ms: round(v.selfMs / steps, 3),
            native_ms: round(v.nativeMs / steps, 3),
          }]),
        ),
        native: Object.fromEntries(
          Object.entries(ours.profile.native).map(([k, v]) => [k, {
            calls: v.calls / steps,
            ms: round(v.ms / steps, 3),
          }]),
        ),
      },
      torch: torchJson,
      machine: machine(),
      load: Deno.loadavg(),
    }));
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
