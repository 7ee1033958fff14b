// A TFRecord reader and protobuf decoder for the tests, written apart from
// the writer (a bit-at-a-time CRC-32C, no shared code), so that a mistake in
// the writer cannot be mirrored here.

/** CRC-32C one bit at a time (RFC 3720 B.4's polynomial, reflected). */
function slowCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) {
      crc = (crc & 1) !== 0 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function masked(data: Uint8Array): number {
  const crc = slowCrc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The records of a TFRecord file, and what follows the last whole one. */
export interface ReadRecords {
  records: Uint8Array[];
  /** Bytes after the last whole record: a torn record, or 0. */
  tornBytes: number;
}

/**
 * Reads records until the end or the first record that is cut short or
 * fails a checksum (as TensorBoard's reader stops there).
 */
export function readRecords(bytes: Uint8Array): ReadRecords {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at + 12 <= bytes.length) {
    const length = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== masked(bytes.subarray(at, at + 8))) {
      break;
    }
    if (at + 16 + length > bytes.length) break;
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (view.getUint32(at + 12 + length, true) !== masked(data)) break;
    records.push(data);
    at += 16 + length;
  }
  return { records, tornBytes: bytes.length - at };
}

/** One decoded protobuf field: a number for varints and fixed, else bytes. */
export type Field = { field: number; wire: number; value: number | Uint8Array };

/** The fields of a protobuf message, in order. */
export function decodeFields(bytes: Uint8Array): Field[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Field[] = [];
  let at = 0;
  const varint = () => {
    let value = 0, scale = 1, b: number;
    do {
      b = bytes[at++];
      value += (b & 0x7f) * scale;
      scale *= 128;
    } while (b & 0x80);
    return value;
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 1) {
      out.push({ field, wire, value: view.getFloat64(at, true) });
      at += 8;
    } else if (wire === 5) {
      out.push({ field, wire, value: view.getFloat32(at, true) });
      at += 4;
    } else if (wire === 2) {
      const n = varint();
      out.push({ field, wire, value: bytes.subarray(at, at + n) });
      at += n;
    } else throw new Error(`wire type ${wire} at byte ${at}`);
  }
  return out;
}

/** A decoded `Event`'s time, step and what it carries. */
export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  sessionStatus?: number;
  /** Each summary value: its tag and which field (2 scalar, 4 image, 8 tensor). */
  values?: { tag: string; kind: number; scalar?: number; raw: Uint8Array }[];
}

/** An `Event` decoded with the field numbers of event.proto and summary.proto. */
export function decodeEvent(bytes: Uint8Array): ReadEvent {
  const text = new TextDecoder();
  const event: ReadEvent = { wallTime: 0, step: 0 };
  for (const f of decodeFields(bytes)) {
    if (f.field === 1) event.wallTime = f.value as number;
    if (f.field === 2) event.step = f.value as number;
    if (f.field === 3) event.fileVersion = text.decode(f.value as Uint8Array);
    if (f.field === 7) {
      event.sessionStatus = decodeFields(f.value as Uint8Array)
        .find((g) => g.field === 1)?.value as number;
    }
    if (f.field === 5) {
      event.values = decodeFields(f.value as Uint8Array).map((v) => {
        const inner = decodeFields(v.value as Uint8Array);
        const tag = text.decode(
          inner.find((g) => g.field === 1)!
            .value as Uint8Array,
        );
        const data = inner.find((g) => [2, 4, 8].includes(g.field))!;
        return {
          tag,
          kind: data.field,
          ...(data.field === 2 ? { scalar: data.value as number } : {}),
          raw: v.value as Uint8Array,
        };
      });
    }
  }
  return event;
}
