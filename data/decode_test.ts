import { Image } from "imagescript";
import {
  assertEquals,
  assertRejects,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  checkImageHeader,
  DatasetError,
  decodeImage,
  encodePng,
  jpegComponents,
  readImage,
} from "./decode.ts";
import { buildPng } from "./_test_png.ts";

async function rgb(bytes: Uint8Array): Promise<number[]> {
  return Array.from((await decodeImage(bytes, "x.png")).data);
}

Deno.test("decodeImage() reads 8-bit gray, RGB and RGBA PNGs", async () => {
  assertEquals(
    await rgb(
      buildPng({
        width: 2,
        height: 1,
        colorType: 0,
        bitDepth: 8,
        samples: [10, 200],
      }),
    ),
    [10, 10, 10, 200, 200, 200],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 1,
        height: 2,
        colorType: 2,
        bitDepth: 8,
        samples: [1, 2, 3, 4, 5, 6],
      }),
    ),
    [1, 2, 3, 4, 5, 6],
  );
  // Alpha is dropped, colour kept as stored (not composited).
  assertEquals(
    await rgb(
      buildPng({
        width: 1,
        height: 1,
        colorType: 6,
        bitDepth: 8,
        samples: [9, 8, 7, 0],
      }),
    ),
    [9, 8, 7],
  );
});

Deno.test("decodeImage() keeps the high byte of 16-bit PNG samples", async () => {
  assertEquals(
    await rgb(
      buildPng({
        width: 2,
        height: 1,
        colorType: 0,
        bitDepth: 16,
        samples: [0x1234, 0xff01],
      }),
    ),
    [0x12, 0x12, 0x12, 0xff, 0xff, 0xff],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 1,
        height: 1,
        colorType: 2,
        bitDepth: 16,
        samples: [0x8000, 0x01ff, 0xffff],
      }),
    ),
    [0x80, 0x01, 0xff],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 1,
        height: 1,
        colorType: 6,
        bitDepth: 16,
        samples: [0xab00, 0x8000, 0, 0x1000],
      }),
    ),
    [0xab, 0x80, 0],
  );
});

Deno.test("decodeImage() reads gray+alpha and low-bit gray PNGs", async () => {
  assertEquals(
    await rgb(
      buildPng({
        width: 1,
        height: 1,
        colorType: 4,
        bitDepth: 8,
        samples: [100, 3],
      }),
    ),
    [100, 100, 100],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 1,
        height: 1,
        colorType: 4,
        bitDepth: 16,
        samples: [0x6400, 0xffff],
      }),
    ),
    [100, 100, 100],
  );
  // 1-bit: 0 → 0, 1 → 255; 4-bit: v → v · 17.
  assertEquals(
    await rgb(
      buildPng({
        width: 3,
        height: 1,
        colorType: 0,
        bitDepth: 1,
        samples: [1, 0, 1],
      }),
    ),
    [255, 255, 255, 0, 0, 0, 255, 255, 255],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 3,
        height: 1,
        colorType: 0,
        bitDepth: 4,
        samples: [15, 0, 5],
      }),
    ),
    [255, 255, 255, 0, 0, 0, 85, 85, 85],
  );
});

Deno.test("decodeImage() reads palette PNGs at 8, 4 and 2 bits, with tRNS", async () => {
  const palette = [1, 2, 3, 40, 50, 60, 200, 100, 0];
  assertEquals(
    await rgb(
      buildPng({
        width: 3,
        height: 1,
        colorType: 3,
        bitDepth: 8,
        samples: [1, 0, 2],
        palette,
      }),
    ),
    [40, 50, 60, 1, 2, 3, 200, 100, 0],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 3,
        height: 1,
        colorType: 3,
        bitDepth: 4,
        samples: [2, 1, 0],
        palette,
      }),
    ),
    [200, 100, 0, 40, 50, 60, 1, 2, 3],
  );
  assertEquals(
    await rgb(
      buildPng({
        width: 3,
        height: 1,
        colorType: 3,
        bitDepth: 2,
        samples: [1, 0, 1],
        palette,
        paletteAlpha: [255, 0],
      }),
    ),
    [40, 50, 60, 1, 2, 3, 40, 50, 60],
  );
});

