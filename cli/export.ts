/**
 * `vicreg export`: the backbone of a pretraining run as safetensors, in this
 * project's layout or in torchvision's (names and OIHW / [out, in] layouts),
 * for `vicreg embed`, `vicreg probe` or PyTorch.
 *
 * @module
 */
import { useBackend } from "@scaling-vicreg/backend";
import { saveWeights } from "@scaling-vicreg/models";
import { loadRunBackbone } from "@scaling-vicreg/train";
import { type Command, UsageError } from "./args.ts";

/** The `export` subcommand. */
export const exportCommand: Command = {
  name: "export",
  summary: "Export a run's backbone weights (optionally in torchvision naming)",
  usage: "--run DIR --out W.safetensors [--torchvision]",
  description: `
Loads the backbone of a pretraining run (its config.yaml and
backbone.safetensors) and writes its weights and BatchNorm running statistics
to --out. With --torchvision the file is a torchvision state_dict (names such
as layer1.0.conv1.weight, conv weights OIHW, linear weights [out, in]), which
torch's safetensors loader and torchvision.models.resnet50().load_state_dict(…,
strict=False) read (there is no fc layer).`,
  flags: {
    run: { type: "string", help: "Pretraining run directory" },
    out: { type: "string", help: "Output .safetensors file" },
    torchvision: {
      type: "boolean",
      help: "Write torchvision names and layouts",
    },
  },
  async run(values) {
    for (const flag of ["run", "out"]) {
      if (!values[flag]) throw new UsageError(`Flag --${flag} is required`);
    }
    // Only variables are made and read back: the reference backend suffices.
    await useBackend("cpu");
    const { backbone, config } = await loadRunBackbone(values.run as string);
    try {
      await saveWeights(values.out as string, backbone, {
        torchvision: values.torchvision === true,
        metadata: { arch: config.arch, stem: backbone.stem },
      });
    } finally {
      backbone.dispose();
    }
    console.error(
      `export: wrote ${values.out} (${config.arch}, ${
        values.torchvision ? "torchvision" : "tfjs"
      } layout)`,
    );
    return 0;
  },
};
