/**
 * `deno task edges`: fails when one workspace member imports another that
 * the architecture does not allow, or a file reaches into another member by
 * a relative path.
 *
 * The allowed edges are {@linkcode ALLOWED_EDGES}: the members' DAG, lowest
 * first. A member may import itself and the members its row names, nothing
 * else; `cli` and `bench` sit on top and may import any member. Test files
 * follow the same table, with one addition: any member's tests may use
 * `@scaling-vicreg/backend/assert` (the tensor-free assertions), so that the
 * tests of a member that must not load TF.js (`distributed`) still share the
 * one assertion seam. Tests outside `cli` and `bench` must not start the CLI
 * (`cli/main.ts`): a lower member is tested through its own API.
 *
 * Imports are read with `no_cycles.ts`'s lexer (static imports and
 * re-exports; type-only ones count; dynamic `import()` does not).
 *
 * @module
 */
import { staticImports } from "./no_cycles.ts";

const root = new URL("../", import.meta.url);
const SCOPE = "@scaling-vicreg/";

/** Each member and the members it may import. */
export const ALLOWED_EDGES: Readonly<Record<string, readonly string[]>> = {
  backend: [],
  distributed: [],
  tensorboard: [],
  optim: ["backend"],
  models: ["backend"],
  losses: ["backend"],
  augment: ["backend"],
  data: ["backend", "augment"],
  probe: ["backend", "optim"],
  train: [
    "backend",
    "optim",
    "models",
    "losses",
    "augment",
    "data",
    "distributed",
    "tensorboard",
  ],
  experiments: [
    "backend",
    "optim",
    "models",
    "losses",
    "augment",
    "data",
    "distributed",
    "tensorboard",
    "probe",
    "train",
  ],
  cli: ["*"],
  bench: ["*"],
};

/** The one subpath every member's tests may import besides their row. */
export const TEST_HELPER_ENTRY = "@scaling-vicreg/backend/assert";

/** One import the table does not allow. */
export interface EdgeViolation {
  /** The importing file, relative to the repository root. */
  file: string;
  /** Its line. */
  line: number;
  /** What is wrong, in one line. */
  message: string;
}

/**
 * The member a relative path or `@scaling-vicreg/<member>…` specifier points
 * into, seen from `file` (both relative to the root, `/`-separated), or
 * `undefined` for an npm or other external specifier.
 */
export function targetMember(
  file: string,
  specifier: string,
): string | undefined {
  if (specifier.startsWith(SCOPE)) {
    return specifier.slice(SCOPE.length).split("/")[0];
  }
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    const resolved = new URL(specifier, new URL(file, "file:///r/")).pathname;
    const top = resolved.slice("/r/".length).split("/");
    return top.length > 1 ? top[0] : undefined;
  }
  return undefined;
}

/**
 * The violations in one file of member `member`: imports of members outside
 * its row of `allowed`, relative imports that leave the member, and (in
 * tests outside cli and bench) a start of `cli/main.ts`.
 *
 * @param member The file's member (its top-level folder).
 * @param file The file's path relative to the root.
 * @param source Its text.
 * @param allowed The table, {@linkcode ALLOWED_EDGES} by default.
 * @returns The violations, in line order.
 */
export function memberViolations(
  member: string,
  file: string,
  source: string,
  allowed: Readonly<Record<string, readonly string[]>> = ALLOWED_EDGES,
): EdgeViolation[] {
  const row = allowed[member];
  if (row === undefined) {
    return [{
      file,
      line: 1,
      message:
        `member "${member}" has no row in ALLOWED_EDGES (.ci/member_edges.ts): add it with the members it may import`,
    }];
  }
  const isTest = /_test\.ts$|_test_util\.ts$|\/_test_/.test(file);
  const out: EdgeViolation[] = [];
  for (const { specifier, line } of staticImports(source)) {
    const target = targetMember(file, specifier);
    if (target === undefined || target === member) continue;
    if (!specifier.startsWith(SCOPE)) {
      out.push({
        file,
        line,
        message:
          `"${specifier}" reaches into member "${target}" by a relative path: import "${SCOPE}${target}" by name`,
      });
      continue;
    }
    if (row.includes("*") || row.includes(target)) continue;
    if (isTest && specifier === TEST_HELPER_ENTRY) continue;
    out.push({
      file,
      line,
      message:
        `${member} -> ${target} ("${specifier}") is not an allowed edge: ${member} may import ${
          row.length ? row.join(", ") : "no other member"
        }`,
    });
  }
  if (isTest && member !== "cli" && member !== "bench") {
    source.split("\n").forEach((text, i) => {
      if (/\bcli\/main\.ts\b/.test(text)) {
        out.push({
          file,
          line: i + 1,
          message:
            `a ${member} test starts the CLI (cli/main.ts): test ${member} through its own API, or move the test to cli/`,
        });
      }
    });
  }
  return out;
}

async function tsFiles(dir: URL, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    if (e.isDirectory) {
      out.push(
        ...await tsFiles(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`),
      );
    } else if (e.isFile && /\.(ts|tsx|mts)$/.test(e.name)) {
      out.push(`${prefix}${e.name}`);
    }
  }
  return out;
}

async function main(): Promise<number> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  ) as { workspace?: string[] };
  const members = (config.workspace ?? []).map((m) =>
    m.replace(/^\.\//, "").replace(/\/$/, "")
  );
  const violations: EdgeViolation[] = [];
  let files = 0;
  for (const member of members) {
    for (
      const file of await tsFiles(new URL(`${member}/`, root), `${member}/`)
    ) {
      files++;
      const source = await Deno.readTextFile(new URL(file, root));
      violations.push(...memberViolations(member, file, source));
    }
  }
  for (const v of violations) {
    console.error(`${v.file}:${v.line}: ${v.message}`);
  }
  if (violations.length) {
    console.error(
      `member_edges: ${violations.length} import(s) outside the allowed member graph in ${files} files`,
    );
    return 1;
  }
  console.log(
    `member_edges: ${members.length} members, ${files} files, every import on an allowed edge`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
