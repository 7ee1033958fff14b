/**
 * Throughput of the data path: decoding PNG/JPEG files (on the main thread
 * and in a {@linkcode DecodePool} of Deno workers), reading the packed cache,
 * and drawing procedural images. Each bench handles one batch of 32 images,
 * so images/s = 32 / (time per iteration).
 *
 * @module
 */
import { Image } from "imagescript";
import { join } from "node:path";
import {
  buildCache,
  decodeImage,
  DecodePool,
  encodePng,
  Loader,
  proceduralDataset,
  proceduralImage,
  readImage,
} from "./mod.ts";

const BATCH = 32;
const source = proceduralDataset({ n: BATCH, size: 64 });
const small: Uint8Array[] = [];
const photos: Uint8Array[] = [];
const jpegs: Uint8Array[] = [];
for (let i = 0; i < BATCH; i++) {
  const image = await source.get(i);
  small.push(await encodePng(image));
  // A 256×256 picture: the 64×64 one upscaled 4×.
  const big = new Image(256, 256);
  for (let y = 0; y < 256; y++) {
    for (let x = 0; x < 256; x++) {
      const o = ((y >> 2) * 64 + (x >> 2)) * 3;
      big.setPixelAt(
        x + 1,
        y + 1,
        Image.rgbToColor(image.data[o], image.data[o + 1], image.data[o + 2]),
      );
    }
  }
  photos.push(await big.encode(1));
  jpegs.push(await big.encodeJPEG(90));
}
const dir = await Deno.makeTempDir({ prefix: "decode_bench_" });
const cache = await buildCache(proceduralDataset({ n: 2048, size: 112 }), {
  size: 112,
  out: dir,
});
const order = new Loader(cache, { batchSize: BATCH, seed: 0 }).order(0);
let cursor = 0;
const jpegPaths: string[] = [];
for (const [i, bytes] of jpegs.entries()) {
  jpegPaths.push(join(dir, `${i}.jpg`));
  await Deno.writeFile(jpegPaths[i], bytes);
}
const pools = [1, 2].map((workers) => new DecodePool({ workers }));
// Start the workers (module load, WASM compile) before timing.
for (const pool of pools) {
  await Promise.all(jpegPaths.map((p) => pool.decode(p)));
}

Deno.bench(
  `decodeImage() PNG 64×64, ${BATCH} images`,
  { group: "decode" },
  async () => {
    for (const bytes of small) await decodeImage(bytes, "x.png");
  },
);

Deno.bench(
  `decodeImage() PNG 256×256, ${BATCH} images`,
  { group: "decode" },
  async () => {
    for (const bytes of photos) await decodeImage(bytes, "x.png");
  },
);

Deno.bench(
  `decodeImage() JPEG 256×256, ${BATCH} images`,
  { group: "decode" },
  async () => {
    for (const bytes of jpegs) await decodeImage(bytes, "x.jpg");
  },
);

Deno.bench(
  `readImage() JPEG 256×256 files, main thread, ${BATCH} images`,
  { group: "decode files", baseline: true },
  async () => {
    await Promise.all(jpegPaths.map((p) => readImage(p)));
  },
);

for (const pool of pools) {
  Deno.bench(
    `DecodePool.decode() JPEG 256×256 files, ${pool.workers} worker${
      pool.workers > 1 ? "s" : ""
    }, ${BATCH} images`,
    { group: "decode files" },
    async () => {
      await Promise.all(jpegPaths.map((p) => pool.decode(p)));
    },
  );
}

Deno.bench(`PackedCache.get() 112×112 shuffled, ${BATCH} images`, {
  group: "cache",
}, async () => {
  const reads = [];
  for (let k = 0; k < BATCH; k++) {
    reads.push(cache.get(order[cursor++ % order.length]));
  }
  await Promise.all(reads);
});

Deno.bench(
  `proceduralImage() 64×64, ${BATCH} images`,
  { group: "procedural" },
  () => {
    for (let i = 0; i < BATCH; i++) proceduralImage(i);
  },
);

globalThis.addEventListener("unload", () => {
  for (const pool of pools) pool.close();
  cache.close();
  Deno.removeSync(dir, { recursive: true });
});
