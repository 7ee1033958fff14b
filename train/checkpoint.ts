/**
 * Checkpoints of a pretraining run: all tensors (backbone, projectors, BN
 * running statistics, optimizer slots) in one safetensors file and the run
 * state (epoch, step, config, metrics) in a JSON file beside it.
 *
 * Both are written atomically, the JSON last: a checkpoint exists only once
 * its JSON does, and the JSON records the byte length and SHA-256 of its
 * tensors, so a write killed midway leaves the previous checkpoint as the
 * latest good one.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { sha256Hex, writeFileAtomic } from "@scaling-vicreg/backend/fs";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "@scaling-vicreg/backend/safetensors";

/** The JSON half of a checkpoint. */
export interface CheckpointMeta {
  /** Format version. */
  format: 1;
  /** Steps completed. */
  step: number;
  /** Epoch of the next step. */
  epoch: number;
  /** Index, within `epoch`, of the next batch. */
  batch: number;
  /** The tensors file, relative to the run directory. */
  tensors: string;
  /** Byte length of the tensors file. */
  bytes: number;
  /** SHA-256 of the tensors file, hex. */
  sha256: string;
  /** Anything else the trainer keeps (config, optimizer step, timings). */
  state: Record<string, unknown>;
}

/** A loaded checkpoint. */
export interface Checkpoint {
  /** Its metadata. */
  meta: CheckpointMeta;
  /** Its tensors, as plain arrays. */
  tensors: Record<string, SafeTensor>;
}

const PATTERN = /^checkpoint-(\d{8})\.json$/;
const ORPHAN = /^checkpoint-(\d{8})\.safetensors$/;

function stem(step: number): string {
  return `checkpoint-${String(step).padStart(8, "0")}`;
}

/**
 * The name of a checkpoint's JSON file in the run directory.
 *
 * @example
 * ```ts
 * import { checkpointName } from "@scaling-vicreg/train/checkpoint";
 * console.log(checkpointName(42)); // "checkpoint-00000042.json"
 * ```
 *
 * @param step The checkpoint's step.
 * @returns `checkpoint-<step, 8 digits>.json`.
 */
export function checkpointName(step: number): string {
  return `${stem(step)}.json`;
}

/**
 * Reads tensors to plain float32 arrays for a checkpoint (async reads: no
 * `dataSync`).
 *
 * @param tensors Tensors by name (not disposed).
 * @returns Safetensors entries.
 */
export async function snapshotTensors(
  tensors: Map<string, tf.Tensor>,
): Promise<Record<string, SafeTensor>> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of tensors) {
    const data = await t.data();
    out[name] = {
      dtype: "F32",
      shape: [...t.shape],
      data: data instanceof Float32Array
        ? data
        : Float32Array.from(data as ArrayLike<number>),
    };
  }
  return out;
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /**
   * Good checkpoints kept, the new one included (at least 1); older ones are
   * deleted once the new one is in place. @default {3}
   */
  keep?: number;
  /** Told of each damaged checkpoint moved into `damaged/` while pruning. */
  onDamaged?: (skipped: SkippedCheckpoint) => void;
}

/**
 * Writes a checkpoint into `dir` and prunes old ones (see
 * {@linkcode pruneCheckpoints}): the new checkpoint is complete before
 * anything is pruned, and it is never pruned itself.
 *
 * @param dir The run directory.
 * @param tensors The tensors, as from {@linkcode snapshotTensors}.
 * @param meta Step, epoch, batch and state.
 * @param options See {@linkcode SaveCheckpointOptions}.
 * @returns The path of the checkpoint's JSON file.
 */
export async function saveCheckpoint(
  dir: string,
  tensors: Record<string, SafeTensor>,
  meta: Pick<CheckpointMeta, "step" | "epoch" | "batch" | "state">,
  options: SaveCheckpointOptions = {},
): Promise<string> {
  const { keep = 3, onDamaged } = options;
  const name = stem(meta.step);
  const bytes = encodeSafetensors(tensors, {
    format: "scaling-vicreg-checkpoint",
  });
  await writeFileAtomic(`${dir}/${name}.safetensors`, bytes);
  const full: CheckpointMeta = {
    format: 1,
    ...meta,
    tensors: `${name}.safetensors`,
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
  };
  const jsonPath = `${dir}/${name}.json`;
  try {
    await writeFileAtomic(jsonPath, JSON.stringify(full, null, 2) + "\n");
  } catch (error) {
    // Tensors without their JSON are no checkpoint: free their room.
    await Deno.remove(`${dir}/${name}.safetensors`).catch(() => {});
    throw error;
  }
  await pruneCheckpoints(dir, meta.step, { keep, onDamaged });
  return jsonPath;
}

/**
 * The steps of the checkpoints (JSON files) in `dir`, newest first.
 *
 * @param dir The run directory.
 * @returns Steps, descending; empty when `dir` does not exist.
 */
