/**
 * `vicreg backends`: which tensor backends load and pass a training self-test
 * on this machine, and which one `--backend auto` picks.
 *
 * @module
 */
import { probeBackends, useBackend } from "@scaling-vicreg/backend";
import type { Command } from "./args.ts";

/** The `backends` subcommand. */
export const backendsCommand: Command = {
  name: "backends",
  summary: "List the tensor backends that work here and the one auto picks",
  flags: {},
  async run() {
    for (const probe of await probeBackends()) {
      console.log(
        `${probe.ok ? "ok  " : "no  "} ${probe.name.padEnd(10)} ${
          probe.reason ?? probe.detail ?? ""
        }`,
      );
    }
    const picked = await useBackend("auto");
    console.log(`auto → ${picked.name} (${picked.reason})`);
    return 0;
  },
};
