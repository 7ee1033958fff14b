/**
 * `vicreg report`: re-renders a probe report (report.md, SVG plots) from its
 * report.json and prints the headline table.
 *
 * @module
 */
import { formatHeadline, readReport, writeReport } from "@scaling-vicreg/probe";
import { type Command, UsageError } from "./args.ts";

/** The `report` subcommand. */
export const reportCommand: Command = {
  name: "report",
  summary:
    "Re-render a probe report from its report.json and print the headline",
  usage: "DIR [--out DIR]",
  positionals: true,
  description: `
Reads DIR/report.json (written by vicreg probe), writes report.md, report.json,
accuracy.svg and sweep.svg to --out (default DIR) and prints the table of
baseline probe vs sweep vs sweep + TTA and kNN, with the gain in points.`,
  flags: {
    out: { type: "string", help: "Where to write the report (default: DIR)" },
  },
  async run(values, positionals) {
    const dir = positionals[0];
    if (dir === undefined) {
      throw new UsageError("Expected a report directory: vicreg report DIR");
    }
    const report = await readReport(dir);
    const out = (values.out as string | undefined) ?? dir;
    await Deno.mkdir(out, { recursive: true });
    await writeReport(out, report);
    console.log(formatHeadline(report));
    return 0;
  },
};
