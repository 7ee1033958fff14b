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
} from "@scaling-vicreg/models/safetensors";

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

function stem(step: number): string {
  return `checkpoint-${String(step).padStart(8, "0")}`;
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
  /** Checkpoints kept; older ones are deleted once the new one is in place. @default {3} */
  keep?: number;
}

/**
 * Writes a checkpoint into `dir` and prunes old ones. The newest good one is
 * never deleted: pruning runs only after the new checkpoint is complete.
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
  const { keep = 3 } = options;
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
  await writeFileAtomic(jsonPath, JSON.stringify(full, null, 2) + "\n");
  await pruneCheckpoints(dir, keep);
  return jsonPath;
}

async function listSteps(dir: string): Promise<number[]> {
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

async function pruneCheckpoints(dir: string, keep: number): Promise<void> {
  const steps = await listSteps(dir);
  for (const step of steps.slice(Math.max(1, keep))) {
    for (const ext of [".json", ".safetensors"]) {
      await Deno.remove(`${dir}/${stem(step)}${ext}`).catch(() => {});
    }
  }
}

/** Why a checkpoint was passed over by {@linkcode loadLatestCheckpoint}. */
export interface SkippedCheckpoint {
  /** The JSON file. */
  path: string;
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
  for (const step of await listSteps(dir)) {
    const path = `${dir}/${stem(step)}.json`;
    try {
      const meta = JSON.parse(await Deno.readTextFile(path)) as CheckpointMeta;
      const bytes = await Deno.readFile(`${dir}/${meta.tensors}`);
      if (
        bytes.length !== meta.bytes || await sha256Hex(bytes) !== meta.sha256
      ) {
        throw new Error(
          `${meta.tensors} does not match its recorded length and SHA-256`,
        );
      }
      return { meta, tensors: decodeSafetensors(bytes).tensors };
    } catch (error) {
      skipped.push({ path, reason: (error as Error).message });
    }
  }
  return undefined;
}
