import { join } from "node:path";
import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  detectDatasetKind,
  listDataset,
  openDataset,
  parseDataSpec,
  type SkippedFile,
  skippedReport,
  stratifiedSplit,
} from "./datasets.ts";
import { DatasetError, encodePng } from "./decode.ts";

/** Writes a 4×4 PNG of one gray level `v` (so tests can tell images apart). */
async function png(path: string, v = 128): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeFile(
    path,
    await encodePng({ width: 4, height: 4, data: new Uint8Array(48).fill(v) }),
  );
}

async function write(path: string, text: string | Uint8Array): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  if (typeof text === "string") await Deno.writeTextFile(path, text);
  else await Deno.writeFile(path, text);
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function names(paths: readonly { path: string }[], root: string): string[] {
  return paths.map((e) => e.path.slice(root.length + 1));
}

Deno.test("parseDataSpec() reads an optional kind prefix", () => {
  assertEquals(parseDataSpec("cub200:/d/CUB"), {
    kind: "cub200",
    path: "/d/CUB",
  });
  assertEquals(parseDataSpec("/d/x"), { path: "/d/x" });
  assertEquals(parseDataSpec("C:/d/x"), { path: "C:/d/x" });
  assertEquals(parseDataSpec("procedural"), { kind: "procedural", path: "" });
});

Deno.test("openDataset() reads an unlabeled folder recursively by extension", async () => {
  await withTemp(async (root) => {
    await png(join(root, "a.png"));
    await png(join(root, "sub", "deeper", "b.PNG"));
    await write(
      join(root, "sub", "c.JPG"),
      await Deno.readFile(join(root, "a.png")),
    );
    await write(join(root, "notes.txt"), "hello");
    await png(join(root, ".hidden", "d.png"));
    assertEquals(await detectDatasetKind(root), "folder");
    const ds = await openDataset(root);
    assertEquals(ds.kind, "folder");
    assertEquals(names(ds.entries, root), [
      "a.png",
      "sub/c.JPG",
      "sub/deeper/b.PNG",
    ]);
    assertEquals(ds.label(0), undefined);
    assertEquals(ds.classNames, undefined);
    // c.JPG holds PNG bytes: decoding goes by content, not extension.
    assertEquals((await ds.get(1)).width, 4);
  });
});

Deno.test("openDataset() reads ImageFolder train/ and test/ (or val/) splits", async () => {
  await withTemp(async (root) => {
    for (
      const [split, cls, n] of [["train", "cat", 3], ["train", "dog", 2], [
        "val",
        "dog",
        1,
      ], ["val", "cat", 2]] as const
    ) {
      for (let i = 0; i < n; i++) await png(join(root, split, cls, `${i}.png`));
    }
    assertEquals(await detectDatasetKind(root), "imagefolder");
    const train = await openDataset(root);
    assertEquals(train.classNames, ["cat", "dog"]);
    assertEquals(
      Array.from({ length: train.length }, (_, i) => train.label(i)),
      [0, 0, 0, 1, 1],
    );
    const test = await openDataset(root, { split: "test" });
    assertEquals(Array.from({ length: test.length }, (_, i) => test.label(i)), [
      0,
      0,
      1,
    ]);
    assertTrue(test.describe().includes("val/"), test.describe());
    await png(join(root, "val", "bird", "0.png"));
    await assertRejects(
      () => openDataset(root, { split: "test" }),
      DatasetError,
      '"bird"',
    );
  });
});

Deno.test("openDataset() splits an ImageFolder without splits per class, seeded", async () => {
  await withTemp(async (root) => {
    for (let i = 0; i < 10; i++) await png(join(root, "a", `${i}.png`));
    for (let i = 0; i < 5; i++) await png(join(root, "b", `${i}.png`));
    const train = await listDataset(root, { seed: 1 });
    const test = await listDataset(root, { seed: 1, split: "test" });
    assertEquals(train.kind, "imagefolder");
    // round(0.2 · 10) = 2 and round(0.2 · 5) = 1 go to test.
    assertEquals(test.entries.map((e) => e.label), [0, 0, 1]);
    assertEquals(train.entries.length, 12);
    const all = [...train.entries, ...test.entries].map((e) => e.path).sort();
    assertEquals(new Set(all).size, 15);
    const again = await listDataset(root, { seed: 1, split: "test" });
    assertEquals(again.entries, test.entries);
    const other = await listDataset(root, { seed: 2, split: "test" });
    assertTrue(
      other.entries.some((e, i) => e.path !== test.entries[i].path),
      "seed changes the split",
    );
  });
});

