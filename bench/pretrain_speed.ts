/**
 * Images/s of the real pretraining loop (`train`'s `pretrain()`: data,
 * two-view augmentation, backbone + projector on both views, VICReg (+ local
 * loss), optimizer update) per architecture and backend, one JSON line per
 * case, with the peak memory.
 *
 * ```sh
 * deno task bench:pretrain                                  # tiny and resnet18 on auto
 * deno task bench:pretrain --archs tiny --backends wasm,cpu-fast --steps 6
 * ```
 *
 * Flags: `--archs a,b` (tiny, resnet18, resnet34, resnet50, resnet50x2),
 * `--backends a,b` (default `auto`), `--steps N` (timed steps after one warm-up
 * step; default 4), `--batch N` (default 32), `--size N` (default 32),
 * `--stem cifar|imagenet` (default cifar), `--local` (add the local loss),
 * `--step auto|joint|mixed|view-by-view` (default auto), `--micro-batch auto|N`
 * (default auto).
 *
 * @module
 */
import { flag } from "./_util.ts";
import { type BackendName, useBackend } from "@scaling-vicreg/backend";
import { pretrain, resolveConfig } from "@scaling-vicreg/train";

/** One measured case. */
export interface PretrainSpeed {
  /** Backbone. */
  arch: string;
  /** Backend it ran on. */
  backend: string;
  /** Images per step. */
  batch: number;
  /** View size. */
  size: number;
  /** Whether the local loss was on. */
  local: boolean;
  /** Mean ms per timed step. */
  msPerStep: number;
  /** Images per second (each image gives two views). */
  imagesPerSecond: number;
  /** Peak RSS in MiB. */
  peakRssMiB: number;
}

/**
 * Times `steps` steps of `pretrain()` after one warm-up step.
 *
 * @param arch Backbone.
 * @param options Batch, view size, steps, local loss, stem.
 * @returns The measurement (the active backend is used).
 */
export async function timePretrain(
  arch: string,
  options: {
    batch: number;
    size: number;
    steps: number;
    local: boolean;
    stem: "cifar" | "imagenet";
    /** `auto`, `joint`, `mixed` or `view-by-view` (the `step` key). */
    step?: string;
    /** `auto` or images per slice (the `micro-batch` key). */
    microBatch?: string;
  },
): Promise<Omit<PretrainSpeed, "backend">> {
  const dir = await Deno.makeTempDir();
  try {
    const times: number[] = [];
    let last = performance.now();
    const config = resolveConfig({
      flags: {
        arch,
        "exp-dir": dir,
        stem: options.stem,
        mlp: "512-512",
        "local-mlp": "256-128",
        "use-local-loss": options.local,
        size: options.size,
        "image-size": Math.round(options.size * 1.5),
        "batch-size": options.batch,
        "num-images": options.batch * (options.steps + 1),
        epochs: 1,
        "log-every": 1,
        optimizer: "lars",
        step: options.step ?? "auto",
        "micro-batch": options.microBatch ?? "auto",
      },
    });
    const result = await pretrain(config, {
      onStep: () => {
        const now = performance.now();
        times.push(now - last);
        last = now;
      },
    });
    const timed = times.slice(1);
    const ms = timed.reduce((a, b) => a + b, 0) / Math.max(1, timed.length);
    return {
      arch,
      batch: options.batch,
      size: options.size,
      local: options.local,
      msPerStep: Math.round(ms),
      imagesPerSecond: Math.round((options.batch / ms) * 1000 * 100) / 100,
      peakRssMiB: Math.round(result.peakMemory.rssBytes / 2 ** 20),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const args = Deno.args;
  const archs = flag(args, "archs", "tiny,resnet18").split(",");
  const backends = flag(args, "backends", "auto").split(",");
  const options = {
    batch: Number(flag(args, "batch", "32")),
    size: Number(flag(args, "size", "32")),
    steps: Number(flag(args, "steps", "4")),
    local: args.includes("--local"),
    stem: flag(args, "stem", "cifar") as "cifar" | "imagenet",
    step: flag(args, "step", "auto"),
    microBatch: flag(args, "micro-batch", "auto"),
  };
  for (const backend of backends) {
    const info = await useBackend(backend as BackendName | "auto");
    for (const arch of archs) {
      const m = await timePretrain(arch, options);
      console.log(
        JSON.stringify({
          ...m,
          backend: info.name,
          step: options.step,
          microBatch: options.microBatch,
        }),
      );
    }
  }
}
