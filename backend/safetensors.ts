/**
 * A small reader and writer for the safetensors format: an 8-byte
 * little-endian header length, a JSON header (`{name: {dtype, shape,
 * data_offsets}, __metadata__}`) and the little-endian tensor bytes.
 *
 * Format: https://github.com/huggingface/safetensors#format
 *
 * @module
 */

/** The safetensors dtypes this module reads (F32, F64, I32, I64, U8 are also written). */
export type SafeDtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "U8";

/** The typed array that holds a tensor's elements. */
export type SafeData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array;

/** One tensor: dtype, shape and C-order elements. */
export interface SafeTensor {
  /**
   * Element type of `data`: `F32` (`Float32Array`), `F64`
   * (`Float64Array`), `I32` (`Int32Array`), `I64` (`BigInt64Array`) or `U8`
   * (`Uint8Array`). Decoded float tensors are always `F32`.
   */
  dtype: SafeDtype;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Elements in C (row-major) order. */
  data: SafeData;
  /** The dtype stored in the file, when decoding converted it (e.g. `BF16`). */
  storedDtype?: SafeDtype;
}

/** What {@linkcode decodeSafetensors} returns. */
export interface DecodedSafetensors {
  /** Tensors by name. */
  tensors: Record<string, SafeTensor>;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

const SIZES: Record<SafeDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  U8: 1,
};

const WRITERS: Record<string, (d: SafeData) => boolean> = {
  F32: (d) => d instanceof Float32Array,
  F64: (d) => d instanceof Float64Array,
  I32: (d) => d instanceof Int32Array,
  I64: (d) => d instanceof BigInt64Array,
  U8: (d) => d instanceof Uint8Array,
};

