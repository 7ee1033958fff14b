/**
 * The list of subcommands, in `--help` order.
 *
 * @module
 */
import type { Command } from "./args.ts";
import { backendsCommand } from "./backends.ts";
import { pretrainCommand } from "./pretrain.ts";
import { makeDatasetCommand } from "./make_dataset.ts";
import { cacheCommand } from "./cache.ts";
import { previewCommand } from "./preview.ts";
import { embedCommand } from "./embed.ts";
import { probeCommand } from "./probe.ts";
import { reportCommand } from "./report.ts";
import { demoCommand } from "./demo.ts";
import { exportCommand } from "./export.ts";
import { ablateCommand } from "./ablate.ts";

/** Every subcommand of `vicreg`. */
export const COMMANDS: readonly Command[] = [
  demoCommand,
  pretrainCommand,
  probeCommand,
  reportCommand,
  ablateCommand,
  embedCommand,
  exportCommand,
  previewCommand,
  makeDatasetCommand,
  cacheCommand,
  backendsCommand,
];
