import {
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import type { RgbImage } from "@scaling-vicreg/backend/image";
import { type Batch, Loader } from "./loader.ts";
import type { ImageSource } from "./source.ts";
import { proceduralDataset } from "./procedural.ts";
import { openDataset } from "./datasets.ts";
import { encodePng } from "./decode.ts";
import { join } from "node:path";

/** A source whose image i is 1×1 of value i % 256, counting reads in flight. */
class CountingSource implements ImageSource {
  readonly length: number;
  started = 0;
  constructor(n: number) {
    this.length = n;
  }
  async get(index: number): Promise<RgbImage> {
    this.started++;
    await new Promise((r) => setTimeout(r, 0));
    return { width: 1, height: 1, data: new Uint8Array([index % 256, 0, 0]) };
  }
  label(index: number): number {
    return index % 3;
  }
  describe(): string {
    return "counting";
  }
}

async function collect(it: AsyncIterableIterator<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

Deno.test("Loader yields every index once per epoch in full batches", async () => {
  const loader = new Loader(new CountingSource(10), { batchSize: 3, seed: 5 });
  assertEquals(loader.batchesPerEpoch, 3);
  const batches = await collect(loader.batches(0));
  const seen = batches.flatMap((b) => b.indices);
  assertEquals(seen.length, 9);
  assertEquals(new Set(seen).size, 9);
  for (const b of batches) {
    assertEquals(Array.from(b.labels!), b.indices.map((i) => i % 3));
    assertEquals(b.images.map((im) => im.data[0]), b.indices);
  }
  const all = new Loader(new CountingSource(10), {
    batchSize: 3,
    dropLast: false,
    shuffle: false,
  });
  const plain = await collect(all.batches(0));
  assertEquals(plain.map((b) => b.indices), [[0, 1, 2], [3, 4, 5], [6, 7, 8], [
    9,
  ]]);
});

Deno.test("Loader gives the same order for the same seed and epoch only", async () => {
  const a = new Loader(new CountingSource(50), { batchSize: 5, seed: 1 });
  const b = new Loader(new CountingSource(50), { batchSize: 5, seed: 1 });
  const c = new Loader(new CountingSource(50), { batchSize: 5, seed: 2 });
  const ia = (await collect(a.batches(3))).flatMap((x) => x.indices);
  assertEquals((await collect(b.batches(3))).flatMap((x) => x.indices), ia);
  assertTrue(
    (await collect(c.batches(3))).flatMap((x) => x.indices).join() !==
      ia.join(),
  );
  assertTrue(a.order(4).join() !== ia.join(), "epochs differ");
});

Deno.test("Loader resumed at (epoch, batch) reproduces the remaining batches", async () => {
  const source = proceduralDataset({ n: 40, size: 8 });
  const full = await collect(
    new Loader(source, { batchSize: 6, seed: 9 }).batches(2),
  );
  const resumed = await collect(
    new Loader(source, { batchSize: 6, seed: 9 }).batches(2, 4),
  );
  assertEquals(resumed.length, full.length - 4);
  resumed.forEach((b, k) => {
    const f = full[k + 4];
    assertEquals([b.index, b.epoch, b.indices], [f.index, f.epoch, f.indices]);
    assertEquals(b.labels, f.labels);
    b.images.forEach((im, j) => assertEquals(im.data, f.images[j].data));
  });
});

Deno.test("Loader holds at most prefetch + 1 batches ahead of a slow consumer", async () => {
  const source = new CountingSource(400);
  const loader = new Loader(source, { batchSize: 4, prefetch: 2, seed: 0 });
  let consumed = 0, maxAhead = 0;
  for (let epoch = 0; epoch < 3; epoch++) {
    for await (const batch of loader.batches(epoch)) {
      await new Promise((r) => setTimeout(r, 1));
      maxAhead = Math.max(maxAhead, source.started - consumed);
      consumed += batch.images.length;
    }
  }
  assertEquals(consumed, 1200);
  // The batch in hand plus `prefetch` queued ones.
  assertTrue(maxAhead <= (2 + 1) * 4, `started ${maxAhead} images ahead`);
  assertTrue(maxAhead >= 2 * 4, "prefetch does load ahead");
});

Deno.test("Loader memory stays flat over many epochs", async () => {
  const loader = new Loader(proceduralDataset({ n: 64, size: 16 }), {
    batchSize: 16,
    seed: 0,
  });
  const heap = () => Deno.memoryUsage().heapUsed;
  // The minimum heap over a window of epochs is what survives garbage
  // collection: compare the first window with the last.
  const windowMin = async (from: number, to: number) => {
    let min = Infinity;
    for (let epoch = from; epoch < to; epoch++) {
      for await (const _ of loader.batches(epoch));
      min = Math.min(min, heap());
    }
    return min;
  };
  const first = await windowMin(0, 30);
  await windowMin(30, 170);
  const last = await windowMin(170, 200);
  // 200 epochs load 9.8 MB of pixels; keeping them would show here.
  assertTrue(last - first < 4_000_000, `heap grew ${last - first} bytes`);
});

Deno.test("Loader surfaces a failing batch when it is reached", async () => {
  const source: ImageSource = {
    length: 8,
    get: (i) =>
      i === 6
        ? Promise.reject(new Error("boom"))
        : Promise.resolve({ width: 1, height: 1, data: new Uint8Array(3) }),
    label: () => undefined,
    describe: () => "failing",
  };
  const loader = new Loader(source, { batchSize: 2, shuffle: false });
  const seen: number[] = [];
  let caught: unknown;
  try {
    for await (const b of loader.batches(0)) seen.push(b.index);
  } catch (error) {
    caught = error;
  }
  assertEquals(seen, [0, 1, 2]);
  assertTrue(caught instanceof Error && caught.message === "boom");
});

Deno.test("Loader over a worker-backed data set gives the batches of a main-thread one", async () => {
  const root = await Deno.makeTempDir({ prefix: "loader_test_" });
  try {
    const images = proceduralDataset({ n: 30, size: 12, seed: 4 });
    for (let i = 0; i < images.length; i++) {
      const dir = join(root, `c${images.label(i)}`);
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeFile(
        join(dir, `${String(i).padStart(2, "0")}.png`),
        await encodePng(await images.get(i)),
      );
    }
    // One corrupt file, found only when decoded.
    const bad = join(root, "c1", "zz.png");
    const good = await Deno.readFile(join(root, "c1", "01.png"));
    await Deno.writeFile(bad, good.subarray(0, good.length - 20));
    const main = await openDataset(root, { workers: 0, testFraction: 0.1 });
    const pooled = await openDataset(root, { workers: 2, testFraction: 0.1 });
    try {
      assertEquals(main.classNames?.length, 10);
      const options = { batchSize: 5, seed: 11, dropLast: false };
      for (const epoch of [0, 1]) {
        const a = await collect(new Loader(main, options).batches(epoch));
        const b = await collect(new Loader(pooled, options).batches(epoch));
        assertEquals(b.length, a.length);
        a.forEach((x, k) => {
          assertEquals(
            [b[k].index, b[k].indices, b[k].labels],
            [x.index, x.indices, x.labels],
          );
          b[k].images.forEach((im, j) => assertEquals(im, x.images[j]));
        });
      }
      assertEquals(pooled.skipped.map((s) => s.path), [bad]);
      assertEquals(main.skipped.map((s) => s.path), [bad]);
    } finally {
      main.close();
      pooled.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("Loader with a shard loads each rank's rows of every batch, which together are the whole batch", async () => {
  const source = proceduralDataset({ n: 20, size: 8, seed: 4 });
  const whole = new Loader(source, { batchSize: 7, seed: 2 });
  const shards = [0, 1, 2].map((rank) =>
    new Loader(source, { batchSize: 7, seed: 2, shard: { rank, size: 3 } })
  );
  const expected: number[][] = [];
  for await (const b of whole.batches(1)) expected.push(b.indices);
  const got: number[][] = expected.map(() => []);
  for (const loader of shards) {
    let previous = -1;
    for await (const b of loader.batches(1)) {
      // Rows 0-1, 2-3 and 4-6 of 7.
      assertEquals(b.offset, [0, 2, 4][shards.indexOf(loader)]);
      assertEquals(b.images.length, b.indices.length);
      got[b.index].push(...b.indices);
      assertTrue(b.index > previous);
      previous = b.index;
    }
  }
  assertEquals(got, expected);
  assertThrows(
    () => new Loader(source, { batchSize: 7, shard: { rank: 3, size: 3 } }),
    RangeError,
    "shard",
  );
});
