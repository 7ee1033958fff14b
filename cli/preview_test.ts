import { Image } from "imagescript";
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { readText } from "@scaling-vicreg/probe/figure-text";
import { main } from "./main.ts";
import { renderPreviewGrid } from "./preview.ts";

Deno.test("renderPreviewGrid() names the columns and places every cell inside the canvas", () => {
  const size = 40, rows = 2;
  // Column c, row r: a flat grey of level (1 + c + 3r) / 8.
  const columns = [0, 1, 2].map((c) => {
    const a = new Float32Array(rows * size * size * 3);
    for (let r = 0; r < rows; r++) {
      a.fill(
        (1 + c + 3 * r) / 8,
        r * size * size * 3,
        (r + 1) * size * size * 3,
      );
    }
    return a;
  });
  const grid = renderPreviewGrid(columns, rows, size);
  const header = 7 + 4;
  assertEquals(
    [grid.width, grid.height],
    [3 * size + 8, header + rows * size + 3 * 2],
  );
  // "original" (47 px) does not fit 40 px: the short names, centred.
  const names = ["orig", "v1", "v2"];
  names.forEach((n, c) => {
    const w = 6 * n.length - 1;
    const x = 2 + c * (size + 2) + size / 2 - Math.floor(w / 2);
    assertEquals(readText(grid, x, 2, n.length), n);
  });
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 3; c++) {
      const [red] = grid.getRGBAAt(
        1 + 2 + c * (size + 2) + size / 2,
        1 + header + 2 + r * (size + 2) + size / 2,
      );
      assertEquals(red, Math.round(255 * (1 + c + 3 * r) / 8));
    }
  }
});

Deno.test("vicreg preview writes a PNG with its column header", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/views.png`;
    const log = console.log;
    console.log = () => {};
    let code: number;
    try {
      code = await main([
        "preview",
        "--n",
        "2",
        "--size",
        "96",
        "--out",
        out,
      ]);
    } finally {
      console.log = log;
    }
    assertEquals(code, 0);
    const image = await Image.decode(await Deno.readFile(out));
    assertEquals([image.width, image.height], [3 * 96 + 8, 18 + 2 * 96 + 6]);
    // At 96 px the full names fit, drawn at scale 2.
    const w = 2 * (6 * 8 - 1);
    assertEquals(
      readText(image, 2 + 48 - Math.floor(w / 2), 2, 8, { scale: 2 }),
      "original",
    );
    assertTrue(image.bitmap.some((v, i) => i % 4 === 0 && v < 250));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
