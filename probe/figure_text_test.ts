import {
  assertEquals,
  assertThrows,
  assertTrue,
} from "@scaling-vicreg/backend/testing";
import {
  drawText,
  fontText,
  GLYPH_HEIGHT,
  glyphRows,
  readText,
  svgTextBoxes,
  svgTextWidth,
  textBox,
} from "./figure_text.ts";

const PRINTABLE = Array.from(
  { length: 95 },
  (_, i) => String.fromCharCode(32 + i),
).join("");

function blank(width: number, height: number) {
  return {
    width,
    height,
    bitmap: new Uint8Array(width * height * 4).fill(255),
  };
}

function inked(image: ReturnType<typeof blank>): [number, number][] {
  const out: [number, number][] = [];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      if (image.bitmap[(y * image.width + x) * 4] < 128) out.push([x, y]);
    }
  }
  return out;
}

Deno.test("glyphRows() gives every printable ASCII character its own 5 × 7 glyph", () => {
  const seen = new Map<string, string>();
  for (const c of PRINTABLE) {
    const rows = glyphRows(c);
    assertEquals(rows.length, GLYPH_HEIGHT);
    assertTrue(rows.every((r) => Number.isInteger(r) && r >= 0 && r < 32));
    const key = rows.join(",");
    assertTrue(!seen.has(key), `${c} draws like ${seen.get(key)}`);
    seen.set(key, c);
    // Only the space is blank.
    assertEquals(rows.every((r) => r === 0), c === " ", c);
  }
  // A character the font lacks draws as the hollow box, unlike any glyph.
  assertEquals(glyphRows("€"), [31, 17, 17, 17, 17, 17, 31]);
  assertTrue(!seen.has(glyphRows("€").join(",")));
  assertEquals(glyphRows("-"), [0, 0, 0, 31, 0, 0, 0]);
});

Deno.test("drawText() inks the glyph's pixels, scaled, inside its box", () => {
  // "H": two full columns and a bar: 7 + 7 + 3 = 17 font pixels.
  const one = blank(10, 10);
  const box = drawText(one, "H", 2, 1);
  assertEquals(box, { x: 2, y: 1, width: 5, height: 7 });
  const pixels = inked(one);
  assertEquals(pixels.length, 17);
  assertTrue(pixels.every(([x, y]) => x >= 2 && x < 7 && y >= 1 && y < 8));
  const three = blank(20, 25);
  drawText(three, "H", 0, 0, { scale: 3, color: [200, 0, 0] });
  // Red ink: R stays high, so check G.
  let count = 0;
  for (let i = 0; i < 20 * 25; i++) if (three.bitmap[i * 4 + 1] === 0) count++;
  assertEquals(count, 17 * 9);
  // Off the canvas: skipped, not wrapped onto the next row.
  const edge = blank(4, 4);
  drawText(edge, "H", 2, -3);
  assertTrue(inked(edge).every(([x]) => x >= 2));
  assertThrows(() => drawText(edge, "H", 0, 0, { scale: 0 }), RangeError);
});

Deno.test("readText() reads back every printable character drawn by drawText()", () => {
  for (const scale of [1, 2, 3]) {
    const image = blank(PRINTABLE.length * 6 * scale + 4, 7 * scale + 4);
    const box = drawText(image, PRINTABLE, 2, 2, { scale });
    assertEquals(box.width, (PRINTABLE.length * 6 - 1) * scale);
    assertEquals(readText(image, 2, 2, PRINTABLE.length, { scale }), PRINTABLE);
  }
  // Off by one pixel, the cells no longer match.
  const image = blank(40, 10);
  drawText(image, "AB", 1, 1);
  assertTrue(readText(image, 2, 1, 2) !== "AB");
});

Deno.test("textBox() anchors and fontText() spells the project's symbols in ASCII", () => {
  assertEquals(textBox("abc", 20, 5, { anchor: "end" }), {
    x: 3,
    y: 5,
    width: 17,
    height: 7,
  });
  assertEquals(textBox("ab", 10, 0, { anchor: "middle", scale: 2 }).x, -1);
  assertEquals(fontText("Top-1 (%) — α ≤ 0.2"), "Top-1 (%) - a <= 0.2");
  // Width counts the substituted text: "≤" is two characters wide.
  assertEquals(textBox("≤", 0, 0).width, 11);
});

Deno.test("svgTextBoxes() estimates each <text> box from anchor and font size", () => {
  const boxes = svgTextBoxes(
    `<svg width="100" height="50" font-size="10"><text x="50" y="20" text-anchor="middle" font-size="20">a&amp;b</text><text x="90" y="40" text-anchor="end">xy</text></svg>`,
  );
  assertEquals(boxes.length, 2);
  assertEquals(boxes[0].text, "a&b");
  assertEquals(boxes[0].width, svgTextWidth("a&b", 20));
  assertTrue(Math.abs(boxes[0].x - (50 - 0.62 * 20 * 1.5)) < 1e-9);
  assertEquals(boxes[0].y, 4);
  assertTrue(Math.abs(boxes[1].x - (90 - 12.4)) < 1e-9);
  assertEquals(boxes[1].height, 10);
  assertThrows(
    () => svgTextBoxes('<svg><text transform="rotate(90)">a</text></svg>'),
    TypeError,
    "transformed",
  );
});