/**
 * Serialises tensors to safetensors bytes. Tensors are written in name order;
 * the header is padded with spaces to a multiple of 8 bytes, as the reference
 * implementation does.
 *
 * Writes `F32`, `F64`, `I32`, `I64` and `U8`; throws a `TypeError` naming the
 * tensor when its data does not match its dtype or shape.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@scaling-vicreg/backend/safetensors";
 * const bytes = encodeSafetensors({
 *   w: { dtype: "F32", shape: [2], data: Float32Array.of(1, 2) },
 * }, { format: "pt" });
 * console.log(decodeSafetensors(bytes).tensors.w.data); // Float32Array [1, 2]
 * ```
 *
 * @param tensors Tensors by name.
 * @param metadata Optional string-to-string metadata (`__metadata__`).
 * @returns The bytes of the file.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        throw new TypeError(
          `Expected safetensors metadata "${key}" to be a string: received ${typeof value}`,
        );
      }
    }
    header.__metadata__ = metadata;
  }
  const names = Object.keys(tensors).sort();
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") {
      throw new TypeError('Expected a tensor name other than "__metadata__"');
    }
    const { dtype, shape, data } = tensors[name];
    const check = WRITERS[dtype];
    if (check === undefined) {
      throw new TypeError(
        `Expected tensor "${name}" to have dtype F32, F64, I32, I64 or U8 for writing: received ${dtype}`,
      );
    }
    if (!check(data)) {
      throw new TypeError(
        `Expected tensor "${name}" of dtype ${dtype} to hold a matching typed array: received ${data?.constructor?.name}`,
      );
    }
    const count = checkShape(name, shape);
    if (data.length !== count) {
      throw new TypeError(
        `Expected tensor "${name}" to have ${count} elements for shape [${shape}]: received ${data.length}`,
      );
    }
    header[name] = {
      dtype,
      shape,
      data_offsets: [offset, offset + data.byteLength],
    };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const padding = (8 - (headerBytes.length % 8)) % 8;
  if (padding > 0) {
    json += " ".repeat(padding);
    headerBytes = encoder.encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors[name].data;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/**
 * Parses safetensors bytes. Every tensor's elements are copied into a fresh
 * typed array; `F16`, `BF16` and `F64` tensors are converted to `F32`
 * (`Float32Array`, with `storedDtype` saying what the file held).
 *
 * Throws a `TypeError` naming the tensor for an unknown dtype, offsets that
 * do not match the shape or fall outside the file, and for a malformed header.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@scaling-vicreg/backend/safetensors";
 * const bytes = encodeSafetensors({
 *   n: { dtype: "I32", shape: [1, 2], data: Int32Array.of(3, 4) },
 * });
 * const { tensors } = decodeSafetensors(bytes);
 * console.log(tensors.n.shape); // [1, 2]
 * ```
 *
 * @param bytes The whole file.
 * @returns Tensors by name and the metadata.
 */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  if (bytes.length < 8) {
    throw new TypeError(
      `Expected a safetensors file of at least 8 bytes: received ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new TypeError(
      `Expected a safetensors header of at most ${
        bytes.length - 8
      } bytes: the header length says ${headerLength}`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, dataStart)));
  } catch (cause) {
    throw new TypeError("Expected a JSON safetensors header", { cause });
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new TypeError("Expected the safetensors header to be a JSON object");
  }
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new TypeError(
        `Expected ${
          name === "__metadata__" ? "__metadata__" : `tensor "${name}"`
        } in the safetensors header to be a JSON object: received ${
          JSON.stringify(entry)
        }`,
      );
    }
    if (name === "__metadata__") {
      for (const [key, value] of Object.entries(entry as object)) {
        metadata[key] = String(value);
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry as {
      dtype: SafeDtype;
      shape: number[];
      data_offsets: [number, number];
    };
    const size = SIZES[dtype];
    if (size === undefined) {
      throw new TypeError(
        `Expected tensor "${name}" to have dtype ${
          Object.keys(SIZES).join(", ")
        }: received ${dtype}`,
      );
    }
    if (!Array.isArray(shape)) {
      throw new TypeError(`Expected tensor "${name}" to have a shape array`);
    }
    const count = checkShape(name, shape);
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !Number.isInteger(offsets[0]) || !Number.isInteger(offsets[1]) ||
      offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength
    ) {
      throw new TypeError(
        `Expected tensor "${name}" data_offsets within the ${dataLength} data bytes: received ${
          JSON.stringify(offsets)
        }`,
      );
    }
    if (offsets[1] - offsets[0] !== count * size) {
      throw new TypeError(
        `Expected tensor "${name}" (${dtype} [${shape}]) to span ${
          count * size
        } bytes: its data_offsets span ${offsets[1] - offsets[0]}`,
      );
    }
    const raw = bytes.slice(dataStart + offsets[0], dataStart + offsets[1]);
    tensors[name] = decodeData(dtype, [...shape], raw.buffer);
  }
  return { tensors, metadata };
}

function decodeData(
  dtype: SafeDtype,
  shape: number[],
  buffer: ArrayBuffer,
): SafeTensor {
  switch (dtype) {
    case "F32":
      return { dtype, shape, data: new Float32Array(buffer) };
    case "I32":
      return { dtype, shape, data: new Int32Array(buffer) };
    case "I64":
      return { dtype, shape, data: new BigInt64Array(buffer) };
    case "U8":
      return { dtype, shape, data: new Uint8Array(buffer) };
    case "F64":
      return {
        dtype: "F32",
        shape,
        data: Float32Array.from(new Float64Array(buffer)),
        storedDtype: dtype,
      };
    case "F16": {
      const half = new Uint16Array(buffer);
      const out = new Float32Array(half.length);
      for (let i = 0; i < half.length; i++) out[i] = halfToFloat(half[i]);
      return { dtype: "F32", shape, data: out, storedDtype: dtype };
    }
    case "BF16": {
      const half = new Uint16Array(buffer);
      const bits = new Uint32Array(half.length);
      // bfloat16 is the top half of a float32.
      for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
      return {
        dtype: "F32",
        shape,
        data: new Float32Array(bits.buffer),
        storedDtype: dtype,
      };
    }
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function checkShape(name: string, shape: number[]): number {
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new TypeError(
        `Expected tensor "${name}" to have non-negative integer dimensions: received [${shape}]`,
      );
    }
    count *= d;
  }
  return count;
}
