// The protocol-buffer wire format (https://protobuf.dev/programming-guides/encoding/),
// only as far as the event messages need it: varints, 64- and 32-bit
// floats, and length-delimited bytes (strings and nested messages).

/** Wire types: how a field's value is laid out after its key. */
const VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;

const utf8 = new TextEncoder();

/**
 * Builds one message's bytes, field by field, in the order the fields are
 * written. Fields at their proto3 default are the caller's to skip (the
 * writer writes what it is given, as a oneof member must be written even
 * when it is 0).
 */
export class ProtoWriter {
  #parts: Uint8Array[] = [];
  #length = 0;

  /** A varint field (int32, int64, uint64, enum, bool) of a value ≥ 0. */
  varint(field: number, value: number): this {
    this.#key(field, VARINT);
    this.#push(encodeVarint(value));
    return this;
  }

  /** A `double` field: 8 bytes, IEEE 754 binary64, little-endian. */
  double(field: number, value: number): this {
    this.#key(field, FIXED64);
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, value, true);
    this.#push(bytes);
    return this;
  }

  /** A `float` field: 4 bytes, IEEE 754 binary32, little-endian. */
  float(field: number, value: number): this {
    this.#key(field, FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.#push(bytes);
    return this;
  }

  /** A `bytes` field, or a nested message's encoding: length, then bytes. */
  bytes(field: number, value: Uint8Array): this {
    this.#key(field, LENGTH_DELIMITED);
    this.#push(encodeVarint(value.length));
    this.#push(value);
    return this;
  }

  /** A `string` field: its UTF-8 bytes. */
  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** The message's bytes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const part of this.#parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  #key(field: number, wireType: number): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) {
      throw new RangeError(
        `Expected a protobuf field number in [1, 2^29 - 1]: received ${field}`,
      );
    }
    this.#push(encodeVarint(field * 8 + wireType));
  }

  #push(bytes: Uint8Array): void {
    this.#parts.push(bytes);
    this.#length += bytes.length;
  }
}

/**
 * The base-128 varint of a non-negative integer up to 2^53 − 1: seven bits
 * a byte, least significant group first, the high bit set on every byte but
 * the last. (Division, not bit operators: those stop at 32 bits.)
 */
export function encodeVarint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Expected a varint value that is an integer in [0, 2^53 - 1]: received ${value}`,
    );
  }
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Uint8Array.from(bytes);
}
