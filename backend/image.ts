/**
 * The decoded-image type shared by `data` (which produces it) and `augment`
 * (which consumes it), kept here so neither depends on the other.
 *
 * @module
 */

/**
 * An 8-bit RGB image: `data` holds `height × width × 3` bytes, row-major,
 * channels interleaved (HWC), as `[H, W, 3]` uint8.
 */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `[H, W, 3]` pixels, row-major. */
  data: Uint8Array;
}

/**
 * Checks that an image's buffer matches its size.
 *
 * @example
 * ```ts
 * import { checkRgbImage } from "@scaling-vicreg/backend/image";
 * checkRgbImage({ width: 1, height: 1, data: new Uint8Array(3) });
 * ```
 *
 * @param image The image.
 * @param what Names the image in the error (a file, an index).
 */
export function checkRgbImage(image: RgbImage, what = "image"): void {
  const { width, height, data } = image;
  if (
    !(Number.isInteger(width) && width > 0 && Number.isInteger(height) &&
      height > 0)
  ) {
    throw new RangeError(
      `Expected ${what} to have a positive integer size: received ${width}×${height}`,
    );
  }
  if (data.length !== width * height * 3) {
    throw new TypeError(
      `Expected ${what} to hold ${
        width * height * 3
      } bytes ([${height}, ${width}, 3]): received ${data.length}`,
    );
  }
}
