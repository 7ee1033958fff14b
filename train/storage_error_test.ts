import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { guardWrite, StorageError, storageErrorCode } from "./storage_error.ts";

Deno.test("storageErrorCode() reads Deno's code or the OS error number of a full, read-only, over-quota or over-limit disk, and nothing else", () => {
  const withCode = Object.assign(new Error("No space left on device"), {
    code: "ENOSPC",
  });
  assertEquals(storageErrorCode(withCode), "ENOSPC");
  assertEquals(
    storageErrorCode(new Error("File too large (os error 27)")),
    "EFBIG",
  );
  assertEquals(
    storageErrorCode(
      new Error("Read-only file system (os error 30): open 'x'"),
    ),
    "EROFS",
  );
  assertEquals(
    storageErrorCode(
      new Error(
        `Disk quota exceeded (os error ${
          Deno.build.os === "darwin" ? 69 : 122
        })`,
      ),
    ),
    "EDQUOT",
  );
  assertEquals(
    storageErrorCode(new Deno.errors.NotFound("(os error 2)")),
    undefined,
  );
  assertEquals(storageErrorCode("ENOSPC"), undefined);
});

Deno.test("guardWrite() turns a full disk into one line naming the file, the free space and the newest checkpoint left intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/checkpoint-00000005.safetensors`;
    const full = () => {
      throw new Error("No space left on device (os error 28)");
    };
    const none = await assertRejects(
      () => guardWrite(path, full),
      StorageError,
    );
    assertEquals(none.code, "ENOSPC");
    assertEquals(none.path, path);
    assertTrue(
      none.message.startsWith(
        `Cannot write ${path}: no space left on the device (ENOSPC); `,
      ),
      none.message,
    );
    assertTrue(
      /; [\d.]+ [KMG]iB free there; no checkpoint had been written yet: make room, then start the run again$/
        .test(none.message),
      none.message,
    );
    assertTrue((none.freeBytes ?? -1) > 0);
    await Deno.writeTextFile(`${dir}/checkpoint-00000004.json`, "{}");
    await Deno.writeTextFile(`${dir}/checkpoint-00000002.json`, "{}");
    const kept = await assertRejects(
      () => guardWrite(path, full),
      StorageError,
    );
    assertTrue(
      kept.message.endsWith(
        "; the last checkpoint, checkpoint-00000004.json, is intact: make room, then run the same command with --resume",
      ),
      kept.message,
    );
    assertEquals(kept.message.split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("guardWrite() passes other errors and results through", async () => {
  const other = new TypeError("not a disk problem");
  const thrown = await assertRejects(
    () =>
      guardWrite("/x/y", () => {
        throw other;
      }),
    TypeError,
  );
  assertEquals(thrown, other);
  assertEquals(await guardWrite("/x/y", () => 3), 3);
});
