import { assertEquals } from "@scaling-vicreg/backend/assert";
import { encodeRecord, TFRECORD_OVERHEAD } from "./tfrecord.ts";

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

// The masked CRCs below were computed by TensorBoard's own Python
// `masked_crc32c` (tensorboard.compat.tensorflow_stub.pywrap_tensorflow,
// TensorBoard 2.21.0): 0x340b2778 for the length bytes 02 00 … 00,
// 0x5608d613 for "hi", 0x07980329 for eight zero bytes.

Deno.test("encodeRecord() frames data as length, masked CRC of it, data, masked CRC of data", () => {
  assertEquals(
    hex(encodeRecord(new TextEncoder().encode("hi"))),
    [
      "02 00 00 00 00 00 00 00", // uint64 length 2, little-endian
      "78 27 0b 34", // masked crc32c of the length bytes: 0x340b2778
      "68 69", // "hi"
      "13 d6 08 56", // masked crc32c of "hi": 0x5608d613
    ].join(" "),
  );
});

Deno.test("encodeRecord() frames empty data in TFRECORD_OVERHEAD bytes", () => {
  const record = encodeRecord(new Uint8Array(0));
  assertEquals(record.length, TFRECORD_OVERHEAD);
  assertEquals(
    hex(record),
    // Length 0; the CRC of eight zero bytes; the CRC of nothing is 0, masked
    // 0xa282ead8.
    "00 00 00 00 00 00 00 00 29 03 98 07 d8 ea 82 a2",
  );
});
