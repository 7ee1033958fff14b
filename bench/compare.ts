/**
 * `deno task bench:compare`: times the same VICReg training step here (the
 * step `pretrain()` runs: `train`'s `stepGradients` on a `VicregModel`, plain
 * SGD; one line per backend) and in PyTorch (`bench/torch_step.py`, when
 * `python3 -c "import torch"` works), in one run, and prints one JSON line
 * per case and backend with images/s for both and their ratio.
 *
 * ```sh
 * deno task bench:compare                       # auto backend, ResNet-18 case
 * deno task bench:compare --backends wasm,cpu --cases tiny-16px-b16 --steps 3
 * ```
 *
 * Flags: `--cases a,b` (keys of `STEP_CASES`), `--backends a,b` (`auto`, a
 * backend name, or `cpu-fast`: `cpu` with im2col conv gradients),
 * `--steps N`, `--warmup N`, `--batch N` (overrides the cases' batch),
 * `--torch-threads N` (0 = every core), `--torch-device cpu|cuda`,
 * `--python PATH`, `--no-torch`, `--precision fp32|bf16` (ours after
 * `setPrecision`, PyTorch's under `torch.autocast("cpu",
 * dtype=torch.bfloat16)`),
 * `--step auto|joint|mixed|view-by-view`, `--micro-batch auto|N` and
 * `--kept-slices auto|N` (how to back-propagate and slice the batch; auto:
 * what `vicreg pretrain` picks, i.e. `train`'s `planStep` against the
 * backend's memory).
 *
 * @module
 */
import { flag, machine, round, runPythonJson } from "./_util.ts";
import * as tf from "@tensorflow/tfjs-core";
import {
  type BackendName,
  isPrecision,
  memoryBudgetOf,
  type Precision,
  Rng,
  setPrecision,
  useBackend,
} from "@scaling-vicreg/backend";
import {
  measureStepMemory,
  planStep,
  type StepMode,
  type StepPlan,
  viewsOf,
} from "@scaling-vicreg/train";
import {
  benchStep,
  makeStepRunner,
  STEP_CASES,
  type StepCase,
  unknownStepCase,
  withBatch,
} from "./resnet_step.ts";

/** Timing of one side of a comparison. */
export interface StepTiming {
  /** Mean wall-clock milliseconds per training step. */
  ms_per_step: number;
  /** Images (pairs of views) per second: `batch / seconds per step`. */
  images_per_s: number;
  /** How the step back-propagated (`train`'s `StepMode`). */
  mode?: StepMode;
  /** Images per slice of the batch (the batch itself: one slice). */
  micro_batch?: number;
  /** Slices kept on the loss's tape (`train`'s `keptSlices`). */
  kept_slices?: number;
}

/** Peak memory of the TF.js side of a comparison. */
export interface StepMemory {
  /** Resident set size of this process after the timed steps, MiB. */
  rss_mib: number;
  /**
   * Size of the wasm backend's heap in MiB (it only grows, so this is its
   * peak; 4096 at most), or `null` on other backends.
   */
  wasm_heap_mib: number | null;
}

/**
 * The process's RSS and, on the wasm backend, the size of its heap.
 *
 * @returns The memory figures now.
 */
export function stepMemory(): StepMemory {
  // The wasm backend exposes its Emscripten module as `wasm`; read it
  // structurally so that bench/ imports no backend package.
  const heap = (tf.backend() as unknown as {
    wasm?: { HEAPU8?: Uint8Array };
  }).wasm?.HEAPU8?.buffer.byteLength;
  return {
    rss_mib: Math.round(Deno.memoryUsage().rss / 2 ** 20),
    wasm_heap_mib: heap === undefined ? null : Math.round(heap / 2 ** 20),
  };
}

/** Options of {@linkcode timeTfjsStep}. */
export interface TimeStepOptions {
  /**
   * Timed steps.
   * @default {3}
   */
  steps?: number;
  /**
   * Untimed steps first (kernel setup, allocation).
   * @default {1}
   */
  warmup?: number;
  /**
   * How to back-propagate (`train`'s `StepMode`); `auto` as `vicreg
   * pretrain` does (`planStep`).
   * @default {"joint"}
   */
  mode?: StepMode | "auto";
  /**
   * Images per slice of the batch; `auto` as `vicreg pretrain` does.
   * @default {Infinity}
   */
  microBatch?: number | "auto";
  /**
   * With micro-batches in `joint` mode, slices kept on the loss's tape;
   * `auto` as `vicreg pretrain` does (as many as fit the backend's memory).
   * @default {"auto"}
   */
  keptSlices?: number | "auto";
}

