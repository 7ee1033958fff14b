import { assertEquals } from "./testing.ts";
import { freeDiskBytes, writeFileAtomic } from "./fs.ts";

Deno.test("writeFileAtomic() replaces the file and leaves no temp file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/a.json`;
  await Deno.writeTextFile(path, "old");
  await writeFileAtomic(path, '{"new":true}');
  assertEquals(await Deno.readTextFile(path), '{"new":true}');
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assertEquals(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["a.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic() keeps the old file when the write fails", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/keep.txt`;
  await Deno.writeTextFile(path, "good");
  // A directory in the way of the rename makes the write fail.
  await Deno.mkdir(`${dir}/sub`);
  let failed = false;
  try {
    await writeFileAtomic(`${dir}/sub`, "x");
  } catch {
    failed = true;
  }
  assertEquals(failed, true);
  assertEquals(await Deno.readTextFile(path), "good");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "keep.txt",
    "sub",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sha256Hex() matches the FIPS 180-2 test vectors", async () => {
  const { sha256Hex } = await import("./fs.ts");
  assertEquals(
    await sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(
    await sha256Hex(new Uint8Array(0)),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
});

Deno.test({
  name:
    "freeDiskBytes() gives df's available bytes, for a path that does not exist yet too",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const df = await new Deno.Command("df", {
        args: ["-B1", "--output=avail", dir],
        stdout: "piped",
      }).output();
      const avail = Number(
        new TextDecoder().decode(df.stdout).trim().split("\n").at(-1),
      );
      // Other processes write meanwhile: within 256 MiB.
      for (const path of [dir, `${dir}/not/yet/a.json`]) {
        const free = freeDiskBytes(path);
        assertEquals(
          free !== undefined && Math.abs(free - avail) < 2 ** 28,
          true,
          `${path}: ${free} against df's ${avail}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
