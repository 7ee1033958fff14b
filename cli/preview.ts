/**
 * `vicreg preview`: a PNG grid that shows what the paper's TrainTransform
 * does, one row per image: the original (resized), view 1 and view 2
 * (de-normalised), under a header naming the columns.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Image } from "imagescript";
import { openDataset, proceduralDataset } from "@scaling-vicreg/data";
import { type RgbImage, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  denormalize,
  evalTransform,
  TrainTransform,
  type TrainTransformOptions,
} from "@scaling-vicreg/augment";
import { drawText, textBox } from "@scaling-vicreg/probe/figure-text";
import { type Command, UsageError } from "./args.ts";

const GAP = 2;

/** Column names, and the short ones for narrow columns. */
const HEADERS = [["original", "view 1", "view 2"], ["orig", "v1", "v2"]];

/**
 * The header's column names that fit a column of `size` pixels at `scale`
 * (the full names, else the short ones, else none).
 */
function headerFor(size: number, scale: number): string[] {
  return HEADERS.find((names) =>
    names.every((n) => textBox(n, 0, 0, { scale }).width <= size)
  ) ?? [];
}

/**
 * The preview grid: a header row naming the three columns (the project's
 * bitmap font; scale 2 from 96 px views), then one row per image with the
 * original and the two views, `GAP` = 2 white pixels between cells.
 *
 * @param columns Three `[rows, size, size, 3]` arrays of floats in [0, 1]:
 * originals, views 1, views 2.
 * @param rows Images.
 * @param size Cell side in pixels.
 * @returns The image (encode it with `encode()`).
 */
export function renderPreviewGrid(
  columns: readonly (Float32Array | Int32Array | Uint8Array)[],
  rows: number,
  size: number,
): Image {
  const scale = size >= 96 ? 2 : 1;
  const names = headerFor(size, scale);
  const header = names.length ? 7 * scale + 2 * GAP : 0;
  const grid = new Image(
    3 * size + 4 * GAP,
    header + rows * size + (rows + 1) * GAP,
  );
  grid.fill(0xffffffff);
  names.forEach((name, c) =>
    drawText(grid, name, GAP + c * (size + GAP) + size / 2, GAP, {
      scale,
      anchor: "middle",
    })
  );
  const per = size * size * 3;
  for (let r = 0; r < rows; r++) {
    columns.forEach((pixels, c) =>
      blit(
        grid,
        pixels.subarray(r * per, (r + 1) * per),
        size,
        GAP + c * (size + GAP),
        header + GAP + r * (size + GAP),
      )
    );
  }
  return grid;
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
 * The preview grid of `images` as a PNG: each image (bicubic-resized), and
 * two views of it drawn by a `TrainTransform` with `options` and a generator
 * seeded with `seed`, de-normalised. Runs on the active backend.
 *
 * @param images The rows.
 * @param options The transform's options (`size` is the cell side).
 * @param seed Seed of the views.
 * @returns The PNG file's bytes.
 */
export async function previewPng(
  images: readonly RgbImage[],
  options: TrainTransformOptions & { size: number },
  seed: number,
): Promise<Uint8Array> {
  const { size } = options;
  const transform = new TrainTransform(options);
  const { view1, view2 } = transform.apply([...images], new Rng(seed));
  const [original, v1, v2] = tf.tidy(() => [
    evalTransform([...images], { size, mean: null }),
    denormalize(view1),
    denormalize(view2),
  ]);
  const columns = await Promise.all(
    [original, v1, v2].map(async (t) => await t.data() as Float32Array),
  );
  tf.dispose([view1, view2, original, v1, v2]);
  return await renderPreviewGrid(columns, images.length, size).encode();
}

/** The `preview` subcommand. */
export const previewCommand: Command = {
  name: "preview",
  summary: "Write a PNG grid of images and their two augmented views",
  usage: "[--data DIR|SPEC] [--n 8] [--out views.png] [--seed 0] [--size 96]",
  description: `
One row per image: the original (bicubic-resized to SIZE×SIZE), view 1 and
view 2 of the paper's TrainTransform, de-normalised, under a header naming the
columns. --data takes a folder
(searched recursively, sorted by path; the first N images are used) or any
data-set spec (kind:path); without it the built-in procedural images are used.`,
  flags: {
    data: {
      type: "string",
      help: "Folder of images or kind:path (default: procedural images)",
    },
    n: { type: "int", help: "Number of images (rows)", default: 8 },
    out: { type: "string", help: "Output PNG path", default: "views.png" },
    seed: { type: "int", help: "Random seed", default: 0 },
    size: { type: "int", help: "View side in pixels", default: 96 },
    preset: {
      type: "string",
      help: "TrainTransform preset",
      default: "vicreg",
      choices: ["vicreg", "paper-code"],
    },
  },
  async run(flags) {
    const n = flags.n as number, size = flags.size as number;
    if (!(n > 0)) throw new UsageError(`Expected --n > 0: received ${n}`);
    if (!(size > 0)) {
      throw new UsageError(`Expected --size > 0: received ${size}`);
    }
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
    const png = await previewPng(images, {
      size,
      preset: flags.preset as "vicreg" | "paper-code",
    }, flags.seed as number);
    const rows = images.length;
    await Deno.writeFile(flags.out as string, png);
    console.log(
      `wrote ${flags.out}: ${rows} rows (original, view 1, view 2) at ${size}px`,
    );
    return 0;
  },
};
