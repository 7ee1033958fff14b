import {
  assertEquals,
  assertRejects,
  assertTrue,
  ignoreUnless,
  pythonImports,
} from "./testing.ts";

/** Runs `deno test` on a file that uses ignoreUnless, with `env`. */
async function runTests(
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  const file = await Deno.makeTempFile({ suffix: "_test.ts" });
  try {
    await Deno.writeTextFile(
      file,
      `
      import { ignoreUnless } from "${new URL(
        "./testing.ts",
        import.meta.url,
      )}";
      for (const name of ["one", "two"]) {
        Deno.test({
          name: "needs lib-a " + name,
          ignore: ignoreUnless(false, "lib-a"),
          fn() {},
        });
      }
      Deno.test({
        name: "needs lib-b",
        ignore: ignoreUnless(true, "lib-b"),
        fn() {},
      });
    `,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-env",
        "--no-check",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        file,
      ],
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    return { code: out.code, out: text };
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("ignoreUnless() ignores a test whose library is missing, and runs it where present", async () => {
  const { code, out } = await runTests({ VICREG_REQUIRE: "" });
  assertEquals(code, 0, out);
  assertTrue(out.includes("needs lib-a one ... ignored"), out);
  assertTrue(out.includes("needs lib-b ... ok"), out);
  assertTrue(/\| 1 passed \| 0 failed \| 2 ignored/.test(out), out);
});

Deno.test("ignoreUnless() fails once per library listed in VICREG_REQUIRE but missing", async () => {
  const { code, out } = await runTests({ VICREG_REQUIRE: "other, LIB-A" });
  assertTrue(code !== 0, out);
  assertTrue(
    out.includes("lib-a is available (listed in VICREG_REQUIRE) ... FAILED"),
    out,
  );
  assertTrue(/\| 1 passed \| 1 failed \| 2 ignored/.test(out), out);
});

Deno.test("ignoreUnless() returns whether to ignore", () => {
  assertEquals(ignoreUnless(true, "anything"), false);
  assertEquals(ignoreUnless(false, "not-required-here"), true);
});

Deno.test("pythonImports() is false for a module python3 cannot import, and refuses a non-name", async () => {
  assertEquals(await pythonImports("no_such_module_for_vicreg_tests"), false);
  // Where python3 runs at all, its standard library imports.
  const python = await new Deno.Command("python3", { args: ["-V"] }).output()
    .then((o) => o.success, () => false);
  assertEquals(await pythonImports("json"), python);
  await assertRejects(
    () => pythonImports("os; print(1)"),
    RangeError,
    "Python module name",
  );
});
