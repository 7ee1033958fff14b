/**
 * The `vicreg` command line: `main()` and the flag parser its subcommands use.
 *
 * @module
 */
export * from "./args.ts";
export * from "./main.ts";
export * from "./commands.ts";
