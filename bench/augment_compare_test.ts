import { useBackend } from "@scaling-vicreg/backend";
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { benchImages, timeTrainTransform } from "./augment_compare.ts";

await useBackend("cpu");

Deno.test("benchImages() fills byte i of image k with (7i + 13k) mod 256", () => {
  const [a, b] = benchImages(2, 4);
  assertEquals([a.width, a.height, a.data.length], [4, 4, 48]);
  assertEquals(Array.from(a.data.slice(0, 3)), [0, 7, 14]);
  assertEquals(Array.from(b.data.slice(0, 3)), [13, 20, 27]);
  assertEquals(a.data[40], (40 * 7) % 256);
});

Deno.test("timeTrainTransform() times both views of a batch", async () => {
  const t = await timeTrainTransform({
    batch: 2,
    side: 24,
    size: 8,
    iters: 1,
    warmup: 0,
  });
  assertTrue(t.ms_per_batch > 0 && t.images_per_s > 0, JSON.stringify(t));
});