Deno.test("decodeImage() reads a JPEG to within JPEG error", async () => {
  const image = new Image(16, 16).fill(Image.rgbToColor(200, 60, 20));
  const jpeg = await image.encodeJPEG(95);
  const out = await decodeImage(jpeg, "x.jpg");
  assertEquals([out.width, out.height], [16, 16]);
  assertEquals(jpegComponents(jpeg), 3);
  for (let i = 0; i < out.data.length; i += 3) {
    assertTrue(
      Math.abs(out.data[i] - 200) <= 3 && Math.abs(out.data[i + 1] - 60) <= 3,
    );
  }
});

Deno.test("decodeImage() round-trips encodePng()", async () => {
  const data = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const out = await decodeImage(
    await encodePng({ width: 5, height: 3, data }),
    "x.png",
  );
  assertEquals([out.width, out.height], [5, 3]);
  assertEquals(out.data, data);
});

Deno.test("decodeImage() raises DatasetError naming the file for bad files", async () => {
  const png = await encodePng({
    width: 8,
    height: 8,
    data: new Uint8Array(192).fill(7),
  });
  const jpeg = await new Image(32, 32).fill(0x336699ff).encodeJPEG(90);
  const cases: [string, Uint8Array, string][] = [
    ["empty.png", new Uint8Array(0), "empty"],
    [
      "text.jpg",
      new TextEncoder().encode("hello, not an image"),
      "JPEG, PNG or GIF",
    ],
    ["cut.png", png.subarray(0, png.length - 30), "truncated PNG"],
    // imagescript alone decodes these two without error.
    ["no_iend.png", png.subarray(0, png.length - 12), "before IEND"],
    ["flipped.png", flipByte(png, 60), "CRC"],
    ["cut.jpg", jpeg.subarray(0, 200), "truncated JPEG"],
    ["cmyk.jpg", cmykJpegHeader(), "CMYK"],
  ];
  for (const [path, bytes, includes] of cases) {
    const error = await assertRejects(
      () => decodeImage(bytes, path),
      DatasetError,
      includes,
    );
    assertEquals(error.path, path);
    assertTrue(error.message.includes(path), error.message);
  }
});

Deno.test("readImage() raises DatasetError for a missing file", async () => {
  const error = await assertRejects(
    () => readImage("/nonexistent/a.png"),
    DatasetError,
    "a.png",
  );
  assertEquals(error.path, "/nonexistent/a.png");
});

Deno.test("checkImageHeader() accepts gray JPEG headers and rejects 4-component ones", () => {
  const gray = cmykJpegHeader(1);
  assertEquals(checkImageHeader(gray, "g.jpg"), "jpeg");
  let caught: unknown;
  try {
    checkImageHeader(cmykJpegHeader(4), "c.jpg");
  } catch (error) {
    caught = error;
  }
  assertTrue(caught instanceof DatasetError && caught.path === "c.jpg");
});

function flipByte(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] ^= 0x10;
  return out;
}

/**
 * A JPEG prefix (SOI, an Adobe APP14 segment, a baseline SOF0 frame header)
 * declaring `components` components, as a CMYK file from Photoshop starts;
 * hand-built because no encoder here writes CMYK.
 */
function cmykJpegHeader(components = 4): Uint8Array {
  const app14 = [
    0xff,
    0xee,
    0,
    14,
    0x41,
    0x64,
    0x6f,
    0x62,
    0x65,
    0,
    100,
    0,
    0,
    0,
    0,
    2,
  ];
  const sof = [0xff, 0xc0, 0, 8 + 3 * components, 8, 0, 16, 0, 16, components];
  for (let c = 0; c < components; c++) sof.push(c + 1, 0x11, 0);
  return new Uint8Array([0xff, 0xd8, ...app14, ...sof, 0xff, 0xd9]);
}
