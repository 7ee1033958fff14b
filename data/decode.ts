/**
 * Decoding JPEG and PNG files to 8-bit RGB, with one error type,
 * {@linkcode DatasetError}, for every file that cannot be used.
 *
 * Decoding is imagescript's (WASM). Every PNG variant is accepted — gray,
 * gray+alpha, palette (with or without `tRNS`), RGB, RGBA, at 1–16 bits —
 * and so are baseline JPEGs with 1 or 3 components. Conversions:
 * - 16-bit samples keep their high byte (`v >> 8`), like PIL.
 * - Alpha is dropped: colour channels are kept as stored, not composited,
 *   like PIL's `convert("RGB")` (what torchvision's loader does).
 * - Gray is replicated to R = G = B.
 *
 * @module
 */
import { decode as imagescriptDecode, Image } from "./_imagescript.ts";
import type { RgbImage } from "@scaling-vicreg/backend/image";

/**
 * A data-set file that cannot be read or decoded (zero bytes, truncated, not
 * a JPEG/PNG, CMYK JPEG) or a data-set layout that is not what was expected.
 * `path` names the file or folder.
 */
export class DatasetError extends Error {
  /** The file or folder at fault. */
  readonly path: string;

  /**
   * Makes a data-set error.
   *
   * @param message One line naming the file and what was expected.
   * @param path The file or folder at fault.
   * @param options `cause`.
   */
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatasetError";
    this.path = path;
  }
}

/** The file formats {@linkcode decodeImage} reads (GIF: its first frame). */
export type ImageFormat = "png" | "jpeg" | "gif";

/**
 * The most pixels an image may have before it is refused undecoded: Pillow's
 * `DecompressionBombError` threshold (2 × `Image.MAX_IMAGE_PIXELS`), about
 * 13,400 × 13,400. Decoding holds 4 bytes per pixel.
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 178_956_970;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * The format named by a file's first bytes, or `undefined` if neither PNG
 * nor JPEG.
 *
 * @example
 * ```ts
 * import { sniffImageFormat } from "@scaling-vicreg/data/decode";
 * console.log(sniffImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))); // "jpeg"
 * ```
 *
 * @param bytes The file's first bytes (8 suffice).
 * @returns The format.
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) {
    return "png";
  }
  if (
    bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 &&
    bytes[2] === 0xff
  ) {
    return "jpeg";
  }
  const six = String.fromCharCode(...bytes.subarray(0, 6));
  if (six === "GIF87a" || six === "GIF89a") return "gif";
  return undefined;
}

/**
 * Width and height from a file's first bytes (PNG IHDR, GIF logical screen,
 * JPEG frame header), or `undefined` when they are not within `head`.
 *
 * @example
 * ```ts
 * import { Image } from "imagescript";
 * import { imageDimensions } from "@scaling-vicreg/data/decode";
 * const png = await new Image(3, 2).encode();
 * console.log(imageDimensions(png)); // { width: 3, height: 2 }
 * ```
 *
 * @param head The file's first bytes.
 * @returns The dimensions.
 */
export function imageDimensions(
  head: Uint8Array,
): { width: number; height: number } | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  switch (sniffImageFormat(head)) {
    case "png":
      return head.length >= 24
        ? { width: view.getUint32(16), height: view.getUint32(20) }
        : undefined;
    case "gif":
      return head.length >= 10
        ? { width: view.getUint16(6, true), height: view.getUint16(8, true) }
        : undefined;
    case "jpeg": {
      const o = jpegFrameOffset(head);
      return o === undefined || o + 9 > head.length ? undefined : {
        height: view.getUint16(o + 5),
        width: view.getUint16(o + 7),
      };
    }
    default:
      return undefined;
  }
}

/**
 * The number of colour components in a JPEG's frame header, or `undefined`
 * if no frame header lies within `bytes` (e.g. only a prefix was read).
 *
 * @param bytes A JPEG file or its first bytes.
 * @returns 1 (gray), 3 (YCbCr/RGB), 4 (CMYK/YCCK) or `undefined`.
 */
