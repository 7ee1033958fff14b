import { getBackend, useBackend } from "./backend.ts";
import { CPU_FLAGS_ENV, cpuFlags, cpuHasBf16 } from "./cpu_features.ts";
import { activePrecision, isPrecision } from "./precision.ts";
import { setPrecision } from "./set_precision.ts";
import { assertEquals, assertRejects, ignoreUnless } from "./testing.ts";

/** Runs `f` with `VICREG_CPU_FLAGS` set to `flags`, then restores it. */
async function withCpuFlags<T>(flags: string, f: () => Promise<T>): Promise<T> {
  const before = Deno.env.get(CPU_FLAGS_ENV);
  Deno.env.set(CPU_FLAGS_ENV, flags);
  try {
    return await f();
  } finally {
    if (before === undefined) Deno.env.delete(CPU_FLAGS_ENV);
    else Deno.env.set(CPU_FLAGS_ENV, before);
  }
}

async function loads(name: "blas" | "native"): Promise<boolean> {
  try {
    await getBackend(name).init();
    return true;
  } catch {
    return false;
  }
}

Deno.test("cpuFlags: VICREG_CPU_FLAGS replaces /proc/cpuinfo", async () => {
  await withCpuFlags("AVX512F, amx_bf16 sse2", () => {
    assertEquals([...cpuFlags()].sort(), ["amx_bf16", "avx512f", "sse2"]);
    assertEquals(cpuHasBf16(), true);
    return Promise.resolve();
  });
  await withCpuFlags("", () => {
    assertEquals(cpuFlags().size, 0);
    assertEquals(cpuHasBf16(), false);
    return Promise.resolve();
  });
});

Deno.test("isPrecision: fp32 and bf16 only", () => {
  assertEquals(["fp32", "bf16", "fp16", "BF16"].map(isPrecision), [
    true,
    true,
    false,
    false,
  ]);
});

Deno.test("setPrecision: bf16 is refused where the CPU lacks it", async () => {
  await useBackend("cpu");
  await withCpuFlags("avx2 fma avx512f", async () => {
    await assertRejects(
      () => setPrecision("bf16"),
      Error,
      "--precision bf16: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 CPU flag); use --precision fp32",
    );
  });
  assertEquals(activePrecision(), "fp32");
});

Deno.test("setPrecision: bf16 is refused on a backend without it", async () => {
  await useBackend("cpu");
  await withCpuFlags("avx512_bf16", async () => {
    await assertRejects(
      () => setPrecision("bf16"),
      Error,
      "--precision bf16: needs the blas or native backend (the active one is cpu)",
    );
  });
  assertEquals(activePrecision(), "fp32");
});

Deno.test("setPrecision: fp32 is accepted anywhere", async () => {
  await useBackend("cpu");
  await setPrecision("fp32");
  assertEquals(activePrecision(), "fp32");
});

const blasLoads = await loads("blas");
const native = await loads("native");
await useBackend("cpu");
for (const [name, available] of [["blas", blasLoads], ["native", native]]) {
  Deno.test({
    name: `setPrecision: bf16 on ${name} with oneDNN, and back to fp32`,
    ignore: ignoreUnless(
      available === true && cpuHasBf16(),
      "dnnl-bf16",
      `${name} or a bf16 CPU is missing`,
    ),
    async fn() {
      await useBackend(name as "blas" | "native");
      try {
        await setPrecision("bf16");
        assertEquals(activePrecision(), "bf16");
      } finally {
        await setPrecision("fp32");
        await useBackend("cpu");
      }
      assertEquals(activePrecision(), "fp32");
    },
  });
}

Deno.test({
  name:
    "setPrecision: bf16 is refused on blas without oneDNN (VICREG_DNNL=off)",
  ignore: ignoreUnless(blasLoads && cpuHasBf16(), "dnnl-bf16"),
  async fn() {
    // The libraries load once per process: a child process without oneDNN.
    const here = new URL(".", import.meta.url);
    const script = `
      import { useBackend } from "${new URL("backend.ts", here)}";
      import { setPrecision } from "${new URL("set_precision.ts", here)}";
      await useBackend("blas");
      try { await setPrecision("bf16"); console.log("accepted"); }
      catch (e) { console.log(e.message); }`;
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      cwd: new URL("..", here),
      env: { VICREG_DNNL: "off" },
      stdout: "piped",
      stderr: "null",
    }).output();
    assertEquals(
      new TextDecoder().decode(stdout).trim(),
      "--precision bf16: needs oneDNN, which is not loaded (oneDNN is turned off (VICREG_DNNL=off))",
    );
  },
});
