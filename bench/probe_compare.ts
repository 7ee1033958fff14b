/**
 * `deno task bench:probe`: the linear probe of `@scaling-vicreg/probe`
 * (`trainLinearClassifier`: standardised features, SGD with momentum 0.9,
 * per-epoch cosine, batch 256) trained here and in PyTorch
 * (`bench/torch_probe.py`) on features of the same size, in one run; one JSON
 * line per backend with the seconds of both and their ratio (PyTorch's time
 * over ours: above 1 means faster here).
 *
 * ```sh
 * deno task bench:probe                                   # 10,000 × 4096, 100 classes, 100 epochs
 * deno task bench:probe --backends blas,wasm --rows 2000 --dim 512 --epochs 5
 * ```
 *
 * Flags: `--backends a,b` (`auto`), `--rows N` (10000), `--dim N` (4096),
 * `--classes N` (100), `--epochs N` (100), `--python PATH`, `--no-torch`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, Rng, useBackend } from "@scaling-vicreg/backend";
import { trainLinearClassifier } from "@scaling-vicreg/probe";
import { flag, machine, round, runPythonJson } from "./_util.ts";

/** A probe problem's size. */
export interface ProbeCase {
  /** Training rows. */
  rows: number;
  /** Feature width. */
  dim: number;
  /** Classes. */
  classes: number;
  /** Epochs. */
  epochs: number;
}

/**
 * Seconds `trainLinearClassifier` takes on the active backend for Gaussian
 * features of a case's size (the time does not depend on their values).
 *
 * @example
 * ```ts
 * import { useBackend } from "@scaling-vicreg/backend";
 * import { timeProbe } from "@scaling-vicreg/bench";
 * await useBackend("cpu");
 * const s = await timeProbe({ rows: 64, dim: 8, classes: 3, epochs: 1 });
 * console.log(s >= 0); // true
 * ```
 *
 * @param spec The problem's size.
 * @returns Seconds, including reading the weights back.
 */
export async function timeProbe(spec: ProbeCase): Promise<number> {
  const rng = new Rng(0);
  const features = tf.tensor2d(
    rng.fillNormal(new Float32Array(spec.rows * spec.dim)),
    [spec.rows, spec.dim],
  );
  const labels = Int32Array.from(
    { length: spec.rows },
    () => rng.int(spec.classes),
  );
  try {
    const t0 = performance.now();
    const clf = trainLinearClassifier(features, labels, {
      epochs: spec.epochs,
      numClasses: spec.classes,
    });
    await clf.weights.data();
    const seconds = (performance.now() - t0) / 1000;
    clf.dispose();
    return seconds;
  } finally {
    features.dispose();
  }
}

async function main(args: string[]): Promise<number> {
  const spec: ProbeCase = {
    rows: Number(flag(args, "rows", "10000")),
    dim: Number(flag(args, "dim", "4096")),
    classes: Number(flag(args, "classes", "100")),
    epochs: Number(flag(args, "epochs", "100")),
  };
  for (const [key, value] of Object.entries(spec)) {
    if (!(Number.isInteger(value) && value >= 1)) {
      console.error(`Flag --${key}: expected a positive integer`);
      return 1;
    }
  }
  const python = flag(args, "python", "python3");
  const theirs: { seconds: number } | { error: string } =
    args.includes("--no-torch")
      ? { error: "skipped (--no-torch)" }
      : await runPythonJson(
        python,
        new URL("./torch_probe.py", import.meta.url).pathname,
        Object.entries(spec).map(([k, v]) => [`--${k}`, String(v)]).flat(),
      );
  for (const requested of flag(args, "backends", "auto").split(",")) {
    const info = await useBackend(requested as BackendName | "auto");
    const seconds = await timeProbe(spec);
    console.log(JSON.stringify({
      case:
        `probe-${spec.rows}x${spec.dim}-${spec.classes}cls-${spec.epochs}ep`,
      backend: info.name,
      tfjs: { seconds: round(seconds, 2) },
      torch: theirs,
      ratio: "seconds" in theirs ? round(theirs.seconds / seconds, 3) : null,
      machine: machine(),
    }));
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
