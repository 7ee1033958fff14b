import {
  assertEquals,
  assertTrue,
  ignoreUnless,
  loadableBackends,
} from "@scaling-vicreg/backend/testing";

const SCRIPT = new URL("./gpu_check.sh", import.meta.url).pathname;

// Any attempt to reach the network goes to a port nothing listens on, so a
// check that needed the registry would fail instead of quietly downloading.
const OFFLINE = {
  HTTP_PROXY: "http://127.0.0.1:9",
  HTTPS_PROXY: "http://127.0.0.1:9",
  NO_PROXY: "",
};

async function gpuCheck(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("bash", {
    args: [SCRIPT, ...args],
    env: { DENO: Deno.execPath(), ...OFFLINE, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

const [[, webgpuLoads]] = await loadableBackends(["webgpu"]);

Deno.test({
  name:
    "bench/gpu_check.sh --quick runs end to end from the Deno cache, with the network unused",
  ignore: ignoreUnless(webgpuLoads, "webgpu"),
  async fn() {
    const { code, stdout, stderr } = await gpuCheck(["--quick"], {});
    assertEquals(code, 0, stderr);
    const lines = stdout.split("\n");
    assertTrue(lines.some((l) => /^ok\s+webgpu\s/.test(l)), stdout);
    const records = lines.filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    );
    const step = records.find((r) => r.backend === "webgpu" && "tfjs" in r);
    assertTrue(step !== undefined, stdout);
    assertEquals(step.case, "tiny-16px-b16");
    assertEquals(step.steps, 1);
    assertTrue(step.tfjs.images_per_s > 0, stdout);
    assertTrue("torch" in step, stdout);
    // tensorflow either ran or says why not.
    const tensorflow = records.find((r) => r.backend === "tensorflow");
    assertTrue(
      tensorflow !== undefined &&
        ("tfjs" in tensorflow || typeof tensorflow.skipped === "string"),
      stdout,
    );
    const plan = records.find((r) => "plan" in r);
    assertEquals(plan?.preset, "tiny");
    assertTrue(/^(joint|mixed|view-by-view)/.test(plan.plan), stdout);
    assertTrue(!records.some((r) => "error" in r), stdout);
  },
});

Deno.test("bench/gpu_check.sh with an empty DENO_DIR fails in one line naming what is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { code, stdout, stderr } = await gpuCheck(["--quick"], {
      DENO_DIR: dir,
    });
    assertEquals(code, 1);
    assertEquals(stdout, "");
    const lines = stderr.trim().split("\n");
    assertEquals(lines.length, 1, stderr);
    // Deno resolves the npm packages concurrently, so whichever it reports
    // first: one the lockfile pins.
    const named = lines[0].match(
      new RegExp(
        `^gpu_check: the Deno cache ${dir} lacks npm package "([^"]+)"`,
      ),
    )?.[1];
    const lock = JSON.parse(
      await Deno.readTextFile(new URL("../deno.lock", import.meta.url)),
    ) as { npm: Record<string, unknown> };
    const pinned = Object.keys(lock.npm).map((k) =>
      k.slice(0, k.indexOf("@", 1))
    );
    assertTrue(named !== undefined && pinned.includes(named), stderr);
    assertTrue(lines[0].includes("deno task cache-deps"), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench/gpu_check.sh without a deno binary or with a bad flag says so in one line", async () => {
  const missing = await gpuCheck([], { DENO: "/nonexistent/deno" });
  assertEquals(missing.code, 1);
  assertEquals(
    missing.stderr,
    "gpu_check: no deno binary: put deno on PATH or set DENO=/path/to/deno (bench/README.md)\n",
  );
  const bad = await gpuCheck(["--steps", "0"], {});
  assertEquals(bad.code, 1);
  assertEquals(
    bad.stderr,
    "gpu_check: flag --steps: expected a positive integer: received 0\n",
  );
});
