import {
  assertEquals,
  assertTrue,
  ignoreUnless,
  loadableBackends,
} from "../testing.ts";

const [[, nativeLoads]] = await loadableBackends(["native"]);
const probe = new URL("../testdata/malloc_probe.ts", import.meta.url).pathname;

/** The probe's figures in a fresh process with `env`. */
async function probeWith(env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", probe],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
  return JSON.parse(text) as {
    mappedGrowth: number;
    heapGrowth: number;
    heapAfterFree: number;
  };
}

Deno.test({
  name:
    "native keeps freed memory for reuse: a 64 MiB buffer comes from the heap and stays there when freed; VICREG_KEEP_FREED=off maps it",
  ignore: ignoreUnless(nativeLoads, "native") || Deno.build.os !== "linux",
  async fn() {
    const kept = await probeWith({});
    assertEquals(kept.mappedGrowth, 0, JSON.stringify(kept));
    assertTrue(kept.heapGrowth > 0, JSON.stringify(kept));
    assertEquals(kept.heapAfterFree, kept.heapGrowth, JSON.stringify(kept));
    // The negative control: glibc's defaults give it its own mapping.
    const plain = await probeWith({ VICREG_KEEP_FREED: "off" });
    assertTrue(plain.mappedGrowth >= 64 * 2 ** 20, JSON.stringify(plain));
  },
});
