import { Rng } from "@scaling-vicreg/backend";
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { writeNpy } from "@scaling-vicreg/backend/npy";
import { formatHelp, parseFlags, UsageError } from "./args.ts";
import { COMMANDS } from "./commands.ts";
import { main } from "./main.ts";

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await fn(), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("main() prints one line and exits 1 for an unknown command or flag", async () => {
  const a = await capture(() => main(["pretrian"]));
  assertEquals(a.code, 1);
  assertEquals(
    a.err,
    'vicreg: Unknown command "pretrian": expected one of ' +
      COMMANDS.map((c) => c.name).join(", "),
  );
  const b = await capture(() => main(["pretrain", "--bogus"]));
  assertEquals(b.code, 1);
  assertEquals(b.err.split("\n").length, 1);
  assertTrue(b.err.includes("--bogus"), b.err);
});

Deno.test("main() rejects a bad pretrain value naming the key, before writing anything", async () => {
  const parent = await Deno.makeTempDir();
  const dir = `${parent}/run`;
  try {
    const r = await capture(() =>
      main(["pretrain", "--batch-size", "1", "--exp-dir", dir])
    );
    assertEquals(r.code, 1);
    assertTrue(r.err.includes('Key "batch-size"'), r.err);
    const s = await capture(() =>
      main(["pretrain", "--epochs", "two", "--exp-dir", dir])
    );
    assertEquals(s.code, 1);
    assertTrue(s.err.includes("--epochs expects a number"), s.err);
    let exists = true;
    try {
      await Deno.stat(dir);
    } catch {
      exists = false;
    }
    assertEquals(exists, false);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("main() names a bad key of a YAML config file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/run.yaml`,
      "arch: resnet18\nlearning-rate: 0.1\n",
    );
    const r = await capture(() =>
      main(["pretrain", "--config", `${dir}/run.yaml`])
    );
    assertEquals(r.code, 1);
    assertTrue(
      r.err.includes(`Unknown key "learning-rate" in ${dir}/run.yaml`),
      r.err,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every command's --help explains every flag", async () => {
  for (const command of COMMANDS) {
    const r = await capture(() => main([command.name, "--help"]));
    assertEquals(r.code, 0);
    for (const flag of Object.keys(command.flags)) {
      assertTrue(
        r.out.includes(`--${flag}`),
        `${command.name} --help lacks --${flag}`,
      );
    }
    assertEquals(r.out, formatHelp("vicreg", command));
  }
});

Deno.test("parseFlags() types values and names the flag of a bad one", () => {
  const spec = {
    n: { type: "int" as const, help: "n", default: 1 },
    mode: { type: "string" as const, help: "m", choices: ["a", "b"] },
    on: { type: "boolean" as const, help: "o" },
  };
  const p = parseFlags(["--n", "3", "--mode", "b", "--on", "x"], spec);
  assertEquals(p.values.n, 3);
  assertEquals(p.values.mode, "b");
  assertEquals(p.values.on, true);
  assertEquals(p.positionals, ["x"]);
  assertEquals([...p.given].sort(), ["mode", "n", "on"]);
  let caught: unknown;
  try {
    parseFlags(["--n", "1.5"], spec);
  } catch (e) {
    caught = e;
  }
  assertTrue(
    caught instanceof UsageError &&
      caught.message === 'Flag --n expects an integer: received "1.5"',
  );
});

Deno.test("parseFlags() turns a boolean flag off with --no-<name>, and formatHelp() shows it", () => {
  const spec = {
    tensorboard: { type: "boolean" as const, help: "t", default: true },
    resume: { type: "boolean" as const, help: "r", default: false },
  };
  const off = parseFlags(["--no-tensorboard"], spec);
  assertEquals(off.values.tensorboard, false);
  assertEquals([...off.given], ["tensorboard"]);
  const on = parseFlags([], spec);
  assertEquals(on.values.tensorboard, true);
  assertEquals(on.given.size, 0);
  const help = formatHelp("vicreg", {
    name: "x",
    summary: "s",
    flags: spec,
    run: () => Promise.resolve(0),
  });
  assertTrue(/--\[no-\]tensorboard +t \(default: on\)/.test(help), help);
  assertTrue(/--resume +r$/m.test(help), help);
});

Deno.test("vicreg probe on precomputed features fits the TTA row on 10-crop train features unless --tta-on test", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rng = new Rng(3);
    const write = async (name: string, rows: number, dim: number) => {
      const data = Float32Array.from(
        { length: rows * dim },
        () => rng.normal(0, 1),
      );
      await Deno.writeFile(
        `${dir}/${name}.npy`,
        writeNpy({ shape: [rows, dim], dtype: "float32", data }),
      );
    };
    const labels = async (name: string, rows: number) =>
      await Deno.writeFile(
        `${dir}/${name}.npy`,
        writeNpy({
          shape: [rows],
          dtype: "int32",
          data: Int32Array.from({ length: rows }, (_, i) => i % 2),
        }),
      );
    await write("tr", 20, 3);
    await write("tr10", 20, 3);
    await write("te", 10, 3);
    await write("te10", 10, 3);
    await labels("ytr", 20);
    await labels("yte", 10);
    const base = [
      "probe",
      "--train-features",
      `${dir}/tr.npy`,
      "--train-labels",
      `${dir}/ytr.npy`,
      "--test-features",
      `${dir}/te.npy`,
      "--test-labels",
      `${dir}/yte.npy`,
      "--test-tta-features",
      `${dir}/te10.npy`,
      "--trials",
      "1",
      "--max-epochs",
      "1",
      "--backend",
      "cpu",
    ];
    const missing = await capture(() => main([...base, "--out", dir]));
    assertEquals(missing.code, 1);
    assertTrue(missing.err.includes("--train-tta-features"), missing.err);
    const variants: [string, string[]][] = [
      ["all", ["--train-tta-features", `${dir}/tr10.npy`]],
      ["test", []],
    ];
    for (const [on, extra] of variants) {
      const out = `${dir}/out-${on}`;
      const r = await capture(() =>
        main([...base, ...extra, "--tta-on", on, "--out", out])
      );
      assertEquals(r.code, 0, r.err);
      const json = JSON.parse(await Deno.readTextFile(`${out}/report.json`));
      assertEquals(json.ttaOn, on);
      assertEquals(
        json.splits[2].train,
        on === "all" ? "10-crop mean" : "single view",
      );
      assertTrue(json.sweepTta !== null);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
