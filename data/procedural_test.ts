import {
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import type { RgbImage } from "@scaling-vicreg/backend/image";
import {
  PROCEDURAL_CLASS_NAMES,
  proceduralDataset,
  proceduralImage,
  proceduralSeed,
} from "./procedural.ts";

Deno.test("proceduralImage() gives identical bytes for the same seed and index", () => {
  const a = proceduralImage(17, { seed: 3 });
  const b = proceduralImage(17, { seed: 3 });
  assertEquals(a.label, b.label);
  assertEquals(a.image.data, b.image.data);
  const c = proceduralImage(17, { seed: 4 });
  assertTrue(
    !bytesEqual(a.image.data, c.image.data),
    "another seed gives other bytes",
  );
});

Deno.test("proceduralImage() has the requested size and balanced labels", () => {
  const { image, label } = proceduralImage(23, { size: 40 });
  assertEquals([image.width, image.height, image.data.length], [
    40,
    40,
    40 * 40 * 3,
  ]);
  assertEquals(label, 3);
  const ds = proceduralDataset({ n: 50 });
  const counts = new Array(10).fill(0);
  for (let i = 0; i < ds.length; i++) counts[ds.label(i)!]++;
  assertEquals(counts, new Array(10).fill(5));
  assertEquals(ds.classNames, PROCEDURAL_CLASS_NAMES);
});

Deno.test("proceduralDataset() train and test splits share no image", async () => {
  const train = proceduralDataset({ n: 300, size: 16 });
  const test = proceduralDataset({ n: 300, size: 16, split: "test" });
  const seen = new Set<string>();
  const seeds = new Set<number>();
  for (let i = 0; i < 300; i++) {
    seen.add(hex((await train.get(i)).data));
    seeds.add(proceduralSeed(0, "train", i));
  }
  for (let i = 0; i < 300; i++) {
    assertTrue(
      !seen.has(hex((await test.get(i)).data)),
      `test image ${i} is in train`,
    );
    assertTrue(
      !seeds.has(proceduralSeed(0, "test", i)),
      `test seed ${i} is a train seed`,
    );
  }
  assertEquals(seen.size, 300);
});

Deno.test("proceduralDataset() rejects bad options and indices", async () => {
  assertThrows(() => proceduralDataset({ size: 4 }), RangeError, "size");
  assertThrows(() => proceduralDataset({ n: -1 }), RangeError, '"n"');
  const ds = proceduralDataset({ n: 3 });
  let caught: unknown;
  try {
    await ds.get(3);
  } catch (error) {
    caught = error;
  }
  assertTrue(caught instanceof RangeError);
});

// A handcrafted, non-learned descriptor: a magnitude-weighted histogram of
// gradient orientations (doubled angle, 8 bins) over the whole image and per
// quadrant, plus edge density and the periodicity of the gray profile.
function descriptor(image: RgbImage): number[] {
  const { width: w, height: h, data } = image;
  const g = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    g[i] = 0.299 * data[3 * i] + 0.587 * data[3 * i + 1] +
      0.114 * data[3 * i + 2];
  }
  const bins = 8;
  const hist = new Float64Array(5 * bins);
  let total = 0;
  let strong = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const gx = g[y * w + x + 1] - g[y * w + x - 1];
      const gy = g[(y + 1) * w + x] - g[(y - 1) * w + x];
      const mag = Math.hypot(gx, gy);
      if (mag < 20) continue;
      strong++;
      total += mag;
      const a = Math.atan2(gy, gx) * 2; // orientation, sign-free
      const b =
        Math.floor(((a + 2 * Math.PI) % (2 * Math.PI)) / (2 * Math.PI) * bins) %
        bins;
      const q = 1 + (y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1);
      hist[b] += mag;
      hist[q * bins + b] += mag;
    }
  }
  const out = Array.from(hist, (v) => v / (total || 1));
  out.push(strong / (w * h));
  return out;
}

Deno.test("proceduralDataset() is separable by a non-learned descriptor well above chance", async () => {
  const train = proceduralDataset({ n: 1000 });
  const test = proceduralDataset({ n: 500, split: "test" });
  const feats = async (ds: typeof train) => {
    const out: number[][] = [];
    for (let i = 0; i < ds.length; i++) out.push(descriptor(await ds.get(i)));
    return out;
  };
  const xtr = await feats(train), xte = await feats(test);
  const d = xtr[0].length;
  const means = Array.from({ length: 10 }, () => new Float64Array(d));
  const counts = new Array(10).fill(0);
  xtr.forEach((f, i) => {
    const y = train.label(i)!;
    counts[y]++;
    f.forEach((v, j) => means[y][j] += v);
  });
  means.forEach((m, y) => m.forEach((_, j) => m[j] /= counts[y]));
  let correct = 0;
  xte.forEach((f, i) => {
    let best = -1, bestDist = Infinity;
    means.forEach((m, y) => {
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (f[j] - m[j]) ** 2;
      if (dist < bestDist) [best, bestDist] = [y, dist];
    });
    if (best === test.label(i)) correct++;
  });
  const accuracy = correct / xte.length;
  // Chance is 10 %.
  assertTrue(accuracy > 0.6, `nearest-class-mean accuracy ${accuracy}`);
});

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function hex(data: Uint8Array): string {
  let h = 0x811c9dc5, k = 0;
  for (let i = 0; i < data.length; i++) {
    h = Math.imul(h ^ data[i], 0x01000193) >>> 0;
    k = (k * 31 + data[i]) >>> 0;
  }
  return `${h}:${k}`;
}