export function jpegComponents(bytes: Uint8Array): number | undefined {
  const o = jpegFrameOffset(bytes);
  return o !== undefined && o + 9 < bytes.length ? bytes[o + 9] : undefined;
}

/** Offset of the JPEG frame header's 0xFF, if within `bytes`. */
function jpegFrameOffset(bytes: Uint8Array): number | undefined {
  let o = 2;
  while (o + 4 <= bytes.length) {
    if (bytes[o] !== 0xff) return undefined;
    const marker = bytes[o + 1];
    if (marker === 0xff) {
      o++;
      continue;
    }
    if (
      marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)
    ) {
      o += 2;
      continue;
    }
    const length = (bytes[o + 2] << 8) | bytes[o + 3];
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 &&
      marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) return o;
    if (marker === 0xda || marker === 0xd9) return undefined;
    o += 2 + length;
  }
  return undefined;
}

/**
 * Checks a file's first bytes (magic number; JPEG component count) without
 * decoding it, so a data set can reject obviously bad files up front.
 *
 * @example
 * ```ts
 * import { DatasetError, checkImageHeader } from "@scaling-vicreg/data/decode";
 * try {
 *   checkImageHeader(new Uint8Array(0), "empty.png");
 * } catch (error) {
 *   console.log(error instanceof DatasetError); // true
 * }
 * ```
 *
 * @param head The file's first bytes (the first 64 KiB catch most JPEG headers).
 * @param path Names the file in errors.
 * @param maxPixels Largest width × height accepted.
 * @returns The format.
 * @throws {DatasetError} For an empty file, an unknown format, a CMYK JPEG
 *   or more than `maxPixels` pixels.
 */
export function checkImageHeader(
  head: Uint8Array,
  path: string,
  maxPixels: number = DEFAULT_MAX_IMAGE_PIXELS,
): ImageFormat {
  if (head.length === 0) {
    throw new DatasetError(
      `Cannot decode ${path}: the file is empty (0 bytes)`,
      path,
    );
  }
  const format = sniffImageFormat(head);
  if (format === undefined) {
    throw new DatasetError(
      `Cannot decode ${path}: expected a JPEG, PNG or GIF file, found none of their signatures`,
      path,
    );
  }
  if (format === "jpeg") {
    const n = jpegComponents(head);
    if (n !== undefined && n !== 1 && n !== 3) {
      throw new DatasetError(
        `Cannot decode ${path}: ${n}-component (CMYK/YCCK) JPEG is not supported; expected gray or RGB`,
        path,
      );
    }
  }
  const size = imageDimensions(head);
  if (size !== undefined && size.width * size.height > maxPixels) {
    throw new DatasetError(
      `Cannot decode ${path}: ${size.width}×${size.height} = ${
        size.width * size.height
      } pixels exceeds the pixel limit of ${maxPixels} (maxImagePixels, --max-image-pixels)`,
      path,
    );
  }
  return format;
}

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) {
    c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Walks a PNG's chunks: each must fit in the file and match its CRC, and the
 * file must run from IHDR through IDAT to IEND. imagescript decodes a PNG cut
 * short inside its last IDAT chunk without error (filling the rest), so this
 * is what catches truncation.
 *
 * @param bytes The whole file.
 * @param path Names the file in errors.
 * @throws {DatasetError} For a truncated or corrupt file.
 */
export function checkPngChunks(bytes: Uint8Array, path: string): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new DatasetError(
      `Cannot decode ${path}: corrupt or truncated PNG (${why})`,
      path,
    );
  };
  let o = 8;
  let first = true;
  let sawData = false;
  for (;;) {
    if (o + 12 > bytes.length) fail("file ends before IEND");
    const length = view.getUint32(o);
    const type = String.fromCharCode(
      bytes[o + 4],
      bytes[o + 5],
      bytes[o + 6],
      bytes[o + 7],
    );
    if (length > bytes.length - o - 12) {
      fail(`chunk ${type} runs past the end of the file`);
    }
    if (first && type !== "IHDR") fail("first chunk is not IHDR");
    first = false;
    if (
      crc32(bytes, o + 4, o + 8 + length) !== view.getUint32(o + 8 + length)
    ) {
      fail(`chunk ${type} fails its CRC check`);
    }
    if (type === "IDAT") sawData = true;
    o += 12 + length;
    if (type === "IEND") break;
  }
  if (!sawData) fail("no IDAT chunk");
}

