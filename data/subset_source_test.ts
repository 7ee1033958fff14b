import {
  assertEquals,
  assertRejects,
  assertThrows,
} from "@scaling-vicreg/backend/assert";
import { proceduralDataset } from "./procedural.ts";
import { subsetSource } from "./subset_source.ts";

Deno.test("subsetSource() gives the chosen images and labels in the chosen order", async () => {
  const source = proceduralDataset({ n: 12, size: 8 });
  const subset = subsetSource(source, [7, 2, 11]);
  assertEquals(subset.length, 3);
  assertEquals([0, 1, 2].map((i) => subset.label(i)), [7, 2, 1]); // classes cycle mod 10
  assertEquals(await subset.get(1), await source.get(2));
  assertEquals(subset.classNames, source.classNames);
  assertEquals(subset.describe(), `3 of ${source.describe()}`);
  assertEquals(subset.close, undefined);
});

Deno.test("subsetSource() rejects indices outside the source and the subset", async () => {
  const source = proceduralDataset({ n: 4, size: 8 });
  assertThrows(() => subsetSource(source, [0, 4]), RangeError, "[0, 4)");
  const subset = subsetSource(source, [1]);
  assertThrows(() => subset.label(1), RangeError, "the subset");
  await assertRejects(async () => await subset.get(-1), RangeError);
});