Deno.test("stratifiedSplit() keeps at least one image per class on each side", () => {
  const entries = [{ path: "a", label: 0 }, { path: "b", label: 0 }, {
    path: "c",
    label: 1,
  }];
  const { train, test } = stratifiedSplit(entries, 0.1, 0);
  assertEquals(test.length, 1);
  assertEquals(test[0].label, 0);
  assertEquals(train.map((e) => e.label).sort(), [0, 1]);
});

async function makeCub(dir: string): Promise<void> {
  const images = [
    "001.A/a1.jpg",
    "001.A/a2.jpg",
    "002.B/b1.jpg",
    "002.B/b2.jpg",
    "003.C/c1.jpg",
  ];
  await write(join(dir, "classes.txt"), "1 001.A\n2 002.B\n3 003.C\n");
  await write(
    join(dir, "images.txt"),
    images.map((p, i) => `${i + 1} ${p}`).join("\n") + "\n",
  );
  await write(join(dir, "image_class_labels.txt"), "1 1\n2 1\n3 2\n4 2\n5 3\n");
  await write(join(dir, "train_test_split.txt"), "1 1\n2 0\n3 1\n4 0\n5 1\n");
  for (const [i, p] of images.entries()) {
    await png(join(dir, "images", p), 10 * i);
  }
}

Deno.test("openDataset() reads the CUB-200-2011 layout and its official split", async () => {
  await withTemp(async (parent) => {
    const root = join(parent, "CUB_200_2011");
    await makeCub(root);
    for (const dir of [root, parent]) {
      assertEquals(await detectDatasetKind(dir), "cub200");
      const train = await openDataset(dir);
      assertEquals(train.classNames, ["001.A", "002.B", "003.C"]);
      assertEquals(names(train.entries, root), [
        "images/001.A/a1.jpg",
        "images/002.B/b1.jpg",
        "images/003.C/c1.jpg",
      ]);
      assertEquals(train.entries.map((e) => e.label), [0, 1, 2]);
      const test = await openDataset(dir, { split: "test" });
      assertEquals(test.entries.map((e) => e.label), [0, 1]);
      assertEquals((await test.get(1)).data[0], 30);
    }
    await Deno.remove(join(root, "train_test_split.txt"));
    await assertRejects(
      () => openDataset(`cub200:${root}`),
      DatasetError,
      "train_test_split.txt is missing",
    );
  });
});

Deno.test("openDataset() reads SUN397 with Partitions/Training_0k.txt (default partition 1)", async () => {
  await withTemp(async (root) => {
    await write(
      join(root, "Partitions", "ClassName.txt"),
      "/a/abbey\n/b/bakery/shop\n",
    );
    await write(
      join(root, "Partitions", "Training_01.txt"),
      "/a/abbey/sun_1.jpg\n/b/bakery/shop/sun_3.jpg\n",
    );
    await write(
      join(root, "Partitions", "Testing_01.txt"),
      "/a/abbey/sun_2.jpg\n/b/bakery/shop/sun_4.jpg\n",
    );
    await write(
      join(root, "Partitions", "Training_02.txt"),
      "/a/abbey/sun_2.jpg\n/b/bakery/shop/sun_4.jpg\n/b/bakery/shop/sun_3.jpg\n",
    );
    await write(
      join(root, "Partitions", "Testing_02.txt"),
      "/a/abbey/sun_1.jpg\n",
    );
    for (
      const p of [
        "a/abbey/sun_1.jpg",
        "a/abbey/sun_2.jpg",
        "b/bakery/shop/sun_3.jpg",
        "b/bakery/shop/sun_4.jpg",
      ]
    ) {
      await png(join(root, p));
    }
    assertEquals(await detectDatasetKind(root), "sun397");
    const train = await openDataset(root);
    assertEquals(train.classNames, ["abbey", "bakery/shop"]);
    assertEquals(names(train.entries, root), [
      "a/abbey/sun_1.jpg",
      "b/bakery/shop/sun_3.jpg",
    ]);
    assertEquals(train.entries.map((e) => e.label), [0, 1]);
    const test = await openDataset(root, { split: "test" });
    assertEquals(names(test.entries, root), [
      "a/abbey/sun_2.jpg",
      "b/bakery/shop/sun_4.jpg",
    ]);
    const p2 = await openDataset(root, { partition: 2 });
    assertEquals(p2.entries.map((e) => e.label), [0, 1, 1]);
    await assertRejects(
      () => openDataset(root, { partition: 3 }),
      DatasetError,
      "Training_03.txt",
    );
  });
});

