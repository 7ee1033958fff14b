/**
 * The run directory's exported backbone, `backbone.safetensors`: written once
 * when a run ends, read back (with the run's `config.yaml`) by the probe, the
 * export and the study.
 *
 * @module
 */
import { loadWeights, type ResNet } from "@scaling-vicreg/models";
import {
  type PretrainConfig,
  readConfigFile,
  resolveConfig,
} from "./config.ts";
import { createVicregModel } from "./vicreg_model.ts";

/**
 * Loads the backbone a pretraining run exported: builds the network from the
 * run's `config.yaml` and loads `backbone.safetensors` into it.
 *
 * @param dir The run directory.
 * @returns The backbone and the run's configuration.
 */
export async function loadRunBackbone(
  dir: string,
): Promise<{ backbone: ResNet; config: PretrainConfig }> {
  const config = resolveConfig({
    file: await readConfigFile(`${dir}/config.yaml`),
    fileName: `${dir}/config.yaml`,
  });
  const weights = `${dir}/backbone.safetensors`;
  try {
    await Deno.stat(weights);
  } catch (cause) {
    if (!(cause instanceof Deno.errors.NotFound)) throw cause;
    throw new Error(
      `${dir} has no backbone.safetensors: the run never ended (killed, or stopped by an error); \`vicreg pretrain --resume --exp-dir ${dir}\` finishes it and writes the backbone`,
      { cause },
    );
  }
  const model = createVicregModel({ ...config, useLocalLoss: false });
  model.projector.dispose();
  try {
    await loadWeights(weights, model.backbone);
  } catch (error) {
    model.backbone.dispose();
    throw error;
  }
  return { backbone: model.backbone, config };
}
