import { join } from "node:path";
import { assertEquals } from "@scaling-vicreg/backend/testing";
import { openDataset } from "./datasets.ts";
import { PROCEDURAL_CLASS_NAMES, proceduralDataset } from "./procedural.ts";
import { writeImageFolder } from "./write_folder.ts";

Deno.test("writeImageFolder() writes a tree openDataset() reads back losslessly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "write_folder_test_" });
  try {
    const train = proceduralDataset({ n: 30, size: 12 });
    const test = proceduralDataset({ n: 10, size: 12, split: "test" });
    assertEquals(await writeImageFolder(train, join(dir, "train")), 30);
    assertEquals(await writeImageFolder(test, join(dir, "test")), 10);
    const back = await openDataset(dir, { split: "test" });
    assertEquals([back.kind, back.length], ["imagefolder", 10]);
    assertEquals(back.classNames, [...PROCEDURAL_CLASS_NAMES].sort());
    // Entries come back sorted by class name, then file name (= index).
    for (let k = 0; k < back.length; k++) {
      const i = Number(back.entries[k].path.slice(-9, -4));
      assertEquals(
        back.classNames![back.label(k)!],
        PROCEDURAL_CLASS_NAMES[test.label(i)!],
      );
      assertEquals((await back.get(k)).data, (await test.get(i)).data);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
