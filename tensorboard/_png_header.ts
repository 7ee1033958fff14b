// The size and channels of a PNG, read from its IHDR chunk (PNG
// specification, 11.2.2), so an image summary cannot disagree with its file.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** `Summary.Image.colorspace` of each PNG colour type. */
const COLORSPACE: Record<number, 1 | 2 | 3 | 4> = {
  0: 1, // greyscale
  2: 3, // truecolour
  3: 3, // indexed: decoded to RGB
  4: 2, // greyscale with alpha
  6: 4, // truecolour with alpha
};

/** What a PNG's header says about its pixels. */
export interface PngHeader {
  width: number;
  height: number;
  colorspace: 1 | 2 | 3 | 4;
}

/**
 * The width, height and `Summary.Image` colour space of the PNG `bytes`.
 *
 * @throws {TypeError} When `bytes` is not a PNG (`what` names it).
 */
export function readPngHeader(bytes: Uint8Array, what: string): PngHeader {
  const isPng = bytes.length >= 33 &&
    SIGNATURE.every((b, i) => bytes[i] === b) &&
    String.fromCharCode(...bytes.subarray(12, 16)) === "IHDR";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const colorspace = isPng ? COLORSPACE[bytes[25]] : undefined;
  if (colorspace === undefined) {
    throw new TypeError(
      `Expected ${what} to be a PNG file: ${
        isPng
          ? `unknown colour type ${bytes[25]}`
          : "its first bytes are not a PNG signature and IHDR chunk"
      }`,
    );
  }
  return {
    width: view.getUint32(16),
    height: view.getUint32(20),
    colorspace,
  };
}
