/**
 * `vicreg preview`: a PNG grid that shows what the paper's TrainTransform
 * (or multi-crop) does, one row per image: the original (resized) with each
 * crop outlined, then every view (de-normalised), under a header naming the
 * columns.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Image } from "imagescript";
import { openDataset, proceduralDataset } from "@scaling-vicreg/data";
import { type RgbImage, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  DEFAULT_TRAIN_TRANSFORM_OPTIONS,
  denormalize,
  evalTransform,
  type MultiCropOptions,
  MultiCropTransform,
  paperScaledLocalSize,
  parseScaleRange,
  type ViewParams,
} from "@scaling-vicreg/augment";
import { drawText, textBox } from "@scaling-vicreg/probe/figure-text";
import { type Command, UsageError } from "./args.ts";

const GAP = 2;

/** One column of the preview grid. */
export interface PreviewColumn {
  /** `[rows, size, size, 3]` floats in [0, 1], row-major. */
  pixels: Float32Array | Int32Array | Uint8Array;
  /** The cell side in pixels. */
  size: number;
  /** The header's name, and a short one for narrow columns. */
  names: readonly [string, string];
  /**
   * The RGB colour of the 1-pixel frame drawn in the gap around each cell
   * (the colour of the view's crop outline on the original); none without.
   */
  frame?: readonly [number, number, number];
}

/**
 * The names the header gives the columns at `scale`: the full names when
 * every one fits its column, else the short ones, else none.
 */
function headerFor(columns: readonly PreviewColumn[], scale: number): string[] {
  for (const which of [0, 1]) {
    const names = columns.map((c) => c.names[which]);
    if (
      names.every((n, i) =>
        textBox(n, 0, 0, { scale }).width <= columns[i].size
      )
    ) return names;
  }
  return [];
}

/**
 * The preview grid: a header row naming the columns (the project's bitmap
 * font; scale 2 when the first column is 96 px or more), then one row per
 * image with one cell per column at the column's own size (top-aligned),
 * `GAP` = 2 white pixels between cells, a coloured frame in the gap around
 * the cells of a column that has one.
 *
 * @param columns The columns, left to right.
 * @param rows Images.
 * @returns The image (encode it with `encode()`).
 */
export function renderPreviewGrid(
  columns: readonly PreviewColumn[],
  rows: number,
): Image {
  const { scale, names, header, rowHeight, lefts, width } = layoutOf(columns);
  const grid = new Image(width, header + rows * rowHeight + (rows + 1) * GAP);
  grid.fill(0xffffffff);
  names.forEach((name, c) =>
    drawText(grid, name, lefts[c] + columns[c].size / 2, GAP, {
      scale,
      anchor: "middle",
    })
  );
  for (let r = 0; r < rows; r++) {
    const top = header + GAP + r * (rowHeight + GAP);
    columns.forEach((column, c) => {
      const per = column.size * column.size * 3;
      blit(
        grid,
        column.pixels.subarray(r * per, (r + 1) * per),
        column.size,
        lefts[c],
        top,
      );
      if (column.frame) {
        const side = column.size + 2;
        outline(grid, lefts[c] - 1, top - 1, side, side, column.frame);
      }
    });
  }
  return grid;
}

/** Where the grid puts its header and cells. */
function layoutOf(columns: readonly PreviewColumn[]): {
  scale: number;
  names: string[];
  header: number;
  rowHeight: number;
  lefts: number[];
  width: number;
} {
  const scale = columns[0].size >= 96 ? 2 : 1;
  const names = headerFor(columns, scale);
  const header = names.length ? 7 * scale + 2 * GAP : 0;
  const rowHeight = Math.max(...columns.map((c) => c.size));
  const lefts: number[] = [];
  let width = GAP;
  for (const c of columns) {
    lefts.push(width);
    width += c.size + GAP;
  }
  return { scale, names, header, rowHeight, lefts, width };
}

/**
 * Draws a 1-pixel rectangle outline with its top-left corner at (left, top),
 * `width × height` pixels, clipped to the image.
 */
function outline(
  target: Image,
  left: number,
  top: number,
  width: number,
  height: number,
  [r, g, b]: readonly [number, number, number],
): void {
  const set = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= target.width || y >= target.height) return;
    const t = (y * target.width + x) * 4;
    target.bitmap[t] = r;
    target.bitmap[t + 1] = g;
    target.bitmap[t + 2] = b;
    target.bitmap[t + 3] = 255;
  };
  for (let x = left; x < left + width; x++) {
    set(x, top);
    set(x, top + height - 1);
  }
  for (let y = top; y < top + height; y++) {
    set(left, y);
    set(left + width - 1, y);
  }
}

