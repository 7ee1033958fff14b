/**
 * A small reader and writer for numpy's `.npy` format (versions 1.0, 2.0 and
 * 3.0 read; 1.0 written, or 2.0 when the header needs it): little-endian,
 * C order, the dtypes this project exchanges.
 *
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 * @module
 */

/** The element types {@linkcode readNpy} and {@linkcode writeNpy} support. */
export type NpyDtype = "float32" | "int32" | "uint8" | "float64" | "int64";

/** The typed array that holds the elements of an {@linkcode NpyArray}. */
export type NpyData =
  | Float32Array
  | Int32Array
  | Uint8Array
  | Float64Array
  | BigInt64Array;

/** An n-d array as stored in a `.npy` file: shape, dtype and C-order elements. */
export interface NpyArray {
  /** Dimensions, outermost first (`[N, H, W, C]` for NHWC images). */
  shape: number[];
  /** Element type. */
  dtype: NpyDtype;
  /** Elements in C (row-major) order; its type matches `dtype`. */
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

interface DtypeInfo {
  descr: string;
  size: number;
  make: (buffer: ArrayBuffer) => NpyData;
  check: (data: NpyData) => boolean;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  float32: {
    descr: "<f4",
    size: 4,
    make: (b) => new Float32Array(b),
    check: (d) => d instanceof Float32Array,
  },
  int32: {
    descr: "<i4",
    size: 4,
    make: (b) => new Int32Array(b),
    check: (d) => d instanceof Int32Array,
  },
  uint8: {
    descr: "|u1",
    size: 1,
    make: (b) => new Uint8Array(b),
    check: (d) => d instanceof Uint8Array,
  },
  float64: {
    descr: "<f8",
    size: 8,
    make: (b) => new Float64Array(b),
    check: (d) => d instanceof Float64Array,
  },
  int64: {
    descr: "<i8",
    size: 8,
    make: (b) => new BigInt64Array(b),
    check: (d) => d instanceof BigInt64Array,
  },
};

const DESCRS: Record<string, NpyDtype> = {
  "<f4": "float32",
  "<i4": "int32",
  "|u1": "uint8",
  "<u1": "uint8",
  "u1": "uint8",
  "<f8": "float64",
  "<i8": "int64",
};

/**
 * Parses the bytes of a `.npy` file. The elements are copied into a fresh,
 * aligned typed array.
 *
 * Throws a `TypeError` naming what was expected for a bad magic string, an
 * unknown version, an unsupported dtype (big-endian, bool, complex, ...),
 * Fortran order, or a data section shorter than the shape needs.
 *
 * @example
 * ```ts
 * import { readNpy, writeNpy } from "@scaling-vicreg/backend/npy";
 * const bytes = writeNpy({ shape: [2], dtype: "float32", data: Float32Array.of(1, 2) });
 * const array = readNpy(bytes);
 * console.log(array.shape, array.data); // [2] Float32Array [1, 2]
 * ```
 *
 * @param bytes The whole file.
 * @returns Shape, dtype and elements.
 */
export function readNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new TypeError(
      "Expected a .npy file starting with \\x93NUMPY: received other bytes",
    );
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) {
      throw new TypeError("Expected a .npy header: the file is truncated");
    }
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new TypeError(
      `Expected .npy format version 1, 2 or 3: received ${major}.${bytes[7]}`,
    );
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    throw new TypeError("Expected a .npy header: the file is truncated");
  }
  const decoder = new TextDecoder(major === 3 ? "utf-8" : "latin1");
  const header = decoder.decode(bytes.subarray(headerStart, dataStart));
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)
    ?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new TypeError(
      `Expected a .npy header with descr, fortran_order and shape: received ${
        JSON.stringify(header.trim())
      }`,
    );
  }
  const dtype = DESCRS[descr];
  if (dtype === undefined) {
    throw new TypeError(
      `Expected a .npy dtype of ${
        Object.values(DTYPES).map((d) => d.descr).join(", ")
      } (little-endian): received "${descr}"`,
    );
  }
  if (fortran === "True") {
    throw new TypeError(
      "Expected a C-order .npy array: received fortran_order True",
    );
  }
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) =>
    s !== ""
  ).map((s) => {
    const n = Number(s.replace(/L$/, ""));
    if (!Number.isInteger(n) || n < 0) {
      throw new TypeError(
        `Expected non-negative integer .npy dimensions: received (${shapeText})`,
      );
    }
    return n;
  });
  const info = DTYPES[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * info.size;
  if (dataStart + byteLength > bytes.length) {
    throw new TypeError(
      `Expected ${byteLength} bytes of ${dtype} data for shape [${shape}]: received ${
        bytes.length - dataStart
      }`,
    );
  }
  // Copy so the typed array is aligned and owns its buffer.
  const copy = bytes.slice(dataStart, dataStart + byteLength);
  return { shape, dtype, data: info.make(copy.buffer) };
}

/**
 * Serialises an array as a `.npy` file (version 1.0, or 2.0 for headers over
 * 65535 bytes), little-endian, C order, header padded to 64 bytes as numpy
 * writes it.
 *
 * Throws a `TypeError` when `data` is not the typed array of `dtype` or its
 * length is not the product of `shape`.
 *
 * @example
 * ```ts
 * import { writeNpy } from "@scaling-vicreg/backend/npy";
 * const bytes = writeNpy({ shape: [1, 2], dtype: "int32", data: Int32Array.of(3, 4) });
 * console.log(bytes.length); // 136
 * ```
 *
 * @param array Shape, dtype and elements.
 * @returns The bytes of the file.
 */
export function writeNpy(array: NpyArray): Uint8Array {
  const info = DTYPES[array.dtype];
  if (info === undefined) {
    throw new TypeError(
      `Expected dtype of ${
        Object.keys(DTYPES).join(", ")
      }: received "${array.dtype}"`,
    );
  }
  if (!info.check(array.data)) {
    throw new TypeError(
      `Expected data of dtype ${array.dtype} to be a matching typed array: received ${array.data?.constructor?.name}`,
    );
  }
  for (const d of array.shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new TypeError(
        `Expected non-negative integer dimensions: received shape [${array.shape}]`,
      );
    }
  }
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) {
    throw new TypeError(
      `Expected ${count} elements for shape [${array.shape}]: received ${array.data.length}`,
    );
  }
  const shapeText = array.shape.length === 1
    ? `(${array.shape[0]},)`
    : `(${array.shape.join(", ")})`;
  let dict =
    `{'descr': '${info.descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  if (prefix + dict.length + 1 > 65535) {
    version = 2;
    prefix = 12;
  }
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - prefix - 1, " ") + "\n";
  const out = new Uint8Array(total + array.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  out.set(
    new Uint8Array(
      array.data.buffer,
      array.data.byteOffset,
      array.data.byteLength,
    ),
    total,
  );
  return out;
}
