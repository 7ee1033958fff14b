import { cpuHasBf16, getBackend, useBackend } from "@scaling-vicreg/backend";
import {
  assertEquals,
  assertTrue,
  ignoreUnless,
} from "@scaling-vicreg/backend/testing";

async function hasBf16Blas(): Promise<boolean> {
  try {
    await getBackend("blas").init();
    return cpuHasBf16();
  } catch {
    return false;
  }
}

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

/** `vicreg pretrain --plan-only …`: its exit code and stderr. */
async function planOnly(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "pretrain",
      "--plan-only",
      ...["--preset", "tiny", "--exp-dir", "unused"],
      ...args,
    ],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    stdout: new TextDecoder().decode(out.stdout),
  };
}

Deno.test("vicreg pretrain --precision bf16 is refused in one line off blas/native and on a CPU without bf16", async () => {
  const cpu = await planOnly(["--backend", "cpu", "--precision", "bf16"]);
  assertEquals(cpu.code, 1);
  assertEquals(
    cpu.stderr.trim(),
    "vicreg pretrain: --precision bf16: needs the blas or native backend (the active one is cpu)",
  );
  const noBf16 = await planOnly(
    ["--backend", "cpu", "--precision", "bf16"],
    { VICREG_CPU_FLAGS: "avx2 avx512f" },
  );
  assertEquals(noBf16.code, 1);
  assertEquals(
    noBf16.stderr.trim(),
    "vicreg pretrain: --precision bf16: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 CPU flag); use --precision fp32",
  );
  const bad = await planOnly(["--backend", "cpu", "--precision", "fp16"]);
  assertEquals(bad.code, 1);
  assertEquals(
    bad.stderr.trim(),
    'vicreg pretrain: Flag --precision expects one of fp32, bf16: received "fp16"',
  );
});

Deno.test({
  name:
    "vicreg pretrain --precision bf16 on blas prints it on the backend line",
  ignore: ignoreUnless(await hasBf16Blas(), "dnnl-bf16"),
  async fn() {
    const run = await planOnly(["--backend", "blas", "--precision", "bf16"]);
    assertEquals(run.code, 0, run.stderr);
    assertTrue(
      /^pretrain: backend blas — .*; precision bf16$/m.test(run.stderr),
      run.stderr,
    );
  },
});

Deno.test("vicreg pretrain --help describes --precision", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "pretrain",
      "--help",
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
  }).output();
  const help = new TextDecoder().decode(out.stdout);
  assertTrue(/--precision <fp32\|bf16>.*torch\.autocast/.test(help), help);
});

/** Whether `auto` picks `blas` here and native memory has room (16 GiB). */
async function autoIsBlas(): Promise<boolean> {
  try {
    return (await useBackend("auto")).name === "blas" &&
      Deno.systemMemoryInfo().total >= 16 * 2 ** 30;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "vicreg pretrain --backend auto moves a step the wasm heap slices below 64 images, or cannot hold at a set --micro-batch, to native, and leaves one it holds in 64-image slices, or at a set --micro-batch, on blas",
  ignore: ignoreUnless(await autoIsBlas(), "blas"),
  async fn() {
    const big = ["--arch", "resnet18", "--size", "96", "--batch-size", "1024"];
    const moved = await planOnly(big);
    assertEquals(moved.code, 0, moved.stderr);
    assertTrue(
      /^pretrain: backend native — .*\(blas is fastest here, but its wasm heap cuts this step into slices of \d images; native's memory takes slices of (\d+)\); precision fp32$/m
        .test(moved.stderr),
      moved.stderr,
    );
    const slices = Number(/takes slices of (\d+)/.exec(moved.stderr)![1]);
    assertTrue(slices >= 64, moved.stderr);
    const small = await planOnly(["--batch-size", "64"]);
    assertEquals(small.code, 0, small.stderr);
    assertTrue(/^pretrain: backend blas — /m.test(small.stderr), small.stderr);
    const set = await planOnly([...big, "--micro-batch", "2"]);
    assertEquals(set.code, 0, set.stderr);
    assertTrue(/^pretrain: backend blas — /m.test(set.stderr), set.stderr);
    // Slices of 32 do not fit the heap at all: native takes them as set.
    const unfit = await planOnly([...big, "--micro-batch", "32"]);
    assertEquals(unfit.code, 0, unfit.stderr);
    assertTrue(
      /^pretrain: backend native — .*its wasm heap holds no plan for this step; native's memory takes slices of 32\)/m
        .test(unfit.stderr),
      unfit.stderr,
    );
    assertTrue(
      /^Step: .*micro-batches of 32 \(as set\)/m.test(unfit.stdout),
      unfit.stdout,
    );
  },
});
