/**
 * The `vicreg` command: dispatches to subcommands; every error becomes one line
 * on stderr and exit code 1.
 *
 * @module
 */
import { type Command, formatHelp, parseFlags, UsageError } from "./args.ts";
import { COMMANDS } from "./commands.ts";

const PROGRAM = "vicreg";

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    `${PROGRAM} — VICReg self-supervised pretraining and linear-probe evaluation`,
    "",
    `Usage: ${PROGRAM} <command> [flags]   (${PROGRAM} <command> --help for its flags)`,
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
  ].join("\n");
}

/**
 * Runs the CLI on `argv` and resolves to the process exit code.
 *
 * @param argv Arguments after the program name.
 * @returns The exit code: 0 on success, 1 on any error.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    console.log(mainHelp());
    return name === undefined ? 1 : 0;
  }
  const command: Command | undefined = COMMANDS.find((c) => c.name === name);
  try {
    if (command === undefined) {
      throw new UsageError(
        `Unknown command "${name}": expected one of ${
          COMMANDS.map((c) => c.name).join(", ")
        }`,
      );
    }
    const { values, positionals, given } = parseFlags(rest, command.flags);
    if (positionals.length > 0 && !command.positionals) {
      throw new UsageError(
        `Unexpected argument "${
          positionals[0]
        }": ${command.name} takes only flags (see --help)`,
      );
    }
    if (values.help) {
      console.log(formatHelp(PROGRAM, command));
      return 0;
    }
    return await command.run(values, positionals, given);
  } catch (error) {
    console.error(
      `${PROGRAM}${command ? ` ${command.name}` : ""}: ${oneLine(error)}`,
    );
    if (Deno.env.get("VICREG_DEBUG")) console.error(error);
    return 1;
  }
}

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
