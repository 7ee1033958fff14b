import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { sha256Hex } from "@scaling-vicreg/backend/fs";
import {
  compareFileLists,
  fileListDigest,
  fingerprintFiles,
} from "./file_list_fingerprint.ts";

Deno.test("fingerprintFiles() lists each file below the root with its size, and digests the list as sha256 of its 'path<TAB>bytes' lines", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/cat`);
    await Deno.writeTextFile(`${root}/cat/a.png`, "abcd");
    await Deno.writeTextFile(`${root}/b.png`, "");
    const paths = [`${root}/cat/a.png`, `${root}/b.png`, `${root}/gone.png`];
    const print = await fingerprintFiles(root, paths, { concurrency: 2 });
    assertEquals(print.files, [
      { path: "cat/a.png", bytes: 4 },
      { path: "b.png", bytes: 0 },
      { path: "gone.png", bytes: -1 },
    ]);
    assertEquals(print.count, 3);
    assertEquals(
      print.digest,
      await sha256Hex("cat/a.png\t4\nb.png\t0\ngone.png\t-1\n"),
    );
    // The same files under another root: the same fingerprint.
    const copy = await Deno.makeTempDir();
    await Deno.mkdir(`${copy}/cat`);
    await Deno.copyFile(`${root}/cat/a.png`, `${copy}/cat/a.png`);
    await Deno.copyFile(`${root}/b.png`, `${copy}/b.png`);
    const moved = await fingerprintFiles(`${copy}/`, [
      `${copy}/cat/a.png`,
      `${copy}/b.png`,
    ]);
    assertEquals(
      moved.digest,
      await fileListDigest(print.files.slice(0, 2)),
    );
    await Deno.remove(copy, { recursive: true });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compareFileLists() names removed, resized and added files and sees a reorder; equal lists show no change", () => {
  const saved = [
    { path: "a", bytes: 1 },
    { path: "b", bytes: 2 },
    { path: "c", bytes: 3 },
  ];
  assertEquals(compareFileLists(saved, saved), {
    removed: [],
    resized: [],
    added: [],
    reordered: false,
  });
  assertEquals(
    compareFileLists(saved, [
      { path: "c", bytes: 3 },
      { path: "a", bytes: 5 },
      { path: "d", bytes: 1 },
    ]),
    {
      removed: ["b"],
      resized: [{ path: "a", from: 1, to: 5 }],
      added: ["d"],
      reordered: true,
    },
  );
  const change = compareFileLists(saved, saved.slice(1));
  assertEquals(change.removed, ["a"]);
  assertTrue(!change.reordered);
});
