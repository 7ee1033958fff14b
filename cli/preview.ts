/**
 * `vicreg preview`: a PNG grid that shows what the paper's TrainTransform
 * does, one row per image: the original (resized), view 1 and view 2
 * (de-normalised).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Image } from "imagescript";
import { type RgbImage, Rng, useBackend } from "@scaling-vicreg/backend";
import {
  denormalize,
  evalTransform,
  TrainTransform,
} from "@scaling-vicreg/augment";
import { type Command, UsageError } from "./args.ts";

const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];
const GAP = 2;

async function listImages(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const entry of Deno.readDir(path)) entries.push(entry);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = `${path}/${entry.name}`;
      if (entry.isDirectory) await walk(full);
      else if (
        IMAGE_EXTENSIONS.some((e) => entry.name.toLowerCase().endsWith(e))
      ) {
        found.push(full);
      }
    }
  };
  await walk(dir);
  return found;
}

async function decodeFile(path: string): Promise<RgbImage> {
  let image: Image;
  try {
    image = await Image.decode(await Deno.readFile(path));
  } catch (cause) {
    throw new Error(`Could not decode ${path}: ${cause}`, { cause });
  }
  const { width, height, bitmap } = image;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    data[i * 3] = bitmap[j];
    data[i * 3 + 1] = bitmap[j + 1];
    data[i * 3 + 2] = bitmap[j + 2];
  }
  return { width, height, data };
}

/** A built-in test pattern: a colour gradient under a checkerboard. */
function testPattern(index: number): RgbImage {
  const width = 160 + 24 * (index % 3), height = 128 + 16 * (index % 4);
  const cell = 8 + 4 * (index % 4);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const check = (Math.floor(x / cell) + Math.floor(y / cell)) % 2;
      data[o] = Math.round(255 * x / (width - 1));
      data[o + 1] = Math.round(255 * y / (height - 1));
      data[o + 2] = check ? 230 : (40 * index) % 256;
    }
  }
  return { width, height, data };
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

/** The `preview` subcommand. */
export const previewCommand: Command = {
  name: "preview",
  summary: "Write a PNG grid of images and their two augmented views",
  usage: "[--data DIR] [--n 8] [--out views.png] [--seed 0] [--size 96]",
  description: `
One row per image: the original (bicubic-resized to SIZE×SIZE), view 1 and
view 2 of the paper's TrainTransform, de-normalised. DIR is searched
recursively for .png/.jpg/.jpeg files (sorted by path; the first N are used);
without --data a built-in gradient/checkerboard pattern is used.`,
  flags: {
    data: { type: "string", help: "Folder of images (default: test pattern)" },
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
    let images: RgbImage[];
    if (flags.data === undefined) {
      images = Array.from({ length: n }, (_, i) => testPattern(i));
    } else {
      let paths: string[];
      try {
        paths = (await listImages(flags.data as string)).slice(0, n);
      } catch (cause) {
        throw new UsageError(
          `Expected --data ${flags.data} to be a readable folder: ${
            (cause as Error).message
          }`,
          { cause },
        );
      }
      if (paths.length === 0) {
        throw new UsageError(
          `Expected --data ${flags.data} to hold .png/.jpg images: found none`,
        );
      }
      images = await Promise.all(paths.map(decodeFile));
    }
    const transform = new TrainTransform({
      size,
      preset: flags.preset as "vicreg" | "paper-code",
    });
    const { view1, view2 } = transform.apply(
      images,
      new Rng(flags.seed as number),
    );
    const [original, v1, v2] = tf.tidy(() => [
      evalTransform(images, { size, mean: null }),
      denormalize(view1),
      denormalize(view2),
    ]);
    const columns = [original, v1, v2].map((t) => t.dataSync());
    tf.dispose([view1, view2, original, v1, v2]);
    const rows = images.length, per = size * size * 3;
    const grid = new Image(3 * size + 4 * GAP, rows * size + (rows + 1) * GAP);
    grid.fill(0xffffffff);
    for (let r = 0; r < rows; r++) {
      columns.forEach((pixels, c) =>
        blit(
          grid,
          pixels.subarray(r * per, (r + 1) * per),
          size,
          GAP + c * (size + GAP),
          GAP + r * (size + GAP),
        )
      );
    }
    await Deno.writeFile(flags.out as string, await grid.encode());
    console.log(
      `wrote ${flags.out}: ${rows} rows (original, view 1, view 2) at ${size}px`,
    );
    return 0;
  },
};
