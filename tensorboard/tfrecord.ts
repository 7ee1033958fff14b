/**
 * TFRecord framing, the container of TensorBoard event files: each record
 * is its length, a checksum of the length, the data and a checksum of the
 * data, so a reader can tell a whole record from a torn one.
 *
 * @module
 */
import { maskedCrc32c } from "./crc32c.ts";

/** Bytes a record adds around its data: 8 + 4 before, 4 after. */
export const TFRECORD_OVERHEAD = 16;

/**
 * One TFRecord: `uint64` length of `data` (little-endian), `uint32` masked
 * CRC-32C of those 8 length bytes, `data`, `uint32` masked CRC-32C of
 * `data` (TensorFlow's `io::RecordWriter`, without compression).
 *
 * @example
 * ```ts
 * import { encodeRecord } from "@scaling-vicreg/tensorboard/tfrecord";
 * const record = encodeRecord(new TextEncoder().encode("hi"));
 * console.log(record.length); // 18: 8 + 4 + 2 + 4
 * ```
 *
 * @param data The record's payload (here an encoded `Event`).
 * @returns The framed record.
 */
export function encodeRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(TFRECORD_OVERHEAD + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}
