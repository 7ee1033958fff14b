/**
 * The list of subcommands, in `--help` order.
 *
 * @module
 */
import type { Command } from "./args.ts";
import { backendsCommand } from "./backends.ts";

/** Every subcommand of `vicreg`. */
export const COMMANDS: readonly Command[] = [backendsCommand];
