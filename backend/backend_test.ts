import * as tf from "@tensorflow/tfjs-core";
import {
  BackendError,
  getBackend,
  probeBackends,
  readsSynchronously,
  synchronousBackendFor,
  useBackend,
} from "./backend.ts";
import {
  assertClose,
  assertEquals,
  assertThrows,
  assertTrue,
  ignoreUnless,
  loadableBackends,
} from "./testing.ts";

Deno.test("useBackend('cpu') activates the reference backend with gradients", async () => {
  const info = await useBackend("cpu");
  assertEquals(info.name, "cpu");
  assertEquals(tf.getBackend(), "cpu");
  // d/dx sum(x^2) = 2x needs the registered gradient of Square and Sum.
  const x = tf.tensor1d([1, -2, 3]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(t)))(x);
  assertClose(g, [2, -4, 6]);
  tf.dispose([x, g]);
});

Deno.test("getBackend() rejects an unknown name, listing the known ones", () => {
  assertThrows(
    () => getBackend("cuda"),
    BackendError,
    "expected one of auto, tensorflow, webgpu, blas, native, wasm, cpu-fast, cpu",
  );
});

Deno.test("useBackend('tensorflow') without libtensorflow gives a clear error", async () => {
  // A child process with --no-lock: tfjs-node is resolved only when named,
  // and must stay out of the repository's lockfile.
  const code = `
    import { useBackend } from "${new URL("./backend.ts", import.meta.url)}";
    try {
      await useBackend("tensorflow");
      console.log("loaded");
    } catch (error) {
      console.log(error.name + " " + error.backend + ": " + error.message);
    }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-lock", "--ext=ts", code],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assertTrue(
    text.startsWith(
      'BackendError tensorflow: Backend "tensorflow" is unavailable',
    ),
    text,
  );
  assertTrue(text.includes("Available here: "), text);
  assertTrue(/Available here: .*\bcpu\b/.test(text), text);
  assertEquals(text.split("\n").length, 1, text);
});

Deno.test("probeBackends() and useBackend('auto') never load tensorflow", async () => {
  const probes = await probeBackends();
  const tensorflow = probes.find((p) => p.name === "tensorflow");
  assertEquals(tensorflow?.ok, false);
  assertTrue(tensorflow?.reason?.startsWith("not tried"), tensorflow?.reason);
  assertTrue((await useBackend("auto")).name !== "tensorflow");
  await useBackend("cpu");
});

Deno.test("useBackend('blas') without a BLAS library gives a clear error", async () => {
  // A child process: the BLAS is looked up once per process.
  const code = `
    import { useBackend } from "${new URL("./backend.ts", import.meta.url)}";
    try {
      await useBackend("blas");
      console.log("loaded");
    } catch (error) {
      console.log(error.name + ": " + error.message);
    }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    env: { VICREG_BLAS: "/nonexistent/libnothing.so", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assertEquals(
    text.startsWith(
      'BackendError: Backend "blas" is unavailable: No BLAS library found: install OpenBLAS',
    ),
    true,
    text,
  );
  assertEquals(text.includes("(tried /nonexistent/libnothing.so)"), true, text);
  assertEquals(text.includes("Available here: "), true, text);
  assertEquals(text.split("\n").length, 1, text);
});

Deno.test("useBackend('blas') without FFI permission says so, and auto falls back without a prompt", async () => {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      file,
      `
      import { useBackend } from "${new URL("./backend.ts", import.meta.url)}";
      try {
        await useBackend("blas");
      } catch (error) {
        console.log(error.message.split(". Available")[0]);
      }
      console.log((await useBackend("auto")).name);
    `,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      // No --allow-ffi; stdin closed, so a permission prompt would fail.
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--allow-net",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        file,
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assertEquals(
      lines[0],
      'Backend "blas" is unavailable: Cannot open a BLAS: FFI is not allowed (run deno with --allow-ffi or -A)',
    );
    assertEquals(lines[1] !== "blas", true, lines.join(" | "));
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("synchronousBackendFor() keeps a backend that reads synchronously", async () => {
  await useBackend("cpu-fast");
  assertEquals(await synchronousBackendFor("cpu-fast"), "cpu-fast");
  assertEquals(tf.getBackend(), "cpu-fast");
  assertEquals(readsSynchronously("webgpu"), false);
  await useBackend("cpu");
});

const [[, webgpuLoads]] = await loadableBackends(["webgpu"]);
Deno.test({
  name:
    "synchronousBackendFor() swaps WebGPU for another backend and leaves WebGPU active",
  ignore: ignoreUnless(webgpuLoads, "webgpu"),
  async fn() {
    await useBackend("webgpu");
    try {
      const other = await synchronousBackendFor("webgpu");
      assertTrue(other !== "webgpu" && readsSynchronously(other), other);
      assertEquals(tf.getBackend(), "webgpu");
    } finally {
      await useBackend("cpu");
    }
  },
});

const [[, blasLoads]] = await loadableBackends(["blas"]);
Deno.test({
  name:
    "useBackend('blas') says on its device line why oneDNN is not in use (a bad VICREG_DNNL)",
  ignore: ignoreUnless(blasLoads, "blas"),
  async fn() {
    // oneDNN is looked for once per process: a child with the bad path.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        'import { useBackend } from "@scaling-vicreg/backend"; console.log((await useBackend("blas")).device);',
      ],
      env: { VICREG_DNNL: "/nonexistent/libdnnl.so.2" },
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertTrue(
      text.includes("convolutions on the BLAS") &&
        text.includes("/nonexistent/libdnnl.so.2"),
      text,
    );
  },
});
