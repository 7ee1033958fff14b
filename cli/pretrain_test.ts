import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";

Deno.test("vicreg pretrain finishes the step, checkpoints and exits 0 on SIGINT", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./main.ts", import.meta.url).pathname,
        "pretrain",
        ...[
          "--preset",
          "tiny",
          "--backend",
          "cpu-fast",
          "--exp-dir",
          `${dir}/run`,
        ],
        ...[
          "--size",
          "16",
          "--image-size",
          "24",
          "--batch-size",
          "8",
          "--num-images",
          "64",
        ],
        ...[
          "--mlp",
          "32-32",
          "--local-mlp",
          "16-8",
          "--log-every",
          "1",
          "--epochs",
          "50",
        ],
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Wait for the first logged step, then interrupt.
    const metrics = `${dir}/run/metrics.jsonl`;
    for (let i = 0; i < 600; i++) {
      const text = await Deno.readTextFile(metrics).catch(() => "");
      if (text.trim() !== "") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill("SIGINT");
    const { code, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    assertEquals(code, 0, err);
    assertTrue(
      err.includes("stopping after this step and writing a checkpoint"),
      err,
    );
    assertTrue(err.includes("interrupted after"), err);
    const names = [...Deno.readDirSync(`${dir}/run`)].map((e) => e.name);
    assertTrue(
      names.some((n) => /^checkpoint-\d+\.json$/.test(n)),
      names.join(" "),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vicreg pretrain --plan-only prints the step plan and reads and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./main.ts", import.meta.url).pathname,
        "pretrain",
        "--plan-only",
        ...["--preset", "tiny", "--backend", "cpu"],
        // Neither is opened: the data does not exist, the run dir is not made.
        ...["--data", `imagefolder:${dir}/missing`, "--exp-dir", `${dir}/run`],
        ...["--batch-size", "16", "--step", "joint", "--micro-batch", "4"],
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const lines = stdout.trim().split("\n");
    assertEquals(lines.length, 1, stdout);
    // 16 images in slices of 4: 4 slices, all kept (joint, as set).
    assertTrue(lines[0].startsWith("Step: "), stdout);
    assertTrue(lines[0].includes("4 of 4 slices"), stdout);
    assertEquals([...Deno.readDirSync(dir)].length, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
