import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { EventWriter } from "@scaling-vicreg/tensorboard";
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

Deno.test("ablate --seeds 2 runs each configuration twice and prints mean ± SD with the within-noise legend", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/study.yaml`,
      [
        "title: CLI seeds study",
        'pretrain: { preset: tiny, "num-images": 16, "image-size": 16, mlp: 16-16 }',
        "budget: { epochs: 1, batch-size: 8, size: 16, seed: 0 }",
        "configurations: [global-only]",
        "downstream:",
        "  - { name: shapes, data: procedural, seed: 1, train-images: 20, test-images: 10, image-size: 16 }",
        "probe: { trials: 1, max-epochs: 1, baseline-epochs: 1, tta: false }",
        `out: ${dir}/study`,
      ].join("\n"),
    );
    const r = await capture(() =>
      main([
        "ablate",
        ...["--config", `${dir}/study.yaml`, "--max-steps", "1"],
        ...["--seeds", "2", "--backend", "cpu-fast"],
      ])
    );
    assertEquals(r.code, 0, r.err);
    assertTrue(
      r.err.includes("1 configurations × 1 data sets × 2 seeds"),
      r.err,
    );
    assertTrue(r.err.includes("global-only (seed 1): pretraining"), r.err);
    assertTrue(
      r.out.includes("| configuration | shapes | average | n | vs best |"),
      r.out,
    );
    assertTrue(/\| global-only \| \d+\.\d ± \d+\.\d \| /.test(r.out), r.out);
    assertTrue(
      r.out.includes("Within noise: two rows are within noise"),
      r.out,
    );
    // Each seed's run, its probe's TensorBoard file beside it.
    for (const run of ["global-only", "global-only.seed1"]) {
      const path = `${dir}/study/runs/${run}`;
      assertEquals(
        JSON.parse(await Deno.readTextFile(`${path}/done.json`)).budget.seed,
        run === "global-only" ? 0 : 1,
      );
      assertEquals(
        (await EventWriter.list(`${path}/probe-shapes`, ".probe")).length,
        1,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
