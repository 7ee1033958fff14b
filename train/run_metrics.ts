/**
 * A run directory's `metrics.jsonl`, in one place: the record of a logged
 * step ({@linkcode StepMetrics}), appending it, cutting the file back to a
 * checkpoint on resume, and reading it back.
 *
 * Every line is one JSON object: a step (`{"step": 3, "loss": …}`) or an
 * event (`{"step": 4, "event": "config-change", …}`). A line is appended
 * whole, but a kill mid-append can tear the last one: one rule, for every
 * reader and for the resume, drops an unparseable last line (the resumed run
 * writes that step again); an unparseable line before it is damage, an error
 * naming the file and line.
 *
 * @module
 */
import { writeFileAtomic } from "@scaling-vicreg/backend/fs";

/** One logged step, as written to `metrics.jsonl`. */
export interface StepMetrics {
  /** Steps completed (1-based). */
  step: number;
  /** Epoch of the step (0-based). */
  epoch: number;
  /** Batch index within the epoch. */
  batch: number;
  /** Learning rate used. */
  lr: number;
  /** Total loss. */
  loss: number;
  /** Global invariance term (unweighted). */
  invariance: number;
  /** Global variance term (unweighted). */
  variance: number;
  /** Global covariance term (unweighted). */
  covariance: number;
  /** Local loss (weighted total of its terms, before α), when used. */
  localLoss?: number;
  /** Training throughput of this step. */
  imagesPerSecond: number;
  /** Mean per-dimension std of the first view's projections. */
  embeddingStd: number;
  /** Fraction of projection dimensions whose std is below 0.01. */
  collapsedFraction: number;
  /** Global L2 norm of the step's gradients. */
  gradNorm: number;
  /** Steps in the whole run. */
  totalSteps: number;
  /** Live tensors after the step (constant across steps: no leak). */
  numTensors: number;
  /**
   * The online probe's top-1 on the training batches since the previous
   * metrics line (fraction in [0, 1]), when the probe is on.
   */
  onlineTop1?: number;
  /** The online probe's mean cross-entropy over the same batches. */
  onlineLoss?: number;
  /**
   * The online kNN's top-1 on the held-back split (fraction in [0, 1]), on
   * the last step of every `online-knn-every`-th epoch.
   */
  knnTop1?: number;
}

/** The file's name in a run directory. */
export const METRICS_FILE = "metrics.jsonl";

/** A line of `metrics.jsonl`: a logged step, or an event at a step. */
export type MetricsLine =
  & { step: number; event?: string }
  & Record<
    string,
    unknown
  >;

/**
 * The lines of a `metrics.jsonl` text, with a torn last line dropped.
 *
 * @example
 * ```ts
 * import { parseMetricsLines } from "@scaling-vicreg/train/run-metrics";
 * const text = '{"step":1,"loss":2}\n{"step":2,"lo';
 * console.log(parseMetricsLines(text)); // [{ step: 1, loss: 2 }]
 * ```
 *
 * @param text The file's text.
 * @param path The file, for the error on a damaged line.
 * @returns Its lines in order, parsed.
 * @throws {SyntaxError} Naming `path` and the line, for an unparseable line
 *   that is not the last.
 */
export function parseMetricsLines(
  text: string,
  path = METRICS_FILE,
): MetricsLine[] {
  const lines = text.split("\n");
  const last = lines.findLastIndex((l) => l.trim() !== "");
  const out: MetricsLine[] = [];
  for (let i = 0; i <= last; i++) {
    if (lines[i].trim() === "") continue;
    try {
      out.push(JSON.parse(lines[i]));
    } catch (cause) {
      if (i === last) break; // torn by a kill mid-append
      throw new SyntaxError(
        `${path}:${
          i + 1
        } is not a JSON line (damaged, not torn: only the last line can be torn by a kill)`,
        { cause },
      );
    }
  }
  return out;
}

async function readLines(dir: string): Promise<MetricsLine[]> {
  const path = `${dir}/${METRICS_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return parseMetricsLines(text, path);
}

/**
 * The logged steps of a run directory's `metrics.jsonl` (empty when absent),
 * without its event lines and without a torn last line.
 *
 * @example
 * ```ts
 * import { readMetrics } from "@scaling-vicreg/train/run-metrics";
 * const dir = await Deno.makeTempDir();
 * console.log(await readMetrics(dir)); // []
 * await Deno.remove(dir);
 * ```
 *
 * @param dir The run directory.
 * @returns One entry per logged step.
 */
export async function readMetrics(dir: string): Promise<StepMetrics[]> {
  return (await readLines(dir)).filter((m) =>
    m.event === undefined
  ) as unknown as StepMetrics[];
}

/**
 * Appends one line (a logged step or an event) to `metrics.jsonl`.
 *
 * @param dir The run directory.
 * @param line The record.
 * @returns Resolves once written.
 */
export async function appendMetrics(
  dir: string,
  line: StepMetrics | MetricsLine,
): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/${METRICS_FILE}`,
    JSON.stringify(line) + "\n",
    { append: true },
  );
}

/**
 * Starts `metrics.jsonl` afresh (empty) for a new run.
 *
 * @param dir The run directory.
 * @returns Resolves once written.
 */
export async function createMetrics(dir: string): Promise<void> {
  await writeFileAtomic(`${dir}/${METRICS_FILE}`, "");
}

/**
 * Cuts `metrics.jsonl` back to the lines of steps up to `step` (the
 * checkpoint a resume continues from), dropping a torn last line, then adds
 * `extra` lines; atomically.
 *
 * @param dir The run directory.
 * @param step The checkpoint's step.
 * @param extra Lines to add after the kept ones (e.g. a config change).
 * @returns Resolves once written.
 */
export async function truncateMetrics(
  dir: string,
  step: number,
  extra: MetricsLine[] = [],
): Promise<void> {
  const kept = (await readLines(dir)).filter((l) => l.step <= step);
  await writeFileAtomic(
    `${dir}/${METRICS_FILE}`,
    [...kept, ...extra].map((l) => JSON.stringify(l) + "\n").join(""),
  );
}
