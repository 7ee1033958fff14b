/**
 * The run directory's exported backbone, `backbone.safetensors`, in one
 * place: written once when a run ends ({@linkcode writeRunBackbone}), read
 * back with the run's `config.yaml` by the probe, the export and the study
 * ({@linkcode loadRunBackbone}).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { sha256Hex, writeFileAtomic } from "@scaling-vicreg/backend/fs";
import { encodeSafetensors } from "@scaling-vicreg/backend/safetensors";
import { loadWeights, type ResNet } from "@scaling-vicreg/models";
import {
  type PretrainConfig,
  readConfigFile,
  resolveConfig,
} from "./config.ts";
import { snapshotTensors } from "./checkpoint.ts";
import { createBackbone } from "./vicreg_model.ts";

/** The file's name in a run directory. */
export const BACKBONE_FILE = "backbone.safetensors";

/**
 * Writes a run's backbone (its parameters and BatchNorm running statistics,
 * with its `arch` in the metadata) to `<dir>/backbone.safetensors`,
 * atomically.
 *
 * @param dir The run directory.
 * @param backbone The trained backbone.
 * @returns The file's path.
 */
export async function writeRunBackbone(
  dir: string,
  backbone: ResNet,
): Promise<string> {
  const path = `${dir}/${BACKBONE_FILE}`;
  const tensors = new Map<string, tf.Tensor>([
    ...backbone.parameters(),
    ...backbone.buffers(),
  ]);
  await writeFileAtomic(
    path,
    encodeSafetensors(await snapshotTensors(tensors), { arch: backbone.arch }),
  );
  return path;
}

/** What {@linkcode loadRunBackbone} returns. */
export interface RunBackbone {
  /** The network, with the run's weights loaded (the caller disposes it). */
  backbone: ResNet;
  /** The run's configuration. */
  config: PretrainConfig;
  /** SHA-256 of `backbone.safetensors`, hex: a cache key for its features. */
  sha256: string;
}

/**
 * Loads the backbone a pretraining run exported: builds the network from the
 * run's `config.yaml` ({@linkcode createBackbone}) and loads
 * `backbone.safetensors` into it.
 *
 * @param dir The run directory.
 * @returns The backbone, the run's configuration and the file's hash.
 */
export async function loadRunBackbone(dir: string): Promise<RunBackbone> {
  const config = resolveConfig({
    file: await readConfigFile(`${dir}/config.yaml`),
    fileName: `${dir}/config.yaml`,
  });
  const path = `${dir}/${BACKBONE_FILE}`;
  let sha256: string;
  try {
    sha256 = await sha256Hex(await Deno.readFile(path));
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) throw cause;
    throw new Error(
      `${dir} has no ${BACKBONE_FILE}: the run never ended (killed, or stopped by an error); \`vicreg pretrain --resume --exp-dir ${dir}\` finishes it and writes the backbone`,
      { cause },
    );
  }
  const backbone = createBackbone(config);
  try {
    await loadWeights(path, backbone);
  } catch (error) {
    backbone.dispose();
    throw error;
  }
  return { backbone, config, sha256 };
}
