/**
 * `deno task cycles`: fails when the workspace's files import each other in a
 * cycle.
 *
 * Every `.ts` file of every workspace member is read, and its static imports
 * and re-exports (`import … from`, `import type … from`, `import "…"`,
 * `export … from`) are resolved: relative paths against the file, and
 * `@scaling-vicreg/<member>[/<subpath>]` through that member's `deno.json`
 * `exports`. Type-only imports count: a type cycle still ties two files'
 * concepts together. Dynamic `import()` does not count (it is how a module
 * loads another lazily, on purpose). npm and other packages are left out.
 *
 * The source is scanned with a small lexer that skips comments, strings,
 * template literals and regular expressions, so an `import` line in a doc
 * example or a string is not taken for an import.
 *
 * Exit 0 with a count of files and imports when there is no cycle; exit 1
 * naming every cycle (one per strongly connected group of files) otherwise.
 *
 * @module
 */

const root = new URL("../", import.meta.url);
const SCOPE = "@scaling-vicreg/";

interface MemberConfig {
  name?: string;
  exports?: string | Record<string, string>;
}

/** A static import or re-export found in a file. */
interface Found {
  specifier: string;
  line: number;
}

/**
 * The specifiers of the static imports and re-exports of a module's source,
 * with their line numbers.
 */
export function staticImports(source: string): Found[] {
  const tokens = lex(source);
  const found: Found[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.depth !== 0 || t.kind !== "word") continue;
    if (t.text === "import") {
      const next = tokens[i + 1];
      // import("…") and import.meta are not static imports.
      if (next === undefined || next.text === "(" || next.text === ".") {
        continue;
      }
      if (next.kind === "string") {
        found.push({ specifier: next.text, line: t.line });
        continue;
      }
      const from = fromClause(tokens, i + 1);
      if (from) found.push({ specifier: from.text, line: t.line });
    } else if (t.text === "export") {
      let j = i + 1;
      if (tokens[j]?.text === "type") j++;
      if (tokens[j]?.text !== "*" && tokens[j]?.text !== "{") continue;
      const from = fromClause(tokens, j);
      if (from) found.push({ specifier: from.text, line: t.line });
    }
  }
  return found;
}

/** The string after `from`, before the statement's `;` (or the next statement). */
function fromClause(tokens: Token[], start: number): Token | undefined {
  for (let j = start; j < tokens.length; j++) {
    const t = tokens[j];
    if (t.text === ";" && t.kind === "punct") return undefined;
    if (
      t.kind === "word" && t.text === "from" && t.depth === tokens[start].depth
    ) {
      const s = tokens[j + 1];
      return s?.kind === "string" ? s : undefined;
    }
    if (
      t.kind === "word" && j > start &&
      (t.text === "import" || t.text === "export") && t.depth === 0
    ) {
      return undefined;
    }
  }
  return undefined;
}

interface Token {
  kind: "word" | "string" | "punct";
  text: string;
  line: number;
  /** Brace depth: 0 at the top level of the module. */
  depth: number;
}

const WORD = /[A-Za-z0-9_$]/;
// After these words a `/` starts a regular expression, not a division.
const BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

/** Words, strings and punctuation of the code outside comments and templates. */
function lex(src: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let depth = 0;
  let i = 0;
  const n = src.length;
  const newlines = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (src[k] === "\n") line++;
  };
  const skipString = (q: string, from: number): number => {
    let k = from + 1;
    while (k < n && src[k] !== q) {
      if (src[k] === "\\") k++;
      k++;
    }
    return k + 1;
  };
  // A template literal from its opening backtick; returns the index after it.
  const skipTemplate = (from: number): number => {
    let k = from + 1;
    while (k < n && src[k] !== "`") {
      if (src[k] === "\\") k += 2;
      else if (src[k] === "$" && src[k + 1] === "{") k = skipCode(k + 2);
      else k++;
    }
    return k + 1;
  };
  // Code inside `${…}` up to its closing brace; returns the index after it.
  const skipCode = (from: number): number => {
    let k = from;
    let braces = 0;
    while (k < n) {
      const c = src[k];
      if (c === "}" && braces === 0) return k + 1;
      if (c === "{") braces++;
      else if (c === "}") braces--;
      if (c === "'" || c === '"') k = skipString(c, k);
      else if (c === "`") k = skipTemplate(k);
      else if (c === "/" && src[k + 1] === "/") {
        while (k < n && src[k] !== "\n") k++;
      } else if (c === "/" && src[k + 1] === "*") {
        k = src.indexOf("*/", k + 2) + 2 || n;
      } else k++;
    }
    return k;
  };
  const regexAllowed = () => {
    const last = tokens.at(-1);
    if (last === undefined) return true;
    if (last.kind === "string") return false;
    if (last.kind === "word") return BEFORE_REGEX.has(last.text);
    return last.text !== ")" && last.text !== "]" && last.text !== "}";
  };
  while (i < n) {
    const c = src[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "/" && src[i + 1] === "/") {
      while (i < n && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      newlines(i, stop);
      i = stop;
    } else if (c === "'" || c === '"') {
      const end = skipString(c, i);
      tokens.push({
        kind: "string",
        text: src.slice(i + 1, end - 1),
        line,
        depth,
      });
      newlines(i, end);
      i = end;
    } else if (c === "`") {
      const end = skipTemplate(i);
      tokens.push({ kind: "string", text: "", line, depth });
      newlines(i, end);
      i = end;
    } else if (c === "/" && regexAllowed()) {
      let k = i + 1;
      let inClass = false;
      while (k < n && src[k] !== "\n") {
        if (src[k] === "\\") k++;
        else if (src[k] === "[") inClass = true;
        else if (src[k] === "]") inClass = false;
        else if (src[k] === "/" && !inClass) break;
        k++;
      }
      k++;
      while (k < n && WORD.test(src[k])) k++; // flags
      tokens.push({ kind: "punct", text: "/re/", line, depth });
      i = k;
    } else if (WORD.test(c)) {
      let k = i;
      while (k < n && WORD.test(src[k])) k++;
      tokens.push({ kind: "word", text: src.slice(i, k), line, depth });
      i = k;
    } else {
      if (c === "}") depth = Math.max(0, depth - 1);
      tokens.push({ kind: "punct", text: c, line, depth });
      if (c === "{") depth++;
      i++;
    }
  }
  return tokens;
}

