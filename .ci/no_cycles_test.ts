import { assertEquals } from "@scaling-vicreg/backend/testing";
import { cycleGroups, findCycles, staticImports } from "./no_cycles.ts";

Deno.test("staticImports() finds imports and re-exports, not comments, strings, regexes or dynamic imports", () => {
  const source = [
    "/**",
    ' * import { a } from "./in_doc.ts";',
    " */",
    'import * as tf from "@tensorflow/tfjs-core";',
    "import {",
    "  b,",
    "  type C,",
    '} from "./multi_line.ts";',
    'import type { D } from "../types.ts";',
    'import "./side_effect.ts";',
    'export * from "./star.ts";',
    'export type { E } from "./type_only.ts";',
    "export { f };",
    "const s = \"import { g } from './in_string.ts'\";",
    'const r = /import x from "\\.\\/in_regex.ts"/;',
    'const t = `${"a"}\nimport { h } from "./in_template.ts";`;',
    'const lazy = await import("./dynamic.ts");',
    "function inner() {",
    '  return s.replace(/["\']/g, "");',
    "}",
    'export { i } from "./named.ts";',
  ].join("\n");
  assertEquals(
    staticImports(source).map((f) => [f.specifier, f.line]),
    [
      ["@tensorflow/tfjs-core", 4],
      ["./multi_line.ts", 5],
      ["../types.ts", 9],
      ["./side_effect.ts", 10],
      ["./star.ts", 11],
      ["./type_only.ts", 12],
      ["./named.ts", 22],
    ],
  );
});

Deno.test("findCycles() names each cycle once and passes a graph without one", () => {
  const graph = (edges: Record<string, string[]>) =>
    new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));
  assertEquals(findCycles(graph({ a: ["b"], b: ["c"], c: [], d: ["a"] })), []);
  assertEquals(
    findCycles(graph({ a: ["b"], b: ["c"], c: ["a"], d: ["d"], e: ["a"] }))
      .map((c) => c.join(" -> ")).sort(),
    ["a -> b -> c -> a", "d -> d"],
  );
});

Deno.test("cycleGroups() gives every file of a group whose shortest cycle leaves some out", () => {
  const graph = new Map([
    ["render", new Set(["device", "host"])],
    ["device", new Set(["render"])],
    ["host", new Set(["render"])],
    ["params", new Set<string>()],
  ]);
  assertEquals(findCycles(graph).map((c) => c.length), [3]);
  assertEquals(cycleGroups(graph), [["device", "host", "render"]]);
});