/**
 * Decodes a JPEG, PNG or GIF (first frame) file's bytes to an RGB image (`[H, W, 3]` uint8),
 * dropping alpha and keeping the high byte of 16-bit samples.
 *
 * @example
 * ```ts
 * import { Image } from "imagescript";
 * import { decodeImage } from "@scaling-vicreg/data/decode";
 * const png = await new Image(2, 1).fill(0xff000080).encode();
 * const rgb = await decodeImage(png, "red.png");
 * console.log(rgb.width, Array.from(rgb.data)); // 2 [255, 0, 0, 255, 0, 0]
 * ```
 *
 * @param bytes The whole file.
 * @param path Names the file in errors.
 * @returns The image.
 * @throws {DatasetError} If the file is empty, truncated, not a JPEG/PNG, or
 *   a CMYK JPEG.
 */
export async function decodeImage(
  bytes: Uint8Array,
  path: string,
): Promise<RgbImage> {
  const format = checkImageHeader(bytes, path);
  if (format === "png") checkPngChunks(bytes, path);
  let decoded: unknown;
  try {
    decoded = await imagescriptDecode(bytes, true);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new DatasetError(
      `Cannot decode ${path}: corrupt or truncated ${format.toUpperCase()} (${why})`,
      path,
      { cause },
    );
  }
  // A GIF decodes to its frames: the first one is the image.
  if (Array.isArray(decoded)) decoded = decoded[0];
  if (!(decoded instanceof Image) || decoded.width < 1 || decoded.height < 1) {
    throw new DatasetError(
      `Cannot decode ${path}: expected a still image`,
      path,
    );
  }
  const { width, height, bitmap } = decoded;
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    data[3 * i] = bitmap[j];
    data[3 * i + 1] = bitmap[j + 1];
    data[3 * i + 2] = bitmap[j + 2];
  }
  return { width, height, data };
}

/**
 * Reads and decodes an image file; read failures become a
 * {@linkcode DatasetError} naming the file too.
 *
 * @example
 * ```ts ignore
 * import { readImage } from "@scaling-vicreg/data/decode";
 * const image = await readImage("photo.jpg");
 * ```
 *
 * @param path The file.
 * @returns The image.
 * @throws {DatasetError} If the file cannot be read or decoded.
 */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new DatasetError(`Cannot read ${path}: ${why}`, path, { cause });
  }
  return await decodeImage(bytes, path);
}

/**
 * Encodes an RGB image as a PNG file (for writing data sets and debugging).
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "@scaling-vicreg/data/decode";
 * const png = await encodePng({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) });
 * console.log(Array.from((await decodeImage(png, "x.png")).data)); // [1, 2, 3]
 * ```
 *
 * @param image `[H, W, 3]` uint8.
 * @returns The PNG bytes.
 */
export async function encodePng(image: RgbImage): Promise<Uint8Array> {
  const { width, height, data } = image;
  const out = new Image(width, height);
  const bitmap = out.bitmap;
  for (let i = 0, n = width * height; i < n; i++) {
    bitmap[4 * i] = data[3 * i];
    bitmap[4 * i + 1] = data[3 * i + 1];
    bitmap[4 * i + 2] = data[3 * i + 2];
    bitmap[4 * i + 3] = 255;
  }
  return await out.encode(1);
}
