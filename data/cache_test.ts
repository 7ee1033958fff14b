import { join } from "node:path";
import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import { buildCache, cacheKey, openCache } from "./cache.ts";
import { openDataset } from "./datasets.ts";
import { DatasetError, encodePng } from "./decode.ts";
import { proceduralDataset } from "./procedural.ts";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cache_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("buildCache() stores the source's pixels and labels, then reuses them", async () => {
  await withTemp(async (out) => {
    const source = proceduralDataset({ n: 25, size: 16 });
    const cache = await buildCache(source, { size: 16, out, shardSize: 10 });
    assertEquals([cache.rebuilt, cache.length], [true, 25]);
    assertEquals(cache.manifest.shards.map((s) => [s.file, s.count, s.bytes]), [
      ["shard-00000.u8", 10, 7680],
      ["shard-00001.u8", 10, 7680],
      ["shard-00002.u8", 5, 3840],
    ]);
    // Same size: no resampling, so the bytes are the source's.
    for (const i of [0, 9, 10, 24]) {
      assertEquals((await cache.get(i)).data, (await source.get(i)).data);
      assertEquals(cache.label(i), source.label(i));
    }
    assertEquals(cache.classNames, source.classNames);
    cache.close();
    const again = await buildCache(source, { size: 16, out, shardSize: 10 });
    assertEquals([again.rebuilt, again.reason], [false, "reused"]);
    again.close();
    const names = [];
    for await (const e of Deno.readDir(out)) names.push(e.name);
    assertEquals(names.sort(), [
      "manifest.json",
      "shard-00000.u8",
      "shard-00001.u8",
      "shard-00002.u8",
    ]);
  });
});

Deno.test("buildCache() resizes the shorter side and centre-crops to a square", async () => {
  await withTemp(async (dir) => {
    // A 6×3 image: left half 0, right half 200; the shorter side is already 3,
    // so the crop keeps columns 1 … 3 (offset round((6 − 3) / 2) = 2 → 2 … 4).
    const data = new Uint8Array(6 * 3 * 3);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 6; x++) {
        data.fill(x * 40, (y * 6 + x) * 3, (y * 6 + x) * 3 + 3);
      }
    }
    await Deno.mkdir(join(dir, "imgs"));
    await Deno.writeFile(
      join(dir, "imgs", "a.png"),
      await encodePng({ width: 6, height: 3, data }),
    );
    const source = await openDataset(join(dir, "imgs"));
    const cache = await buildCache(source, {
      size: 3,
      out: join(dir, "cache"),
    });
    const image = await cache.get(0);
    assertEquals([image.width, image.height], [3, 3]);
    assertEquals(Array.from(image.data.subarray(0, 9)), [
      80,
      80,
      80,
      120,
      120,
      120,
      160,
      160,
      160,
    ]);
    assertEquals(cache.manifest.paths, [join(dir, "imgs", "a.png")]);
    assertEquals(cache.manifest.labels, null);
    assertEquals(cache.label(0), undefined);
    cache.close();
  });
});

Deno.test("buildCache() rebuilds when a source file or the settings change", async () => {
  await withTemp(async (dir) => {
    const root = join(dir, "data");
    for (const cls of ["a", "b"]) {
      await Deno.mkdir(join(root, cls), { recursive: true });
      for (let i = 0; i < 2; i++) {
        await Deno.writeFile(
          join(root, cls, `${i}.png`),
          await encodePng({
            width: 8,
            height: 8,
            data: new Uint8Array(192).fill(i + 10),
          }),
        );
      }
    }
    const out = join(dir, "cache");
    const open = () =>
      openDataset(`imagefolder:${root}`, { testFraction: 0.01 });
    (await buildCache(await open(), { size: 8, out })).close();
    const reused = await buildCache(await open(), { size: 8, out });
    assertEquals(reused.rebuilt, false);
    reused.close();
    const changed = join(root, "a", "0.png");
    await Deno.writeFile(
      changed,
      await encodePng({
        width: 8,
        height: 8,
        data: new Uint8Array(192).fill(99),
      }),
    );
    await Deno.utime(changed, new Date(), new Date(Date.now() + 5000));
    const rebuilt = await buildCache(await open(), { size: 8, out });
    assertEquals(rebuilt.rebuilt, true);
    assertTrue(rebuilt.reason.includes("stale"), rebuilt.reason);
    const index = rebuilt.manifest.paths!.indexOf(changed);
    assertEquals((await rebuilt.get(index)).data[0], 99);
    rebuilt.close();
    const resized = await buildCache(await open(), { size: 4, out });
    assertEquals([resized.rebuilt, resized.manifest.size], [true, 4]);
    resized.close();
    assertTrue(
      await cacheKey(await open(), 4) !== await cacheKey(await open(), 8),
    );
  });
});

Deno.test("openCache() detects a truncated or altered shard and buildCache() rebuilds it", async () => {
  await withTemp(async (out) => {
    const source = proceduralDataset({ n: 12, size: 8 });
    (await buildCache(source, { size: 8, out, shardSize: 5 })).close();
    const shard = join(out, "shard-00001.u8");
    const bytes = await Deno.readFile(shard);
    await Deno.writeFile(shard, bytes.subarray(0, bytes.length - 7));
    await assertRejects(
      () => openCache(out),
      DatasetError,
      "expected 960 bytes, found 953",
    );
    const fixed = await buildCache(source, { size: 8, out, shardSize: 5 });
    assertTrue(fixed.rebuilt && fixed.reason.includes("damaged"), fixed.reason);
    fixed.close();
    const flipped = (await Deno.readFile(shard)).slice();
    flipped[100] ^= 1;
    await Deno.writeFile(shard, flipped);
    await assertRejects(() => openCache(out), DatasetError, "SHA-256");
    // Length-only checking cannot see a flipped byte; the full check is the default.
    (await openCache(out, { verify: false })).close();
    const again = await buildCache(source, { size: 8, out, shardSize: 5 });
    assertEquals(again.rebuilt, true);
    assertEquals((await again.get(7)).data, (await source.get(7)).data);
    again.close();
    await Deno.remove(join(out, "manifest.json"));
    await assertRejects(() => openCache(out), DatasetError, "manifest");
  });
});

Deno.test("openCache() serves concurrent reads from one shard correctly", async () => {
  await withTemp(async (out) => {
    const source = proceduralDataset({ n: 30, size: 8 });
    (await buildCache(source, { size: 8, out })).close();
    const cache = await openCache(out);
    const images = await Promise.all(
      Array.from({ length: 30 }, (_, i) => cache.get(29 - i)),
    );
    for (let i = 0; i < 30; i++) {
      assertEquals(images[29 - i].data, (await source.get(i)).data);
    }
    cache.close();
  });
});
