import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { main } from "./main.ts";

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const { error, log } = console;
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    return { code: await fn(), err: err.join("\n"), out: out.join("\n") };
  } finally {
    console.error = error;
    console.log = log;
  }
}

Deno.test("ablate --seeds refuses a count below 1 or not a whole number in one line, writing nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [value, expected] of [
        ["0", "Flag --seeds expects an integer ≥ 1: received 0"],
        ["-2", "Flag --seeds expects an integer ≥ 1: received -2"],
        ["1.5", 'Flag --seeds expects an integer: received "1.5"'],
        ["three", 'Flag --seeds expects a number: received "three"'],
      ]
    ) {
      const r = await capture(() =>
        main([
          "ablate",
          "--preset",
          "tiny",
          "--out",
          `${dir}/study`,
          `--seeds=${value}`,
        ])
      );
      assertEquals(r.code, 1, r.err);
      assertEquals(r.err.split("\n").length, 1, r.err);
      assertTrue(r.err.includes(expected), r.err);
    }
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ablate reads seeds from the study file and names a bad value's key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/study.yaml`,
      ["seeds: 0", `out: ${dir}/study`].join("\n"),
    );
    const r = await capture(() =>
      main(["ablate", "--config", `${dir}/study.yaml`])
    );
    assertEquals(r.code, 1, r.err);
    assertEquals(r.err.split("\n").length, 1, r.err);
    assertTrue(
      r.err.includes(
        `Key "seeds" in ${dir}/study.yaml expects an integer ≥ 1: received 0`,
      ),
      r.err,
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [
      "study.yaml",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