Deno.test("openDataset() reads Mini-ImageNet CSVs, pooling class-disjoint splits", async () => {
  await withTemp(async (root) => {
    const rows = (cls: string[], per: number) =>
      "filename,label\n" +
      cls.flatMap((c) =>
        Array.from({ length: per }, (_, i) => `${c}_${i}.jpg,${c}\n`)
      ).join("");
    await write(join(root, "train.csv"), rows(["n01", "n02"], 5));
    await write(join(root, "val.csv"), rows(["n03"], 5));
    await write(join(root, "test.csv"), rows(["n04"], 5));
    for (const c of ["n01", "n02", "n03", "n04"]) {
      for (let i = 0; i < 5; i++) {
        await png(join(root, "images", `${c}_${i}.jpg`));
      }
    }
    assertEquals(await detectDatasetKind(root), "miniimagenet");
    const train = await openDataset(root);
    const test = await openDataset(root, { split: "test" });
    assertEquals(train.classNames, ["n01", "n02", "n03", "n04"]);
    assertEquals([train.length, test.length], [16, 4]);
    assertEquals(test.entries.map((e) => e.label), [0, 1, 2, 3]);
    // Same classes in train.csv and test.csv: used as they are.
    await write(join(root, "test.csv"), rows(["n01", "n02"], 2));
    await Deno.remove(join(root, "val.csv"));
    const direct = await openDataset(root, { split: "test" });
    assertEquals(direct.entries.map((e) => e.label), [0, 0, 1, 1]);
    await Deno.remove(join(root, "images"), { recursive: true });
    await assertRejects(() => openDataset(root), DatasetError, "images");
  });
});

Deno.test("openDataset() skips and counts each kind of bad file, or fails under strict", async () => {
  await withTemp(async (top) => {
    await png(join(top, "test", "a", "0.png"));
    await png(join(top, "test", "b", "0.png"));
    const root = join(top, "train");
    for (let i = 0; i < 3; i++) await png(join(root, "a", `${i}.png`), 10 + i);
    for (let i = 0; i < 2; i++) await png(join(root, "b", `${i}.png`), 100 + i);
    await write(join(root, "a", "empty.png"), new Uint8Array(0));
    await write(join(root, "a", "text.jpg"), "not an image");
    await write(
      join(root, "b", "cmyk.jpg"),
      new Uint8Array([
        0xff,
        0xd8,
        0xff,
        0xc0,
        0,
        20,
        8,
        0,
        4,
        0,
        4,
        4,
        1,
        0x11,
        0,
        2,
        0x11,
        0,
        3,
        0x11,
        0,
        4,
        0x11,
        0,
      ]),
    );
    const good = await Deno.readFile(join(root, "b", "0.png"));
    await write(join(root, "b", "cut.png"), good.subarray(0, good.length - 12));
    const warnings: SkippedFile[] = [];
    const ds = await openDataset(top, {
      onWarning: (_, f) => warnings.push(f),
    });
    // The header check catches three up front; the truncated PNG passes it.
    assertEquals(names(ds.skipped, root).sort(), [
      "a/empty.png",
      "a/text.jpg",
      "b/cmyk.jpg",
    ]);
    const cutIndex = ds.entries.findIndex((e) => e.path.endsWith("cut.png"));
    assertTrue(cutIndex >= 0);
    // Reading it records it and returns the next image of the same class.
    const image = await ds.get(cutIndex);
    assertTrue(image.data[0] >= 100, "replaced by a class-b image");
    assertEquals(ds.skipped.length, 4);
    assertEquals(warnings.length, 4);
    assertTrue(ds.describe().includes("4 skipped"), ds.describe());
    assertEquals(JSON.parse(skippedReport(ds.skipped)).count, 4);
    await assertRejects(() => openDataset(top, { strict: true }), DatasetError);
    const lax = await openDataset(top, { strict: true, validate: false });
    const bad = lax.entries.findIndex((e) => e.path.endsWith("cut.png"));
    await assertRejects(() => lax.get(bad), DatasetError, "cut.png");
  });
});