/** Defaults of {@linkcode TimeStepOptions}. */
export const DEFAULT_TIME_STEP_OPTIONS: Required<TimeStepOptions> = {
  steps: 3,
  warmup: 1,
  mode: "joint",
  microBatch: Infinity,
  keptSlices: "auto",
};

/** A case's step, built and planned, ready to run again and again. */
export interface PreparedStep {
  /** How the step is sliced and back-propagated (`train`'s plan). */
  plan: StepPlan;
  /** Runs one step (forward, backward, update) and reads its loss. */
  run(): Promise<void>;
  /** Frees the model, the optimizer and the views. */
  dispose(): void;
}

/**
 * Builds a case's model, optimizer and fixed random views (two, plus the
 * case's local crops) on the active
 * backend and plans its step as `vicreg pretrain` would (`train`'s
 * `planStep` against the backend's memory); the step is `benchStep`, the one
 * `pretrain()` runs. Shared by {@linkcode timeTfjsStep} and
 * `bench/profile.ts`.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { prepareTfjsStep, STEP_CASES } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const step = await prepareTfjsStep({ ...STEP_CASES["tiny-16px-b16"], batch: 2 });
 * await step.run();
 * step.dispose();
 * ```
 *
 * @param spec The case.
 * @param options `mode`, `microBatch` and `keptSlices` of {@linkcode TimeStepOptions}.
 * @returns The prepared step; `dispose()` it.
 */
export async function prepareTfjsStep(
  spec: StepCase,
  options: TimeStepOptions = {},
): Promise<PreparedStep> {
  const { mode: step, microBatch, keptSlices } = {
    ...DEFAULT_TIME_STEP_OPTIONS,
    ...options,
  };
  const runner = makeStepRunner(spec, new Rng(0));
  const localCrops = spec.localCrops ?? 0;
  const localSize = spec.localSize ?? spec.imageSize;
  const profileAt = (size: number) =>
    measureStepMemory(
      runner.model.backbone,
      size,
      runner.model.parameters().values(),
    );
  const profile = await profileAt(spec.imageSize);
  const views = viewsOf(
    2,
    localCrops,
    profile,
    localCrops > 0 ? await profileAt(localSize) : undefined,
  );
  const plan = planStep(
    {
      step,
      microBatch: microBatch === "auto"
        ? microBatch
        : Math.min(microBatch, spec.batch),
      keptSlices,
      batch: spec.batch,
      local: runner.model.usesLocalLoss,
      optimizer: runner.optimizer.kind,
      views,
    },
    profile,
    memoryBudgetOf(),
  );
  const rng = new Rng(1);
  const view = (size: number): tf.Tensor4D => {
    const values = new Float32Array(spec.batch * size * size * 3);
    rng.fillNormal(values, 0, 1);
    return tf.tensor4d(values, [spec.batch, size, size, 3]);
  };
  const xs = [
    view(spec.imageSize),
    view(spec.imageSize),
    ...Array.from({ length: localCrops }, () => view(localSize)),
  ];
  return {
    plan,
    async run() {
      const loss = benchStep(runner, xs, 0.01, plan);
      await loss.data();
      loss.dispose();
    },
    dispose() {
      tf.dispose(xs);
      runner.optimizer.dispose();
      runner.model.dispose();
    },
  };
}

/**
 * Times `steps` training steps of a case on the active backend, after
 * `warmup` untimed ones; each step's loss is read asynchronously at the end.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { STEP_CASES, timeTfjsStep } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const spec = { ...STEP_CASES["tiny-16px-b16"], batch: 2 };
 * const t = await timeTfjsStep(spec, { steps: 1, warmup: 0 });
 * console.log(t.images_per_s > 0);
 * ```
 *
 * @param spec The case.
 * @param options See {@linkcode TimeStepOptions}.
 * @returns The mean timing.
 */
export async function timeTfjsStep(
  spec: StepCase,
  options: TimeStepOptions = {},
): Promise<StepTiming> {
  const { steps, warmup } = { ...DEFAULT_TIME_STEP_OPTIONS, ...options };
  const step = await prepareTfjsStep(spec, options);
  try {
    for (let i = 0; i < warmup; i++) await step.run();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step.run();
    const ms = (performance.now() - t0) / steps;
    return {
      ms_per_step: round(ms, 1),
      images_per_s: round(spec.batch * 1000 / ms, 2),
      mode: step.plan.mode,
      micro_batch: step.plan.microBatch,
      kept_slices: step.plan.keptSlices,
    };
  } finally {
    step.dispose();
  }
}

