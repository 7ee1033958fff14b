// Image inputs of issue 18: GIF read, WebP & co. counted as skipped, a huge
// image refused from its header with the pixel limit named.
import { Frame, GIF, Image } from "imagescript";
import {
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  checkImageHeader,
  DatasetError,
  decodeImage,
  imageDimensions,
} from "./decode.ts";
import { openDataset } from "./datasets.ts";

/** A PNG's first bytes: signature and an IHDR of width × height, RGB 8-bit. */
function pngHeader(width: number, height: number): Uint8Array {
  const out = new Uint8Array(8 + 25);
  out.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const v = new DataView(out.buffer);
  v.setUint32(8, 13);
  out.set([0x49, 0x48, 0x44, 0x52], 12); // "IHDR"
  v.setUint32(16, width);
  v.setUint32(20, height);
  out.set([8, 2, 0, 0, 0], 24);
  return out;
}

Deno.test("checkImageHeader() refuses a 30000×30000 PNG naming the pixel limit, and takes a higher limit", () => {
  const head = pngHeader(30000, 30000);
  assertEquals(imageDimensions(head), { width: 30000, height: 30000 });
  const error = assertThrows(
    () => checkImageHeader(head, "big.png"),
    DatasetError,
    "big.png: 30000×30000 = 900000000 pixels exceeds the pixel limit of 178956970",
  );
  assertTrue(error.message.includes("--max-image-pixels"));
  assertEquals(checkImageHeader(head, "big.png", 1e9), "png");
});

Deno.test("imageDimensions() reads JPEG and GIF headers", async () => {
  const jpeg = await new Image(5, 3).fill(0x336699ff).encodeJPEG(90);
  assertEquals(imageDimensions(jpeg), { width: 5, height: 3 });
  const gif = await new GIF([new Frame(4, 2, 100)]).encode();
  assertEquals(imageDimensions(gif), { width: 4, height: 2 });
});

Deno.test("decodeImage() reads a GIF's first frame", async () => {
  const first = new Frame(2, 1, 100);
  first.setPixelAt(1, 1, 0xff0000ff);
  first.setPixelAt(2, 1, 0x0000ffff);
  const second = new Frame(2, 1, 100).fill(0x00ff00ff);
  const bytes = await new GIF([first, second]).encode(100);
  const rgb = await decodeImage(bytes, "two.gif");
  assertEquals([rgb.width, rgb.height], [2, 1]);
  // GIF palettes quantise: the two colours stay near red and blue.
  const d = Array.from(rgb.data);
  assertTrue(d[0] > 200 && d[1] < 50 && d[2] < 50, `${d}`);
  assertTrue(d[3] < 50 && d[4] < 50 && d[5] > 200, `${d}`);
});

Deno.test("openDataset() counts WebP files as skipped and a too-big PNG as skipped by its header", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = await new Image(4, 4).fill(0x808080ff).encode();
    await Deno.writeFile(`${dir}/a.png`, png);
    await Deno.writeFile(`${dir}/b.png`, png);
    await Deno.writeFile(`${dir}/c.webp`, new Uint8Array(32));
    await Deno.writeFile(`${dir}/huge.png`, pngHeader(30000, 30000));
    const warnings: string[] = [];
    const ds = await openDataset(`folder:${dir}`, {
      onWarning: (m) => warnings.push(m),
    });
    try {
      assertEquals(ds.length, 2);
      const reasons = Object.fromEntries(
        ds.skipped.map((s) => [s.path.slice(dir.length + 1), s.reason]),
      );
      assertEquals(Object.keys(reasons).sort(), ["c.webp", "huge.png"]);
      assertTrue(reasons["c.webp"].includes(".webp images are not read"));
      assertTrue(reasons["huge.png"].includes("exceeds the pixel limit"));
      assertEquals(warnings.length, 2);
    } finally {
      ds.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