export async function listCheckpoints(dir: string): Promise<number[]> {
  const steps: number[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = PATTERN.exec(entry.name);
      if (m) steps.push(Number(m[1]));
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return steps.sort((a, b) => b - a);
}

/**
 * Reads and verifies one checkpoint: its JSON parses and its tensors file has
 * the recorded length and SHA-256.
 *
 * @param dir The run directory.
 * @param step The checkpoint's step.
 * @returns Its metadata and the tensors file's bytes; throws when damaged.
 */
export async function verifyCheckpoint(
  dir: string,
  step: number,
): Promise<{ meta: CheckpointMeta; bytes: Uint8Array }> {
  const meta = JSON.parse(
    await Deno.readTextFile(`${dir}/${stem(step)}.json`),
  ) as CheckpointMeta;
  if (typeof meta?.tensors !== "string" || meta.step !== step) {
    throw new Error(`${stem(step)}.json is not a checkpoint of step ${step}`);
  }
  const bytes = await Deno.readFile(`${dir}/${meta.tensors}`);
  if (bytes.length !== meta.bytes || await sha256Hex(bytes) !== meta.sha256) {
    throw new Error(
      `${meta.tensors} does not match its recorded length and SHA-256`,
    );
  }
  return { meta, bytes };
}

/**
 * Moves a checkpoint's files (those present) into `<dir>/<folder>/`, out of
 * reach of resume and pruning but kept for a person to look at.
 *
 * @param dir The run directory.
 * @param step The checkpoint's step.
 * @param folder The sub-folder: `damaged` or `diverged`.
 * @returns Resolves once moved.
 */
export async function moveCheckpointAside(
  dir: string,
  step: number,
  folder: "damaged" | "diverged",
): Promise<void> {
  await Deno.mkdir(`${dir}/${folder}`, { recursive: true });
  for (const ext of [".safetensors", ".json"]) {
    const name = `${stem(step)}${ext}`;
    await Deno.rename(`${dir}/${name}`, `${dir}/${folder}/${name}`).catch(
      (error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      },
    );
  }
}

/** Options of {@linkcode pruneCheckpoints}. */
export interface PruneCheckpointsOptions {
  /** Good checkpoints kept, `current` included (at least 1). @default {3} */
  keep?: number;
  /** Told of each damaged checkpoint moved into `damaged/`. */
  onDamaged?: (skipped: SkippedCheckpoint) => void;
}

/**
 * Deletes old checkpoints of the run whose newest checkpoint is `current`,
 * keeping `keep` good ones. Only checkpoints at or below `current` are the
 * current run's; of these, `current` is always kept and each other one counts
 * only once verified: damaged ones are moved into `damaged/` (reported through
 * `onDamaged`) instead of filling the slots, so a run never prunes the
 * checkpoints it is writing. Checkpoints above `current` are left alone.
 *
 * @param dir The run directory.
 * @param current The step of the checkpoint just written.
 * @param options See {@linkcode PruneCheckpointsOptions}.
 * @returns Resolves once pruned.
 */
export async function pruneCheckpoints(
  dir: string,
  current: number,
  options: PruneCheckpointsOptions = {},
): Promise<void> {
  const { keep = 3, onDamaged } = options;
  let kept = 1;
  const damaged = async (step: number, error: unknown) => {
    await moveCheckpointAside(dir, step, "damaged");
    onDamaged?.({
      path: `${dir}/${stem(step)}.json`,
      step,
      reason: (error as Error).message,
    });
  };
  for (const step of await listCheckpoints(dir)) {
    if (step === current) continue;
    if (step > current) {
      // Not this run's line (a resume went back past it): only damaged ones
      // are moved, so that no later resume is offered them.
      await verifyCheckpoint(dir, step).catch((e) => damaged(step, e));
      continue;
    }
    if (kept < Math.max(1, keep)) {
      try {
        await verifyCheckpoint(dir, step);
        kept += 1;
      } catch (error) {
        await damaged(step, error);
      }
      continue;
    }
    for (const ext of [".json", ".safetensors"]) {
      await Deno.remove(`${dir}/${stem(step)}${ext}`).catch(() => {});
    }
  }
  // Tensors whose JSON was never written (a write killed between the two).
  for await (const entry of Deno.readDir(dir)) {
    const m = ORPHAN.exec(entry.name);
    if (m && Number(m[1]) < current) {
      const json = `${dir}/checkpoint-${m[1]}.json`;
      if (!(await Deno.stat(json).then(() => true, () => false))) {
        await Deno.remove(`${dir}/${entry.name}`).catch(() => {});
      }
    }
  }
}

/** Why a checkpoint was passed over by {@linkcode loadLatestCheckpoint}. */
export interface SkippedCheckpoint {
  /** The JSON file. */
  path: string;
  /** The checkpoint's step. */
  step: number;
  /** What was wrong with it. */
  reason: string;
}

/**
 * Loads the newest checkpoint in `dir` whose tensors file is complete and
 * matches its recorded SHA-256, passing over damaged ones.
 *
 * @param dir The run directory.
 * @param skipped Receives the checkpoints passed over, and why.
 * @returns The checkpoint, or `undefined` when there is none.
 */
export async function loadLatestCheckpoint(
  dir: string,
  skipped: SkippedCheckpoint[] = [],
): Promise<Checkpoint | undefined> {
  for (const step of await listCheckpoints(dir)) {
    try {
      const { meta, bytes } = await verifyCheckpoint(dir, step);
      return { meta, tensors: decodeSafetensors(bytes).tensors };
    } catch (error) {
      skipped.push({
        path: `${dir}/${stem(step)}.json`,
        step,
        reason: (error as Error).message,
      });
    }
  }
  return undefined;
}
