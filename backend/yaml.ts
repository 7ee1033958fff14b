/**
 * The one seam over the YAML package (swap it for `@std/yaml` when JSR is
 * reachable): run configurations and study files are read and written
 * through these two functions only.
 *
 * @module
 */
import { parse, stringify } from "yaml";

/**
 * Parses YAML text.
 *
 * @example
 * ```ts
 * import { parseYaml } from "@scaling-vicreg/backend/yaml";
 * console.log(parseYaml("lr: 0.2\narch: resnet50")); // { lr: 0.2, arch: "resnet50" }
 * ```
 *
 * @param text The YAML document.
 * @returns The parsed value; throws the parser's error on malformed text.
 */
export function parseYaml(text: string): unknown {
  return parse(text);
}

/**
 * Serialises a plain object to YAML.
 *
 * @example
 * ```ts
 * import { stringifyYaml } from "@scaling-vicreg/backend/yaml";
 * console.log(stringifyYaml({ lr: 0.2 })); // "lr: 0.2\n"
 * ```
 *
 * @param value The object.
 * @returns Its YAML text.
 */
export function stringifyYaml(value: unknown): string {
  return stringify(value);
}
