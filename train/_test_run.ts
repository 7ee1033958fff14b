// Shared by the pretraining tests: the configuration of a tiny run.
import { type PretrainConfig, resolveConfig } from "./config.ts";

/**
 * A tiny run in `dir` (16 px crops of 24 px procedural images, batches of 8
 * of 32 images, 2 epochs, a log line per step), with `flags` on top.
 */
export function tinyRunConfig(
  dir: string,
  flags: Record<string, unknown> = {},
): PretrainConfig {
  return resolveConfig({
    flags: {
      preset: "tiny",
      "exp-dir": dir,
      size: 16,
      "image-size": 24,
      "batch-size": 8,
      "num-images": 32,
      epochs: 2,
      mlp: "32-32",
      "local-mlp": "16-8",
      "log-every": 1,
      "base-lr": 0.05,
      ...flags,
    },
  });
}