/** Writes `[H, W, 3]` floats in [0, 1] into an RGBA bitmap at (left, top). */
function blit(
  target: Image,
  pixels: Float32Array | Int32Array | Uint8Array,
  size: number,
  left: number,
  top: number,
): void {
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const s = (y * size + x) * 3;
      const t = ((top + y) * target.width + left + x) * 4;
      for (let c = 0; c < 3; c++) {
        target.bitmap[t + c] = Math.round(pixels[s + c] * 255);
      }
      target.bitmap[t + 3] = 255;
    }
  }
}

/**
 * The preview grid of `images` as a PNG: each image (bicubic-resized to
 * `size`) with every view's crop outlined, and the views drawn by a
 * `MultiCropTransform` with `options` and a generator seeded with `seed`,
 * de-normalised. Without multi-crop fields these are `TrainTransform`'s two
 * views at `size` and `scale` (`numLocal` 0, the global views at `size` and
 * `scale`). Runs on the active backend.
 *
 * @param images The rows.
 * @param options The transform's options (`size` is the global cell side).
 * @param seed Seed of the views.
 * @returns The PNG file's bytes.
 */
export async function previewPng(
  images: readonly RgbImage[],
  options: MultiCropOptions & { size: number },
  seed: number,
): Promise<Uint8Array> {
  const { size } = options;
  const transform = new MultiCropTransform({
    numLocal: 0,
    globalSize: size,
    globalScale: options.scale ?? DEFAULT_TRAIN_TRANSFORM_OPTIONS.scale,
    ...options,
  });
  const list = [...images];
  const params = transform.sample(list, new Rng(seed));
  const views = transform.render(list, params);
  const shown = tf.tidy(() => [
    evalTransform(list, { size, mean: null }),
    ...views.map((v) => denormalize(v)),
  ]);
  const pixels = await Promise.all(
    shown.map(async (t) => await t.data() as Float32Array),
  );
  tf.dispose([...views, ...shown]);
  const { numGlobal, numLocal } = transform.options;
  const twoViews = numGlobal === 2 && numLocal === 0;
  const colour = (v: number) => VIEW_COLOURS[v % VIEW_COLOURS.length];
  const columns: PreviewColumn[] = [
    { pixels: pixels[0], size, names: ["original", "orig"] },
    ...transform.sizes.map((s, v): PreviewColumn => ({
      pixels: pixels[v + 1],
      size: s,
      names: twoViews
        ? [`view ${v + 1}`, `v${v + 1}`]
        : v < numGlobal
        ? [`global ${v + 1}`, `g${v + 1}`]
        : [`local ${v - numGlobal + 1}`, `l${v - numGlobal + 1}`],
      frame: colour(v),
    })),
  ];
  const grid = renderPreviewGrid(columns, list.length);
  outlineCrops(grid, params, columns, size);
  return await grid.encode();
}

/** The colours of the crop outlines and cell frames, view by view. */
const VIEW_COLOURS: readonly (readonly [number, number, number])[] = [
  [230, 25, 75],
  [0, 130, 200],
  [60, 180, 75],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [128, 128, 0],
];

