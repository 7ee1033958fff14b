/**
 * Pillow-exact bicubic resizing of uint8 RGB images on the CPU, for decoding
 * caches and evaluation: the same coefficients, 8-bit fixed-point arithmetic
 * and rounding as `PIL.Image.resize(size, Image.BICUBIC)`, which is what
 * torchvision's `Resize`/`RandomResizedCrop` call on PIL images.
 *
 * Pillow's bicubic is Keys' cubic convolution with a = −0.5 (not the −0.75
 * of OpenCV and of PyTorch's non-antialiased `interpolate`), with the kernel
 * support widened by the downscale factor (antialiasing).
 *
 * @module
 */
import { checkRgbImage, type RgbImage } from "@scaling-vicreg/backend";
import { pilResizeRgb8 } from "./_pil_resample.ts";

function checkSize(value: number, name: string): void {
  if (!(Number.isInteger(value) && value > 0)) {
    throw new RangeError(
      `Expected ${name} to be a positive integer: received ${value}`,
    );
  }
}

/**
 * Resizes an image to `width × height` with Pillow's antialiased bicubic
 * filter, bit-exact with `Image.resize((width, height), Image.BICUBIC)`.
 *
 * @example
 * ```ts
 * import { resizeRgb } from "@scaling-vicreg/augment/resize";
 * const image = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 3).fill(9) };
 * const small = resizeRgb(image, 2, 1);
 * console.log(small.width, small.height, small.data); // 2 1 Uint8Array(6) [9, 9, 9, 9, 9, 9]
 * ```
 *
 * @param image An `[H, W, 3]` uint8 image.
 * @param width Output width in pixels.
 * @param height Output height in pixels.
 * @returns The `[height, width, 3]` uint8 image.
 */
export function resizeRgb(
  image: RgbImage,
  width: number,
  height: number,
): RgbImage {
  checkRgbImage(image);
  checkSize(width, "width");
  checkSize(height, "height");
  const data = pilResizeRgb8(
    image.data,
    image.width,
    image.height,
    width,
    height,
  );
  return { width, height, data };
}

/**
 * The size torchvision's `Resize(size)` gives an image: the shorter side
 * becomes `size`, the longer side `int(size · long / short)` (truncated).
 *
 * @example
 * ```ts
 * import { shorterSideSize } from "@scaling-vicreg/augment/resize";
 * console.log(shorterSideSize(500, 375, 96)); // [128, 96]
 * ```
 *
 * @param width Input width.
 * @param height Input height.
 * @param size Target shorter side.
 * @returns `[width, height]` after resizing.
 */
export function shorterSideSize(
  width: number,
  height: number,
  size: number,
): [number, number] {
  checkSize(size, "size");
  if (width <= height) {
    return [size, Math.trunc(size * height / width)];
  }
  return [Math.trunc(size * width / height), size];
}

/**
 * The top-left corner torchvision's `CenterCrop` uses:
 * `round((W − cropWidth) / 2)`, `round((H − cropHeight) / 2)` with Python's
 * round-half-to-even.
 *
 * @example
 * ```ts
 * import { centerCropOffset } from "@scaling-vicreg/augment/resize";
 * console.log(centerCropOffset(9, 7, 4, 4)); // [2, 2]
 * ```
 *
 * @param width Image width.
 * @param height Image height.
 * @param cropWidth Crop width.
 * @param cropHeight Crop height.
 * @returns `[left, top]`.
 */
export function centerCropOffset(
  width: number,
  height: number,
  cropWidth: number,
  cropHeight: number,
): [number, number] {
  return [
    roundHalfEven((width - cropWidth) / 2),
    roundHalfEven((height - cropHeight) / 2),
  ];
}

/**
 * Python 3's `round()`: nearest integer, ties to even.
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "@scaling-vicreg/augment/resize";
 * console.log(roundHalfEven(2.5), roundHalfEven(3.5)); // 2 4
 * ```
 *
 * @param x A finite number.
 * @returns The rounded value.
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision's `Compose([Resize(size, BICUBIC), CenterCrop(size)])` on a PIL
 * image: the shorter side to `size` (Pillow-exact bicubic), then the central
 * `size × size` square. Only the kept pixels are computed.
 *
 * @example
 * ```ts
 * import { resizeShorterCenterCrop } from "@scaling-vicreg/augment/resize";
 * const image = { width: 6, height: 3, data: new Uint8Array(6 * 3 * 3).fill(50) };
 * console.log(resizeShorterCenterCrop(image, 2).width); // 2
 * ```
 *
 * @param image An `[H, W, 3]` uint8 image.
 * @param size The output side.
 * @returns The `[size, size, 3]` uint8 image.
 */
export function resizeShorterCenterCrop(
  image: RgbImage,
  size: number,
): RgbImage {
  checkRgbImage(image);
  const [w, h] = shorterSideSize(image.width, image.height, size);
  const [left, top] = centerCropOffset(w, h, size, size);
  const data = pilResizeRgb8(
    image.data,
    image.width,
    image.height,
    w,
    h,
    [left, top, left + size, top + size],
  );
  return { width: size, height: size, data };
}
