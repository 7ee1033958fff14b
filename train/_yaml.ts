// The one seam over the YAML package (swap for @std/yaml when JSR is reachable).
import { parse, stringify } from "yaml";

/** Parses YAML text; throws SyntaxError-like errors from the parser. */
export function parseYaml(text: string): unknown {
  return parse(text);
}

/** Serialises a plain object to YAML. */
export function stringifyYaml(value: unknown): string {
  return stringify(value);
}