/** PyTorch's timing of the same step, with its thread count and version. */
export interface TorchTiming extends StepTiming {
  /** Intra-op threads PyTorch used. */
  threads: number;
  /** `torch.__version__`. */
  torch: string;
  /** `bf16` when the forward ran under `torch.autocast`. */
  precision?: Precision;
}

/** Options of {@linkcode timeTorchStep}. */
export interface TorchStepOptions {
  /** Timed steps. */
  steps: number;
  /** Untimed steps first. */
  warmup: number;
  /** Intra-op threads; 0 = every core. */
  threads: number;
  /** The python executable, e.g. `/usr/bin/python3`. */
  python: string;
  /** PyTorch's device: `cpu` or `cuda`. @default {"cpu"} */
  device?: string;
  /**
   * `bf16`: the forward under `torch.autocast(device, dtype=torch.bfloat16)`.
   * @default {"fp32"}
   */
  precision?: Precision;
}

/**
 * Runs `bench/torch_step.py` for a case and parses its JSON line, or returns
 * why it could not (no python, no torch).
 *
 * @param spec The case.
 * @param options See {@linkcode TorchStepOptions}.
 * @returns The timing, or `{ error }`.
 */
export async function timeTorchStep(
  spec: StepCase,
  options: TorchStepOptions,
): Promise<TorchTiming | { error: string }> {
  const script = new URL("./torch_step.py", import.meta.url).pathname;
  return await runPythonJson<TorchTiming>(options.python, script, [
    JSON.stringify(spec),
    ...["--steps", String(options.steps), "--warmup", String(options.warmup)],
    ...["--threads", String(options.threads)],
    ...["--device", options.device ?? "cpu"],
    ...["--precision", options.precision ?? "fp32"],
  ]);
}

async function main(args: string[]): Promise<number> {
  const caseNames = flag(args, "cases", "resnet18-cifar-32px-b64").split(",");
  const backends = flag(args, "backends", "auto").split(",");
  const steps = Number(flag(args, "steps", "3"));
  const warmup = Number(flag(args, "warmup", "1"));
  const batch = Number(flag(args, "batch", "0"));
  const threads = Number(flag(args, "torch-threads", "0"));
  const python = flag(args, "python", "python3");
  const device = flag(args, "torch-device", "cpu");
  const torch = !args.includes("--no-torch");
  const precision = flag(args, "precision", "fp32");
  if (!isPrecision(precision)) {
    console.error(
      `Flag --precision: expected fp32 or bf16: received ${precision}`,
    );
    return 1;
  }
  const stepFlag = flag(args, "step", "auto");
  if (!["auto", "joint", "mixed", "view-by-view"].includes(stepFlag)) {
    console.error(
      `Flag --step: expected one of auto, joint, mixed, view-by-view: received ${stepFlag}`,
    );
    return 1;
  }
  const microFlag = flag(args, "micro-batch", "auto");
  if (microFlag !== "auto" && !/^[1-9]\d*$/.test(microFlag)) {
    console.error(
      `Flag --micro-batch: expected auto or a positive integer: received ${microFlag}`,
    );
    return 1;
  }
  const keptFlag = flag(args, "kept-slices", "auto");
  if (keptFlag !== "auto" && !/^\d+$/.test(keptFlag)) {
    console.error(
      `Flag --kept-slices: expected auto or an integer ≥ 0: received ${keptFlag}`,
    );
    return 1;
  }
  const unknown = unknownStepCase(caseNames);
  if (unknown !== undefined) {
    console.error(unknown);
    return 1;
  }
  for (const name of caseNames) {
    const spec = withBatch(STEP_CASES[name], batch);
    const theirs = torch
      ? await timeTorchStep(spec, {
        steps,
        warmup,
        threads,
        python,
        device,
        precision,
      })
      : { error: "skipped (--no-torch)" };
    for (const requested of backends) {
      const info = await useBackend(requested as BackendName | "auto");
      await setPrecision(precision);
      const ours = await timeTfjsStep(spec, {
        steps,
        warmup,
        mode: stepFlag as StepMode | "auto",
        microBatch: microFlag === "auto" ? "auto" : Number(microFlag),
        keptSlices: keptFlag === "auto" ? "auto" : Number(keptFlag),
      });
      const memory = stepMemory();
      const ratio = "images_per_s" in theirs
        ? round(ours.images_per_s / theirs.images_per_s, 3)
        : null;
      console.log(JSON.stringify({
        case: spec.name,
        batch: spec.batch,
        image_size: spec.imageSize,
        backend: info.name,
        precision,
        steps,
        tfjs: { ...ours, ...memory },
        torch: theirs,
        ratio,
        machine: machine(),
      }));
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