/** The `preview` subcommand. */
export const previewCommand: Command = {
  name: "preview",
  summary: "Write a PNG grid of images and their augmented views (all crops)",
  usage:
    "[--data DIR|SPEC] [--n 8] [--out views.png] [--seed 0] [--size 96] [--local-crops M]",
  description: `
One row per image: the original (bicubic-resized to SIZE×SIZE), then every
view the model is asked to match, de-normalised, under a header naming the
columns: view 1 and view 2 of the paper's TrainTransform, or with
--local-crops M > 0 the global views and the M smaller local ones
(--local-crop-size, default SIZE·96/224 as VICRegL's 96 of 224). Each view's
crop is outlined on the original in the colour of the frame around that view,
so one sees which parts of the image are matched. The flags are those of
vicreg pretrain. --data takes a folder (searched recursively, sorted by path;
the first N images are used) or any data-set spec (kind:path); without it the
built-in procedural images are used.`,
  flags: {
    data: {
      type: "string",
      help: "Folder of images or kind:path (default: procedural images)",
    },
    n: { type: "int", help: "Number of images (rows)", default: 8 },
    out: { type: "string", help: "Output PNG path", default: "views.png" },
    seed: { type: "int", help: "Random seed", default: 0 },
    size: { type: "int", help: "Global view side in pixels", default: 96 },
    preset: {
      type: "string",
      help: "TrainTransform preset",
      default: "vicreg",
      choices: ["vicreg", "paper-code"],
    },
    "global-crops": {
      type: "int",
      help: "Global views per image",
      default: 2,
    },
    "local-crops": {
      type: "int",
      help: "Local views per image (0: the two views of TrainTransform)",
      default: 0,
    },
    "local-crop-size": {
      type: "int",
      help: "Local view side in pixels (0: round(size · 96 / 224))",
      default: 0,
    },
    "global-crop-scale": {
      type: "string",
      help: "Area fraction range lo,hi of the global crops",
      default: "0.2,1",
    },
    "local-crop-scale": {
      type: "string",
      help: "Area fraction range lo,hi of the local crops",
      default: "0.08,0.4",
    },
  },
  async run(flags) {
    const n = flags.n as number, size = flags.size as number;
    if (!(n > 0)) throw new UsageError(`Expected --n > 0: received ${n}`);
    if (!(size > 0)) {
      throw new UsageError(`Expected --size > 0: received ${size}`);
    }
    const options = multiCropOf(flags, size);
    const transform = new MultiCropTransform(options);
    await useBackend("cpu");
    const source = flags.data === undefined
      ? proceduralDataset({ n, size: 128, seed: flags.seed as number })
      : await openDataset(flags.data as string, { split: "train" });
    if (source.length === 0) {
      throw new UsageError(
        `Expected --data ${flags.data} to hold images: found none`,
      );
    }
    const images: RgbImage[] = await Promise.all(
      Array.from(
        { length: Math.min(n, source.length) },
        (_, i) => source.get(i),
      ),
    );
    const png = await previewPng(images, options, flags.seed as number);
    await Deno.writeFile(flags.out as string, png);
    const { numGlobal, numLocal, localSize } = transform.options;
    const twoViews = numGlobal === 2 && numLocal === 0;
    const rows = images.length;
    const what = twoViews
      ? "original, view 1, view 2"
      : `original, ${numGlobal} global views at ${size}px, ${numLocal} local views at ${localSize}px`;
    console.log(
      `wrote ${flags.out}: ${rows} rows (${what})${
        twoViews ? ` at ${size}px` : ""
      }`,
    );
    return 0;
  },
};

/** The multi-crop options the flags ask for; a UsageError names a bad one. */
function multiCropOf(
  flags: Record<string, unknown>,
  size: number,
): MultiCropOptions & { size: number } {
  const local = flags["local-crop-size"] as number;
  const localSize = local === 0 ? paperScaledLocalSize(size) : local;
  try {
    if (!(localSize > 0 && localSize <= size)) {
      throw new RangeError(
        `Expected --local-crop-size in [1, --size = ${size}] (local crops are smaller than global ones): received ${local}`,
      );
    }
    const numGlobal = flags["global-crops"] as number;
    const numLocal = flags["local-crops"] as number;
    if (!(numGlobal >= 1) || !(numLocal >= 0)) {
      throw new RangeError(
        `Expected --global-crops ≥ 1 and --local-crops ≥ 0: received ${numGlobal} and ${numLocal}`,
      );
    }
    const options = {
      preset: flags.preset as "vicreg" | "paper-code",
      size,
      numGlobal,
      numLocal,
      globalSize: size,
      localSize,
      globalScale: parseScaleRange(
        flags["global-crop-scale"] as string,
        "--global-crop-scale",
      ),
      localScale: parseScaleRange(
        flags["local-crop-scale"] as string,
        "--local-crop-scale",
      ),
    };
    new MultiCropTransform(options); // validates the rest
    return options;
  } catch (cause) {
    if (cause instanceof RangeError) {
      throw new UsageError(cause.message, { cause });
    }
    throw cause;
  }
}

/**
 * Outlines each view's crop box on the original of its row (the first
 * column, `size` px: the original is resized to the square, so the
 * normalised box maps straight onto it), in the view's frame colour.
 */
function outlineCrops(
  grid: Image,
  params: ViewParams[][],
  columns: readonly PreviewColumn[],
  size: number,
): void {
  const { header, rowHeight } = layoutOf(columns);
  params.forEach((view, v) =>
    view.forEach((p, r) => {
      const [x0, y0, x1, y1] = p.box;
      const left = GAP + Math.round(x0 * size);
      const top = header + GAP + r * (rowHeight + GAP) + Math.round(y0 * size);
      outline(
        grid,
        left,
        top,
        Math.max(1, Math.round((x1 - x0) * size)),
        Math.max(1, Math.round((y1 - y0) * size)),
        columns[v + 1].frame!,
      );
    })
  );
}
