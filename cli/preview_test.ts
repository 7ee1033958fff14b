import { Image } from "imagescript";
import { assertEquals, assertTrue } from "@scaling-vicreg/backend/testing";
import { readText } from "@scaling-vicreg/probe/figure-text";
import { main } from "./main.ts";
import { renderPreviewGrid } from "./preview.ts";

Deno.test("renderPreviewGrid() names the columns and places every cell inside the canvas", () => {
  const size = 40, rows = 2;
  // Column c, row r: a flat grey of level (1 + c + 3r) / 8.
  const pixels = [0, 1, 2].map((c) => {
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
  const full = ["original", "view 1", "view 2"], short = ["orig", "v1", "v2"];
  const columns = pixels.map((p, c) => ({
    pixels: p,
    size,
    names: [full[c], short[c]] as [string, string],
  }));
  const grid = renderPreviewGrid(columns, rows);
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

Deno.test("vicreg preview --local-crops shows every global and local view, crops outlined on the original", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/crops.png`;
    const log = console.log;
    const lines: string[] = [];
    console.log = (line: string) => lines.push(line);
    let code: number;
    try {
      code = await main([
        "preview",
        ...["--n", "2", "--size", "32", "--out", out],
        ...["--local-crops", "3", "--local-crop-size", "14"],
        ...["--global-crop-scale", "0.4,1", "--local-crop-scale", "0.1,0.3"],
      ]);
    } finally {
      console.log = log;
    }
    assertEquals(code, 0);
    assertTrue(
      lines.join("").includes("2 global views at 32px, 3 local views at 14px"),
    );
    const image = await Image.decode(await Deno.readFile(out));
    // original + 2 × 32 px + 3 × 14 px, gaps of 2; rows of 32 under the header
    assertEquals(
      [image.width, image.height],
      [3 * 32 + 3 * 14 + 7 * 2, 11 + 2 * 32 + 3 * 2],
    );
    // the header names the views ("local 1" is 41 px: the short names)
    assertEquals(readText(image, 2 + 16 - 11, 2, 4), "orig");
    // every view's frame colour is drawn, on its cell and on the original
    const colours = [[230, 25, 75], [0, 130, 200], [245, 130, 48]];
    for (const [r, g, b] of colours) {
      let count = 0;
      for (let i = 0; i < image.bitmap.length; i += 4) {
        const p = image.bitmap;
        if (p[i] === r && p[i + 1] === g && p[i + 2] === b) count++;
      }
      assertTrue(count > 4 * 14, `colour ${[r, g, b]}: ${count} pixels`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vicreg preview rejects a local crop larger than the global one and bad scales in one line", async () => {
  const err = console.error;
  const messages: string[] = [];
  console.error = (m: string) => messages.push(String(m));
  try {
    assertEquals(
      await main([
        "preview",
        "--size",
        "32",
        "--local-crops",
        "2",
        "--local-crop-size",
        "40",
      ]),
      1,
    );
    assertEquals(
      await main([
        "preview",
        "--local-crops",
        "2",
        "--local-crop-scale",
        "0,0.4",
      ]),
      1,
    );
  } finally {
    console.error = err;
  }
  assertTrue(messages[0].includes("--local-crop-size"), messages[0]);
  assertTrue(messages[1].includes("--local-crop-scale"), messages[1]);
});
