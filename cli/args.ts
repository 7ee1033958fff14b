/**
 * Command-line flags: the one seam over `node:util`'s `parseArgs` (swap it for
 * `@std/cli` when JSR is reachable), typed values, and generated `--help`.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A bad flag or flag value; the CLI prints its message and exits 1. */
export class UsageError extends Error {
  /**
   * Makes a usage error.
   *
   * @param message One line naming the flag and what was expected.
   * @param options `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** One flag of a command. */
export interface FlagSpec {
  /** Value type; `boolean` flags take no value. */
  type: "string" | "number" | "int" | "boolean";
  /** One line for `--help`. */
  help: string;
  /** The default, shown in `--help`; absent flags without one are `undefined`. */
  default?: string | number | boolean;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  /** One-letter alias. */
  short?: string;
}

/** A subcommand: its name, a summary, its flags and what it does. */
export interface Command {
  /** The subcommand's name (`pretrain`). */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Usage line after the command name, e.g. `[flags]`. */
  usage?: string;
  /** Whether it takes positional arguments (others reject them). @default {false} */
  positionals?: boolean;
  /** Longer text printed after the usage line. */
  description?: string;
  /** Flags by long name (without `--`). */
  flags: Record<string, FlagSpec>;
  /**
   * Runs with the parsed flags (defaults applied), the positionals and the
   * names of the flags actually given; resolves to the exit code.
   */
  run(
    flags: Record<string, string | number | boolean | undefined>,
    positionals: string[],
    given: Set<string>,
  ): Promise<number>;
}

/** Parsed flags: values by long name, plus positionals. */
export interface ParsedFlags {
  /** Flag values (defaults applied). */
  values: Record<string, string | number | boolean | undefined>;
  /** Names of the flags given on the command line (not defaults). */
  given: Set<string>;
  /** Positional arguments. */
  positionals: string[];
}

/**
 * Parses `argv` against a command's flags. Unknown flags, missing values, bad
 * numbers and values outside `choices` throw a {@linkcode UsageError} naming
 * the flag.
 *
 * @example
 * ```ts
 * import { parseFlags } from "@scaling-vicreg/cli/args";
 * const { values } = parseFlags(["--epochs", "3"], {
 *   epochs: { type: "int", help: "epochs", default: 1 },
 * });
 * console.log(values.epochs); // 3
 * ```
 *
 * @param argv The arguments after the subcommand.
 * @param flags The command's flag specs.
 * @returns Typed values, which flags were given, and positionals.
 */
export function parseFlags(
  argv: readonly string[],
  flags: Record<string, FlagSpec>,
): ParsedFlags {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string }
  > = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = {
      type: spec.type === "boolean" ? "boolean" : "string",
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  // node:util reads "-4" after "--batch-size" as an option ("argument is
  // ambiguous"): a negative number after a flag that takes a value is its
  // value, and the range check then names the flag.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = /^--([^=]+)$/.exec(argv[i])?.[1];
    const spec = name === undefined ? undefined : flags[name];
    const next = argv[i + 1];
    if (
      spec !== undefined && spec.type !== "boolean" && next !== undefined &&
      /^-(\d|\.\d|Infinity)/.test(next)
    ) {
      args.push(`${argv[i]}=${next}`);
      i += 1;
    } else {
      args.push(argv[i]);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options,
      allowPositionals: true,
      // `--no-tensorboard` turns off a boolean flag that defaults to on.
      allowNegative: true,
      strict: true,
    });
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : String(cause);
    throw new UsageError(text.split("\n")[0].replace(/\. To specify.*$/, ""), {
      cause,
    });
  }
  const values: ParsedFlags["values"] = {};
  const given = new Set<string>();
  for (const [name, spec] of Object.entries(flags)) {
    const raw =
      (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (raw === undefined) {
      values[name] = spec.default;
      continue;
    }
    given.add(name);
    values[name] = convert(name, spec, raw);
  }
  if (parsed.values.help) given.add("help");
  values.help = parsed.values.help === true;
  return { values, given, positionals: parsed.positionals };
}

function convert(
  name: string,
  spec: FlagSpec,
  raw: string | boolean,
): string | number | boolean {
  if (spec.type === "boolean") return raw === true;
  const text = String(raw);
  if (spec.type === "number" || spec.type === "int") {
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value)) {
      throw new UsageError(
        `Flag --${name} expects a number: received "${text}"`,
      );
    }
    if (spec.type === "int" && !Number.isInteger(value)) {
      throw new UsageError(
        `Flag --${name} expects an integer: received "${text}"`,
      );
    }
    return value;
  }
  if (spec.choices && !spec.choices.includes(text)) {
    throw new UsageError(
      `Flag --${name} expects one of ${
        spec.choices.join(", ")
      }: received "${text}"`,
    );
  }
  return text;
}

/**
 * The `--help` text of a command: usage, description and every flag with its
 * type, default and choices.
 *
 * @param program The program name (`vicreg`).
 * @param command The command.
 * @returns Text to print.
 */
export function formatHelp(program: string, command: Command): string {
  const lines = [
    `${program} ${command.name} — ${command.summary}`,
    "",
    `Usage: ${program} ${command.name} ${command.usage ?? "[flags]"}`,
  ];
  if (command.description) lines.push("", command.description.trim());
  lines.push("", "Flags:");
  const entries = Object.entries(command.flags);
  const labels = entries.map(([name, spec]) =>
    `  ${spec.short ? `-${spec.short}, ` : ""}--${
      spec.type === "boolean" && spec.default === true ? "[no-]" : ""
    }${name}${
      spec.type === "boolean"
        ? ""
        : ` <${spec.choices ? spec.choices.join("|") : spec.type}>`
    }`
  );
  const width = Math.min(40, Math.max(...labels.map((l) => l.length), 12) + 2);
  entries.forEach(([, spec], i) => {
    const label = labels[i].padEnd(width);
    const dflt = spec.type === "boolean"
      ? spec.default === true ? " (default: on)" : ""
      : spec.default !== undefined
      ? ` (default: ${spec.default})`
      : "";
    lines.push(
      labels[i].length >= width
        ? `${labels[i]}\n${" ".repeat(width)}${spec.help}${dflt}`
        : `${label}${spec.help}${dflt}`,
    );
  });
  lines.push(`${"  -h, --help".padEnd(width)}Show this help`);
  return lines.join("\n");
}
