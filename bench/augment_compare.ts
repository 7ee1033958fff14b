/**
 * `deno task bench:augment`: augmentation throughput of the two-view
 * `TrainTransform` (`@scaling-vicreg/augment`) on each backend, side by side
 * with torchvision's per-image PIL pipeline (`bench/torch_augment.py`, when
 * `python3 -c "import torchvision"` works), in one run. Prints one JSON line
 * per backend with images/s (pairs of views) for both and their ratio.
 *
 * ```sh
 * deno task bench:augment                              # auto backend, batch 64
 * deno task bench:augment --backends wasm,cpu --batch 256 --iters 2
 * ```
 *
 * Flags: `--backends a,b` (`auto`, a backend name, or `cpu-fast`), `--batch N`
 * (64), `--side N` (source side, 128), `--size N` (view side, 96),
 * `--iters N` (3), `--warmup N` (3), `--python PATH` (`python3` on the PATH),
 * `--no-torch`.
 *
 * @module
 */
import { flag, machine, round, runPythonJson } from "./_util.ts";
import * as tf from "@tensorflow/tfjs-core";
import {
  type BackendName,
  type RgbImage,
  Rng,
  useBackend,
} from "@scaling-vicreg/backend";
import { TrainTransform } from "@scaling-vicreg/augment/train-transform";

/** Timing of one side of an augmentation comparison. */
export interface AugmentTiming {
  /** Mean wall-clock milliseconds per batch (both views). */
  ms_per_batch: number;
  /** Images (pairs of views) per second: `batch / seconds per batch`. */
  images_per_s: number;
}

/** Options of {@linkcode timeTrainTransform}. */
export interface AugmentBenchOptions {
  /**
   * Images per batch.
   * @default {64}
   */
  batch?: number;
  /**
   * Side of the square uint8 sources.
   * @default {128}
   */
  side?: number;
  /**
   * Side of the views.
   * @default {96}
   */
  size?: number;
  /**
   * Timed batches.
   * @default {3}
   */
  iters?: number;
  /**
   * Untimed batches first.
   * @default {3}
   */
  warmup?: number;
}

/** Defaults of {@linkcode AugmentBenchOptions}. */
export const DEFAULT_AUGMENT_BENCH_OPTIONS: Required<AugmentBenchOptions> = {
  batch: 64,
  side: 128,
  size: 96,
  iters: 3,
  warmup: 3,
};

/**
 * The synthetic sources both sides use: image k has byte i = (7i + 13k) mod
 * 256, `[side, side, 3]` uint8.
 *
 * @param batch Number of images.
 * @param side Their side.
 * @returns The images.
 */
export function benchImages(batch: number, side: number): RgbImage[] {
  return Array.from({ length: batch }, (_, k) => {
    const data = new Uint8Array(side * side * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + k * 13) % 256;
    return { width: side, height: side, data };
  });
}

/**
 * Times `TrainTransform.apply` (both views, read back) on the active backend.
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { timeTrainTransform } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const t = await timeTrainTransform({ batch: 2, side: 32, size: 16, iters: 1, warmup: 0 });
 * console.log(t.images_per_s > 0); // true
 * ```
 *
 * @param options See {@linkcode AugmentBenchOptions}.
 * @returns The mean timing.
 */
export async function timeTrainTransform(
  options: AugmentBenchOptions = {},
): Promise<AugmentTiming> {
  const o = { ...DEFAULT_AUGMENT_BENCH_OPTIONS, ...options };
  const images = benchImages(o.batch, o.side);
  const transform = new TrainTransform({ size: o.size });
  const rng = new Rng(0);
  const once = async () => {
    const { view1, view2 } = transform.apply(images, rng);
    await view1.data();
    await view2.data();
    tf.dispose([view1, view2]);
  };
  for (let i = 0; i < o.warmup; i++) await once();
  const t0 = performance.now();
  for (let i = 0; i < o.iters; i++) await once();
  const ms = (performance.now() - t0) / o.iters;
  return {
    ms_per_batch: round(ms, 1),
    images_per_s: round(o.batch * 1000 / ms, 1),
  };
}

/** torchvision's timing, with its versions. */
export interface TorchvisionTiming extends AugmentTiming {
  /** Intra-op threads PyTorch used (ToTensor/Normalize). */
  threads: number;
  /** `torch.__version__`. */
  torch: string;
  /** `torchvision.__version__`. */
  torchvision: string;
}

/**
 * Runs `bench/torch_augment.py` and parses its JSON line, or returns why it
 * could not (no python, no torchvision).
 *
 * @param options Sizes and iterations (see {@linkcode AugmentBenchOptions}).
 * @param python The python executable.
 * @returns The timing, or `{ error }`.
 */
export async function timeTorchvisionAugment(
  options: AugmentBenchOptions = {},
  python = "python3",
): Promise<TorchvisionTiming | { error: string }> {
  const o = { ...DEFAULT_AUGMENT_BENCH_OPTIONS, ...options };
  const script = new URL("./torch_augment.py", import.meta.url).pathname;
  return await runPythonJson<TorchvisionTiming>(python, script, [
    ...["--batch", String(o.batch), "--side", String(o.side)],
    ...["--size", String(o.size), "--iters", String(o.iters)],
    ...["--warmup", String(o.warmup)],
  ]);
}

async function main(args: string[]): Promise<number> {
  const backends = flag(args, "backends", "auto").split(",");
  const options: Required<AugmentBenchOptions> = {
    batch: Number(flag(args, "batch", "64")),
    side: Number(flag(args, "side", "128")),
    size: Number(flag(args, "size", "96")),
    iters: Number(flag(args, "iters", "3")),
    warmup: Number(flag(args, "warmup", "3")),
  };
  const python = flag(args, "python", "python3");
  const theirs = args.includes("--no-torch")
    ? { error: "skipped (--no-torch)" }
    : await timeTorchvisionAugment(options, python);
  for (const requested of backends) {
    const info = await useBackend(requested as BackendName | "auto");
    const ours = await timeTrainTransform(options);
    const ratio = "images_per_s" in theirs
      ? round(ours.images_per_s / theirs.images_per_s, 3)
      : null;
    console.log(JSON.stringify({
      case: `train-transform-${options.size}px-from-${options.side}px`,
      ...options,
      backend: info.name,
      tfjs: ours,
      torchvision: theirs,
      ratio,
      machine: machine(),
    }));
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