Deno.test("openDataset() says what layout was expected", async () => {
  await withTemp(async (root) => {
    await png(join(root, "x.png"));
    await assertRejects(
      () => openDataset(`sun397:${root}`),
      DatasetError,
      "Partitions/Training_01.txt",
    );
    await assertRejects(
      () => openDataset(`miniimagenet:${root}`),
      DatasetError,
      "filename,label",
    );
    await assertRejects(
      () => openDataset(`cub200:${root}`),
      DatasetError,
      "images.txt",
    );
    await assertRejects(
      () => openDataset(join(root, "missing")),
      DatasetError,
      "not a folder",
    );
    await Deno.remove(join(root, "x.png"));
    await assertRejects(() => openDataset(root), DatasetError, "found none");
  });
});

Deno.test("openDataset() opens the procedural set by name", async () => {
  const ds = await openDataset("procedural:30", { split: "test", seed: 2 });
  assertEquals([ds.length, ds.kind, ds.label(12)], [30, "procedural", 2]);
  assertEquals((await ds.get(0)).width, 64);
});

Deno.test("openDataset() with workers decodes, skips and stands in as on the main thread", async () => {
  await withTemp(async (top) => {
    await png(join(top, "test", "a", "0.png"));
    await png(join(top, "test", "b", "0.png"));
    const root = join(top, "train");
    for (let i = 0; i < 3; i++) await png(join(root, "a", `${i}.png`), 10 + i);
    for (let i = 0; i < 3; i++) await png(join(root, "b", `${i}.png`), 100 + i);
    const good = await Deno.readFile(join(root, "a", "0.png"));
    // Passes the header check, fails to decode: found only on get().
    await write(join(root, "a", "1.png"), good.subarray(0, good.length - 12));
    const main = await openDataset(top, { workers: 0 });
    const warnings: string[] = [];
    const pooled = await openDataset(top, {
      workers: 2,
      onWarning: (message) => warnings.push(message),
    });
    try {
      assertEquals(pooled.entries, main.entries);
      for (let i = 0; i < main.length; i++) {
        const [a, b] = [await main.get(i), await pooled.get(i)];
        assertEquals([b.width, b.height, b.data], [a.width, a.height, a.data]);
      }
      // a/1.png is bad: both stand in a/2.png for it.
      const cut = main.entries.findIndex((e) => e.path.endsWith("a/1.png"));
      assertEquals((await pooled.get(cut)).data[0], 12);
      assertEquals(pooled.skipped, main.skipped);
      assertEquals(pooled.skipped.length, 1);
      assertEquals(warnings.length, 1);
      assertTrue(warnings[0].includes("1.png"), warnings[0]);
      const strict = await openDataset(top, { workers: 1, strict: true });
      try {
        await assertRejects(() => strict.get(cut), DatasetError, "1.png");
      } finally {
        strict.close();
      }
    } finally {
      pooled.close();
      main.close();
    }
    await assertRejects(
      () => openDataset(top, { workers: -1 }),
      RangeError,
      "workers",
    );
  });
});