/** The `.ts` files under a directory, recursively (no `node_modules`). */
async function tsFiles(dir: URL): Promise<URL[]> {
  const out: URL[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) out.push(...await tsFiles(url));
    else if (e.isFile && /\.(ts|tsx|mts)$/.test(e.name)) out.push(url);
  }
  return out;
}

/** A strongly connected group of more than one file (or a file importing itself), as one cycle. */
export function findCycles(graph: Map<string, Set<string>>): string[][] {
  return stronglyConnected(graph).map((group) =>
    cycleIn(graph, new Set(group))
  );
}

/** Groups of files that reach each other (Tarjan), only those with a cycle. */
function stronglyConnected(graph: Map<string, Set<string>>): string[][] {
  // Tarjan's strongly connected components, iteratively.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  for (const start of graph.keys()) {
    if (idx.has(start)) continue;
    const work: [string, string[]][] = [];
    const enter = (v: string) => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      onStack.add(v);
      work.push([v, [...(graph.get(v) ?? [])]]);
    };
    enter(start);
    while (work.length) {
      const [v, rest] = work.at(-1)!;
      const w = rest.shift();
      if (w !== undefined) {
        if (!idx.has(w)) enter(w);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const u = work.at(-1)![0];
        low.set(u, Math.min(low.get(u)!, low.get(v)!));
      }
      if (low.get(v) === idx.get(v)) {
        const group: string[] = [];
        let x: string;
        do {
          x = stack.pop()!;
          onStack.delete(x);
          group.push(x);
        } while (x !== v);
        if (group.length > 1 || graph.get(v)?.has(v)) groups.push(group);
      }
    }
  }
  return groups;
}

/** The strongly connected groups of files behind {@linkcode findCycles}' cycles, each sorted. */
export function cycleGroups(graph: Map<string, Set<string>>): string[][] {
  return stronglyConnected(graph).map((group) => group.sort());
}

/** One concrete cycle through a strongly connected group: a path back to its first file. */
function cycleIn(
  graph: Map<string, Set<string>>,
  group: Set<string>,
): string[] {
  const first = [...group].sort()[0];
  // Breadth-first from the first file's successors back to it: a shortest cycle.
  const previous = new Map<string, string>();
  const queue = [first];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!group.has(w)) continue;
      if (w === first) {
        const path = [first];
        for (let x = v; x !== first; x = previous.get(x)!) path.unshift(x);
        path.unshift(first);
        return path;
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [first, first];
}

async function main(): Promise<number> {
  const rootConfig = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  ) as { workspace?: string[] };
  // "@scaling-vicreg/<member>" + subpath -> file URL.
  const entries = new Map<string, string>();
  const files: URL[] = [];
  for (const member of rootConfig.workspace ?? []) {
    const dir = new URL(member.replace(/\/?$/, "/"), root);
    const config = JSON.parse(
      await Deno.readTextFile(new URL("deno.json", dir)),
    ) as MemberConfig;
    const exports = typeof config.exports === "string"
      ? { ".": config.exports }
      : config.exports ?? {};
    if (config.name) {
      for (const [sub, path] of Object.entries(exports)) {
        const name = sub === "."
          ? config.name
          : `${config.name}/${sub.slice(2)}`;
        entries.set(name, new URL(path, dir).href);
      }
    }
    files.push(...await tsFiles(dir));
  }
  const graph = new Map<string, Set<string>>();
  const problems: string[] = [];
  let edges = 0;
  for (const file of files) {
    const out = new Set<string>();
    graph.set(file.href, out);
    const source = await Deno.readTextFile(file);
    for (const { specifier, line } of staticImports(source)) {
      let target: string | undefined;
      if (specifier.startsWith("./") || specifier.startsWith("../")) {
        target = new URL(specifier, file).href;
      } else if (specifier.startsWith(SCOPE)) {
        target = entries.get(specifier);
        if (target === undefined) {
          problems.push(
            `${
              rel(file.href)
            }:${line}: "${specifier}" is not in any member's exports`,
          );
          continue;
        }
      } else continue;
      out.add(target);
      edges++;
    }
  }
  for (const problem of problems) console.error(problem);
  const cycles = findCycles(graph);
  const groups = cycleGroups(graph);
  cycles.forEach((cycle, i) => {
    const more = groups[i].length > cycle.length - 1
      ? ` (its group: ${groups[i].map(rel).join(", ")})`
      : "";
    console.error(`import cycle: ${cycle.map(rel).join(" -> ")}${more}`);
  });
  if (cycles.length || problems.length) {
    console.error(
      `no_cycles: ${cycles.length} import cycle(s), ${problems.length} unresolved import(s) in ${files.length} files`,
    );
    return 1;
  }
  console.log(
    `no_cycles: ${files.length} files, ${edges} local imports, no cycle`,
  );
  return 0;
}

function rel(href: string): string {
  return href.startsWith(root.href) ? href.slice(root.href.length) : href;
}

if (import.meta.main) Deno.exit(await main());
