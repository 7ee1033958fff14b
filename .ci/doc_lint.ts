/**
 * `deno task doc:lint`: `deno doc --lint` over every workspace member's
 * `exports`, one member at a time (JSR documents each package on its own).
 *
 * One explicit allowance: a public API may name TF.js tensor types
 * (`Tensor4D`, `Variable`, …) without re-exporting them. Re-exporting one
 * drags in TF.js's whole undocumented type tree (`Rank`, `DataType`, …), and
 * `deno doc` has no allow-list of its own, so this script drops exactly those
 * `private-type-ref` diagnostics and fails on every other one. Types of
 * sibling members (`Rng`, `RgbImage`, `ResNet`) are re-exported instead.
 *
 * @module
 */

/** TF.js types a public signature may name without re-exporting them. */
const TFJS_TYPES: ReadonlySet<string> = new Set([
  "Tensor",
  "Scalar",
  "Tensor1D",
  "Tensor2D",
  "Tensor3D",
  "Tensor4D",
  "Tensor5D",
  "Variable",
  "Rank",
  "DataType",
  "TensorLike",
  "NamedTensorMap",
]);

const root = new URL("../", import.meta.url);

interface Config {
  workspace?: string[];
  exports?: string | Record<string, string>;
}

async function readConfig(dir: URL): Promise<Config> {
  return JSON.parse(await Deno.readTextFile(new URL("deno.json", dir)));
}

function entrypoints(member: string, config: Config): string[] {
  const exports = typeof config.exports === "string"
    ? [config.exports]
    : Object.values(config.exports ?? {});
  return exports.map((path) => `${member}/${path.replace(/^\.\//, "")}`);
}

/** Splits `deno doc --lint` output into its diagnostics (blank-line blocks). */
function diagnostics(output: string): string[] {
  return output.split(/\n(?=error(?:\[|:))/).map((b) => b.trim())
    .filter((b) => b.startsWith("error"));
}

function allowed(block: string): boolean {
  const m = block.match(
    /^error\[private-type-ref\]: public type '[^']+' references private type '([^']+)'/,
  );
  return m !== null && TFJS_TYPES.has(m[1]);
}

const { workspace = [] } = await readConfig(root);
let failures = 0;
for (const member of workspace.map((m) => m.replace(/^\.\//, ""))) {
  const files = entrypoints(
    member,
    await readConfig(new URL(`${member}/`, root)),
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", ...files],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  const blocks = diagnostics(text);
  // "error: Found N documentation lint errors." only counts; drop it.
  const remaining = blocks.filter((b) =>
    !allowed(b) && !/^error: Found \d+ documentation lint errors?\./.test(b)
  );
  if (!out.success && remaining.length === 0 && blocks.length === 0) {
    remaining.push(text.trim()); // failed without a diagnostic we recognise
  }
  const skipped = blocks.filter(allowed).length;
  if (remaining.length > 0) {
    failures += remaining.length;
    console.error(`${member}: ${remaining.length} doc lint error(s)`);
    for (const block of remaining) console.error(`${block}\n`);
  } else {
    console.log(
      `${member}: ok (${files.length} entrypoints; ${skipped} TF.js type references allowed)`,
    );
  }
}
if (failures > 0) {
  console.error(`doc lint: ${failures} error(s)`);
  Deno.exit(1);
}
