import { assertEquals, assertThrows } from "@scaling-vicreg/backend/testing";
import type { RgbImage } from "@scaling-vicreg/backend";
import {
  resizeRgb,
  resizeShorterCenterCrop,
  roundHalfEven,
  shorterSideSize,
} from "./resize.ts";

interface ResizeFixture {
  source: { width: number; height: number; data: number[] };
  resize: { width: number; height: number; data: number[] }[];
  shorterCenterCrop: { size: number; data: number[] }[];
}

const fixture: ResizeFixture = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/resize.json", import.meta.url)),
);
const source: RgbImage = {
  width: fixture.source.width,
  height: fixture.source.height,
  data: Uint8Array.from(fixture.source.data),
};

Deno.test("resizeRgb() is bit-exact with Pillow's BICUBIC resize", () => {
  for (const c of fixture.resize) {
    const out = resizeRgb(source, c.width, c.height);
    assertEquals([out.width, out.height], [c.width, c.height]);
    assertEquals(Array.from(out.data), c.data, `${c.width}×${c.height}`);
  }
});

Deno.test("resizeRgb() keeps a constant image constant and same size as is", () => {
  const flat = { width: 5, height: 4, data: new Uint8Array(60).fill(200) };
  assertEquals(Array.from(resizeRgb(flat, 3, 7).data), Array(63).fill(200));
  assertEquals(resizeRgb(source, 37, 29).data, source.data);
});

Deno.test("resizeRgb() rejects bad sizes and buffers", () => {
  assertThrows(() => resizeRgb(source, 0, 3), RangeError, "width");
  assertThrows(
    () => resizeRgb({ width: 2, height: 2, data: new Uint8Array(5) }, 1, 1),
    TypeError,
    "12 bytes",
  );
});

Deno.test("resizeShorterCenterCrop() matches Resize(size) + CenterCrop(size) on PIL", () => {
  for (const c of fixture.shorterCenterCrop) {
    const out = resizeShorterCenterCrop(source, c.size);
    assertEquals([out.width, out.height], [c.size, c.size]);
    assertEquals(Array.from(out.data), c.data, `size ${c.size}`);
  }
});

Deno.test("shorterSideSize() and roundHalfEven() follow torchvision and Python", () => {
  assertEquals(shorterSideSize(500, 375, 96), [128, 96]);
  assertEquals(shorterSideSize(333, 500, 110), [110, 165]);
  assertEquals([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(roundHalfEven), [
    0,
    2,
    2,
    0,
    2,
    3,
  ]);
});
